// Directed mode's data plane on a switch that does not flood unknown unicast (bridge
// ports `flood off`, learning on: a vSwitch without promiscuous mode) and on a flooding
// one. Flooding mode cannot work on the first; Directed must work on both: the client
// sends every frame to ONE node's own MAC, and that node forwards, at L2 in netdev
// ingress, the frames of buckets other nodes own. Every connection must land on the node
// bucketOf() predicts, whichever node received it.
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { join } from 'node:path';
import { bucketOf } from '../../common/src/jhash.js';
import type { DataplaneFarm } from '../../common/src/types.js';
import { distRoot } from '../../lab/agent/farm.js';
import { contiguousSplit, ownerIndex, startFarm, teardownFarm, testFarm } from '../../lab/netns/farm.js';
import { Driver, runClient, startEcho } from '../../lab/netns/procs.js';
import { createTestbed, type Host, type Testbed } from '../../lab/netns/testbed.js';

const LEASE = 600_000;
// the test beds have no ping binary
const ICMP_ECHO = join(distRoot, '..', 'lab/netns/helpers/icmp-echo.py');

/** what every live node's agent programs: its buckets, forwarding to the others, its ARP slots */
async function program(tb: Testbed, drivers: Driver[], farm: DataplaneFarm, live: number[]): Promise<number[][]> {
  const shares = contiguousSplit(farm.bucketCount, live.map(() => 1));
  const split = tb.nodes.map((_, i) => (live.includes(i) ? shares[live.indexOf(i)] : []));
  const names = live.map((i) => tb.nodes[i].name);
  await Promise.all(
    live.map(async (i) => {
      const owners: [number, string][] = [];
      split.forEach((share, j) => {
        if (j !== i) for (const b of share) owners.push([b, tb.nodes[j].mac]);
      });
      await drivers[i].call('setBucketsAndForwarding', farm.name, split[i], LEASE, owners, tb.nodes.map((n) => n.mac));
      await drivers[i].call('arpSetSlots', arpSlotsOf(tb.nodes[i].name, names));
    }),
  );
  return split;
}

/** the farm's Directed data plane on every node: bindVips, apply, ARP with its own MAC */
async function startDirected(tb: Testbed, farm: DataplaneFarm): Promise<Driver[]> {
  const drivers = tb.nodes.map((n) => Driver.start(tb, n));
  await Promise.all(
    drivers.map(async (d, i) => {
      await d.call('bindVips', farm.name, farm.interface, farm.virtualIPs);
      await d.call('apply', farm);
      await d.call('arpStart', { iface: farm.interface, vips: farm.virtualIPs, mac: tb.nodes[i].mac, ownMac: true }, []);
    }),
  );
  return drivers;
}

function neighMac(tb: Testbed, host: Host, ip: string): string | undefined {
  const neigh = JSON.parse(tb.exec(host.netns, ['ip', '-j', 'neigh', 'show', ip])) as { lladdr?: string }[];
  return neigh[0]?.lladdr;
}

/** echo requests the node's inet table accepted (it owns the client's ClientIP bucket) */
function echoAnswered(tb: Testbed, node: Host, farm: DataplaneFarm): number {
  const out = JSON.parse(tb.exec(node.netns, ['nft', '-j', 'list', 'table', 'inet', `vipfarm_${farm.name}`])) as {
    nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[];
  };
  let total = 0;
  for (const item of out.nftables) {
    if (item.rule?.comment?.endsWith(' echo owned') !== true) continue;
    for (const e of item.rule.expr) total += e.counter?.packets ?? 0;
  }
  return total;
}

/** packets the forward rule of node's netdev table sent on to another node */
function forwardedPackets(tb: Testbed, node: Host, farm: DataplaneFarm): number {
  const out = JSON.parse(tb.exec(node.netns, ['nft', '-j', 'list', 'table', 'netdev', `vipfarm_${farm.name}_in`])) as {
    nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[];
  };
  let total = 0;
  for (const item of out.nftables) {
    if (item.rule?.comment?.endsWith(' forward') !== true) continue;
    for (const e of item.rule.expr) total += e.counter?.packets ?? 0;
  }
  return total;
}

function vipfarmTables(tb: Testbed, node: Host): string[] {
  return tb
    .exec(node.netns, ['nft', 'list', 'tables'])
    .split('\n')
    .filter((l) => l.includes('vipfarm'));
}

