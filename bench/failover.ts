// `npm run bench -- failover`: SIGKILL/restart cycles on a 3-node agent farm (time from
// the kill until every bucket of the dead node answers again, probed by the client),
// connections broken by a planned rebalance, and false failovers with both cores loaded.
// BENCH_CYCLES (default 20) and BENCH_SOAK_SEC (default 300) shorten it for a quick look.
import { spawn, type ChildProcess } from 'node:child_process';
import { AgentFarm, APP_PORT } from '../lab/agent/farm.js';
import { Holder } from '../lab/netns/procs.js';
import { median, percentile } from './dataplane.js';
import { writeSection } from './report.js';
import { DEFAULTS } from '../common/src/config/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (s: string): void => void process.stderr.write(`[bench failover] ${s}\n`);

async function killCycles(farm: AgentFarm, cycles: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const victim = farm.tb.nodes[i % farm.tb.nodes.length];
    const before = await farm.owners();
    const buckets = Object.entries(before.owners).filter(([, n]) => n === victim.name).map(([b]) => Number(b));
    farm.tb.setLink(victim, false);
    const t0 = Date.now();
    await farm.kill(victim);
    const p = await farm.probe({ buckets, maxMs: 10_000, attemptTimeoutMs: 50 });
    const ms = p.unserved.length ? Number.POSITIVE_INFINITY : Date.now() - t0;
    times.push(ms);
    progress(`cycle ${i + 1}/${cycles}: ${victim.name} killed, ${buckets.length} buckets served again after ${ms} ms`);
    farm.tb.setLink(victim, true);
    farm.startAgent(victim);
    await farm.waitReady([victim]);
    await farm.waitLog(victim, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await sleep(500);
  }
  return times;
}

/** 60 long-lived connections while n3 drains away and comes back: how many break. */
async function plannedRebalance(farm: AgentFarm): Promise<number> {
  const holder = Holder.start(farm.tb, farm.client, { vip: farm.vip, port: APP_PORT, count: 60, pingMs: 50 });
  await holder.opened();
  const n3 = farm.node('n3');
  // weight 0: a live standby; all of n3's buckets move, its connections must stay
  farm.writeConfig(n3, { node: { name: n3.name, address: n3.ip, weight: 0 } });
  farm.agents.get(n3.name)!.proc.kill('SIGHUP');
  await farm.waitLog(n3, (l) => l.event === 'buckets' && l.owned === 0);
  await sleep(1000);
  farm.writeConfig(n3);
  farm.agents.get(n3.name)!.proc.kill('SIGHUP');
  await sleep(1500);
  const summary = await holder.stop();
  return summary.filter((c) => c.error !== null || c.echoed < c.sent - 2).length;
}

async function soak(farm: AgentFarm, seconds: number): Promise<number> {
  const burners: ChildProcess[] = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  const mark = new Map([...farm.agents].map(([n, a]) => [n, a.logs.length]));
  try {
    for (let s = 0; s < seconds; s += 30) {
      await sleep(Math.min(30, seconds - s) * 1000);
      progress(`soak with both cores busy: ${Math.min(s + 30, seconds)}/${seconds} s`);
    }
  } finally {
    for (const b of burners) b.kill('SIGKILL');
  }
  let deaths = 0;
  for (const [n, a] of farm.agents) deaths += a.logs.slice(mark.get(n)).filter((l) => l.event === 'peer_dead').length;
  return deaths;
}

export async function run(): Promise<Record<string, unknown>> {
  const cycles = Number(process.env.BENCH_CYCLES ?? 20);
  const soakSec = Number(process.env.BENCH_SOAK_SEC ?? 300);
  const farm = new AgentFarm({ nodes: 3, bucketCount: 64 });
  try {
    await farm.startAll();
    await farm.waitReady();
    await sleep(500);
    const times = await killCycles(farm, cycles);
    progress('planned rebalance with 60 long-lived connections');
    const planned = await plannedRebalance(farm);
    progress(`soak: ${soakSec} s with two busy loops on the two cores`);
    const falseFailovers = await soak(farm, soakSec);
    const result = {
      cycles,
      p50_ms: median(times),
      p99_ms: percentile(times, 99),
      max_ms: Math.max(...times),
      planned_broken: planned,
      planned_total: 60,
      false_failovers: falseFailovers,
      soak_seconds: soakSec,
    };
    writeSection('failover', [
      `## Failover (3 agents in network namespaces, default heartbeat ${DEFAULTS.intervalMs} ms, failure threshold ${DEFAULTS.failureThresholdMs} ms, 64 buckets)`,
      '',
      '`npm run bench -- failover`. A cycle pulls a node\'s cable, SIGKILLs its agent and measures until every one',
      'of its buckets answers a new connection from the client again (a new attempt per bucket every 10 ms, up to 3 overlapping, 50 ms connect timeout).',
      '',
      '| measure | value |',
      '| --- | --- |',
      `| kill → all its buckets served, p50 | ${result.p50_ms} ms |`,
      `| p99 | ${result.p99_ms} ms |`,
      `| max (${cycles} cycles) | ${result.max_ms} ms |`,
      `| long-lived connections broken by a planned rebalance (node to weight 0 and back) | ${planned} of 60 |`,
      `| false failovers in ${soakSec} s with both cores busy | ${falseFailovers} |`,
      '',
      `The floor is the failure threshold (${DEFAULTS.failureThresholdMs} ms of silence); the rest is the 10 ms silence check, the peers agreeing on the new view, and the probe.`,
    ].join('\n'));
    return result;
  } finally {
    await farm.destroy();
  }
}
