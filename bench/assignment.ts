// `npm run bench -- assignment`: how balanced the bucket assignment is, how many buckets
// move when membership changes compared with the fewest possible, how long it takes to
// compute, and how fast 64 simulated agents converge on one view and one owner per bucket.
// Everything is seeded: two runs print the same table (but for the compute times).
import { assignBuckets, minimumMoves, movedBuckets, normalizeMembers, type Member } from '../agent/src/core/assignment.js';
import { createRng, type Rng } from '../agent/src/core/prng.js';
import { runRandomScenario, Simulation } from '../lab/sim/simulation.js';
import { writeSection } from './report.js';

const NODES = [3, 8, 16, 64];
const BUCKETS = [256, 1024];
const CHANGES = ['join', 'leave', 'weight'] as const;
type Change = (typeof CHANGES)[number];

function members(rng: Rng, n: number): Member[] {
  return Array.from({ length: n }, (_, i) => ({ name: `node-${i}-${rng.int(0, 1e6)}`, weight: rng.int(1, 5) }));
}

function changed(rng: Rng, ms: Member[], kind: Change): Member[] {
  if (kind === 'join') return [...ms, { name: `joiner-${rng.int(0, 1e9)}`, weight: rng.int(1, 5) }];
  const j = rng.int(0, ms.length - 1);
  if (kind === 'leave') return ms.filter((_, i) => i !== j);
  return ms.map((m, i) => (i === j ? { ...m, weight: m.weight === 5 ? 1 : m.weight + 1 } : m));
}

/** max / mean of owned buckets per unit of weight: 1.0 is perfect. */
function balance(ms: Member[], owners: string[]): number {
  const counts = new Map<string, number>();
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  const live = normalizeMembers(ms);
  const per = live.map((m) => (counts.get(m.name) ?? 0) / m.weight);
  const mean = owners.length / live.reduce((s, m) => s + m.weight, 0);
  return Math.max(...per) / mean;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

interface Row {
  nodes: number;
  buckets: number;
  balanceMean: number;
  balanceMax: number;
  /** share of nodes holding exactly floor or ceil of their weighted share */
  withinOne: number;
  /** sticky: the change computed from the table before (what agents do) */
  moved: Record<Change, { ratioMean: number; ratioP90: number; movedMean: number; minimumMean: number }>;
  ratioMean: number;
  /** history-free: the change computed from nothing held (a cold start's table) */
  freeRatioMean: number;
  computeMsMedian: number;
}

function measure(nodes: number, buckets: number, trials: number): Row {
  const rng = createRng(nodes * 7919 + buckets);
  const balances: number[] = [];
  let within = 0;
  let total = 0;
  const ratios: Record<Change, number[]> = { join: [], leave: [], weight: [] };
  const moved: Record<Change, number[]> = { join: [], leave: [], weight: [] };
  const minimum: Record<Change, number[]> = { join: [], leave: [], weight: [] };
  const free: number[] = [];
  const times: number[] = [];
  for (let t = 0; t < trials; t++) {
    const ms = members(rng, nodes);
    const t0 = performance.now();
    const before = assignBuckets(ms, buckets);
    times.push(performance.now() - t0);
    balances.push(balance(ms, before));
    const W = ms.reduce((s, m) => s + m.weight, 0);
    for (const m of ms) {
      const got = before.filter((o) => o === m.name).length;
      const exact = (m.weight * buckets) / W;
      total++;
      if (got >= Math.floor(exact) && got <= Math.ceil(exact)) within++;
    }
    for (const kind of CHANGES) {
      const next = changed(rng, ms, kind);
      const after = assignBuckets(next, buckets, before);
      const mv = movedBuckets(before, after);
      const min = minimumMoves(before, after);
      const historyFree = assignBuckets(next, buckets);
      const freeMin = minimumMoves(before, historyFree);
      if (freeMin > 0) free.push(movedBuckets(before, historyFree) / freeMin);
      if (min === 0) continue;
      ratios[kind].push(mv / min);
      moved[kind].push(mv);
      minimum[kind].push(min);
    }
  }
  const byKind = Object.fromEntries(
    CHANGES.map((k) => [k, { ratioMean: mean(ratios[k]), ratioP90: quantile(ratios[k], 0.9), movedMean: mean(moved[k]), minimumMean: mean(minimum[k]) }]),
  ) as Row['moved'];
  return {
    nodes,
    buckets,
    balanceMean: mean(balances),
    balanceMax: Math.max(...balances),
    withinOne: within / total,
    moved: byKind,
    ratioMean: mean(CHANGES.flatMap((k) => ratios[k])),
    freeRatioMean: mean(free),
    computeMsMedian: quantile(times.slice(2), 0.5),
  };
}

interface Convergence {
  seed: number;
  coldStartMs: number;
  killMs: number;
  killMaxGapMs: number;
  killOverlapBucketMs: number;
  healMs: number;
  healOverlapChanges: number;
}

/** 64 agents, 1024 buckets, default timings: cold start, one SIGKILL, a partition healed. */
function converge(seed: number): Convergence {
  const sim = new Simulation({ nodes: 64, bucketCount: 1024, intervalMs: 100, failureThresholdMs: 500, delayMs: 1, jitterMs: 3, startSpreadMs: 100, seed, recordTimeline: false });
  const cold = sim.runUntilTrue(() => sim.converged(), 10_000, 1) ?? NaN;
  sim.runFor(1_000);
  sim.resetStats();
  const killedAt = sim.now;
  sim.kill(`n${(seed % 64) + 1}`);
  const kill = (sim.runUntilTrue(() => sim.converged(), killedAt + 10_000, 1) ?? NaN) - killedAt;
  const ks = sim.getStats();
  sim.runFor(1_000);
  sim.partition(
    Array.from({ length: 32 }, (_, i) => `n${i + 1}`),
    Array.from({ length: 32 }, (_, i) => `n${i + 33}`),
  );
  sim.runFor(2_000);
  sim.resetStats();
  const healedAt = sim.now;
  sim.heal();
  const heal = (sim.runUntilTrue(() => sim.converged(), healedAt + 10_000, 1) ?? NaN) - healedAt;
  const hs = sim.getStats();
  return {
    seed,
    coldStartMs: cold,
    killMs: kill,
    killMaxGapMs: ks.maxGapMs,
    killOverlapBucketMs: ks.overlapBucketMs,
    healMs: heal,
    healOverlapChanges: hs.acquires + hs.releases,
  };
}

/** Takeover time after a SIGKILL in a 3-agent farm, by heartbeat settings (virtual time). */
function failover(intervalMs: number, failureThresholdMs: number, runs: number): { p50: number; p99: number; max: number; overlap: number } {
  const times: number[] = [];
  let overlap = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const sim = new Simulation({ nodes: 3, bucketCount: 256, intervalMs, failureThresholdMs, seed, delayMs: 0.2, jitterMs: 1, leaseMs: failureThresholdMs - 2 * intervalMs, recordTimeline: false });
    sim.runUntilTrue(() => sim.converged(), 5_000);
    sim.runFor(1_000 + seed * 7);
    sim.resetStats();
    const at = sim.now;
    sim.kill(`n${(seed % 3) + 1}`);
    const t = sim.runUntilTrue(() => sim.converged(), at + 5_000);
    times.push(t === undefined ? NaN : t - at);
    overlap += sim.getStats().overlapBucketMs;
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), max: Math.max(...times), overlap };
}

