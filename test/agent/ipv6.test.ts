// IPv6 and dual-stack farms of real agents in network namespaces (test bed with IPv6 on):
// the same behaviour as IPv4 — every bucket served, connections from many client addresses
// spread over every node, SIGKILL takeover within the IPv4 budget, long-lived connections
// kept through a planned rebalance, the virtual MAC in the client's neighbour cache, and a
// clean shutdown that leaves no address, table or sysctl change behind.
import { jest } from '@jest/globals';
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { bucketOf } from '../../common/src/jhash.js';
import type { IPFamily } from '../../common/src/config/syntax.js';
import { defaultVirtualMAC } from '../../common/src/config/defaults.js';
import { AgentFarm, APP_PORT, servedAgainMs } from '../../lab/agent/farm.js';
import { Holder, runClient } from '../../lab/netns/procs.js';
import type { Host } from '../../lab/netns/testbed.js';

jest.setTimeout(120_000);

/** every IPv4/IPv6 per-interface sysctl of a namespace: what the agent may change and must give back */
function sysctls(farm: AgentFarm, host: Host): string {
  return farm.tb
    .exec(host.netns, ['sh', '-c', 'sysctl -a 2>/dev/null | grep -E "^net\\.(ipv4|ipv6)\\.conf\\." | sort'])
    .trim();
}

function accepted(farm: AgentFarm, node: Host, vip: string): number {
  return farm.metric(node, 'vipfarm_packets_total', `vip="${vip}",port="${APP_PORT}",protocol="tcp",verdict="accept"`);
}

/** 600 connections to the VIP of `family` from 60 client addresses; who answered, and each node's accept counter growth */
async function spread(farm: AgentFarm, family: IPFamily, sources: string[]): Promise<{ answers: Record<string, number>; failed: number; counted: Record<string, number> }> {
  const vip = farm.vipOf(family);
  const before = Object.fromEntries(farm.tb.nodes.map((n) => [n.name, accepted(farm, n, vip)]));
  const r = await runClient(farm.tb, farm.client, { vip, port: APP_PORT, protocol: 'tcp', count: 600, concurrency: 20, sources, timeoutMs: 3000 });
  const answers: Record<string, number> = {};
  for (const a of r.results) if (a.node) answers[a.node] = (answers[a.node] ?? 0) + 1;
  const counted = Object.fromEntries(farm.tb.nodes.map((n) => [n.name, accepted(farm, n, vip) - before[n.name]!]));
  return { answers, failed: r.results.filter((a) => !a.node).length, counted };
}

function expectSpread(s: Awaited<ReturnType<typeof spread>>): void {
  expect(s.failed).toBe(0);
  expect(Object.keys(s.answers).sort()).toEqual(['n1', 'n2', 'n3']);
  // 64 buckets over 3 nodes and 60 sources x 10 ports: each node's share is near a third
  for (const n of ['n1', 'n2', 'n3']) {
    expect(s.answers[n]).toBeGreaterThan(100);
    // the node's own filter accepted them (at least the SYN and the final ACK of each)
    expect(s.counted[n]).toBeGreaterThanOrEqual(s.answers[n]!);
  }
}

function bucketsOf(owners: Record<number, string>, node: string): number[] {
  return Object.entries(owners).filter(([, n]) => n === node).map(([b]) => Number(b));
}

async function killAndTakeOver(farm: AgentFarm, family: IPFamily): Promise<number> {
  const before = await farm.owners();
  const { results: [p], t0 } = await farm.killUnderProbe(farm.node('n1'), [{ family, buckets: bucketsOf(before.owners, 'n1'), maxMs: 5000, attemptTimeoutMs: 100 }]);
  expect(p!.unserved).toEqual([]);
  expect(Object.values(p!.owners).every((n) => n === 'n2' || n === 'n3')).toBe(true);
  return servedAgainMs(p!, t0);
}

