// Failures with real agent processes in network namespaces: SIGKILL, link down and back.
// Partitions of the heartbeat paths: partition.test.ts.
import { AgentFarm, servedAgainMs } from '../../lab/agent/farm.js';
import { jest } from '@jest/globals';
import { Holder } from '../../lab/netns/procs.js';

jest.setTimeout(90_000);

function bucketsOf(owners: Record<number, string>, node: string): number[] {
  return Object.entries(owners).filter(([, n]) => n === node).map(([b]) => Number(b));
}

/** Owners once every bucket is served and every node serves its share (or after 10 s). */
async function settled(farm: AgentFarm): Promise<{ owners: Record<number, string>; shares: Record<string, number> }> {
  const fair = (shares: Record<string, number>): boolean => farm.tb.nodes.every((n) => Math.abs((shares[n.name] ?? 0) - farm.bucketCount / 3) <= 1);
  let o = await farm.owners();
  for (const t0 = Date.now(); (o.unserved.length > 0 || !fair(o.shares)) && Date.now() - t0 < 10_000;) o = await farm.owners();
  expect(o.unserved).toEqual([]);
  return o;
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
    // The cable is cut first so the dead node's kernel cannot answer anything any more.
    const { results: [p], t0 } = await farm.killUnderProbe(n1!, [{ buckets: deadBuckets, maxMs: 5000, attemptTimeoutMs: 100 }]);
    expect(p!.unserved).toEqual([]);
    expect(Object.values(p!.owners).every((n) => n === 'n2' || n === 'n3')).toBe(true);
    expect(servedAgainMs(p!, t0)).toBeLessThan(1500);

    const summary = await holder.stop();
    const othersBroken = summary.filter((c) => c.node !== 'n1' && (c.error !== null || c.echoed < c.sent - 2));
    expect(othersBroken).toEqual([]);
    // the survivors saw it as a failover
    const failovers = farm.metric(farm.node('n2'), 'vipfarm_failovers_total') + farm.metric(farm.node('n3'), 'vipfarm_failovers_total');
    expect(failovers).toBeGreaterThanOrEqual(1);
  });

});

describe('agent failover: link down and back', () => {
  let farm: AgentFarm;
  // A 1 s threshold, as in partition.test.ts: at the 120 ms default a loaded machine's
  // stalls of an agent are deaths, and a test about one cut then sees several.
  beforeEach(async () => {
    farm = new AgentFarm({ nodes: 3, intervalMs: 100, failureThresholdMs: 1000 });
    await farm.startAll();
    await farm.waitReady();
  });
  afterEach(async () => {
    await farm.destroy();
  });

  test('link down and back: the others take over, the farm converges back without flapping', async () => {
    // ready is not yet serving on a loaded machine: wait for every node's share
    const before = await settled(farm);
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
    // Balanced again and stable. Not necessarily the owners of before: the assignment is
    // sticky (members keep what they hold up to their quota), and n3 held everything.
    const after = await settled(farm);
    await new Promise((r) => setTimeout(r, 1000));
    const later = await farm.owners();
    expect(later.owners).toEqual(after.owners);
    for (const n of farm.tb.nodes) expect(Math.abs(after.shares[n.name]! - farm.bucketCount / 3)).toBeLessThanOrEqual(1);
    // Each moved bucket changes hands once: a few bucket events per node, not a stream. A
    // loaded machine can stall an agent past the threshold after the heal; each such episode
    // (a peer declared dead, or this agent's own stall) legitimately costs a node up to two
    // more events (take the share, give it back), and only those are allowed on top.
    const since = (n: string, what: string): number =>
      farm.agents.get(n)!.logs.filter((l) => l.event === what && Date.parse(String(l.timestamp)) >= healAt).length;
    const counts = farm.tb.nodes.map((n) => ({ node: n.name, buckets: since(n.name, 'buckets'), episodes: since(n.name, 'peer_dead') + since(n.name, 'stall') }));
    console.log(`link down and back: bucket events after the heal ${JSON.stringify(counts)}`);
    for (const c of counts) expect(c.buckets).toBeLessThanOrEqual(3 + 2 * c.episodes);
  });
});
