// `npm run bench -- peers`: vipfarm side by side with keepalived (VRRPv3, Debian's
// package, advert_int 0.05: what a bare-metal user would pick instead), on the same
// network-namespace bed (3 nodes, one client) with the same clients, in one run:
// - takeover: the serving node's cable pulled and its process SIGKILLed, until the client
//   is served again (keepalived: the VIP answers; vipfarm: every bucket of the dead node),
//   probed by the failover bench's client started ahead of the kill;
// - connections failed per failure: a client opening a connection every 5 ms from 1000
//   source addresses throughout, a connection unanswered within 500 ms is failed (its SYN
//   fell into the outage; the retransmission would come after 1 s);
// - capacity: every node's application limited to ~190 connections/s (echo-server's
//   serviceMs), a client offering more than the farm can serve; served per second.
// BENCH_CYCLES (default 20) shortens it.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { AgentFarm } from '../lab/agent/farm.js';
import { Client } from '../lab/agent/traffic-client.js';
import type { Host } from '../lab/netns/testbed.js';
import { median, percentile } from './dataplane.js';
import { TAKEOVER_PROBE } from './failover.js';
import { writeSection } from './report.js';
import { DEFAULTS } from '../common/src/config/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (s: string): void => void process.stderr.write(`[bench peers] ${s}\n`);

/** keepalived's advertisement interval, seconds (the issue's comparison point) */
export const ADVERT_INT = 0.05;
/** per-node capacity: one connection at a time, this long each (~190/s) */
const SERVICE_MS = 1000 / 190;
const PULSE_EVERY_MS = 5;
const PULSE_TIMEOUT_MS = 500;
const SOURCES = 1000;
const CAPACITY_RATE = 900;
const CAPACITY_SEC = 6;

/** A farm implementation under test: how to start it, which node serves, how it fails and comes back. */
interface Contender {
  name: string;
  start(): Promise<void>;
  /** the node to fail next, and the buckets whose answers show it was taken over */
  victim(cycle: number): Promise<{ host: Host; buckets: number[] }>;
  /** SIGKILL of the serving process (its cable is already pulled) */
  kill(host: Host): Promise<void>;
  /** cable back in, process restarted, serving again */
  recover(host: Host): Promise<void>;
  stop(): Promise<void>;
  /** keepalived: cycles that began with several masters holding the VIP */
  splitBrains?: () => number;
  /** keepalived: times the VIP did not answer for 20 s before a cycle or after a return */
  unreachable?: () => number;
}

export interface CycleResult {
  takeoverMs: number;
  failed: number;
  failedOnRecovery: number;
}

