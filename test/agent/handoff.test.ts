// A planned handoff loses no SYN (issue 14): three agents with the timed handoff on
// (VIPFARM_HANDOFF_LEAD_MS), a paced client opening ~200 connections/s from 64 source
// addresses, and planned rebalances on n3: its weight 1 -> 2 -> 1 (SIGHUP) and a leave and
// rejoin (weight 0 <-> 1). Every connection must be answered within 800 ms, below the 1 s
// SYN retransmission: one SYN dropped in a gap between two kernels shows as unanswered,
// one answered by two kernels as a reset (also unanswered). Behaviour, not timing: the
// count is exact, and the logs must show the handoffs were timed ones.
import { jest } from '@jest/globals';
import { AgentFarm } from '../../lab/agent/farm.js';
import type { Host } from '../../lab/netns/testbed.js';
import { Client } from '../../bench/peers.js';

jest.setTimeout(180_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// longer than the event-loop stalls of a busy 2-core machine (70-130 ms seen at load 3):
// a taker stalled past T has not programmed its element and falls back to the gap
const LEAD_MS = 200;

describe('timed handoff with real agents', () => {
  let farm: AgentFarm;
  const saved = process.env.VIPFARM_HANDOFF_LEAD_MS;
  beforeAll(() => {
    process.env.VIPFARM_HANDOFF_LEAD_MS = String(LEAD_MS);
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.VIPFARM_HANDOFF_LEAD_MS;
    else process.env.VIPFARM_HANDOFF_LEAD_MS = saved;
  });
  afterEach(async () => {
    await farm?.destroy();
  });

  test('weight changes and a leave/rejoin: 0 connections unanswered, every move timed', async () => {
    farm = new AgentFarm({ nodes: 3 });
    for (const n of farm.tb.nodes) await farm.startApp(n);
    const agents = farm.tb.nodes.map((n) => farm.startAgent(n));
    await farm.waitReady();
    await sleep(1000);
    const n3 = farm.tb.nodes[2]!;
    const withWeight = (node: Host, weight: number): Record<string, unknown> => ({ node: { name: node.name, address: node.ip, weight } });
    const client = new Client(farm, { rate: 200, sources: farm.tb.addAddresses(farm.client, 64), timeoutMs: 800 });
    await sleep(1500);
    const from = Date.now();
    const changes: Array<{ at: number; weight: number }> = [];
    for (const weight of [2, 1, 0, 1, 2, 1]) {
      changes.push({ at: Date.now(), weight });
      farm.writeConfig(n3, withWeight(n3, weight));
      agents[2]!.proc.kill('SIGHUP');
      await sleep(1500);
    }
    await sleep(1000);
    const to = Date.now();
    await client.stop();
    const started = client.conns.filter((c) => c.start >= from && c.start < to);
    // the client ran through it (a sanity bound, not a rate measurement)
    expect(started.length).toBeGreaterThan(500);
    if (client.failedBetween(from, to) > 0) {
      // what to look at when it fails: when, against the changes, and what the agents did
      const failed = started.filter((c) => c.answeredAt === null).map((c) => c.start - from);
      const logs = agents.map((a, i) => a.logs.filter((l) => ['handoff', 'buckets', 'failover', 'stall', 'state'].includes(l.event ?? '')).map((l) => ({ n: i + 1, ...l })));
      process.stderr.write(`${JSON.stringify({ changes: changes.map((c) => ({ ...c, at: c.at - from })), failed, from, logs: logs.flat() }, null, 1)}\n`);
    }
    // A stall that outlasted a kernel lease drops that node's buckets whatever the handoff
    // does (today's failure mode of a starved agent, issue 14 takeover notes): such a run
    // says nothing about the handoff, so it is reported, not judged.
    const lapsed = agents.flatMap((a, i) => a.logs.filter((l) => l.event === 'stall' && l.leaseRanOut === true).map(() => `n${i + 1}`));
    if (lapsed.length > 0) {
      process.stderr.write(`handoff test: ${lapsed.length} stalls past the lease (${[...new Set(lapsed)].join(', ')}): machine too busy, ${client.failedBetween(from, to)} unanswered not judged\n`);
    } else expect(client.failedBetween(from, to)).toBe(0);
    // moves went both ways, and through the timed path: announced by their givers
    const announced = agents.map((a) => a.logs.filter((l) => l.event === 'handoff').length);
    expect(announced[2]).toBeGreaterThanOrEqual(2); // n3 gave buckets back (2 -> 1, 1 -> 0)
    expect(announced[0]! + announced[1]!).toBeGreaterThanOrEqual(2); // n1, n2 gave to n3
    // and nobody failed over (a false death would make this a different test)
    if (lapsed.length === 0) for (const a of agents) expect(a.logs.filter((l) => l.event === 'failover')).toEqual([]);
  });
});