/** the SIGKILLed agent restarted (it takes its kernel state back), then every agent stopped by SIGTERM */
async function cleanShutdown(farm: AgentFarm, saved: Map<string, string>): Promise<void> {
  const n1 = farm.node('n1');
  farm.tb.setLink(n1, true);
  farm.startAgent(n1);
  await farm.waitReady([n1]);
  for (const n of farm.tb.nodes) {
    const a = farm.agents.get(n.name);
    if (a && a.proc.exitCode === null && a.proc.signalCode === null) expect(await farm.kill(n, 'SIGTERM')).toBe(0);
  }
  for (const n of farm.tb.nodes) {
    expect(farm.tb.exec(n.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
    const lo = farm.tb.exec(n.netns, ['ip', 'addr', 'show', 'dev', 'lo']);
    for (const vip of farm.vips) expect(lo).not.toContain(vip);
    expect(sysctls(farm, n)).toBe(saved.get(n.name));
  }
}

function neighbourMAC(farm: AgentFarm, vip: string): string {
  const family = vip.includes(':') ? '-6' : '-4';
  return farm.tb.exec(farm.client.netns, ['ip', family, 'neigh', 'show', vip, 'dev', farm.client.iface]).trim();
}

describe('IPv6-only farm of 3 agents', () => {
  let farm: AgentFarm;
  const saved = new Map<string, string>();
  beforeAll(async () => {
    farm = new AgentFarm({ nodes: 3, families: ['ipv6'], name: 'six' });
    for (const n of farm.tb.nodes) saved.set(n.name, sysctls(farm, n));
    await farm.startAll();
    await farm.waitReady();
  });
  afterAll(async () => {
    await farm.destroy();
  });

  test('nodes heartbeat over IPv6 (they have no IPv4 address) and every bucket is served', async () => {
    expect(farm.vip).toMatch(/^fd00:/);
    expect(farm.tb.exec(farm.node('n1').netns, ['ip', '-4', 'addr', 'show', 'dev', 'eth0']).trim()).toBe('');
    // each node hears both others over UDP (IPv6 only: the heartbeats went over udp6)
    const deadline = Date.now() + 10_000;
    const heard = (): number[] => farm.tb.nodes.map((n) => farm.metric(n, 'vipfarm_peers_heard', 'path="udp"'));
    while (heard().some((h) => h !== 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(heard()).toEqual([2, 2, 2]);
    const o = await farm.owners();
    expect(o.unserved).toEqual([]);
    expect(Object.keys(o.shares).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const n of farm.tb.nodes) expect(lo6(farm, n)).toContain(`${farm.vip}/128`);
  });

  test('600 connections from 60 client addresses spread over every node, each node\'s filter counting its own', async () => {
    const sources = farm.tb.addAddresses(farm.client, 60, 'ipv6');
    expectSpread(await spread(farm, 'ipv6', sources));
  });

  test('the client\'s neighbour cache has the virtual MAC for the VIP', () => {
    const entry = neighbourMAC(farm, farm.vip);
    expect(entry).toContain(`lladdr ${defaultVirtualMAC('six')}`);
    // and not any node's own MAC
    for (const n of farm.tb.nodes) expect(entry).not.toContain(n.mac);
  });

  test('60 of 60 long-lived connections kept while a node leaves and comes back (planned rebalance)', async () => {
    const holder = Holder.start(farm.tb, farm.client, { vip: farm.vip, port: APP_PORT, count: 60, pingMs: 50 });
    const opened = await holder.opened();
    expect(opened.filter((c) => c.node !== null)).toHaveLength(60);
    const n3 = farm.node('n3');
    // weight 0 on SIGHUP: a planned move of n3's buckets to the others, established ones stay on n3
    farm.writeConfig(n3, { node: { name: n3.name, address: farm.addressOf(n3), weight: 0 } });
    farm.agents.get('n3')!.proc.kill('SIGHUP');
    await farm.waitLog(n3, (l) => l.event === 'buckets' && l.owned === 0);
    const out = await farm.owners();
    expect(out.unserved).toEqual([]);
    expect(out.shares.n3).toBeUndefined();
    farm.writeConfig(n3);
    farm.agents.get('n3')!.proc.kill('SIGHUP');
    await farm.waitLog(n3, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await new Promise((r) => setTimeout(r, 500));
    const summary = await holder.stop();
    expect(summary.filter((c) => c.error === null && c.echoed >= c.sent - 2 && c.wrongNode === 0)).toHaveLength(60);
  });

  test('SIGKILL: the dead agent\'s buckets are served again within the IPv4 budget (1.5 s)', async () => {
    expect(await killAndTakeOver(farm, 'ipv6')).toBeLessThan(1500);
  });

  test('clean shutdown leaves no address, table or sysctl change', async () => {
    await cleanShutdown(farm, saved);
  });
});

function lo6(farm: AgentFarm, n: Host): string {
  return farm.tb.exec(n.netns, ['ip', '-6', 'addr', 'show', 'dev', 'lo']);
}

describe('dual-stack farm of 3 agents (one IPv4 and one IPv6 VIP)', () => {
  let farm: AgentFarm;
  const saved = new Map<string, string>();
  beforeAll(async () => {
    // heartbeats over IPv6 although the nodes have both: the family is the nodes' addresses'
    farm = new AgentFarm({ nodes: 3, families: ['ipv4', 'ipv6'], heartbeatFamily: 'ipv6', name: 'dual' });
    for (const n of farm.tb.nodes) saved.set(n.name, sysctls(farm, n));
    await farm.startAll();
    await farm.waitReady();
  });
  afterAll(async () => {
    await farm.destroy();
  });

  test('both VIPs on lo, every bucket served on each family by the same owners', async () => {
    for (const n of farm.tb.nodes) {
      expect(farm.tb.exec(n.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).toContain(`${farm.vipOf('ipv4')}/32`);
      expect(lo6(farm, n)).toContain(`${farm.vipOf('ipv6')}/128`);
    }
    for (const family of ['ipv4', 'ipv6'] as const) {
      const p = await farm.probe({ family, maxMs: 5000 });
      expect(p.unserved).toEqual([]);
      expect(Object.keys(AgentFarm.shares(p.owners)).sort()).toEqual(['n1', 'n2', 'n3']);
    }
  });

  test.each(['ipv4', 'ipv6'] as const)('600 %s connections from 60 client addresses spread over every node', async (family) => {
    const sources = farm.tb.addAddresses(farm.client, 60, family);
    expectSpread(await spread(farm, family, sources));
  });

  test('the neighbour cache (ARP and ND) has the virtual MAC for both VIPs', async () => {
    for (const vip of farm.vips) {
      // one fresh contact: an idle entry may have been collected since the traffic above
      await runClient(farm.tb, farm.client, { vip, port: APP_PORT, protocol: 'tcp', count: 1, timeoutMs: 3000 });
      expect(`${vip}: ${neighbourMAC(farm, vip)}`).toContain(`lladdr ${defaultVirtualMAC('dual')}`);
    }
  });

  test('60 of 60 long-lived connections (30 per family) kept through a planned rebalance', async () => {
    const holders = farm.vips.map((vip) => Holder.start(farm.tb, farm.client, { vip, port: APP_PORT, count: 30, pingMs: 50 }));
    for (const h of holders) expect((await h.opened()).filter((c) => c.node !== null)).toHaveLength(30);
    const n2 = farm.node('n2');
    farm.writeConfig(n2, { node: { name: n2.name, address: farm.addressOf(n2), weight: 0 } });
    farm.agents.get('n2')!.proc.kill('SIGHUP');
    await farm.waitLog(n2, (l) => l.event === 'buckets' && l.owned === 0);
    farm.writeConfig(n2);
    farm.agents.get('n2')!.proc.kill('SIGHUP');
    await farm.waitLog(n2, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await new Promise((r) => setTimeout(r, 500));
    const kept = (await Promise.all(holders.map((h) => h.stop()))).flat().filter((c) => c.error === null && c.echoed >= c.sent - 2 && c.wrongNode === 0);
    expect(kept).toHaveLength(60);
  });

  test('SIGKILL: served again on both families within the IPv4 budget', async () => {
    const before = await farm.owners();
    const dead = bucketsOf(before.owners, 'n1');
    const probes = (['ipv4', 'ipv6'] as const).map((family) => ({ family, buckets: dead, maxMs: 5000, attemptTimeoutMs: 100 }));
    const { results: [v4, v6], t0 } = await farm.killUnderProbe(farm.node('n1'), probes);
    expect(v4!.unserved).toEqual([]);
    expect(v6!.unserved).toEqual([]);
    expect(Math.max(servedAgainMs(v4!, t0), servedAgainMs(v6!, t0))).toBeLessThan(1500);
    // one bucket table for both families: the same survivor serves a bucket on each
    expect(v6!.owners).toEqual(v4!.owners);
  });

  test('clean shutdown leaves no address, table or sysctl change', async () => {
    await cleanShutdown(farm, saved);
  });
});

// Directed mode (spec.mode Directed) with an IPv6 VIP on a switch that does not flood
// unknown unicast: ND answered with one node's own MAC (by requester slot, as ARP),
// frames of other nodes' buckets forwarded at L2, and the second chance of table ip6
// vipfarm_<farm>_prev keeping connections whose bucket moved.
describe('Directed IPv6-only farm of 3 agents on a flood-off switch', () => {
  let farm: AgentFarm;
  beforeAll(async () => {
    // a 1 s failure threshold: the planned move below must not gain false deaths from a
    // loaded machine's stalls (each would move buckets again)
    farm = new AgentFarm({ nodes: 3, families: ['ipv6'], name: 'six-d', floodUnknownUnicast: false, intervalMs: 100, failureThresholdMs: 1000, extra: { mode: 'Directed' } });
    for (const n of farm.tb.nodes) await farm.startApp(n);
    for (const n of farm.tb.nodes) farm.startAgent(n, {}, ['--drain-timeout', '60']);
    await farm.waitReady();
    await new Promise((r) => setTimeout(r, 500)); // every node's view agrees on the owners
  });
  afterAll(async () => {
    await farm.destroy();
  });

  test('600 connections from 60 client addresses: all answered, spread over every node; ND gave the slot owner\'s own MAC', async () => {
    const sources = farm.tb.addAddresses(farm.client, 60, 'ipv6');
    const r = await runClient(farm.tb, farm.client, { vip: farm.vip, port: APP_PORT, protocol: 'tcp', count: 600, concurrency: 20, sources, timeoutMs: 3000 });
    expect(r.results.filter((a) => a.error !== null)).toEqual([]);
    for (const n of farm.tb.nodes) expect(r.results.filter((a) => a.node === n.name).length).toBeGreaterThan(100);
    // The kernel solicits from the source address of the packet that needed the neighbour
    // (one of the 60), so the answering slot is that address's: the entry is one node's own
    // MAC, never the virtual one, and that node forwarded the others' buckets at L2.
    const entry = neighbourMAC(farm, farm.vip);
    expect(entry).not.toContain(defaultVirtualMAC('six-d'));
    const answerer = farm.tb.nodes.find((n) => entry.includes(`lladdr ${n.mac}`));
    expect(answerer).toBeDefined();
    expect(farm.metric(answerer!, 'vipfarm_packets_total', 'verdict="forward"')).toBeGreaterThan(0);
    // a fresh resolution from the client's own address: the node its slot names answers
    farm.tb.exec(farm.client.netns, ['ip', '-6', 'neigh', 'flush', 'dev', farm.client.iface]);
    await runClient(farm.tb, farm.client, { vip: farm.vip, port: APP_PORT, protocol: 'tcp', count: 1, sources: [farm.client.ip], timeoutMs: 3000 });
    const names = farm.tb.nodes.map((n) => n.name);
    const slotOwner = farm.tb.nodes.find((n) => arpSlotsOf(n.name, names).includes(arpSlotOf(farm.client.ip)))!;
    expect(neighbourMAC(farm, farm.vip)).toContain(`lladdr ${slotOwner.mac}`);
  });

  test('30 of 30 long-lived connections kept through a planned rebalance (second chance over IPv6)', async () => {
    const holder = Holder.start(farm.tb, farm.client, { vip: farm.vip, port: APP_PORT, count: 30, pingMs: 50 });
    expect((await holder.opened()).filter((c) => c.node === null)).toEqual([]);
    const before = farm.secondChancePackets(['ipv6']);
    const n1 = farm.node('n1');
    farm.writeConfig(n1, { node: { name: n1.name, address: farm.addressOf(n1), weight: 3 } });
    farm.agents.get('n1')!.proc.kill('SIGHUP');
    await farm.waitLog(n1, (l) => l.event === 'buckets' && Number(l.owned) > farm.bucketCount / 2);
    await new Promise((r) => setTimeout(r, 1500));
    const summary = await holder.stop();
    const after = await farm.owners();
    const moved = summary.filter((c) => after.owners[bucketOf(farm.client.ip, c.lport, 'ClientIPAndPort', farm.bucketCount, farm.seed)] !== c.node);
    const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2 || c.wrongNode > 0);
    const sc = farm.secondChancePackets(['ipv6']);
    const passed = Object.keys(sc).reduce((s, n) => s + (sc[n]! >= before[n]! ? sc[n]! - before[n]! : sc[n]!), 0);
    console.log(JSON.stringify({ event: 'directed6-planned', kept: summary.length - broken.length, of: summary.length, moved: moved.length, secondChancePackets: passed, shares: after.shares }));
    expect(summary).toHaveLength(30);
    expect(broken).toEqual([]);
    // connections whose bucket moved to n1 were kept by passing their packets on
    expect(moved.length).toBeGreaterThan(0);
    expect(passed).toBeGreaterThan(0);
  });

  test('clean shutdown leaves no table (netdev, inet, ip and ip6 second chance) and no VIP', async () => {
    for (const n of farm.tb.nodes) expect(farm.tb.exec(n.netns, ['nft', 'list', 'tables'])).toContain('table ip6 vipfarm_six-d_prev');
    for (const n of farm.tb.nodes) expect(await farm.kill(n, 'SIGTERM')).toBe(0);
    for (const n of farm.tb.nodes) {
      expect(farm.tb.exec(n.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
      expect(lo6(farm, n)).not.toContain(farm.vip);
    }
  });
});

// A dual-stack Directed farm heartbeats over IPv4; the second chance of IPv6 connections
// needs each previous holder's IPv6 address: the peers' otherAddresses (agent file; in
// Kubernetes mode their pods' status.hostIPs). Without them (the neighbour table alone)
// 11 of 30 IPv6 connections broke in this test and the ip6 rules passed nothing on.
describe('Directed dual-stack farm (IPv4 heartbeats) on a flood-off switch', () => {
  let farm: AgentFarm;
  beforeAll(async () => {
    farm = new AgentFarm({ nodes: 3, families: ['ipv4', 'ipv6'], name: 'dual-d', floodUnknownUnicast: false, intervalMs: 100, failureThresholdMs: 1000, extra: { mode: 'Directed' } });
    for (const n of farm.tb.nodes) await farm.startApp(n);
    for (const n of farm.tb.nodes) farm.startAgent(n, {}, ['--drain-timeout', '60']);
    await farm.waitReady();
    await new Promise((r) => setTimeout(r, 500));
  });
  afterAll(async () => {
    await farm.destroy();
  });

  test('30 + 30 long-lived connections (one holder per family) kept through a planned rebalance, each family passed on by its own table', async () => {
    const holders = farm.vips.map((vip) => Holder.start(farm.tb, farm.client, { vip, port: APP_PORT, count: 30, pingMs: 50 }));
    for (const h of holders) expect((await h.opened()).filter((c) => c.node === null)).toEqual([]);
    const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
    const before = farm.families.map((f) => total(farm.secondChancePackets([f])));
    const n1 = farm.node('n1');
    farm.writeConfig(n1, { node: { name: n1.name, address: farm.addressOf(n1), weight: 3 } });
    farm.agents.get('n1')!.proc.kill('SIGHUP');
    await farm.waitLog(n1, (l) => l.event === 'buckets' && Number(l.owned) > farm.bucketCount / 2);
    await new Promise((r) => setTimeout(r, 1500));
    const summaries = await Promise.all(holders.map((h) => h.stop()));
    const passed = farm.families.map((f, i) => total(farm.secondChancePackets([f])) - before[i]!);
    const broken = summaries.map((s) => s.filter((c) => c.error !== null || c.echoed < c.sent - 2 || c.wrongNode > 0).length);
    console.log(JSON.stringify({ event: 'directed-dual-planned', families: farm.families, broken, passed }));
    expect(summaries.map((s) => s.length)).toEqual([30, 30]);
    expect(broken).toEqual([0, 0]);
    for (const p of passed) expect(p).toBeGreaterThan(0);
  });
});