/** Pure: one node's keepalived.conf (one VRRPv3 instance holding the VIP). */
export function keepalivedConfig(o: { router: string; iface: string; vip: string; priority: number; advertInt: number }): string {
  return [
    'global_defs {',
    `  router_id ${o.router}`,
    '  vrrp_version 3',
    '  script_user root',
    '  enable_script_security',
    '}',
    'vrrp_instance VIP {',
    '  state BACKUP',
    `  interface ${o.iface}`,
    '  virtual_router_id 51',
    `  priority ${o.priority}`,
    `  advert_int ${o.advertInt}`,
    '  virtual_ipaddress {',
    `    ${o.vip}/32 dev ${o.iface}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** keepalived on every node (the client's connections go to whichever holds the VIP). */
function keepalived(farm: AgentFarm): Contender {
  const procs = new Map<string, ChildProcess>();
  const startOn = (h: Host, i: number): void => {
    const cfg = join(farm.dir, `keepalived-${h.name}.conf`);
    writeFileSync(cfg, keepalivedConfig({ router: h.name, iface: h.iface, vip: farm.vip, priority: 150 - 20 * i, advertInt: ADVERT_INT }));
    // a SIGKILLed keepalived leaves its pid files, and a new one then refuses to start
    // ("daemon is already running"): fresh names for every start
    const pid = (what: string): string => join(farm.dir, `keepalived-${h.name}-${++starts}.${what}.pid`);
    const p = farm.tb.spawn(h.netns, ['keepalived', '--dont-fork', '--log-console', '--vrrp', '-f', cfg, '-p', pid('main'), '-r', pid('vrrp')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      const lines = (logs.get(h.name) ?? []).concat(d.toString().split('\n').filter(Boolean));
      logs.set(h.name, lines.slice(-8));
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    procs.set(h.name, p);
  };
  const holders = (): Host[] => farm.tb.nodes.filter((h) => farm.tb.exec(h.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', h.iface]).includes(` ${farm.vip}/32 `));
  /** the client is answered through the VIP; the node that answers */
  const serving = async (): Promise<Host> => {
    for (let t0 = Date.now(); Date.now() - t0 < 20_000; await sleep(50)) {
      const p = await farm.probe({ buckets: [0], maxMs: 500, attemptTimeoutMs: 100 });
      const node = p.owners[0];
      if (node !== undefined) return farm.node(node);
    }
    throw new Error(`keepalived: the VIP does not answer (holders: ${holders().map((h) => h.name).join(', ')})`);
  };
  let splitBrains = 0;
  let starts = 0;
  /** times the VIP did not answer the client for 20 s (several masters fighting) */
  let unreachable = 0;
  /** the last lines each node's keepalived logged, shown when it does not converge */
  const logs = new Map<string, string[]>();
  /** a SIGKILLed keepalived leaves the VIP on its interface: take it away before the cable is back */
  const unplumb = (h: Host): void => {
    try {
      farm.tb.exec(h.netns, ['ip', 'addr', 'del', `${farm.vip}/32`, 'dev', h.iface]);
    } catch {
      // not there
    }
  };
  /** every keepalived process in the node's namespace (the parent and its VRRP child) */
  const pidsOn = (h: Host): number[] =>
    execFileSync('ip', ['netns', 'pids', h.netns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
      .filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('keepalived'); } catch { return false; } });
  return {
    name: `keepalived ${ADVERT_INT * 1000} ms`,
    async start() {
      farm.tb.nodes.forEach(startOn);
      await serving();
      // let the backups settle behind the master
      await sleep(1000);
    },
    async victim() {
      // Seen on this machine at load ~20: adverts every 50 ms missed and two or three
      // masters at once for seconds. The one to fail is the one the client reaches.
      if (holders().length > 1) {
        splitBrains++;
        progress(`keepalived: several masters hold the VIP (${holders().map((h) => h.name).join(', ')}). Last log lines:\n${[...logs].map(([n, l]) => `${n}: ${l.join('\n    ')}`).join('\n')}`);
      }
      const host = await serving().catch(() => {
        unreachable++;
        return holders()[0] ?? farm.tb.nodes[0]!;
      });
      // any buckets: the whole VIP moves; as many as a third of vipfarm's, the same client load
      return { host, buckets: Array.from({ length: Math.ceil(farm.bucketCount / farm.tb.nodes.length) }, (_, i) => i * farm.tb.nodes.length) };
    },
    async kill(host) {
      for (const p of pidsOn(host)) process.kill(p, 'SIGKILL');
      await sleep(0);
    },
    async recover(host) {
      unplumb(host);
      farm.tb.setLink(host, true);
      startOn(host, farm.tb.nodes.indexOf(host));
      // it preempts (highest priority) or stays backup; either way the VIP must answer
      await sleep(1500);
      await serving().catch(() => void unreachable++);
    },
    unreachable: () => unreachable,
    splitBrains: () => splitBrains,
    async stop() {
      for (const [, p] of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      procs.clear();
      await sleep(1000);
      for (const h of farm.tb.nodes) for (const p of pidsOn(h)) process.kill(p, 'SIGKILL');
    },
  };
}

function vipfarm(farm: AgentFarm): Contender {
  return {
    name: `vipfarm ${DEFAULTS.intervalMs}/${DEFAULTS.failureThresholdMs} ms`,
    async start() {
      for (const n of farm.tb.nodes) farm.startAgent(n);
      await farm.waitReady();
      for (let t0 = Date.now(); (await farm.owners()).unserved.length > 0; await sleep(200)) {
        if (Date.now() - t0 > 20_000) throw new Error('vipfarm: buckets unserved after start');
      }
      await sleep(500);
    },
    async victim(cycle) {
      const host = farm.tb.nodes[cycle % farm.tb.nodes.length];
      const before = await farm.owners();
      return { host, buckets: Object.entries(before.owners).filter(([, n]) => n === host.name).map(([b]) => Number(b)) };
    },
    async kill(host) {
      await farm.kill(host);
    },
    async recover(host) {
      farm.tb.setLink(host, true);
      farm.startAgent(host);
      await farm.waitReady([host]);
      await farm.waitLog(host, (l) => l.event === 'buckets' && Number(l.owned) > 0);
      await sleep(500);
    },
    async stop() {
      for (const [, a] of farm.agents) {
        a.proc.kill('SIGTERM');
        await a.exited;
      }
    },
  };
}

async function cycles(farm: AgentFarm, c: Contender, n: number, client: Client): Promise<CycleResult[]> {
  const out: CycleResult[] = [];
  for (let i = 0; i < n; i++) {
    const { host, buckets } = await c.victim(i);
    const probe = farm.armedProbe({ buckets, maxMs: 10_000, ...TAKEOVER_PROBE });
    await probe.armed;
    farm.tb.setLink(host, false);
    const t0 = Date.now();
    probe.go();
    await c.kill(host);
    const p = await probe.result;
    // NaN: the node held no buckets when the cycle began (the farm had not settled after
    // the previous return); left out of the percentiles, counted apart
    const takeoverMs = buckets.length === 0 ? NaN : p.unserved.length > 0 ? Infinity : Math.max(...p.served.map((s) => s.at)) - t0;
    const r0 = Date.now();
    await c.recover(host);
    const r1 = Date.now();
    // the client's verdicts come PULSE_TIMEOUT_MS after the start of a connection
    await sleep(PULSE_TIMEOUT_MS + 100);
    const r = { takeoverMs, failed: client.failedBetween(t0, r0), failedOnRecovery: client.failedBetween(r0, r1) };
    out.push(r);
    progress(`${c.name} cycle ${i + 1}/${n}: ${host.name} failed, served again after ${takeoverMs} ms, ${r.failed} connections failed (${r.failedOnRecovery} while it came back)`);
  }
  return out;
}

/** Served connections per second with every node's application limited to ~190/s. */
async function capacity(farm: AgentFarm, sources: string[]): Promise<{ served: number; perNode: Record<string, number> }> {
  for (const n of farm.tb.nodes) {
    farm.stopApp(n);
    await farm.startApp(n, SERVICE_MS);
  }
  const client = new Client(farm, { rate: CAPACITY_RATE, sources, timeoutMs: 1000, maxInFlight: 2048 });
  await sleep(CAPACITY_SEC * 1000);
  await client.stop();
  // the first second warms up (queues fill), the rest is the steady state
  const from = Math.min(...client.conns.map((c) => c.start)) + 1000;
  const to = from + (CAPACITY_SEC - 2) * 1000;
  const perNode: Record<string, number> = {};
  let served = 0;
  for (const c of client.conns) {
    if (c.start < from || c.start >= to || c.node === null) continue;
    served++;
    perNode[c.node] = (perNode[c.node] ?? 0) + 1;
  }
  const sec = (to - from) / 1000;
  for (const k of Object.keys(perNode)) perNode[k] = Math.round(perNode[k]! / sec);
  for (const n of farm.tb.nodes) {
    farm.stopApp(n);
    await farm.startApp(n);
  }
  return { served: Math.round(served / sec), perNode };
}

interface Measured {
  name: string;
  cycles: CycleResult[];
  capacity: { served: number; perNode: Record<string, number> };
  /** vipfarm: its agents' loop stalls and peers declared dead over the run (kills included) */
  events?: { stalls: number; deaths: number };
  splitBrains: number;
  unreachable: number;
}

async function measure(farm: AgentFarm, c: Contender, n: number, sources: string[]): Promise<Measured> {
  progress(`${c.name}: starting`);
  await c.start();
  const client = new Client(farm, { rate: 1000 / PULSE_EVERY_MS, sources, timeoutMs: PULSE_TIMEOUT_MS });
  let results: CycleResult[];
  try {
    results = await cycles(farm, c, n, client);
  } finally {
    await client.stop();
  }
  progress(`${c.name}: capacity`);
  const cap = await capacity(farm, sources);
  // every run of every agent: each node is killed and restarted in turn
  const logs = [...farm.pastLogs, ...[...farm.agents.values()].flatMap((a) => a.logs)];
  await c.stop();
  const events = logs.length > 0 ? { stalls: logs.filter((l) => l.event === 'stall').length, deaths: logs.filter((l) => l.event === 'peer_dead').length } : undefined;
  if (events) progress(`${c.name}: ${events.stalls} loop stalls, ${events.deaths} peers declared dead (${n} kills x 2 survivors expected)`);
  return { name: c.name, cycles: results, capacity: cap, ...(events ? { events } : {}), splitBrains: c.splitBrains?.() ?? 0, unreachable: c.unreachable?.() ?? 0 };
}

function summary(m: Measured): { p50: number; p99: number; max: number; failed: number; failedOnRecovery: number } {
  const t = m.cycles.map((c) => c.takeoverMs).filter((x) => !Number.isNaN(x));
  const avg = (xs: number[]): number => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10;
  return { p50: median(t), p99: percentile(t, 99), max: Math.max(...t), failed: avg(m.cycles.map((c) => c.failed)), failedOnRecovery: avg(m.cycles.map((c) => c.failedOnRecovery)) };
}

const ratio = (a: number, b: number): string => (b === 0 ? '–' : `${(a / b).toFixed(2)}x`);

export async function run(): Promise<Record<string, unknown>> {
  const n = Number(process.env.BENCH_CYCLES ?? 20);
  const uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const load = loadavg().map((x) => x.toFixed(2)).join(', ');
  const farm = new AgentFarm({ nodes: 3, bucketCount: 64 });
  const ka0 = keepalived(farm);
  try {
    for (const h of farm.tb.nodes) await farm.startApp(h);
    const sources = farm.tb.addAddresses(farm.client, SOURCES);
    // BENCH_PEERS=keepalived|vipfarm: one of them only (a look, not the comparison)
    const only = process.env.BENCH_PEERS;
    const none: Measured = { name: '', cycles: [{ takeoverMs: NaN, failed: NaN, failedOnRecovery: NaN }], capacity: { served: NaN, perNode: {} }, splitBrains: 0, unreachable: 0 };
    const ka = only === 'vipfarm' ? none : await measure(farm, ka0, n, sources);
    const vf = only === 'keepalived' ? none : await measure(farm, vipfarm(farm), n, sources);
    const k = summary(ka);
    const v = summary(vf);
    const result = { cycles: n, uptime, keepalived: { ...k, served: ka.capacity.served, splitBrains: ka.splitBrains, unreachable: ka.unreachable }, vipfarm: { ...v, served: vf.capacity.served, ...vf.events } };
    if (only) return result;
    const perNode = (m: Measured): string => Object.entries(m.capacity.perNode).sort().map(([node, r]) => `${node} ${r}`).join(', ');
    writeSection('peers', [
      '## vipfarm and keepalived side by side (3 nodes in network namespaces, one run)',
      '',
      `\`npm run bench -- peers\`. \`uptime\` at the start: \`${uptime}\` (load ${load}).`,
      `${spawnSync('keepalived', ['--version'], { encoding: 'utf8' }).stderr.split('\n')[0]} (Debian), VRRPv3, \`advert_int ${ADVERT_INT}\`, priorities 150/130/110, preemption on;`,
      `vipfarm with its defaults (heartbeat ${DEFAULTS.intervalMs} ms, failure threshold ${DEFAULTS.failureThresholdMs} ms), 64 buckets, ClientIPAndPort.`,
      `A failure pulls the serving node's cable and SIGKILLs its process (keepalived: the master; vipfarm: each node in turn), ${n} cycles each.`,
      'Takeover: until the failover bench\'s client (started ahead, a new SYN per probed bucket every 10 ms, 30 ms connect timeout) is answered',
      'again for every bucket the dead node had (keepalived: for as many buckets, all of which move with the VIP).',
      `Failed connections: a second client opens a connection every ${PULSE_EVERY_MS} ms from ${SOURCES} source addresses throughout; one unanswered within`,
      `${PULSE_TIMEOUT_MS} ms is failed (counted from the kill until the node is back; "on return": while the node rejoins).`,
      `Capacity: every node's application serves one connection at a time, ${SERVICE_MS.toFixed(2)} ms each (~190/s), sheds load beyond 100 ms of queue;`,
      `a client offers ${CAPACITY_RATE} connections/s for ${CAPACITY_SEC} s; served/s over the steady ${CAPACITY_SEC - 2} s.`,
      '',
      '| measure | keepalived | vipfarm | vipfarm / keepalived |',
      '| --- | --- | --- | --- |',
      `| takeover p50 | ${k.p50} ms | ${v.p50} ms | ${ratio(v.p50, k.p50)} |`,
      `| takeover p99 | ${k.p99} ms | ${v.p99} ms | ${ratio(v.p99, k.p99)} |`,
      `| takeover max | ${k.max} ms | ${v.max} ms | ${ratio(v.max, k.max)} |`,
      `| connections failed per failure (mean) | ${k.failed} | ${v.failed} | ${ratio(v.failed, k.failed)} |`,
      `| connections failed while the node returns (mean) | ${k.failedOnRecovery} | ${v.failedOnRecovery} | ${ratio(v.failedOnRecovery, k.failedOnRecovery)} |`,
      `| served connections/s, ~190/s per node | ${ka.capacity.served} (${perNode(ka)}) | ${vf.capacity.served} (${perNode(vf)}) | ${ratio(vf.capacity.served, ka.capacity.served)} |`,
      '',
      `keepalived: ${ka.splitBrains} of ${n} cycles began with several masters holding the VIP at once (adverts missed under load; the client reaches one of them); ${ka.unreachable} times the VIP did not answer the client for 20 s.`,
      `vipfarm's agents over the run: ${vf.events?.stalls ?? 0} loop stalls (a loop late by over half the threshold), ${vf.events?.deaths ?? 0} peers declared dead (${n} kills seen by 2 survivors each: ${2 * n}).`,
    ].join('\n'));
    return result;
  } finally {
    // keepalived's VRRP children are not ours to track: end them before the namespaces go
    await ka0.stop().catch(() => undefined);
    await farm.destroy();
  }
}
