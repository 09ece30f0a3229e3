// Directed mode with real agents on a switch that does not flood unknown unicast: the
// client's ARP is answered with one node's own MAC, that node forwards the other nodes'
// buckets, and every node serves its share. SIGKILL of the node that answered the
// client's ARP: the survivors take its buckets and re-point the client by unicast ARP.
import { jest } from '@jest/globals';
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { bucketOf } from '../../common/src/jhash.js';
import { AgentFarm, APP_PORT } from '../../lab/agent/farm.js';
import { Holder, runClient } from '../../lab/netns/procs.js';

jest.setTimeout(120_000);

test('Directed agents on a flood-off switch: 600 connections over all nodes; SIGKILL of the ARP answerer is survived', async () => {
  const f = new AgentFarm({ nodes: 3, floodUnknownUnicast: false, extra: { mode: 'Directed' } });
  try {
    await f.startAll();
    await f.waitReady();
    await new Promise((r) => setTimeout(r, 500)); // every node's view agrees on the owners
    const client = f.client;
    const names = f.tb.nodes.map((n) => n.name);
    const { results } = await runClient(f.tb, client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 600, concurrency: 20 });
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const perNode = names.map((n) => results.filter((r) => r.node === n).length);
    for (const c of perNode) expect(c).toBeGreaterThan(100);

    // L2 heartbeats go to broadcast in Directed mode: every peer is heard on both paths
    for (const n of f.tb.nodes) expect(f.metric(n, 'vipfarm_peers_heard', 'path="l2"')).toBe(2);
    const slot = arpSlotOf(client.ip);
    const answerer = f.tb.nodes.find((n) => arpSlotsOf(n.name, names).includes(slot))!;
    const neigh = JSON.parse(f.tb.exec(client.netns, ['ip', '-j', 'neigh', 'show', f.vip])) as { lladdr?: string }[];
    expect(neigh[0]?.lladdr).toBe(answerer.mac);

    const t0 = Date.now();
    await f.kill(answerer, 'SIGKILL');
    f.tb.setLink(answerer, false); // its kernel state would still answer: it is dead for the network too
    let served = false;
    let lastErrors = 0;
    while (!served && Date.now() - t0 < 15_000) {
      const r = await runClient(f.tb, client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 60, concurrency: 10, timeoutMs: 500 });
      lastErrors = r.results.filter((x) => x.error !== null).length;
      served = lastErrors === 0;
    }
    const recoveryMs = Date.now() - t0;
    console.log(JSON.stringify({ event: 'directed-sigkill-answerer', recoveryMs }));
    expect(lastErrors).toBe(0);
    const after = JSON.parse(f.tb.exec(client.netns, ['ip', '-j', 'neigh', 'show', f.vip])) as { lladdr?: string }[];
    expect(after[0]?.lladdr).not.toBe(answerer.mac);
    const { results: again } = await runClient(f.tb, client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 300, concurrency: 20 });
    expect(again.filter((r) => r.error !== null)).toEqual([]);
    expect(new Set(again.map((r) => r.node))).toEqual(new Set(names.filter((n) => n !== answerer.name)));
  } finally {
    await f.destroy();
  }
});

