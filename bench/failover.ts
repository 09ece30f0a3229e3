// `npm run bench -- failover`: SIGKILL/restart cycles on a 3-node agent farm (time from
// the kill until every bucket of the dead node answers again, probed by the client),
// connections broken by a planned rebalance, and false failovers with both cores loaded.
// Each takeover is split into detection, agreement, programming and the client's part.
// BENCH_CYCLES (default 20) and BENCH_SOAK_SEC (default 300) shorten it for a quick look.
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { AgentFarm, APP_PORT, type LogLine } from '../lab/agent/farm.js';
import { Holder } from '../lab/netns/procs.js';
import type { Host } from '../lab/netns/testbed.js';
import { median, percentile } from './dataplane.js';
import { writeSection } from './report.js';
import { DEFAULTS } from '../common/src/config/index.js';
import { defaultLeaseMs } from '../agent/src/core/agent-core.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (s: string): void => void process.stderr.write(`[bench failover] ${s}\n`);

/** One takeover in phases, ms, from the survivors' `failover` log events and the client. */
export interface Takeover {
  /** kill → every bucket of the dead node answered the client again */
  totalMs: number;
  /** its last heartbeat heard before the kill (how much of the threshold had already run) */
  heardBeforeKillMs: number;
  /** kill → declared dead by the survivor that finished last */
  detectMs: number;
  /** declared dead → its buckets accepted (the survivors agreeing on the new view) */
  agreeMs: number;
  /** the kernel batch that accepted them */
  programMs: number;
  /** accepted → the client's next SYN for each of them answered */
  clientMs: number;
}

/** Pure: a cycle's phases from the kill time, the survivors' failover events and the client's served times. */
export function takeoverPhases(killedAt: number, failovers: readonly LogLine[], servedAt: readonly number[]): Takeover {
  const servedLast = Math.max(...servedAt);
  const ev = failovers.map((l) => ({
    at: Date.parse(String(l.timestamp)), since: Number(l.sinceLastHeartbeatMs), agree: Number(l.agreeMs), program: Number(l.programMs),
  }));
  // the survivor whose takeover ended last is the one the client waited for
  const last = ev.reduce((a, b) => (b.at > a.at ? b : a));
  const declaredAt = last.at - last.agree;
  return {
    totalMs: servedLast - killedAt,
    heardBeforeKillMs: killedAt - (last.at - last.since),
    detectMs: declaredAt - killedAt,
    agreeMs: last.agree,
    programMs: last.program,
    clientMs: servedLast - last.at,
  };
}

/** Attempts per bucket: a new SYN every PROBE_ROUND_MS (the peers bench's client rate). */
const PROBE_ROUND_MS = 10;
const PROBE_TIMEOUT_MS = 30;
/** The armed probe of a takeover (this bench and bench peers). One attempt more in flight
 *  than timeout / round: with exactly that many, the attempt timing out at the round's
 *  instant still counted, and every third round sent no SYN (up to 20 ms, not 10, between
 *  a bucket's SYNs: measured as part of every takeover, vipfarm's and keepalived's). */
export const TAKEOVER_PROBE = { attemptTimeoutMs: PROBE_TIMEOUT_MS, roundMs: PROBE_ROUND_MS, maxInFlight: PROBE_TIMEOUT_MS / PROBE_ROUND_MS + 1 };


