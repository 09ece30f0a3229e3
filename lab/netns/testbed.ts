// Test bed of network namespaces: N node hosts and M client hosts, each with an eth0
// plugged into one bridge that lives in its own namespace (a switch). Names carry a
// per-run id (vf<pid><seq>-n1, ...), addresses are 10.<x>.0.0/16 (and, with the ipv6
// option, fd00:0:<x>::/64) and exist only inside these namespaces. destroy() kills what spawn() started and deletes the namespaces; it
// also runs on process exit, so a failing test leaves nothing behind.
//
// Used by the data-plane tests, the demo, the bench and the agent's tests:
//   const tb = createTestbed({ nodes: 3, clients: 1 });
//   try { tb.exec(tb.nodes[0].netns, ['ip', 'addr']); } finally { tb.destroy(); }
import { execFileSync, spawn as spawnProcess, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPFamily } from '../../common/src/config/syntax.js';

export interface Host {
  /** n1.., c1.. */
  name: string;
  /** network namespace name, for `ip netns exec` */
  netns: string;
  /** the host's interface on the bridge (always eth0) */
  iface: string;
  /** the host's main address: its IPv4 address, or its IPv6 one on an IPv6-only bed */
  ip: string;
  /** the IPv6 address (fd00:0:<x>::<n>/64) when the bed has IPv6 */
  ip6?: string;
  mac: string;
  /** name of the bridge-side end of the veth, in the bridge namespace */
  bridgePort: string;
}

export interface Testbed {
  runId: string;
  /** "10.x" : every IPv4 address of the bed is 10.x.*.* (a /16 on every eth0) */
  prefix: string;
  /** "fd00:0:x" : every IPv6 address of the bed is in fd00:0:x::/64 (on every eth0) */
  prefix6: string;
  families: readonly IPFamily[];
  bridgeNetns: string;
  /** VIPFARM_RUN_DIR of every spawned process (saved sysctls), removed by destroy() */
  runDir: string;
  nodes: Host[];
  clients: Host[];
  /** free addresses for VIPs: 10.x.0.200 + i (i < 50) */
  vip(i?: number): string;
  /** free IPv6 addresses for VIPs: fd00:0:x::200 + i (i < 50, read as hex digits: ::200..::249) */
  vip6(i?: number): string;
  /** runs argv in the namespace, returns stdout; throws with stderr on failure */
  exec(netns: string, argv: string[], input?: string): string;
  /** starts argv in the namespace; destroy() kills it */
  spawn(netns: string, argv: string[], opts?: SpawnOptions): ChildProcess;
  /** adds count extra addresses to a host's eth0, returns them: IPv4 10.x.<10+k>.<1..250>,
   *  IPv6 fd00:0:x:0:<10+k>::<1..250> (nodad, usable at once) */
  addAddresses(host: Host, count: number, family?: IPFamily): string[];
  /** plugs or unplugs a host's cable (the bridge side of its veth) */
  setLink(host: Host, up: boolean): void;
  /** turns the switch's flooding of unknown unicast on or off on every port (floodUnknownUnicast) */
  setFlooding(flood: boolean): void;
  destroy(): void;
}

export interface TestbedOptions {
  nodes: number;
  clients?: number;
  /**
   * false: the switch does not flood unknown unicast (every port `flood off`, learning
   * on), like a vSwitch port group without promiscuous mode or a switch with unknown-
   * unicast flood control: frames to a MAC no port has sent from reach no host.
   * Default true (a plain learning bridge that floods).
   */
  floodUnknownUnicast?: boolean;
  /**
   * Address families of every host's eth0. Default ['ipv4']: IPv6 is disabled in the
   * namespaces (no router solicitations or DAD in the captures). With 'ipv6' every host
   * gets fd00:0:x::<n>/64 (nodad), a link-local address, no DAD and no router
   * solicitations or RA processing; the switch does not snoop multicast (it floods ND
   * and MLD, like a switch without MLD snooping). ['ipv6'] alone is an IPv6-only bed.
   */
  families?: readonly IPFamily[];
}


let seq = 0;