test('Directed: 60 of 60 long-lived connections kept through a weight change, a node joining and a drain (second chance)', async () => {
  // a 1 s failure threshold: this is about planned moves, and a loaded test machine's
  // stalls must not add false deaths (each moves buckets again) to them
  const f = new AgentFarm({ nodes: 4, floodUnknownUnicast: false, intervalMs: 100, failureThresholdMs: 1000, extra: { mode: 'Directed' } });
  try {
    const [n1, n2, n3, n4] = f.tb.nodes;
    for (const n of [n1, n2, n3]) await f.startApp(n);
    for (const n of [n1, n2, n3]) f.startAgent(n, {}, ['--drain-timeout', '60']);
    await f.waitReady([n1, n2, n3]);
    await new Promise((r) => setTimeout(r, 500));

    // One change per batch of connections: a connection survives one move of its bucket
    // (the new owner passes it to the previous one); see docs/architecture.md.
    const phase = async (what: string, change: () => Promise<void>): Promise<void> => {
      const holder = Holder.start(f.tb, f.client, { vip: f.vip, port: APP_PORT, count: 60, pingMs: 50 });
      const opened = await holder.opened();
      expect(opened.filter((c) => c.node === null)).toEqual([]);
      const before = f.secondChancePackets();
      await change();
      await new Promise((r) => setTimeout(r, 1500));
      const summary = await holder.stop();
      const after = await f.owners();
      const moved = summary.filter((c) => after.owners[bucketOf(f.client.ip, c.lport, 'ClientIPAndPort', f.bucketCount, f.seed)] !== c.node);
      const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2 || c.wrongNode > 0);
      const sc = f.secondChancePackets();
      // a node that re-applied its tables meanwhile counts from zero again
      const passed = Object.keys(sc).reduce((s, n) => s + (sc[n] >= before[n] ? sc[n] - before[n] : sc[n]), 0);
      console.log(JSON.stringify({ event: 'directed-planned', what, kept: summary.length - broken.length, of: summary.length, moved: moved.length, secondChancePackets: passed, before, sc, shares: after.shares, unserved: after.unserved.length }));
      expect(broken).toEqual([]);
      expect(summary).toHaveLength(60);
      // connections whose bucket moved away were kept by passing their packets on
      expect(moved.length).toBeGreaterThan(0);
      expect(passed).toBeGreaterThan(0);
    };

    await phase('weight', async () => {
      f.writeConfig(n1, { node: { name: n1.name, address: n1.ip, weight: 3 } });
      f.agents.get('n1')!.proc.kill('SIGHUP');
      await f.waitLog(n1, (l) => l.event === 'buckets' && Number(l.owned) > f.bucketCount / 2);
    });
    await phase('join', async () => {
      await f.startApp(n4);
      f.startAgent(n4, {}, ['--drain-timeout', '60']);
      await f.waitReady([n4]);
      await f.waitLog(n4, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    });
    await phase('drain', async () => {
      f.agents.get('n2')!.proc.kill('SIGUSR1');
      await f.waitLog(n2, (l) => l.event === 'buckets' && l.owned === 0);
      expect(f.agents.get('n2')!.proc.exitCode).toBeNull();
    });
  } finally {
    await f.destroy();
  }
});

describe('network self-test (Flooding mode): do frames to the virtual MAC reach every node?', () => {
  test('on a switch that does not flood unknown unicast it fails within seconds, naming the peers not heard', async () => {
    const f = new AgentFarm({ nodes: 3, floodUnknownUnicast: false });
    try {
      const t0 = Date.now();
      await f.startAll();
      const lines = await Promise.all(f.tb.nodes.map((n) => f.waitLog(n, (l) => l.event === 'network_floods', 15_000)));
      const tookMs = Date.now() - t0;
      console.log(JSON.stringify({ event: 'selftest-flood-off', tookMs }));
      lines.forEach((l, i) => {
        expect(l.floods).toBe(false);
        expect(l.message).toBe('switch does not flood the virtual MAC; use mode: Directed');
        // the peers judged so far (each once heard on UDP for the window); a later verdict
        // with more of them is logged again
        const others = f.tb.nodes.filter((_, j) => j !== i).map((n) => n.name);
        expect((l.unseenFrom as string[]).length).toBeGreaterThan(0);
        for (const u of l.unseenFrom as string[]) expect(others).toContain(u);
      });
      for (const n of f.tb.nodes) expect(f.metric(n, 'vipfarm_network_floods')).toBe(0);
      expect(tookMs).toBeLessThan(15_000);
    } finally {
      await f.destroy();
    }
  });

  test('on a flooding switch it passes', async () => {
    const f = new AgentFarm({ nodes: 3 });
    try {
      await f.startAll();
      const lines = await Promise.all(f.tb.nodes.map((n) => f.waitLog(n, (l) => l.event === 'network_floods', 15_000)));
      for (const l of lines) expect(l.floods).toBe(true);
      for (const n of f.tb.nodes) expect(f.metric(n, 'vipfarm_network_floods')).toBe(1);
    } finally {
      await f.destroy();
    }
  });
});

