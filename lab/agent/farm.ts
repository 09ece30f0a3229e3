// A farm of real agent processes in network namespaces: the harness of the agent's tests,
// the failover bench and the demo. Each node runs the echo server (the "application") and
// `vipfarm-agent --config`; a client namespace probes buckets through the VIP.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import yaml from 'js-yaml';
import type { IPFamily } from '../../common/src/config/syntax.js';
import { createTestbed, type Host, type Testbed } from '../netns/testbed.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** dist/ root of the compiled tree */
export const distRoot = resolve(here, '../..');
export const AGENT_MAIN = join(distRoot, 'agent/src/main.js');
const ECHO = join(distRoot, 'lab/netns/helpers/echo-server.js');
const PROBER = join(distRoot, 'lab/agent/helpers/prober.js');

export const APP_PORT = 8080;
export const HB_PORT = 7946;
export const METRICS_PORT = 9477;

export interface FarmOptions {
  nodes: number;
  clients?: number;
  bucketCount?: number;
  intervalMs?: number;
  failureThresholdMs?: number;
  weights?: Record<string, number>;
  /** a tcp checker on the app port of each node */
  appChecker?: boolean;
  /** extra top-level YAML fields for every node */
  extra?: Record<string, unknown>;
  name?: string;
  /** false: a switch that does not flood unknown unicast (see createTestbed) */
  floodUnknownUnicast?: boolean;
  /**
   * Address families of the bed and the farm (default ['ipv4']): one VIP of each, in this
   * order; ['ipv6'] is an IPv6-only farm, ['ipv4', 'ipv6'] a dual-stack one.
   */
  families?: readonly IPFamily[];
  /** the family of the nodes' addresses, hence of the UDP heartbeats (default: the first of `families`) */
  heartbeatFamily?: IPFamily;
}

export interface LogLine {
  [k: string]: unknown;
  event?: string;
  message?: string;
}

export interface RunningAgent {
  proc: ChildProcess;
  logs: LogLine[];
  exited: Promise<number | null>;
}

export interface ProbeResult {
  elapsedMs: number;
  owners: Record<number, string>;
  unserved: number[];
  /** atMs: since the prober started; at: wall clock (Date.now()) */
  served: { bucket: number; node: string; atMs: number; at: number }[];
  /** attempts the client could not start itself, by errno code (not a sign of the farm) */
  clientErrors: Record<string, number>;
}

/** ms from t0 until the probe had every bucket it asked for answered (Infinity if not) */
export function servedAgainMs(p: ProbeResult, t0: number): number {
  return p.unserved.length > 0 ? Infinity : Math.max(t0, ...p.served.map((s) => s.at)) - t0;
}

export interface ProbeOptions {
  buckets?: number[];
  /** the VIP and the client address of this family (default: the farm's first) */
  family?: IPFamily;
  maxMs?: number;
  attemptTimeoutMs?: number;
  /** a new round of attempts every roundMs (default 10) */
  roundMs?: number;
  /** attempts per bucket at once (default 3) */
  maxInFlight?: number;
}

export class AgentFarm {
  readonly tb: Testbed;
  readonly dir: string;
  readonly keyFile: string;
  /** the VIP of the first family */
  readonly vip: string;
  /** one VIP per family, in the order of opts.families */
  readonly vips: string[];
  readonly families: readonly IPFamily[];
  readonly heartbeatFamily: IPFamily;
  readonly name: string;
  readonly bucketCount: number;
  readonly seed = 0x5eed;
  readonly agents = new Map<string, RunningAgent>();
  /** the logs of agents since replaced by startAgent (a restarted node's previous run) */
  readonly pastLogs: LogLine[] = [];
  readonly apps = new Map<string, ChildProcess>();

  constructor(readonly opts: FarmOptions) {
    this.families = opts.families ?? ['ipv4'];
    this.heartbeatFamily = opts.heartbeatFamily ?? this.families[0]!;
    this.tb = createTestbed({ nodes: opts.nodes, clients: opts.clients ?? 1, floodUnknownUnicast: opts.floodUnknownUnicast, families: this.families });
    this.dir = mkdtempSync(join(tmpdir(), 'vipfarm-farm-'));
    this.keyFile = join(this.dir, 'heartbeat.key');
    writeFileSync(this.keyFile, randomBytes(32), { mode: 0o600 });
    this.vips = this.families.map((f) => this.vipOf(f));
    this.vip = this.vips[0]!;
    this.name = opts.name ?? 'demo';
    this.bucketCount = opts.bucketCount ?? 64;
  }

  get client(): Host {
    return this.tb.clients[0];
  }

  /** the farm's VIP of a family */
  vipOf(family: IPFamily): string {
    return family === 'ipv4' ? this.tb.vip(0) : this.tb.vip6(0);
  }

  /** a host's own address of a family on the bed */
  addressOf(host: Host, family: IPFamily = this.heartbeatFamily): string {
    const ip = family === 'ipv6' ? host.ip6 : this.tb.families.includes('ipv4') ? host.ip : undefined;
    if (ip === undefined) throw new Error(`${host.name} has no ${family} address on this bed`);
    return ip;
  }

