// Failures with real agent processes in network namespaces: SIGKILL, link down and back.
// Partitions of the heartbeat paths: partition.test.ts.
import { AgentFarm } from '../../lab/agent/farm.js';
import { jest } from '@jest/globals';
import { Holder } from '../../lab/netns/procs.js';

jest.setTimeout(90_000);

function bucketsOf(owners: Record<number, string>, node: string): number[] {
  return Object.entries(owners).filter(([, n]) => n === node).map(([b]) => Number(b));
}

describe('agent failover', () => {
  let farm: AgentFarm;
  beforeEach(async () => {
    farm = new AgentFarm({ nodes: 3 });
    await farm.startAll();
    await farm.waitReady();
  });
  afterEach(async () => {
    await farm.destroy();
  });

  test('SIGKILL: the dead agent\'s buckets are served again within a second, other connections untouched', async () => {
    const before = await farm.owners();
    expect(before.unserved).toEqual([]);
    expect(Object.keys(before.shares).sort()).toEqual(['n1', 'n2', 'n3']);
    const [n1] = farm.tb.nodes;
    const holder = Holder.start(farm.tb, farm.client, { vip: farm.vip, port: 8080, count: 30, pingMs: 50 });
    const opened = await holder.opened();
    const onOthers = opened.filter((c) => c.node !== 'n1').length;
    expect(onOthers).toBeGreaterThan(0);

    const deadBuckets = bucketsOf(before.owners, 'n1');
    // Cut the cable first so the dead node's kernel cannot answer anything any more.
    farm.tb.setLink(n1, false);
    const t0 = Date.now();
    await farm.kill(n1);
    const p = await farm.probe({ buckets: deadBuckets, maxMs: 5000, attemptTimeoutMs: 100 });
    const tookMs = Date.now() - t0;
    expect(p.unserved).toEqual([]);
    expect(Object.values(p.owners).every((n) => n === 'n2' || n === 'n3')).toBe(true);
    expect(tookMs).toBeLessThan(1500);

    const summary = await holder.stop();
    const othersBroken = summary.filter((c) => c.node !== 'n1' && (c.error !== null || c.echoed < c.sent - 2));
    expect(othersBroken).toEqual([]);
    // the survivors saw it as a failover
    const failovers = farm.metric(farm.node('n2'), 'vipfarm_failovers_total') + farm.metric(farm.node('n3'), 'vipfarm_failovers_total');
    expect(failovers).toBeGreaterThanOrEqual(1);
  });

  test('link down and back: the others take over, the farm converges back without flapping', async () => {
    const before = await farm.owners();
    const n3 = farm.node('n3');
    farm.tb.setLink(n3, false);
    const down = await farm.probe({ buckets: bucketsOf(before.owners, 'n3'), maxMs: 5000, attemptTimeoutMs: 100 });
    expect(down.unserved).toEqual([]);
    expect(new Set(Object.values(down.owners))).toEqual(new Set(['n1', 'n2']));
    // alone on its side, n3 serves every bucket (SafeKit's partition choice)
    await farm.waitLog(n3, (l) => l.event === 'buckets' && l.owned === farm.bucketCount);

    const healAt = Date.now();
    farm.tb.setLink(n3, true);
    await farm.waitLog(n3, (l) => l.event === 'peer_rejoined');
    await new Promise((r) => setTimeout(r, 1500));
    const after = await farm.owners();
    expect(after.unserved).toEqual([]);
    expect(after.owners).toEqual(before.owners);
    // Each moved bucket changes hands once: a few bucket events per node, not a stream.
    for (const n of farm.tb.nodes) {
      const events = farm.agents.get(n.name)!.logs.filter((l) => l.event === 'buckets' && Date.parse(String(l.timestamp)) >= healAt);
      expect(events.length).toBeLessThanOrEqual(3);
    }
  });
});