function ip(args: string[], input?: string): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** IPv6 off: no router solicitations, DAD or MLD in the captures of an IPv4 bed */
const IPV6_OFF = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];
/** IPv6 on, without the traffic a test did not ask for: no DAD (addresses usable at once),
 *  no router solicitations, no RA processing (there is no router on the bed) */
const IPV6_QUIET = [
  'net.ipv6.conf.all.disable_ipv6=0',
  'net.ipv6.conf.default.disable_ipv6=0',
  ...['all', 'default'].flatMap((c) => [`net.ipv6.conf.${c}.accept_dad=0`, `net.ipv6.conf.${c}.dad_transmits=0`, `net.ipv6.conf.${c}.router_solicitations=0`, `net.ipv6.conf.${c}.accept_ra=0`]),
];

function sysctl(netns: string, settings: string[]): void {
  execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-qw', ...settings]);
}

/**
 * The kernel's ARP and ND tables are one table each for all network namespaces: their
 * gc_thresh limits (settable only from the initial namespace) count every namespace's
 * entries together. A bed's nodes each learn every client address they answer, so a few
 * nodes talking to a client with hundreds of addresses pass the default hard limit of
 * 1024; then "neighbor table overflow": a node cannot resolve a client and silently
 * drops its SYN-ACKs (seen as a multi-second "takeover gap" on real nodes). A real node
 * has a table of its own; give the bed room enough to behave like that. Only raised,
 * never lowered (other beds may be running).
 */
const NEIGH_LIMITS: ReadonlyArray<[string, number]> = [['gc_thresh3', 32768], ['gc_thresh2', 16384]];
let neighRaised = false;
export function ensureNeighbourTables(): void {
  if (neighRaised) return;
  for (const family of ['ipv4', 'ipv6']) {
    // a kernel without IPv6 has no ND table to raise
    if (!existsSync(`/proc/sys/net/${family}/neigh/default`)) continue;
    for (const [key, want] of NEIGH_LIMITS) {
      const file = `/proc/sys/net/${family}/neigh/default/${key}`;
      try {
        if (Number(readFileSync(file, 'utf8').trim()) < want) writeFileSync(file, `${want}\n`);
      } catch (err) {
        throw new Error(`createTestbed: cannot raise ${file} to ${want} (${(err as Error).message}); beds with many client addresses would overflow the kernel's neighbour table`, { cause: err });
      }
    }
  }
  neighRaised = true;
}

function existingNetns(): Set<string> {
  const out = ip(['netns', 'list']);
  return new Set(out.split('\n').map((l) => l.split(' ')[0]).filter((s) => s !== ''));
}