test('Flooding mode on a switch that does not flood unknown unicast: ARP resolves the virtual MAC, no connection gets through', async () => {
  const tb = createTestbed({ nodes: 3, clients: 1, floodUnknownUnicast: false });
  const farm = testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }]);
  let drivers: Driver[] | undefined;
  try {
    drivers = await startFarm(tb, farm, contiguousSplit(farm.bucketCount, [1, 1, 1]), LEASE);
    await Promise.all(tb.nodes.map((n) => startEcho(tb, n, farm.virtualIPs[0], [80])));
    const { results } = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, protocol: 'tcp', count: 30, concurrency: 10, timeoutMs: 1500 });
    // ARP still works (broadcast), so the client has the virtual MAC...
    const neigh = JSON.parse(tb.exec(tb.clients[0].netns, ['ip', '-j', 'neigh', 'show', farm.virtualIPs[0]])) as { lladdr?: string }[];
    expect(neigh.map((n) => n.lladdr)).toEqual([farm.virtualMAC]);
    // ...but the switch never learned it and delivers its frames to no node
    expect(results.filter((r) => r.node !== null)).toEqual([]);
  } finally {
    await teardownFarm(tb, drivers, farm);
  }
}, 60_000);

describe.each([
  { flood: false, what: 'a switch that does not flood unknown unicast' },
  { flood: true, what: 'a flooding switch' },
])('Directed mode on $what', ({ flood }) => {
  let tb: Testbed;
  let farm: DataplaneFarm;
  let drivers: Driver[] | undefined;
  let split: number[][];

  beforeAll(async () => {
    // dual-stack: the IPv6 VIP (second) is there for the echo test; the rest uses the IPv4 one
    tb = createTestbed({ nodes: 3, clients: 4, floodUnknownUnicast: flood, families: ['ipv4', 'ipv6'] });
    farm = { ...testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], 256, ['ipv4', 'ipv6']), mode: 'Directed' };
    drivers = await startDirected(tb, farm);
    split = await program(tb, drivers, farm, [0, 1, 2]);
    await Promise.all(tb.nodes.map((n) => startEcho(tb, n, farm.virtualIPs[0], [80])));
    // the switch learns each node's MAC from its first frame; a real node's heartbeats do this
    for (const n of tb.nodes) tb.exec(n.netns, ['ip', 'neigh', 'replace', tb.clients[0].ip, 'lladdr', tb.clients[0].mac, 'dev', 'eth0']);
    await Promise.all(tb.nodes.map((n) => runClient(tb, n, { vip: tb.clients[0].ip, port: 9, protocol: 'udp', count: 1, timeoutMs: 100 })));
  }, 60_000);

  afterAll(() => teardownFarm(tb, drivers, farm));

  test.each([0, 2])('600 connections sent to node %i are spread over every node, each on the node its bucket names', async (receiver) => {
    const client = tb.clients[0];
    const vip = farm.virtualIPs[0];
    tb.exec(client.netns, ['ip', 'neigh', 'replace', vip, 'lladdr', tb.nodes[receiver].mac, 'dev', 'eth0', 'nud', 'permanent']);
    const before = tb.nodes.map((n) => forwardedPackets(tb, n, farm));
    const { results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 600, concurrency: 20 });
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const perNode = tb.nodes.map((n) => results.filter((r) => r.node === n.name).length);
    for (const c of perNode) expect(c).toBeGreaterThan(100);
    const misplaced = results.filter((r) => {
      const owner = ownerIndex(split, bucketOf(r.laddr, r.lport, 'ClientIPAndPort', farm.bucketCount, farm.hashSeed));
      return r.node !== tb.nodes[owner].name;
    });
    expect(misplaced).toEqual([]);
    // every packet of the other nodes' connections went through the receiver's forward rule
    const forwarded = tb.nodes.map((n, i) => forwardedPackets(tb, n, farm) - before[i]);
    const others = perNode.reduce((a, b) => a + b, 0) - perNode[receiver];
    expect(forwarded[receiver]).toBeGreaterThanOrEqual(others * 3); // SYN, ACK, FIN/ACK at least
    forwarded.forEach((f, i) => {
      if (i !== receiver) expect(f).toBe(0); // forwarded frames are never forwarded again
    });
  }, 60_000);

  test.each(['ipv4', 'ipv6'] as const)('ping VIP (%s) sent to node 0 is answered once, by the owner of the client\'s ClientIP bucket, forwarded when that is another node', async (family) => {
    const vip = farm.virtualIPs[family === 'ipv4' ? 0 : 1];
    const src = (c: Host): string => (family === 'ipv4' ? c.ip : c.ip6!);
    const owners = tb.clients.map((c) => ownerIndex(split, bucketOf(src(c), undefined, 'ClientIP', farm.bucketCount, farm.hashSeed)));
    expect(owners.some((o) => o !== 0)).toBe(true); // some echo must cross the forward rule
    for (const [k, c] of tb.clients.entries()) {
      tb.exec(c.netns, ['ip', 'neigh', 'replace', vip, 'lladdr', tb.nodes[0].mac, 'dev', 'eth0', 'nud', 'permanent']);
      const before = tb.nodes.map((n) => echoAnswered(tb, n, farm));
      const r = JSON.parse(tb.exec(c.netns, ['python3', ICMP_ECHO, src(c), vip, '3', '1'])) as { replies: Record<string, number> };
      expect(r.replies).toEqual({ 0: 1, 1: 1, 2: 1 }); // one reply per request: no node lost or doubled it
      const answered = tb.nodes.map((n, i) => echoAnswered(tb, n, farm) - before[i]);
      expect(answered).toEqual(tb.nodes.map((_, i) => (i === owners[k] ? 3 : 0)));
      tb.exec(c.netns, ['ip', 'neigh', 'del', vip, 'dev', 'eth0']);
    }
  });

  test('each client resolves the VIP to the node its slot names; cutting that node re-points it at once', async () => {
    const d = drivers as Driver[];
    const vip = farm.virtualIPs[0];
    const names = tb.nodes.map((n) => n.name);
    const answererOf = (c: Host, among: string[]): number => {
      const slot = arpSlotOf(c.ip);
      return tb.nodes.findIndex((n) => arpSlotsOf(n.name, among).includes(slot));
    };
    for (const c of tb.clients) {
      tb.exec(c.netns, ['ip', 'neigh', 'flush', 'dev', 'eth0', 'nud', 'all']); // the pinned entry too
      const { results } = await runClient(tb, c, { vip, port: 80, protocol: 'tcp', count: 30, concurrency: 5 });
      expect(results.filter((r) => r.error !== null)).toEqual([]);
      expect(neighMac(tb, c, vip)).toBe(tb.nodes[answererOf(c, names)].mac);
    }
    const stats = await Promise.all(d.map((x) => x.call<{ replies: number; notMine: number; requests: number }>('arpStats')));
    // every node saw every request (broadcast) and exactly one answered each
    expect(stats.reduce((a, s) => a + s.replies, 0)).toBe(stats[0].requests);
    for (const s of stats) expect(s.replies + s.notMine).toBe(s.requests);

    // cut the cable of client 0's answerer; the survivors take its buckets and its slots
    const client = tb.clients[0];
    const dead = answererOf(client, names);
    const live = [0, 1, 2].filter((i) => i !== dead);
    const deadSlots = arpSlotsOf(names[dead], names);
    // Linux ignores an ARP reply within locktime (1 s) of the entry's last update
    await new Promise((r) => setTimeout(r, 1100));
    tb.setLink(tb.nodes[dead], false);
    try {
      const t0 = Date.now();
      split = await program(tb, d, farm, live);
      const sent = await Promise.all(
        live.map((i) => d[i].call<number>('arpAnnounce', arpSlotsOf(names[i], live.map((j) => names[j])).filter((s) => deadSlots.includes(s)))),
      );
      expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
      let mac = neighMac(tb, client, vip);
      while (mac === tb.nodes[dead].mac && Date.now() - t0 < 2000) {
        await new Promise((r) => setTimeout(r, 10));
        mac = neighMac(tb, client, vip);
      }
      const repointMs = Date.now() - t0;
      expect(mac).toBe(tb.nodes[answererOf(client, live.map((j) => names[j]))].mac);
      expect(repointMs).toBeLessThan(1000);
      const { results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 200, concurrency: 10 });
      expect(results.filter((r) => r.error !== null)).toEqual([]);
      expect(new Set(results.map((r) => r.node))).toEqual(new Set(live.map((i) => names[i])));
      console.log(JSON.stringify({ event: 'directed-repoint', flood, repointMs }));
    } finally {
      tb.setLink(tb.nodes[dead], true);
    }
  }, 60_000);

  test('stop removes every table, the forwarding map and the node set', async () => {
    expect(drivers).toBeDefined();
    const d = drivers as Driver[];
    for (const n of tb.nodes) {
      const listed = tb.exec(n.netns, ['nft', 'list', 'table', 'netdev', `vipfarm_${farm.name}_in`]);
      expect(listed).toContain('map forward');
      expect(listed).toContain('set nodes');
    }
    await Promise.all(d.map((x) => x.call('remove', farm.name)));
    for (const n of tb.nodes) expect(vipfarmTables(tb, n)).toEqual([]);
  });
});