async function killCycles(farm: AgentFarm, cycles: number): Promise<Takeover[]> {
  const out: Takeover[] = [];
  for (let i = 0; i < cycles; i++) {
    const victim = farm.tb.nodes[i % farm.tb.nodes.length];
    const before = await farm.owners();
    const buckets = Object.entries(before.owners).filter(([, n]) => n === victim.name).map(([b]) => Number(b));
    const marks = new Map([...farm.agents].map(([n, a]) => [n, a.logs.length]));
    const { results: [p], t0 } = await farm.killUnderProbe(victim, [{ buckets, maxMs: 10_000, ...TAKEOVER_PROBE }]);
    const failovers = [...farm.agents].filter(([n]) => n !== victim.name).flatMap(([n, a]) => a.logs.slice(marks.get(n)).filter((l) => l.event === 'failover' && l.peer === victim.name));
    const t = p.unserved.length || failovers.length === 0
      ? { totalMs: Infinity, heardBeforeKillMs: NaN, detectMs: NaN, agreeMs: NaN, programMs: NaN, clientMs: NaN }
      : takeoverPhases(t0, failovers, p.served.map((x) => x.at));
    out.push(t);
    progress(`cycle ${i + 1}/${cycles}: ${victim.name} killed, ${buckets.length} buckets served again after ${t.totalMs} ms (${JSON.stringify(t)})`);
    farm.tb.setLink(victim, true);
    farm.startAgent(victim);
    await farm.waitReady([victim]);
    await farm.waitLog(victim, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await sleep(500);
  }
  return out;
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

/** Both cores kept busy for `seconds`: every peer declared dead meanwhile is a false failover. */
async function soak(farm: AgentFarm, seconds: number): Promise<{ deaths: number; stalls: number; leaseLost: number }> {
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
  let stalls = 0;
  let leaseLost = 0;
  for (const [n, a] of farm.agents) {
    const logs = a.logs.slice(mark.get(n));
    deaths += logs.filter((l) => l.event === 'peer_dead').length;
    stalls += logs.filter((l) => l.event === 'stall').length;
    leaseLost += logs.filter((l) => l.event === 'stall' && l.leaseRanOut === true).length;
  }
  return { deaths, stalls, leaseLost };
}

const ms = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 10) / 10} ms` : String(x));

function timeRow(ts: Takeover[], label: string, pick: (t: Takeover) => number): string {
  const xs = ts.map(pick);
  return `| ${label} | ${ms(median(xs))} | ${ms(percentile(xs, 99))} | ${ms(Math.max(...xs))} |`;
}

function phaseRows(ts: Takeover[], v6: Takeover[], directed: Takeover[]): string[] {
  const row = (label: string, pick: (t: Takeover) => number): string => timeRow(ts, label, pick);
  return [
    '| phase | p50 | p99 | max |',
    '| --- | --- | --- | --- |',
    row('**kill → all its buckets served (takeover)**', (t) => t.totalMs),
    row('its last heartbeat heard before the kill', (t) => t.heardBeforeKillMs),
    row('kill → declared dead (detection)', (t) => t.detectMs),
    row('declared dead → buckets accepted (agreement)', (t) => t.agreeMs),
    row('the kernel batch that accepted them (programming)', (t) => t.programMs),
    row('accepted → the client\'s next SYN answered', (t) => t.clientMs),
    // the same cycles on an IPv6-only farm (heartbeats over udp6, ND instead of ARP, ip6 rules)
    timeRow(v6, `**IPv6-only farm, ${v6.length} cycles: kill → all its buckets served**`, (t) => t.totalMs),
    timeRow(v6, 'IPv6-only: kill → declared dead (detection)', (t) => t.detectMs),
    // Directed mode on a switch that does not flood unknown unicast: ARP answered with a
    // node's own MAC, non-owned buckets forwarded at L2 to their owner
    timeRow(directed, `**Directed mode (non-flooding switch), ${directed.length} cycles: kill → all its buckets served**`, (t) => t.totalMs),
    timeRow(directed, 'Directed: kill → declared dead (detection)', (t) => t.detectMs),
  ];
}

/** The kill cycles (and, if asked, the planned rebalance) on a farm started and destroyed here. */
async function takeoversOn(opts: ConstructorParameters<typeof AgentFarm>[0], cycles: number, rebalance = false): Promise<{ takeovers: Takeover[]; planned?: number }> {
  const farm = new AgentFarm(opts);
  try {
    await farm.startAll();
    await farm.waitReady();
    await sleep(500);
    const takeovers = await killCycles(farm, cycles);
    if (!rebalance) return { takeovers };
    progress('planned rebalance with 60 long-lived connections');
    return { takeovers, planned: await plannedRebalance(farm) };
  } finally {
    await farm.destroy();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const cycles = Number(process.env.BENCH_CYCLES ?? 20);
  const cycles6 = Number(process.env.BENCH_CYCLES6 ?? Math.max(1, Math.round(cycles / 2)));
  const cyclesDirected = Number(process.env.BENCH_CYCLES_DIRECTED ?? Math.max(1, Math.round(cycles / 2)));
  const soakSec = Number(process.env.BENCH_SOAK_SEC ?? 300);
  // BENCH_INTERVAL_MS / BENCH_THRESHOLD_MS: another heartbeat setting, for a comparison
  const intervalMs = Number(process.env.BENCH_INTERVAL_MS ?? DEFAULTS.intervalMs);
  const failureThresholdMs = Number(process.env.BENCH_THRESHOLD_MS ?? (process.env.BENCH_INTERVAL_MS ? 3 * intervalMs : DEFAULTS.failureThresholdMs));
  const defaults = intervalMs === DEFAULTS.intervalMs && failureThresholdMs === DEFAULTS.failureThresholdMs;
  const farmOpts = { nodes: 3, bucketCount: 64, ...(defaults ? {} : { intervalMs, failureThresholdMs }) };
  const farm = new AgentFarm(farmOpts);
  try {
    const load = loadavg().map((x) => x.toFixed(2)).join(', ');
    await farm.startAll();
    await farm.waitReady();
    await sleep(500);
    const takeovers = await killCycles(farm, cycles);
    const times = takeovers.map((t) => t.totalMs);
    progress('planned rebalance with 60 long-lived connections');
    const planned = await plannedRebalance(farm);
    progress(`soak: ${soakSec} s with two busy loops on the two cores`);
    const soaked = await soak(farm, soakSec);
    await farm.destroy();
    progress(`IPv6-only farm: ${cycles6} kill cycles`);
    const takeovers6 = (await takeoversOn({ ...farmOpts, families: ['ipv6'], name: 'six' }, cycles6)).takeovers;
    const times6 = takeovers6.map((t) => t.totalMs);
    progress(`Directed mode on a non-flooding switch: ${cyclesDirected} kill cycles`);
    const directed = await takeoversOn({ ...farmOpts, floodUnknownUnicast: false, extra: { mode: 'Directed' }, name: 'dir' }, cyclesDirected, true);
    const timesDirected = directed.takeovers.map((t) => t.totalMs);
    const result = {
      cycles,
      interval_ms: intervalMs,
      threshold_ms: failureThresholdMs,
      p50_ms: median(times),
      p99_ms: percentile(times, 99),
      max_ms: Math.max(...times),
      detect_p99_ms: percentile(takeovers.map((t) => t.detectMs), 99),
      agree_p99_ms: percentile(takeovers.map((t) => t.agreeMs), 99),
      program_p99_ms: percentile(takeovers.map((t) => t.programMs), 99),
      client_p99_ms: percentile(takeovers.map((t) => t.clientMs), 99),
      ipv6_cycles: cycles6,
      ipv6_p50_ms: median(times6),
      ipv6_p99_ms: percentile(times6, 99),
      ipv6_max_ms: Math.max(...times6),
      directed_cycles: cyclesDirected,
      directed_p50_ms: median(timesDirected),
      directed_p99_ms: percentile(timesDirected, 99),
      directed_max_ms: Math.max(...timesDirected),
      directed_planned_broken: directed.planned,
      planned_broken: planned,
      planned_total: 60,
      false_failovers: soaked.deaths,
      soak_stalls: soaked.stalls,
      soak_lease_lost: soaked.leaseLost,
      soak_seconds: soakSec,
      loadavg: load,
    };
    writeSection(defaults ? 'failover' : `failover-${intervalMs}-${failureThresholdMs}`, [
      `## Failover (3 agents in network namespaces, heartbeat ${intervalMs} ms, failure threshold ${failureThresholdMs} ms${defaults ? ' (the defaults)' : ''}, 64 buckets)`,
      '',
      `Load average at the start: ${load}. \`npm run bench -- failover\`. A cycle pulls a node's cable, SIGKILLs its agent and measures until every one`,
      `of its buckets answers a new connection from the client again: the client starts before the kill and sends a new SYN per bucket every ${PROBE_ROUND_MS} ms`,
      `(${PROBE_TIMEOUT_MS} ms connect timeout, so a SYN dropped during the outage is not waited for: its retransmission would come after 1 s).`,
      'The phases come from the survivors\' `failover` log events (detectMs, agreeMs, programMs; the same split is the',
      '`vipfarm_failover_phase_seconds` histogram), for the survivor that finished last.',
      '',
      ...phaseRows(takeovers, takeovers6, directed.takeovers),
      '',
      '| measure | value |',
      '| --- | --- |',
      `| cycles | ${cycles} |`,
      `| long-lived connections broken by a planned rebalance (node to weight 0 and back) | ${planned} of 60 |`,
      `| the same in Directed mode (non-flooding switch) | ${directed.planned} of 60 |`,
      `| false failovers in ${soakSec} s with both cores busy (peers declared dead) | ${soaked.deaths} |`,
      `| agent loop stalls in that time (a loop late by over half the threshold) | ${soaked.stalls} |`,
      `| of which outlasted the kernel lease (${defaultLeaseMs({ intervalMs, failureThresholdMs })} ms: that node's buckets dropped, taken by the others) | ${soaked.leaseLost} |`,
    ].join('\n'));
    return result;
  } finally {
    await farm.destroy();
  }
}