export function createTestbed(opts: TestbedOptions): Testbed {
  const nodesN = opts.nodes;
  const clientsN = opts.clients ?? 1;
  if (nodesN < 1 || nodesN > 40 || clientsN < 0 || clientsN > 40) throw new Error('createTestbed: 1..40 nodes, 0..40 clients');
  const families = opts.families ?? ['ipv4'];
  ensureNeighbourTables();
  const v4 = families.includes('ipv4');
  const v6 = families.includes('ipv6');
  if (!v4 && !v6) throw new Error('createTestbed: families needs ipv4, ipv6 or both');

  // unique per process and per call; skip ids a crashed earlier run may have left
  const taken = existingNetns();
  let runId: string;
  do {
    runId = `${process.pid % 10000}${(seq++).toString(36)}`;
  } while ([...taken].some((n) => n.startsWith(`vf${runId}-`)));
  const x = 200 + ((process.pid + seq) % 50);
  const prefix = `10.${x}`;
  const prefix6 = `fd00:0:${x}`;
  const bridgeNetns = `vf${runId}-br`;
  const runDir = join(tmpdir(), `vipfarm-run-${runId}`);
  const children = new Set<ChildProcess>();
  const created: string[] = [];
  let extraBlock = 10;
  let destroyed = false;

  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.removeListener('exit', destroy);
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    for (const ns of created.reverse()) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        /* best effort: keep deleting the others */
      }
    }
    rmSync(runDir, { recursive: true, force: true });
  };
  process.on('exit', destroy);

  const setPortFlooding = (port: string, flood: boolean): void =>
    void execFileSync('bridge', ['-n', bridgeNetns, 'link', 'set', 'dev', port, 'flood', flood ? 'on' : 'off', 'learning', 'on']);
  const makeHost = (name: string, n: number): Host => {
    const netns = `vf${runId}-${name}`;
    ip(['netns', 'add', netns]);
    created.push(netns);
    // before eth0 arrives, so that it inherits the defaults (its link-local address skips DAD too)
    sysctl(netns, v6 ? IPV6_QUIET : IPV6_OFF);
    ip(['-n', bridgeNetns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    ip(['-n', bridgeNetns, 'link', 'set', name, 'master', 'br0', 'up']);
    if (opts.floodUnknownUnicast === false) setPortFlooding(name, false);
    const ip4 = `${prefix}.0.${n}`;
    const ip6 = `${prefix6}::${n}`;
    const addrs = [...(v4 ? [`addr add ${ip4}/16 dev eth0`] : []), ...(v6 ? [`addr add ${ip6}/64 dev eth0 nodad`] : [])];
    ip(['-n', netns, '-batch', '-'], ['link set lo up', ...addrs, 'link set eth0 up', ''].join('\n'));
    const link = JSON.parse(ip(['-n', netns, '-j', 'link', 'show', 'eth0'])) as { address: string }[];
    return { name, netns, iface: 'eth0', ip: v4 ? ip4 : ip6, ...(v6 ? { ip6 } : {}), mac: link[0].address, bridgePort: name };
  };

  try {
    ip(['netns', 'add', bridgeNetns]);
    created.push(bridgeNetns);
    // on an IPv6 bed the switch takes no part in IPv6 itself (no addresses, no MLD) and
    // floods multicast, so ND reaches every port whoever joined which group
    if (v6) sysctl(bridgeNetns, IPV6_OFF);
    const snooping = v6 ? ' mcast_snooping 0' : '';
    ip(['-n', bridgeNetns, '-batch', '-'], `link set lo up\nlink add br0 type bridge forward_delay 0 stp_state 0${snooping}\nlink set br0 up\n`);
    const nodes = Array.from({ length: nodesN }, (_, i) => makeHost(`n${i + 1}`, 10 + i + 1));
    const clients = Array.from({ length: clientsN }, (_, i) => makeHost(`c${i + 1}`, 100 + i + 1));

    return {
      runId,
      prefix,
      prefix6,
      families,
      bridgeNetns,
      runDir,
      nodes,
      clients,
      vip: (i = 0) => `${prefix}.0.${200 + i}`,
      vip6: (i = 0) => `${prefix6}::${200 + i}`,
      exec(netns, argv, input) {
        try {
          return execFileSync('ip', ['netns', 'exec', netns, ...argv], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
        } catch (err) {
          const e = err as { stderr?: string; message: string };
          throw new Error(`[${netns}] ${argv.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
        }
      },
      spawn(netns, argv, spawnOpts) {
        const child = spawnProcess('ip', ['netns', 'exec', netns, ...argv], {
          stdio: ['pipe', 'pipe', 'pipe'],
          ...spawnOpts,
          env: { ...process.env, VIPFARM_RUN_DIR: runDir, ...spawnOpts?.env },
        });
        children.add(child);
        child.on('exit', () => children.delete(child));
        return child;
      },
      addAddresses(host, count, family = 'ipv4') {
        if (!families.includes(family)) throw new Error(`addAddresses: the bed has no ${family}`);
        const addrs: string[] = [];
        while (addrs.length < count) {
          const block = extraBlock++;
          for (let k = 1; k <= 250 && addrs.length < count; k++) addrs.push(family === 'ipv4' ? `${prefix}.${block}.${k}` : `${prefix6}:0:${block}::${k}`);
        }
        const suffix = family === 'ipv4' ? '/16 dev eth0' : '/64 dev eth0 nodad';
        ip(['-n', host.netns, '-batch', '-'], addrs.map((a) => `addr add ${a}${suffix}`).join('\n') + '\n');
        return addrs;
      },
      setLink(host, up) {
        ip(['-n', bridgeNetns, 'link', 'set', host.bridgePort, up ? 'up' : 'down']);
      },
      setFlooding(flood) {
        for (const h of [...nodes, ...clients]) setPortFlooding(h.bridgePort, flood);
      },
      destroy,
    };
  } catch (err) {
    destroy();
    throw err;
  }
}