/**
 * The bench's case (bench failover, session 19): the other nodes were restarted since the
 * client last asked by broadcast, so only the answerer knows the client (a Linux client
 * re-validates its entry with unicast probes to the MAC it has). Then the answerer dies.
 */
describe.each(['ipv4', 'ipv6'] as const)('Directed (%s): the ARP answerer dies after the other nodes were restarted', (family) => {
  test('every bucket is served again within the takeover budget', async () => {
    const f = new AgentFarm({ nodes: 3, floodUnknownUnicast: false, families: [family], extra: { mode: 'Directed' } });
    try {
      await f.startAll();
      await f.waitReady();
      await new Promise((r) => setTimeout(r, 500));
      const names = f.tb.nodes.map((n) => n.name);
      const clientIp = f.addressOf(f.client, family);
      const answerer = f.tb.nodes.find((n) => arpSlotsOf(n.name, names).includes(arpSlotOf(clientIp)))!;
      const first = await f.probe({ maxMs: 5000 });
      expect(first.unserved).toEqual([]);
      const neighMac = (): string | undefined =>
        (JSON.parse(f.tb.exec(f.client.netns, ['ip', '-j', family === 'ipv6' ? '-6' : '-4', 'neigh', 'show', f.vip])) as { lladdr?: string }[])[0]?.lladdr;
      expect(neighMac()).toBe(answerer.mac);

      for (const other of f.tb.nodes.filter((n) => n !== answerer)) {
        f.tb.setLink(other, false);
        await f.kill(other, 'SIGKILL');
        const during = await f.probe({ maxMs: 5000 });
        expect(during.unserved).toEqual([]);
        f.tb.setLink(other, true);
        const seen = f.agents.get(other.name)!;
        f.startAgent(other);
        expect(seen).not.toBe(f.agents.get(other.name));
        await f.waitReady([other]);
        await f.waitLog(other, (l) => l.event === 'buckets' && Number(l.owned) > 0);
        await new Promise((r) => setTimeout(r, 500));
        const after = await f.probe({ maxMs: 5000 });
        expect(after.unserved).toEqual([]);
      }
      // Each restart's death pulled the client to one survivor by a broadcast; the answerer
      // (which knows the client) pulls it back by unicast after the neighbour locktime.
      // The restarted nodes never heard the client ask: only the answerer knows it.
      for (let i = 0; i < 40 && neighMac() !== answerer.mac; i++) await new Promise((r) => setTimeout(r, 100));
      expect(neighMac()).toBe(answerer.mac);

      const t0 = Date.now();
      f.tb.setLink(answerer, false);
      await f.kill(answerer, 'SIGKILL');
      const p = await f.probe({ maxMs: 15_000, attemptTimeoutMs: 100 });
      const servedMs = p.served.length > 0 ? Math.max(...p.served.map((s) => s.at)) - t0 : Infinity;
      console.log(JSON.stringify({ event: 'directed-answerer-after-restarts', family, servedMs, unserved: p.unserved.length, neigh: neighMac(), answerer: answerer.mac }));
      expect(p.unserved).toEqual([]);
      // Flooding's takeover is well under a second; a client left to its own neighbour
      // timers would take 8 s (delay 5 s + 3 unicast probes) or far more
      expect(servedMs).toBeLessThan(4000);
      expect(new Set(Object.values(p.owners))).toEqual(new Set(names.filter((n) => n !== answerer.name)));
    } finally {
      await f.destroy();
    }
  });
});