  private otherAddresses(host: Host): { otherAddresses?: string[] } {
    const other = this.families.find((f) => f !== this.heartbeatFamily);
    return other === undefined ? {} : { otherAddresses: [this.addressOf(host, other)] };
  }

  node(name: string): Host {
    const h = this.tb.nodes.find((n) => n.name === name);
    if (!h) throw new Error(`no node ${name}`);
    return h;
  }

  /** the agent YAML of a node (overrides replace top-level fields) */
  config(node: Host, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const o = this.opts;
    return {
      name: this.name,
      node: { name: node.name, address: this.addressOf(node) },
      // a dual-stack bed: each peer's address of the other family too (Directed second chance)
      peers: this.tb.nodes.map((n) => ({ name: n.name, address: this.addressOf(n), ...this.otherAddresses(n) })),
      keyFile: this.keyFile,
      virtualIPs: this.vips,
      interface: node.iface,
      rules: [{ port: APP_PORT, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
      bucketCount: this.bucketCount,
      hashSeed: this.seed,
      heartbeat: { port: HB_PORT, ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}), ...(o.failureThresholdMs ? { failureThresholdMs: o.failureThresholdMs } : {}) },
      ...(o.weights ? { weights: o.weights } : {}),
      ...(o.appChecker ? { checkers: [{ name: 'app', type: 'tcp', port: APP_PORT, intervalMs: 200, timeoutMs: 150, rise: 2, fall: 2 }] } : {}),
      metricsPort: METRICS_PORT,
      ...o.extra,
      ...overrides,
    };
  }

  writeConfig(node: Host, overrides: Record<string, unknown> = {}): string {
    const path = join(this.dir, `${node.name}.yaml`);
    writeFileSync(path, yaml.dump(this.config(node, overrides)));
    return path;
  }