const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

export async function run(): Promise<Record<string, unknown>> {
  const rows: Row[] = [];
  for (const buckets of BUCKETS) for (const nodes of NODES) rows.push(measure(nodes, buckets, nodes >= 64 ? 20 : 40));
  const seeds = [1, 2, 3];
  const conv = seeds.map(converge);
  const takeovers = [
    [100, 500],
    [50, 250],
    [50, 200],
    [40, 150],
  ].map(([interval, threshold]) => ({ interval: interval!, threshold: threshold!, ...failover(interval!, threshold!, 100) }));
  const scenarios = Array.from({ length: 200 }, (_, i) => runRandomScenario(i + 1));

  const lines: string[] = [];
  lines.push('## Assignment');
  lines.push('');
  lines.push('`assignBuckets` (agent/src/core/assignment.ts): quotas of floor/ceil of each weighted share; each node keeps what it');
  lines.push('holds up to its quota (sticky), the free buckets go by greedy stable matching on weighted rendezvous keys.');
  lines.push('Random weights 1..5, seeded; 40 trials (20 for 64 nodes) per row. *Balance* is max/mean of buckets per unit of');
  lines.push('weight (1.00 = perfect). *Moved/min* is buckets that changed owner divided by the fewest any assignment with the');
  lines.push('same per-node counts could move, for one node joining, one leaving, one weight +1: *sticky* computes the new table');
  lines.push('from the one before (what the agents do, the holders being in the heartbeats), *history-free* from nothing held');
  lines.push('(what a cold start computes; before sticky tables the agents did this on every change: 1.72 at 16 nodes, 3.28 at 64).');
  lines.push('');
  lines.push('| nodes | buckets | balance mean | balance max | within 1 bucket | sticky moved/min join | leave | weight | all (mean) | p90 (leave) | history-free moved/min (mean) | compute ms (cold) |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    lines.push(
      `| ${r.nodes} | ${r.buckets} | ${f(r.balanceMean, 3)} | ${f(r.balanceMax, 3)} | ${f(100 * r.withinOne, 0)}% | ${f(r.moved.join.ratioMean)} | ${f(r.moved.leave.ratioMean)} | ${f(r.moved.weight.ratioMean)} | ${f(r.ratioMean)} | ${f(r.moved.leave.ratioP90)} | ${f(r.freeRatioMean)} | ${f(r.computeMsMedian)} |`,
    );
  }
  lines.push('');
  lines.push('History-free, buckets per node drives moved/min: with 4 to 16 buckets per node (64 nodes) exact balance forces');
  lines.push('chains of displacements; keeping what is held removes them.');
  lines.push('');
  lines.push('### Convergence of 64 simulated agents');
  lines.push('');
  lines.push('lab/sim/simulation.ts: 64 agents running the real agent core, 1024 buckets, heartbeat');
  lines.push('every 100 ms, failure threshold 500 ms, 1-4 ms links, virtual time. *Converged* = every agent has the same view');
  lines.push('and every bucket is accepted by exactly its assigned owner. Cold start includes the 500 ms startup grace.');
  lines.push('');
  lines.push('| seed | cold start ms | after SIGKILL ms | max bucket gap ms | double-owner bucket·ms | heal of a 32/32 partition ms | changes while healing |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of conv) {
    lines.push(`| ${c.seed} | ${f(c.coldStartMs, 0)} | ${f(c.killMs, 0)} | ${f(c.killMaxGapMs, 0)} | ${f(c.killOverlapBucketMs, 0)} | ${f(c.healMs, 0)} | ${c.healOverlapChanges} |`);
  }
  lines.push('');
  lines.push('### Takeover after a SIGKILL, by heartbeat settings (simulated, 3 agents)');
  lines.push('');
  lines.push('Virtual time from the kill until every bucket is accepted by its new owner, 100 kills at random points of the');
  lines.push('heartbeat cycle, 0.2-1.2 ms links, kernel leases of threshold - 2 intervals. Failure detection dominates: the');
  lines.push('takeover is threshold + up to one interval. The real agent adds its own scheduling and netlink time.');
  lines.push('');
  lines.push('| interval ms | threshold ms | p50 ms | p99 ms | max ms | double-owner bucket·ms |');
  lines.push('|---:|---:|---:|---:|---:|---:|');
  for (const r of takeovers) lines.push(`| ${r.interval} | ${r.threshold} | ${f(r.p50, 0)} | ${f(r.p99, 0)} | ${f(r.max, 0)} | ${f(r.overlap, 0)} |`);
  lines.push('');
  lines.push('### Random scenarios');
  lines.push('');
  lines.push(`\`runRandomScenario\` (lab/sim/simulation.ts), seeds 1..${scenarios.length}: 2-10 agents, links of 0.2-90 ms with 0-10% loss,`);
  lines.push('30 random kills, restarts, weight and state changes and event-loop stalls of up to 2 s, then all back.');
  lines.push('');
  lines.push('| runs | with a double owner | not converged | converge after the last action p50 / max ms |');
  lines.push('|---:|---:|---:|---:|');
  const conv2 = scenarios.filter((r) => r.converged).map((r) => r.convergeMs);
  lines.push(`| ${scenarios.length} | ${scenarios.filter((r) => r.overlapBucketMs > 0).length} | ${scenarios.filter((r) => !r.converged).length} | ${f(quantile(conv2, 0.5), 0)} / ${f(Math.max(...conv2), 0)} |`);
  const markdown = lines.join('\n');
  try {
    writeSection('assignment', markdown);
  } catch (err) {
    process.stderr.write(`bench assignment: could not write docs/benchmarks.md (${String(err)}); the table follows\n`);
  }
  process.stderr.write(`${markdown}\n`);

  const at = (n: number, b: number): Row => rows.find((r) => r.nodes === n && r.buckets === b)!;
  return {
    bench: 'assignment',
    balance_max: Math.max(...rows.map((r) => r.balanceMax)),
    within_one_bucket: Math.min(...rows.map((r) => r.withinOne)),
    moved_ratio_mean: mean(rows.map((r) => r.ratioMean)),
    moved_ratio: Object.fromEntries(rows.map((r) => [`${r.nodes}x${r.buckets}`, Number(r.ratioMean.toFixed(3))])),
    moved_ratio_history_free: Object.fromEntries(rows.map((r) => [`${r.nodes}x${r.buckets}`, Number(r.freeRatioMean.toFixed(3))])),
    compute_ms_64x1024: at(64, 1024).computeMsMedian,
    converge64_cold_ms: quantile(conv.map((c) => c.coldStartMs), 0.5),
    converge64_kill_ms: quantile(conv.map((c) => c.killMs), 0.5),
    converge64_heal_ms: quantile(conv.map((c) => c.healMs), 0.5),
    converge64_double_owner_bucket_ms: conv.reduce((s, c) => s + c.killOverlapBucketMs, 0),
    takeover_p99_ms_default: takeovers[0]!.p99,
    takeover_p99_ms_50_250: takeovers[1]!.p99,
    random_scenarios: scenarios.length,
    random_scenarios_double_owner: scenarios.filter((r) => r.overlapBucketMs > 0).length,
    random_scenarios_not_converged: scenarios.filter((r) => !r.converged).length,
  };
}
