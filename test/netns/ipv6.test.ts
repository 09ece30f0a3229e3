// The data plane with IPv6 and dual-stack farms, in IPv6 network namespaces: the same
// buckets as IPv4 (owned vs not owned, predicted by bucketOf over the 16-byte address),
// one farm serving both families, Directed forwarding, clean removal
// (no address, table, group membership or sysctl change left), bad input refused with
// the kernel unchanged. (SYN gating through a planned handoff, leases and takeover for an
// IPv6 farm: test/netns/handoff.test.ts, which runs for both families.)
import { fileURLToPath } from 'node:url';
import { bucketOf } from '../../common/src/jhash.js';
import type { Affinity, DataplaneFarm } from '../../common/src/types.js';
import { FARM_MAC, contiguousSplit, ownerIndex, startFarm, stopFarm, teardownFarm } from '../../lab/netns/farm.js';
import { Driver, DriverError, Holder, runClient, startEcho, type Attempt, type JsonLines } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

const ICMP_ECHO = fileURLToPath(new URL('../../../lab/netns/helpers/icmp-echo.py', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const RULES: DataplaneFarm['rules'] = [
  { port: 80, protocol: 'tcp', affinity: 'ClientIP' },
  { port: 81, protocol: 'tcp', affinity: 'ClientIPAndPort' },
  { port: 53, protocol: 'udp', affinity: 'ClientIPAndPort' },
];

describe('a dual-stack farm of 3 nodes: IPv6 and IPv4 VIPs, one bucket split', () => {
  let tb: Testbed;
  let farm: DataplaneFarm;
  let drivers: Driver[] | undefined;
  let servers: JsonLines[];
  let sources6: string[];
  // uneven on purpose, so a wrong owner cannot pass by symmetry
  const split = contiguousSplit(256, [2, 1, 1]);

  beforeAll(async () => {
    tb = createTestbed({ nodes: 3, clients: 1, families: ['ipv4', 'ipv6'] });
    farm = { name: 'tf6', interface: 'eth0', virtualIPs: [tb.vip6(0), tb.vip(0)], virtualMAC: FARM_MAC, rules: RULES, bucketCount: 256, hashSeed: 0x1234 };
    sources6 = tb.addAddresses(tb.clients[0], 600, 'ipv6');
    drivers = await startFarm(tb, farm, split);
    servers = await Promise.all(tb.nodes.map((n) => startEcho(tb, n, farm.virtualIPs.join(','), [80, 81], [53])));
  }, 60000);

  afterAll(() => teardownFarm(tb, drivers, farm));

  function check(results: Attempt[], affinity: Affinity, protocol: 'tcp' | 'udp', port: number, vip: string): void {
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const expected = (a: Attempt): string => tb.nodes[ownerIndex(split, bucketOf(a.laddr, a.lport, affinity, farm.bucketCount, farm.hashSeed))].name;
    expect(results.filter((r) => r.node !== expected(r))).toEqual([]);
    // what each node saw is exactly what the client attributes to it: nobody else answered
    for (const [i, node] of tb.nodes.entries()) {
      const seen = servers[i].lines
        .filter((l) => l.event === protocol && l.port === port && l.local === vip)
        .map((l) => String(l.peer).replace(/^::ffff:/, ''))
        .sort();
      const attributed = results.filter((r) => r.node === node.name).map((r) => `${r.laddr}:${r.lport}`).sort();
      expect(seen).toEqual(attributed);
    }
    for (const n of tb.nodes) expect(results.filter((r) => r.node === n.name).length).toBeGreaterThan(0);
  }

  test('ClientIP: 600 TCP connections from 600 IPv6 addresses land on the owners of their buckets', async () => {
    const vip = farm.virtualIPs[0];
    const { results } = await runClient(tb, tb.clients[0], { vip, port: 80, protocol: 'tcp', count: 600, concurrency: 30, sources: sources6 });
    expect(results).toHaveLength(600);
    expect(new Set(results.map((r) => r.laddr)).size).toBe(600);
    check(results, 'ClientIP', 'tcp', 80, vip);
  });

  test('ClientIPAndPort: 600 TCP connections from one IPv6 address spread by source port', async () => {
    const vip = farm.virtualIPs[0];
    const { results } = await runClient(tb, tb.clients[0], { vip, port: 81, protocol: 'tcp', count: 600, concurrency: 30 });
    expect(results).toHaveLength(600);
    check(results, 'ClientIPAndPort', 'tcp', 81, vip);
  });

  test('UDP ClientIPAndPort over IPv6: 300 datagrams answered by exactly the owners', async () => {
    const vip = farm.virtualIPs[0];
    const { results } = await runClient(tb, tb.clients[0], { vip, port: 53, protocol: 'udp', count: 300, concurrency: 30 });
    expect(results).toHaveLength(300);
    check(results, 'ClientIPAndPort', 'udp', 53, vip);
  });

  test('the IPv4 VIP of the same farm: 300 connections split by the same buckets', async () => {
    const vip = farm.virtualIPs[1];
    const { results } = await runClient(tb, tb.clients[0], { vip, port: 81, protocol: 'tcp', count: 300, concurrency: 30 });
    expect(results).toHaveLength(300);
    check(results, 'ClientIPAndPort', 'tcp', 81, vip);
  });

  test('ICMPv6 echo to the IPv6 VIP: exactly one reply, from the owner of the source\'s ClientIP bucket', () => {
    const vip = farm.virtualIPs[0];
    const echoOwned = (i: number): number => {
      const text = tb.exec(tb.nodes[i].netns, ['nft', 'list', 'chain', 'inet', `vipfarm_${farm.name}`, 'pre']);
      const line = text.split('\n').find((l) => l.includes(`comment "vipfarm ${vip} echo owned"`));
      if (line === undefined) throw new Error(`no echo rule for ${vip} on ${tb.nodes[i].name}`);
      return Number(/counter packets (\d+)/.exec(line)![1]);
    };
    const seen = new Set<number>();
    for (const src of sources6.slice(0, 8)) {
      const expected = ownerIndex(split, bucketOf(src, undefined, 'ClientIP', farm.bucketCount, farm.hashSeed));
      seen.add(expected);
      const before = tb.nodes.map((_, i) => echoOwned(i));
      const r = JSON.parse(tb.exec(tb.clients[0].netns, ['python3', ICMP_ECHO, src, vip, '3', '0.6'])) as { replies: Record<string, number> };
      expect({ src, replies: r.replies }).toEqual({ src, replies: { 0: 1, 1: 1, 2: 1 } });
      const answered = tb.nodes.map((_, i) => i).filter((i) => echoOwned(i) > before[i]);
      expect({ src, answered }).toEqual({ src, answered: [expected] });
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  test('counters per family: every node accepted its share and dropped (or, for SYNs, refused before conntrack) the rest', async () => {
    const per = await Promise.all((drivers ?? []).map((d) => d.call<{ vip: string; port: number; protocol: string; verdict: string; packets: number }[]>('counters', farm.name)));
    for (const c of per) {
      for (const vip of farm.virtualIPs) {
        const of = (verdict: string): number => c.filter((x) => x.vip === vip && x.port === 81 && x.verdict === verdict).reduce((a, x) => a + x.packets, 0);
        expect({ vip, accepted: of('accept') > 0, dropped: of('drop') > 0 }).toEqual({ vip, accepted: true, dropped: true });
      }
    }
  });
});

describe('IPv6-only bed, 2 nodes', () => {
  let tb: Testbed;
  let farm: DataplaneFarm;
  let drivers: Driver[] = [];
  const all = Array.from({ length: 256 }, (_, i) => i);

  beforeEach(async () => {
    tb = createTestbed({ nodes: 2, clients: 1, families: ['ipv6'] });
    farm = { name: 'tf6', interface: 'eth0', virtualIPs: [tb.vip6(0)], virtualMAC: FARM_MAC, rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], bucketCount: 256, hashSeed: 0x1234 };
  });

  afterEach(async () => {
    try {
      await stopFarm(drivers, farm).catch(() => undefined);
    } finally {
      drivers = [];
      tb.destroy();
    }
  });

  test('clean removal: no address on lo, no table, no solicited-node group, sysctls as before; idempotent', async () => {
    const n = tb.nodes[0];
    const sys = (): string => tb.exec(n.netns, ['sh', '-c', 'sysctl -a 2>/dev/null | grep -E "^net\\.ipv[46]\\.conf\\.(all|eth0|lo)\\." | sort']);
    const lo = (): string => tb.exec(n.netns, ['ip', '-6', 'addr', 'show', 'dev', 'lo']);
    const groups = (): string => tb.exec(n.netns, ['ip', '-6', 'maddr', 'show', 'dev', 'eth0']);
    const before = { sys: sys(), lo: lo(), groups: groups(), nft: tb.exec(n.netns, ['nft', 'list', 'ruleset']) };
    const d = Driver.start(tb, n);
    drivers = [d];
    const vips = [tb.vip6(0), tb.vip6(1)];
    const dual: DataplaneFarm = { ...farm, virtualIPs: vips };
    await d.call('bindVips', farm.name, 'eth0', vips);
    await d.call('apply', dual);
    await d.call('arpStart', { iface: 'eth0', vips, mac: FARM_MAC });
    for (const v of vips) expect(lo()).toMatch(new RegExp(`inet6 ${v}/128 scope global nodad`));
    expect(groups()).toContain('ff02::1:ff00:200');
    expect(groups()).toContain('ff02::1:ff00:201');
    await d.call('arpStop');
    await d.call('remove', farm.name);
    await d.call('remove', farm.name);
    await d.call('unbindVips', farm.name, 'eth0', vips);
    await d.call('unbindVips', farm.name, 'eth0', vips);
    expect({ sys: sys(), lo: lo(), groups: groups(), nft: tb.exec(n.netns, ['nft', 'list', 'ruleset']) }).toEqual(before);
  });

  test('bad IPv6 input: clear error, kernel unchanged', async () => {
    const n = tb.nodes[0];
    const d = Driver.start(tb, n);
    drivers = [d];
    await d.call('bindVips', farm.name, 'eth0', farm.virtualIPs);
    await d.call('apply', farm);
    await d.call('setBuckets', farm.name, [5, 6], 60_000);
    const strip = (s: string): string => s.replace(/expires \S+/g, '');
    const state = (): Record<string, string> => ({
      nft: strip(tb.exec(n.netns, ['nft', 'list', 'ruleset'])),
      lo: tb.exec(n.netns, ['ip', 'addr', 'show', 'dev', 'lo']),
      groups: tb.exec(n.netns, ['ip', '-6', 'maddr', 'show', 'dev', 'eth0']),
    });
    const before = state();
    const bad: [string, unknown[], RegExp][] = [
      ['apply', [{ ...farm, virtualIPs: ['fe80::1'] }], /virtualIPs\[0\] must not be a link-local address/],
      ['apply', [{ ...farm, virtualIPs: ['ff02::1'] }], /virtualIPs\[0\] must be a unicast address, not multicast/],
      ['apply', [{ ...farm, virtualIPs: ['::'] }], /virtualIPs\[0\] must not be the unspecified address/],
      ['apply', [{ ...farm, virtualIPs: ['fd00::1%eth0'] }], /virtualIPs\[0\] must be an IPv6 address/],
      ['apply', [{ ...farm, virtualIPs: ['fd00::1', 'FD00:0::1'] }], /virtualIPs\[1\] duplicates virtualIPs\[0\]/],
      ['bindVips', [farm.name, 'eth0', ['fd00:::1']], /virtualIPs\[0\] must be an IPv6 address/],
      ['arpStart', [{ iface: 'eth0', vips: ['fe80::2'], mac: FARM_MAC }], /link-local/],
    ];
    for (const [op, args, message] of bad) {
      const err = await (d.call(op, ...args) as Promise<unknown>).then(() => undefined, (e: unknown) => e as DriverError);
      expect({ op, message: err?.message }).toEqual({ op, message: expect.stringMatching(message) });
      expect({ op, code: err?.code }).toEqual({ op, code: 'EINVAL' });
    }
    // IPv6 switched off on the farm's interface: refused before anything changes
    tb.exec(n.netns, ['ip', 'link', 'add', 'vf6off', 'type', 'veth', 'peer', 'name', 'vf6offp']);
    try {
      tb.exec(n.netns, ['sysctl', '-qw', 'net.ipv6.conf.vf6off.disable_ipv6=1']);
      const off = await (d.call('bindVips', 'other', 'vf6off', [tb.vip6(5)]) as Promise<unknown>).then(() => undefined, (e: unknown) => e as DriverError);
      expect(off?.message).toMatch(/bindVips: IPv6 is disabled on vf6off \(net.ipv6.conf.vf6off.disable_ipv6 is not 0\)/);
      expect(off?.code).toBe('EINVAL');
    } finally {
      tb.exec(n.netns, ['ip', 'link', 'del', 'vf6off']);
    }
    expect(state()).toEqual(before);
    expect(await d.call('getBuckets', farm.name, 'owned')).toEqual([5, 6]);
  });
});

test('Directed mode, IPv6 only, on a switch that does not flood unknown unicast: frames sent to one node reach every owner through the netdev forward rule', async () => {
  const tb = createTestbed({ nodes: 2, clients: 1, families: ['ipv6'], floodUnknownUnicast: false });
  const farm: DataplaneFarm = {
    name: 'td6', interface: 'eth0', virtualIPs: [tb.vip6(0)], virtualMAC: FARM_MAC, mode: 'Directed',
    rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], bucketCount: 64, hashSeed: 0x77,
  };
  const split = contiguousSplit(64, [1, 1]);
  const drivers = tb.nodes.map((n) => Driver.start(tb, n));
  try {
    await Promise.all(drivers.map(async (d, i) => {
      await d.call('bindVips', farm.name, 'eth0', farm.virtualIPs);
      await d.call('apply', farm);
      const other = 1 - i;
      await d.call('setBucketsAndForwarding', farm.name, split[i], 600_000, split[other].map((b) => [b, tb.nodes[other].mac]), tb.nodes.map((n) => n.mac));
    }));
    await Promise.all(tb.nodes.map((n) => startEcho(tb, n, farm.virtualIPs[0], [80])));
    const client = tb.clients[0];
    // the switch learns each node's MAC from its first frame (a real node's heartbeats do this)
    for (const n of tb.nodes) tb.exec(n.netns, ['ip', '-6', 'neigh', 'replace', client.ip6!, 'lladdr', client.mac, 'dev', 'eth0']);
    await Promise.all(tb.nodes.map((n) => runClient(tb, n, { vip: client.ip6!, port: 9, protocol: 'udp', count: 1, timeoutMs: 100 })));
    // every frame of the client goes to n1's own MAC
    tb.exec(client.netns, ['ip', '-6', 'neigh', 'replace', farm.virtualIPs[0], 'lladdr', tb.nodes[0].mac, 'dev', 'eth0', 'nud', 'permanent']);
    const { results } = await runClient(tb, client, { vip: farm.virtualIPs[0], port: 80, protocol: 'tcp', count: 200, concurrency: 20 });
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const misplaced = results.filter((r) => r.node !== tb.nodes[ownerIndex(split, bucketOf(r.laddr, r.lport, 'ClientIPAndPort', 64, farm.hashSeed))].name);
    expect(misplaced).toEqual([]);
    const onN2 = results.filter((r) => r.node === 'n2').length;
    expect(onN2).toBeGreaterThan(40);
    const forwarded = JSON.parse(tb.exec(tb.nodes[0].netns, ['nft', '-j', 'list', 'table', 'netdev', `vipfarm_${farm.name}_in`])) as {
      nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[];
    };
    const packets = forwarded.nftables.filter((x) => x.rule?.comment === `vipfarm ${farm.virtualIPs[0]} 80 tcp forward`)
      .flatMap((x) => x.rule!.expr).reduce((a, e) => a + (e.counter?.packets ?? 0), 0);
    // SYN, ACK and FIN at least, for each of n2's connections, went through n1's forward rule
    expect(packets).toBeGreaterThanOrEqual(onN2 * 3);
  } finally {
    try {
      await Promise.all(drivers.map(async (d) => {
        await d.call('remove', farm.name);
        await d.call('unbindVips', farm.name, 'eth0', farm.virtualIPs);
        d.close();
      }));
    } finally {
      tb.destroy();
    }
  }
}, 60_000);