  /** serviceMs: one connection at a time, each taking this long (echo-server.ts) */
  startApp(node: Host, serviceMs?: number): Promise<void> {
    // '::' takes both families (IPv4 as ::ffff:a.b.c.d); an IPv4 bed has IPv6 off
    const any = this.families.includes('ipv6') ? '::' : '0.0.0.0';
    const argv = [process.execPath, ECHO, node.name, any, String(APP_PORT), '-', ...(serviceMs ? [String(serviceMs)] : [])];
    const p = this.tb.spawn(node.netns, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    this.apps.set(node.name, p);
    return new Promise((resolveReady, reject) => {
      let buf = '';
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('"ready"')) resolveReady();
      });
      p.once('exit', (code) => reject(new Error(`app on ${node.name} exited ${code}`)));
    });
  }

  stopApp(node: Host): void {
    const p = this.apps.get(node.name);
    p?.kill('SIGKILL');
    this.apps.delete(node.name);
  }

  startAgent(node: Host, overrides: Record<string, unknown> = {}, args: string[] = []): RunningAgent {
    const cfg = this.writeConfig(node, overrides);
    const proc = this.tb.spawn(node.netns, [process.execPath, AGENT_MAIN, '--config', cfg, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VIPFARM_RUN_DIR: join(this.dir, 'run'), VIPFARM_LOG_LEVEL: 'debug' },
    });
    const logs: LogLine[] = [];
    let buf = '';
    proc.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          logs.push(JSON.parse(line) as LogLine);
        } catch {
          logs.push({ message: line });
        }
      }
    });
    proc.stdout!.resume();
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const a = { proc, logs, exited };
    this.pastLogs.push(...(this.agents.get(node.name)?.logs ?? []));
    this.agents.set(node.name, a);
    return a;
  }

  async startAll(): Promise<void> {
    for (const n of this.tb.nodes) await this.startApp(n);
    for (const n of this.tb.nodes) this.startAgent(n);
  }

  kill(node: Host, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const a = this.agents.get(node.name);
    if (!a) throw new Error(`no agent on ${node.name}`);
    a.proc.kill(signal);
    return a.exited;
  }

  /** waits until `pred` holds for the agent's logs */
  async waitLog(node: Host, pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const t0 = Date.now();
    for (;;) {
      const a = this.agents.get(node.name);
      const hit = a?.logs.find(pred);
      if (hit) return hit;
      if (Date.now() - t0 > timeoutMs) {
        const tail = (a?.logs ?? []).slice(-15).map((l) => JSON.stringify(l)).join('\n');
        throw new Error(`timeout waiting for a log line on ${node.name}; last lines:\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** probes buckets from the client until each one answered (or maxMs) */
  probe(opts: ProbeOptions = {}): Promise<ProbeResult> {
    return this.armedProbe(opts, false).result;
  }

  /**
   * A probe whose process is started and loaded but sends nothing until go(): a bench
   * arms it, waits for `armed`, then makes the failure and calls go(), so the client's
   * startup is not measured.
   */
  armedProbe(opts: ProbeOptions = {}, armed = true): { armed: Promise<void>; go: () => void; result: Promise<ProbeResult> } {
    const family = opts.family ?? this.families[0]!;
    const args = {
      vip: this.vipOf(family), port: APP_PORT, clientIp: this.addressOf(this.client, family), bucketCount: this.bucketCount, seed: this.seed,
      buckets: opts.buckets, maxMs: opts.maxMs ?? 10_000, attemptTimeoutMs: opts.attemptTimeoutMs ?? 150,
      roundMs: opts.roundMs, maxInFlight: opts.maxInFlight, armed,
    };
    const p = this.tb.spawn(this.client.netns, [process.execPath, PROBER, JSON.stringify(args)], { stdio: [armed ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
    let onArmed!: () => void;
    const isArmed = new Promise<void>((r) => (onArmed = r));
    const result = this.collectProbe(p, onArmed);
    return { armed: isArmed, go: () => void p.stdin?.end('go\n'), result };
  }

  /**
   * A node's death under armed probes (one per options, e.g. one per family): the clients
   * are started and loaded ahead, so their startup is not measured, and their first SYNs
   * follow the cable cut, so only a survivor can answer. t0 = the cut; a bucket's takeover
   * is its `served[].at` - t0 (servedAgainMs).
   */
  async killUnderProbe(victim: Host, probes: ProbeOptions[]): Promise<{ results: ProbeResult[]; t0: number }> {
    const armed = probes.map((o) => this.armedProbe(o));
    await Promise.all(armed.map((a) => a.armed));
    this.tb.setLink(victim, false);
    const t0 = Date.now();
    for (const a of armed) a.go();
    await this.kill(victim);
    return { results: await Promise.all(armed.map((a) => a.result)), t0 };
  }

  private collectProbe(p: ChildProcess, onArmed: () => void): Promise<ProbeResult> {
    const served: ProbeResult['served'] = [];
    return new Promise((resolveDone, reject) => {
      let buf = '';
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const m = JSON.parse(buf.slice(0, i)) as { event: string } & Record<string, unknown>;
          buf = buf.slice(i + 1);
          if (m.event === 'armed') onArmed();
          if (m.event === 'served') served.push(m as unknown as ProbeResult['served'][number]);
          if (m.event === 'done') resolveDone({ ...(m as unknown as Omit<ProbeResult, 'served'>), served });
        }
      });
      p.once('exit', (code) => {
        if (code !== 0) reject(new Error(`prober exited ${code}`));
      });
    });
  }

  /** the agent's /metrics, fetched from inside its namespace */
  metrics(node: Host): string {
    const js = `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then(r => r.text()).then(t => process.stdout.write(t))`;
    return this.tb.exec(node.netns, [process.execPath, '-e', js]);
  }

  /** one sample of a metric (labels as a substring such as 'reason="bad_mac"'), 0 when absent */
  metric(node: Host, name: string, labels = ''): number {
    for (const line of this.metrics(node).split('\n')) {
      if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
      if (labels && !line.includes(labels)) continue;
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return 0;
  }

  /** per node: packets its second-chance rules passed on to previous holders (nft's own
   *  counters of table ip and ip6 vipfarm_<farm>_prev; 0 for a node not running) */
  secondChancePackets(families: readonly IPFamily[] = this.families): Record<string, number> {
    const out: Record<string, number> = {};
    for (const n of this.tb.nodes) {
      out[n.name] = 0;
      for (const family of families) {
        let text = '';
        try {
          text = this.tb.exec(n.netns, ['nft', 'list', 'table', family === 'ipv6' ? 'ip6' : 'ip', `vipfarm_${this.name}_prev`]);
        } catch {
          // not running (yet or any more)
        }
        out[n.name] += [...text.matchAll(/counter packets (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
      }
    }
    return out;
  }

  /** nodes answering for each bucket, and how many buckets each answers for */
  async owners(maxMs = 5000): Promise<{ owners: Record<number, string>; shares: Record<string, number>; unserved: number[] }> {
    const p = await this.probe({ maxMs });
    return { owners: p.owners, shares: AgentFarm.shares(p.owners), unserved: p.unserved };
  }

  async waitReady(nodes: Host[] = this.tb.nodes): Promise<void> {
    for (const n of nodes) await this.waitLog(n, (l) => l.event === 'state' && l.state === 'ready');
  }

  /** bucket counts per node, from a probe of every bucket */
  static shares(owners: Record<number, string>): Record<string, number> {
    const s: Record<string, number> = {};
    for (const n of Object.values(owners)) s[n] = (s[n] ?? 0) + 1;
    return s;
  }

  async destroy(): Promise<void> {
    for (const a of this.agents.values()) {
      if (a.proc.exitCode === null && a.proc.signalCode === null) {
        a.proc.kill('SIGTERM');
        await Promise.race([a.exited, new Promise((r) => setTimeout(r, 3000))]);
      }
    }
    this.tb.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
