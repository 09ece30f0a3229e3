// Test bed of network namespaces: N node hosts and M client hosts, each with an eth0
// plugged into one bridge that lives in its own namespace (a switch). Names carry a
// per-run id (vf<pid><seq>-n1, ...), addresses are 10.<x>.0.0/16 and exist only inside
// these namespaces. destroy() kills what spawn() started and deletes the namespaces; it
// also runs on process exit, so a failing test leaves nothing behind.
//
// Used by the data-plane tests, the demo, the bench and the agent's tests:
//   const tb = createTestbed({ nodes: 3, clients: 1 });
//   try { tb.exec(tb.nodes[0].netns, ['ip', 'addr']); } finally { tb.destroy(); }
import { execFileSync, spawn as spawnProcess, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Host {
  /** n1.., c1.. */
  name: string;
  /** network namespace name, for `ip netns exec` */
  netns: string;
  /** the host's interface on the bridge (always eth0) */
  iface: string;
  ip: string;
  mac: string;
  /** name of the bridge-side end of the veth, in the bridge namespace */
  bridgePort: string;
}

export interface Testbed {
  runId: string;
  /** "10.x" : every address of the bed is 10.x.*.* (a /16 on every eth0) */
  prefix: string;
  bridgeNetns: string;
  /** VIPFARM_RUN_DIR of every spawned process (saved sysctls), removed by destroy() */
  runDir: string;
  nodes: Host[];
  clients: Host[];
  /** free addresses for VIPs: 10.x.0.200 + i (i < 50) */
  vip(i?: number): string;
  /** runs argv in the namespace, returns stdout; throws with stderr on failure */
  exec(netns: string, argv: string[], input?: string): string;
  /** starts argv in the namespace; destroy() kills it */
  spawn(netns: string, argv: string[], opts?: SpawnOptions): ChildProcess;
  /** adds count extra addresses to a host's eth0 (10.x.<10+k>.<1..250>), returns them */
  addAddresses(host: Host, count: number): string[];
  /** plugs or unplugs a host's cable (the bridge side of its veth) */
  setLink(host: Host, up: boolean): void;
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

function existingNetns(): Set<string> {
  const out = ip(['netns', 'list']);
  return new Set(out.split('\n').map((l) => l.split(' ')[0]).filter((s) => s !== ''));
}

export function createTestbed(opts: TestbedOptions): Testbed {
  const nodesN = opts.nodes;
  const clientsN = opts.clients ?? 1;
  if (nodesN < 1 || nodesN > 40 || clientsN < 0 || clientsN > 40) throw new Error('createTestbed: 1..40 nodes, 0..40 clients');

  // unique per process and per call; skip ids a crashed earlier run may have left
  const taken = existingNetns();
  let runId: string;
  do {
    runId = `${process.pid % 10000}${(seq++).toString(36)}`;
  } while ([...taken].some((n) => n.startsWith(`vf${runId}-`)));
  const x = 200 + ((process.pid + seq) % 50);
  const prefix = `10.${x}`;
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

  const makeHost = (name: string, hostIp: string): Host => {
    const netns = `vf${runId}-${name}`;
    ip(['netns', 'add', netns]);
    created.push(netns);
    ip(['-n', bridgeNetns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    ip(['-n', bridgeNetns, 'link', 'set', name, 'master', 'br0', 'up']);
    if (opts.floodUnknownUnicast === false) execFileSync('bridge', ['-n', bridgeNetns, 'link', 'set', 'dev', name, 'flood', 'off', 'learning', 'on']);
    ip(['-n', netns, '-batch', '-'], `link set lo up\naddr add ${hostIp}/16 dev eth0\nlink set eth0 up\n`);
    // no IPv6 chatter (router solicitations, DAD) in the captures
    execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    const link = JSON.parse(ip(['-n', netns, '-j', 'link', 'show', 'eth0'])) as { address: string }[];
    return { name, netns, iface: 'eth0', ip: hostIp, mac: link[0].address, bridgePort: name };
  };

  try {
    ip(['netns', 'add', bridgeNetns]);
    created.push(bridgeNetns);
    ip(['-n', bridgeNetns, '-batch', '-'], 'link set lo up\nlink add br0 type bridge forward_delay 0 stp_state 0\nlink set br0 up\n');
    const nodes = Array.from({ length: nodesN }, (_, i) => makeHost(`n${i + 1}`, `${prefix}.0.${10 + i + 1}`));
    const clients = Array.from({ length: clientsN }, (_, i) => makeHost(`c${i + 1}`, `${prefix}.0.${100 + i + 1}`));

    return {
      runId,
      prefix,
      bridgeNetns,
      runDir,
      nodes,
      clients,
      vip: (i = 0) => `${prefix}.0.${200 + i}`,
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
      addAddresses(host, count) {
        const addrs: string[] = [];
        while (addrs.length < count) {
          const block = extraBlock++;
          for (let k = 1; k <= 250 && addrs.length < count; k++) addrs.push(`${prefix}.${block}.${k}`);
        }
        ip(['-n', host.netns, '-batch', '-'], addrs.map((a) => `addr add ${a}/16 dev eth0`).join('\n') + '\n');
        return addrs;
      },
      setLink(host, up) {
        ip(['-n', bridgeNetns, 'link', 'set', host.bridgePort, up ? 'up' : 'down']);
      },
      destroy,
    };
  } catch (err) {
    destroy();
    throw err;
  }
}
