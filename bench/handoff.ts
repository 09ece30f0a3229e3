// `npm run bench -- handoff`: new connections left unanswered by a planned rebalance. A
// 3-node agent farm, a paced client (TRAFFIC_RATE new connections/s from many source
// addresses, each unanswered after TIMEOUT_MS: shorter than the 1 s SYN retransmission,
// so a dropped SYN shows), and CYCLES rebalances of each kind on n3: weight 1 -> 2 -> 1
// (SIGHUP), standby -> ready -> standby (weight 0 <-> 1, a join and a leave). Counted:
// unanswered connections started in the WINDOW_MS after each change, next to a quiet
// window of the same length (what the busy machine loses without any change). Both
// release modes side by side: immediate (lead 0) and the timed handoff (BENCH_LEAD_MS).
import { loadavg } from 'node:os';
import { AgentFarm } from '../lab/agent/farm.js';
import type { Host } from '../lab/netns/testbed.js';
import { Client } from '../lab/agent/traffic-client.js';
import { writeSection } from './report.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (s: string): void => void process.stderr.write(`[bench handoff] ${s}\n`);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 6);
const TRAFFIC_RATE = Number(process.env.BENCH_RATE ?? 200);
const TIMEOUT_MS = 800;
const WINDOW_MS = 1500;
const SOURCES = 64;

type Kind = 'weight' | 'join' | 'quiet';
/** the timed handoff's lead (VIPFARM_HANDOFF_LEAD_MS) per mode: 0 = immediate release */
const MODES = { immediate: 0, timed: Number(process.env.BENCH_LEAD_MS ?? 200) } as const;
type Mode = keyof typeof MODES;

async function runMode(mode: Mode): Promise<Record<Kind, number[]>> {
  const saved = process.env.VIPFARM_HANDOFF_LEAD_MS;
  process.env.VIPFARM_HANDOFF_LEAD_MS = String(MODES[mode]);
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
      progress(`${mode}: cycle ${c + 1}/${CYCLES}`);
      await change('quiet', 1);
      await change('weight', 2);
      await change('weight', 1);
      await change('join', 0); // a leave: n3 goes standby
      await change('join', 1); // a join: n3 ready again
    }
    await client.stop();
  } finally {
    await farm.destroy();
    if (saved === undefined) delete process.env.VIPFARM_HANDOFF_LEAD_MS;
    else process.env.VIPFARM_HANDOFF_LEAD_MS = saved;
  }
  return counts;
}

export async function run(): Promise<Record<string, unknown>> {
  const load0 = loadavg();
  // side by side in one run, alternating so that a busy spell of the machine hits both
  const counts: Record<Mode, Record<Kind, number[]>> = { immediate: { weight: [], join: [], quiet: [] }, timed: { weight: [], join: [], quiet: [] } };
  for (let round = 0; round < 2; round++) {
    for (const mode of ['immediate', 'timed'] as Mode[]) {
      const c = await runMode(mode);
      for (const k of ['weight', 'join', 'quiet'] as Kind[]) counts[mode][k].push(...c[k]);
    }
  }
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const per = (m: Mode, k: Kind): number => sum(counts[m][k]) / Math.max(1, counts[m][k].length);
  const load1 = loadavg();
  const label = (k: Kind): string => (k === 'join' ? 'leave / rejoin (standby)' : k === 'weight' ? 'weight change' : 'quiet (no change)');
  writeSection(
    TRAFFIC_RATE === 200 ? 'handoff' : `handoff-${TRAFFIC_RATE}`,
    [
      `## Planned handoff at ${TRAFFIC_RATE} new connections/s (\`npm run bench -- handoff\`)`,
      '',
      `New connections left unanswered by a planned rebalance: 3-node agent farm, ${TRAFFIC_RATE} new connections/s from ${SOURCES} source addresses, each unanswered after ${TIMEOUT_MS} ms (below the 1 s SYN retransmission). Per change: unanswered connections started in the ${WINDOW_MS} ms after n3's weight changed by SIGHUP (1 -> 2 -> 1; about 1/12 of the buckets move) or n3 left and rejoined (weight 1 -> 0 -> 1, standby: about 1/3 move); *quiet* is the same window with no change. *immediate*: release, then acquire on hearing it (before session 21); *timed*: the timed handoff (VIPFARM_HANDOFF_LEAD_MS=${MODES.timed}), both kernels flipping at one instant. The two modes alternate, ${CYCLES} cycles each time, twice. Goal: 0 per rebalance.`,
      '',
      '| mode | change | count | unanswered per change (mean) | each |',
      '|---|---|---:|---:|---|',
      ...(['immediate', 'timed'] as Mode[]).flatMap((m) =>
        (['weight', 'join', 'quiet'] as Kind[]).map((k) => `| ${m} | ${label(k)} | ${counts[m][k].length} | ${per(m, k).toFixed(2)} | ${counts[m][k].join(', ')} |`)),
      '',
      `Load average: ${load0.map((x) => x.toFixed(2)).join(', ')} at the start, ${load1.map((x) => x.toFixed(2)).join(', ')} at the end.`,
    ].join('\n'),
  );
  return {
    bench: 'handoff', rate: TRAFFIC_RATE,
    immediate: { weight: per('immediate', 'weight'), join: per('immediate', 'join'), quiet: per('immediate', 'quiet') },
    timed: { weight: per('timed', 'weight'), join: per('timed', 'join'), quiet: per('timed', 'quiet') },
  };
}
