// `npm run bench -- handoff`: new connections left unanswered by a planned rebalance. A
// 3-node agent farm, a paced client (TRAFFIC_RATE new connections/s from many source
// addresses, each unanswered after TIMEOUT_MS: shorter than the 1 s SYN retransmission,
// so a dropped SYN shows), and CYCLES rebalances of each kind on n3: weight 1 -> 2 -> 1
// (SIGHUP), standby -> ready -> standby (weight 0 <-> 1, a join and a leave). Counted:
// unanswered connections started in the WINDOW_MS after each change, next to a quiet
// window of the same length (what the busy machine loses without any change).
import { loadavg } from 'node:os';
import { AgentFarm } from '../lab/agent/farm.js';
import type { Host } from '../lab/netns/testbed.js';
import { Client } from './peers.js';
import { writeSection } from './report.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (s: string): void => void process.stderr.write(`[bench handoff] ${s}\n`);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 6);
const TRAFFIC_RATE = Number(process.env.BENCH_RATE ?? 200);
const TIMEOUT_MS = 800;
const WINDOW_MS = 1500;
const SOURCES = 64;

type Kind = 'weight' | 'join' | 'quiet';

export async function run(): Promise<Record<string, unknown>> {
  const load0 = loadavg();
  const farm = new AgentFarm({ nodes: 3 });
  const counts: Record<Kind, number[]> = { weight: [], join: [], quiet: [] };
  try {
    for (const n of farm.tb.nodes) await farm.startApp(n);
    const n3 = farm.tb.nodes[2]!;
    const withWeight = (node: Host, weight: number): Record<string, unknown> => ({ node: { name: node.name, address: node.ip, weight } });
    const agents = farm.tb.nodes.map((n) => farm.startAgent(n));
    await farm.waitReady();
    await sleep(1000);
    const agent3 = agents[2]!;
    const sources = farm.tb.addAddresses(farm.client, SOURCES);
    const client = new Client(farm, { rate: TRAFFIC_RATE, sources, timeoutMs: TIMEOUT_MS });
    await sleep(2000);
    const change = async (kind: Kind, weight: number): Promise<void> => {
      const at = Date.now();
      if (kind !== 'quiet') {
        farm.writeConfig(n3, withWeight(n3, weight));
        agent3.proc.kill('SIGHUP');
      }
      await sleep(WINDOW_MS + TIMEOUT_MS + 200);
      counts[kind].push(client.failedBetween(at, at + WINDOW_MS));
    };
    for (let c = 0; c < CYCLES; c++) {
      progress(`cycle ${c + 1}/${CYCLES}`);
      await change('quiet', 1);
      await change('weight', 2);
      await change('weight', 1);
      await change('join', 0); // a leave: n3 goes standby
      await change('join', 1); // a join: n3 ready again
    }
    await client.stop();
  } finally {
    await farm.destroy();
  }
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const per = (k: Kind): number => sum(counts[k]) / Math.max(1, counts[k].length);
  const load1 = loadavg();
  writeSection(
    'handoff',
    [
      '## Planned handoff (`npm run bench -- handoff`)',
      '',
      `New connections left unanswered by a planned rebalance: 3-node agent farm, ${TRAFFIC_RATE} new connections/s from ${SOURCES} source addresses, each unanswered after ${TIMEOUT_MS} ms (below the 1 s SYN retransmission). Per change: unanswered connections started in the ${WINDOW_MS} ms after n3's weight changed by SIGHUP (1 -> 2 -> 1; about 1/12 of the buckets move) or n3 left and rejoined (weight 1 -> 0 -> 1, standby: about 1/3 move); *quiet* is the same window with no change. Goal: 0 per rebalance.`,
      '',
      '| change | count | unanswered per change (mean) | each |',
      '|---|---:|---:|---|',
      ...(['weight', 'join', 'quiet'] as Kind[]).map((k) => `| ${k === 'join' ? 'leave / rejoin (standby)' : k === 'weight' ? 'weight change' : 'quiet (no change)'} | ${counts[k].length} | ${per(k).toFixed(2)} | ${counts[k].join(', ')} |`),
      '',
      `Load average: ${load0.map((x) => x.toFixed(2)).join(', ')} at the start, ${load1.map((x) => x.toFixed(2)).join(', ')} at the end.`,
    ].join('\n'),
  );
  return { bench: 'handoff', unanswered_per_weight_change: per('weight'), unanswered_per_leave_or_join: per('join'), unanswered_per_quiet_window: per('quiet') };
}
