// An in-process farm of N real agent cores (agent/src/core/agent-core.ts, the decision
// step agent.ts runs) exchanging heartbeats over a fake network with per-link delay,
// jitter, loss and partitions, in virtual time, each with a modelled kernel that accepts
// what its core programmed until its lease ends. Tests use it to check the ownership
// invariants (no double owner while views agree, every bucket owned again soon after a
// failure, no flapping after a partition heals); bench/assignment.ts uses it for the view
// convergence time of 64 agents. Deterministic for a given seed.
//
// The driver does what agent.ts does around the core: a loop (decide, program the
// kernel, applied, send the heartbeat) every intervalMs with a random phase; a loop at
// once (coalesced, like setImmediate) when a received heartbeat or a checker, weight or
// drain change asks for one; a loop as soon as a live peer's silence passes the threshold
// (agent.ts arms a timer for that instant). Only the network, the clock and the kernel are
// simulated.
import type { MemberState } from '../../common/src/types.js';
import * as core from '../../agent/src/core/agent-core.js';
import { encodeHeartbeat, type Heartbeat } from '../../agent/src/core/heartbeat-codec.js';
import type { MembershipEvent } from '../../agent/src/core/membership.js';
import { createAssignmentCache, type AssignmentCache } from '../../agent/src/core/ownership.js';
import { createRng, type Rng } from '../../agent/src/core/prng.js';

export interface SimOptions {
  nodes: number | Array<{ name: string; weight?: number }>;
  bucketCount?: number;
  intervalMs?: number;
  failureThresholdMs?: number;
  orphanHoldMs?: number;
  /** default link: one-way delay, plus uniform jitter in [0, jitterMs), and loss probability */
  delayMs?: number;
  jitterMs?: number;
  lossRate?: number;
  /** kernel lease of the buckets, renewed by every periodic loop (the one that sends the
   *  heartbeat): a killed agent's kernel still accepts them until leaseMs after its last
   *  one (0: the whole node died at once) */
  leaseMs?: number;
  /** agents start at random times in [0, startSpreadMs) */
  startSpreadMs?: number;
  /** encode, sign, decode and replay-check every heartbeat (slower, realistic) */
  useCodec?: boolean;
  /** carry the view digest in heartbeats (default true; false = acquire on claims alone) */
  useDigest?: boolean;
  /** send a heartbeat at once after acquiring or releasing buckets (default true) */
  sendOnChange?: boolean;
  seed?: number;
  /** keep every ownership change in `timeline` (default true) */
  recordTimeline?: boolean;
  /** timed handoff lead of every agent (agent-core handoffLeadMs; default 0: off) */
  handoffLeadMs?: number;
  /** each agent's clock is off the true time by a constant drawn from [-x, x] ms (its
   *  heartbeats, its decisions and its kernel's meta time all read it; default 0) */
  clockSkewMs?: number;
}

export interface OwnershipChange {
  t: number;
  node: string;
  bucket: number;
  kind: 'acquire' | 'release';
}

export interface SimStats {
  /** since the last resetStats() */
  from: number;
  to: number;
  /** sum over buckets of the time with two or more accepting owners */
  overlapBucketMs: number;
  maxOverlapMs: number;
  overlapIntervals: number;
  /** sum over buckets of the time with no owner */
  gapBucketMs: number;
  maxGapMs: number;
  gapIntervals: number;
  acquires: number;
  releases: number;
  heartbeatsSent: number;
  heartbeatsDelivered: number;
  heartbeatsRejected: number;
  events: Array<MembershipEvent & { t: number; at: string }>;
}

interface SimAgent {
  name: string;
  /** configured weight; the core's is 0 while in standby */
  weight: number;
  /** the inputs that make a node other than ready: a drain, failing checkers, standby */
  state: MemberState;
  up: boolean;
  /** the running agent's core (undefined before its first start) */
  core?: core.CoreState;
  incarnation: number;
  /** what its kernel accepts new connections for now */
  kernel: number[];
  /** what the core programmed last: owned, and the timed handoff's instants (its clock) */
  programmed: { owned: readonly number[]; giving: core.DesiredOwnership['giving']; taking: core.DesiredOwnership['taking'] };
  /** bumps with every programming, so flips scheduled for an older one are ignored */
  kernelGen: number;
  /** its clock minus the true time */
  clockOffset: number;
  /** bumps on restart, so events scheduled by a previous life are ignored */
  life: number;
  /** after a kill: the kernel keeps `kernel` until this time */
  leaseUntil: number;
  /** last time the kernel leases were renewed (by a periodic loop, like the runtime's) */
  refreshedAt: number;
  /** stalled (blocked event loop) until this time: timers and datagrams wait */
  pausedUntil: number;
  /** a loop is queued (setImmediate in the runtime) */
  loopQueued: boolean;
  /** time of the queued silence check, Infinity if none */
  watchAt: number;
}

type Event =
  | { kind: 'tick'; agent: string; life: number }
  | { kind: 'loop'; agent: string; life: number }
  | { kind: 'watch'; agent: string; life: number }
  | { kind: 'deliver'; to: string; from: string; msg: Heartbeat | Buffer }
  | { kind: 'lease'; agent: string; life: number }
  | { kind: 'stallLease'; agent: string; life: number }
  | { kind: 'flip'; agent: string; gen: number }
  | { kind: 'call'; fn: () => void };

interface Queued {
  t: number;
  seq: number;
  ev: Event;
}

/** Binary min-heap on (t, seq): equal times run in scheduling order, so runs are reproducible. */
class Queue {
  private heap: Queued[] = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  peekTime(): number {
    return this.heap.length ? this.heap[0]!.t : Infinity;
  }
  push(t: number, ev: Event): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, ev });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Queued | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: Queued, b: Queued): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

const FARM = 'sim';
const KEY = Buffer.from('simulation-key-simulation-key-32');
/** agent.ts's silence timer fires this long after the instant (setTimeout rounds to ms) */
const WATCH_LATE_MS = 1;
/** After a stall, datagrams that queued up are read this long after the resumption, and
 *  the loops the timers asked for run after them (agent.ts runs every loop from
 *  setImmediate, after Node's I/O phase). */
const READ_AFTER_RESUME_MS = 0.001;
const LOOP_AFTER_RESUME_MS = 0.002;

export class Simulation {
  readonly bucketCount: number;
  readonly intervalMs: number;
  readonly failureThresholdMs: number;
  readonly timeline: OwnershipChange[] = [];
  now = 0;

  private readonly opts: Required<Omit<SimOptions, 'nodes'>>;
  private readonly rng: Rng;
  private readonly queue = new Queue();
  private readonly agents = new Map<string, SimAgent>();
  private readonly names: string[];
  private readonly cache: AssignmentCache;
  private readonly cut = new Set<string>();
  private readonly links = new Map<string, { delayMs: number; jitterMs: number; lossRate: number }>();
  /** per bucket: how many agents (or leases) accept it now, and since when that holds */
  private readonly ownerCount: Int32Array;
  private readonly since: Float64Array;
  private stats!: SimStats;

  constructor(options: SimOptions) {
    this.opts = {
      bucketCount: 256,
      intervalMs: 100,
      failureThresholdMs: 500,
      orphanHoldMs: 10_000,
      delayMs: 1,
      jitterMs: 2,
      lossRate: 0,
      leaseMs: 0,
      startSpreadMs: 50,
      useCodec: false,
      useDigest: true,
      sendOnChange: true,
      seed: 1,
      recordTimeline: true,
      handoffLeadMs: 0,
      clockSkewMs: 0,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as Required<Omit<SimOptions, 'nodes'>>;
    this.bucketCount = this.opts.bucketCount;
    this.intervalMs = this.opts.intervalMs;
    this.failureThresholdMs = this.opts.failureThresholdMs;
    this.rng = createRng(this.opts.seed);
    this.cache = createAssignmentCache(256);
    const specs = typeof options.nodes === 'number'
      ? Array.from({ length: options.nodes }, (_, i) => ({ name: `n${i + 1}`, weight: 1 }))
      : options.nodes;
    this.names = specs.map((s) => s.name);
    this.ownerCount = new Int32Array(this.bucketCount);
    this.since = new Float64Array(this.bucketCount);
    this.resetStats();
    for (const s of specs) {
      const agent: SimAgent = {
        name: s.name,
        weight: s.weight ?? 1,
        state: 'ready',
        up: false,
        incarnation: 0,
        kernel: [],
        programmed: { owned: [], giving: [], taking: [] },
        kernelGen: 0,
        clockOffset: this.opts.clockSkewMs > 0 ? (this.rng.next() * 2 - 1) * this.opts.clockSkewMs : 0,
        life: 0,
        leaseUntil: 0,
        refreshedAt: 0,
        pausedUntil: 0,
        loopQueued: false,
        watchAt: Infinity,
      };
      this.agents.set(s.name, agent);
      this.queue.push(this.rng.next() * this.opts.startSpreadMs, { kind: 'call', fn: () => this.start(agent) });
    }
  }

  // ---- scenario controls (take effect at the current virtual time; use at() to schedule)

  /** Run fn at virtual time t (>= now). */
  at(t: number, fn: () => void): void {
    this.queue.push(Math.max(t, this.now), { kind: 'call', fn });
  }

  /** SIGKILL: the agent stops at once; its kernel accepts its buckets until the leases it
   *  last refreshed expire (leaseMs after its last tick). */
  kill(name: string): void {
    const a = this.agent(name);
    if (!a.up) return;
    a.up = false;
    a.life++;
    a.leaseUntil = a.refreshedAt + this.opts.leaseMs;
    if (this.opts.leaseMs <= 0 || a.leaseUntil <= this.now) this.setKernel(a, []);
    else this.queue.push(a.leaseUntil, { kind: 'lease', agent: name, life: a.life });
  }

  /**
   * Block the agent's event loop for ms (CPU starvation, GC, a suspended VM): its timer
   * fires once when it resumes, then the datagrams that queued up are read. Its kernel
   * leases run out meanwhile, and it then holds nothing (the runtime must see that too).
   */
  stall(name: string, ms: number): void {
    const a = this.agent(name);
    if (!a.up) return;
    a.pausedUntil = Math.max(a.pausedUntil, this.now + ms);
    if (this.opts.leaseMs > 0) this.queue.push(Math.max(this.now, a.refreshedAt + this.opts.leaseMs), { kind: 'stallLease', agent: name, life: a.life });
  }

  /** Start a killed agent again: a new incarnation with an empty kernel set. */
  restart(name: string): void {
    const a = this.agent(name);
    if (a.up) return;
    this.setKernel(a, []);
    this.start(a);
  }

  /** Cut every link between different groups (both directions). Nodes in no group keep their links. */
  partition(...groups: string[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut.add(`${a}>${b}`);
      }
    }
  }

  /** Cut a node off from everyone (its link went down). */
  isolate(name: string): void {
    this.partition([name], this.names.filter((n) => n !== name));
  }

  heal(): void {
    this.cut.clear();
  }

  /** Override one direction of a link. */
  setLink(from: string, to: string, link: { delayMs?: number; jitterMs?: number; lossRate?: number }): void {
    const cur = this.linkOf(from, to);
    this.links.set(`${from}>${to}`, { ...cur, ...link });
  }

  setWeight(name: string, weight: number): void {
    const a = this.agent(name);
    a.weight = weight;
    this.pushInputs(a);
  }

  /** The real inputs behind each state: 'draining' a drain, 'down' failing checkers,
   *  'standby' weight 0 (the configured weight comes back with 'ready'); 'ready' undoes them. */
  setState(name: string, state: MemberState): void {
    const a = this.agent(name);
    a.state = state;
    this.pushInputs(a);
  }

  // ---- running

  /** Process every event up to and including time t. */
  runUntil(t: number): void {
    while (this.queue.peekTime() <= t) this.step();
    this.advance(t);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /**
   * Run until pred() holds (checked after every event, or at most once per checkEveryMs of
   * virtual time for costly predicates) or until `limit`; returns the virtual time it was
   * first seen to hold, or undefined.
   */
  runUntilTrue(pred: () => boolean, limit: number, checkEveryMs = 0): number | undefined {
    if (pred()) return this.now;
    let lastCheck = this.now;
    while (this.queue.peekTime() <= limit) {
      this.step();
      if (checkEveryMs > 0 && this.now - lastCheck < checkEveryMs && this.queue.peekTime() - lastCheck < checkEveryMs) continue;
      lastCheck = this.now;
      if (pred()) return this.now;
    }
    this.advance(limit);
    return undefined;
  }

  // ---- observations

  upAgents(): string[] {
    return this.names.filter((n) => this.agent(n).up);
  }

  heldBy(name: string): number[] {
    return [...this.agent(name).kernel];
  }

  /** Accepting owners of each bucket now (killed agents count while their lease lasts). */
  owners(): string[][] {
    const out: string[][] = Array.from({ length: this.bucketCount }, () => []);
    for (const a of this.agents.values()) {
      if (!a.up && this.now >= a.leaseUntil) continue;
      for (const b of a.kernel) out[b]!.push(a.name);
    }
    return out;
  }

  /** Every up agent sees exactly the other up agents alive, with their current weight and advertised state. */
  viewsAgree(): boolean {
    const up = this.upAgents();
    for (const n of up) {
      const a = this.agent(n);
      for (const m of this.names) {
        if (m === n) continue;
        const p = a.core!.view.peers.get(m);
        const other = this.agent(m);
        const alive = p?.alive ?? false;
        if (alive !== other.up) return false;
        if (alive && (p!.weight !== other.core!.weight || p!.state !== core.advertised(other.core!, this.localNow(other)))) return false;
      }
    }
    return true;
  }

  /** No agent in its startup grace, views agree, every bucket accepted by exactly its assigned owner. */
  converged(): boolean {
    const up = this.upAgents();
    if (up.length === 0) return false;
    for (const n of up) {
      const c = this.agent(n).core!;
      if (core.advertised(c, this.localNow(this.agent(n))) !== core.wantedState(c)) return false;
    }
    if (!this.viewsAgree()) return false;
    const first = this.agent(up[0]!);
    const assignment = core.peekDecision(first.core!, this.localNow(first)).assignment;
    const owners = this.owners();
    for (let b = 0; b < this.bucketCount; b++) {
      const o = owners[b]!;
      if (assignment[b] === '' ? o.length !== 0 : o.length !== 1 || o[0] !== assignment[b]) return false;
    }
    return true;
  }

  /** Buckets with no accepting owner now. */
  unowned(): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.bucketCount; b++) if (this.ownerCount[b] === 0) out.push(b);
    return out;
  }

  /** Buckets with two or more accepting owners now. */
  overlapping(): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.bucketCount; b++) if (this.ownerCount[b]! > 1) out.push(b);
    return out;
  }

  resetStats(): void {
    this.closeIntervals();
    this.stats = {
      from: this.now,
      to: this.now,
      overlapBucketMs: 0,
      maxOverlapMs: 0,
      overlapIntervals: 0,
      gapBucketMs: 0,
      maxGapMs: 0,
      gapIntervals: 0,
      acquires: 0,
      releases: 0,
      heartbeatsSent: 0,
      heartbeatsDelivered: 0,
      heartbeatsRejected: 0,
      events: [],
    };
    for (let b = 0; b < this.bucketCount; b++) this.since[b] = this.now;
  }

  /** Stats since resetStats(), with intervals still open counted up to now. */
  getStats(): SimStats {
    const s = { ...this.stats, events: [...this.stats.events], to: this.now };
    for (let b = 0; b < this.bucketCount; b++) {
      const d = this.now - Math.max(this.since[b]!, s.from);
      if (d <= 0) continue;
      if (this.ownerCount[b] === 0) {
        s.gapBucketMs += d;
        s.maxGapMs = Math.max(s.maxGapMs, d);
      } else if (this.ownerCount[b]! > 1) {
        s.overlapBucketMs += d;
        s.maxOverlapMs = Math.max(s.maxOverlapMs, d);
      }
    }
    return s;
  }

  // ---- internals

  private agent(name: string): SimAgent {
    const a = this.agents.get(name);
    if (!a) throw new Error(`no simulated agent ${name}`);
    return a;
  }

  private linkOf(from: string, to: string): { delayMs: number; jitterMs: number; lossRate: number } {
    return this.links.get(`${from}>${to}`) ?? { delayMs: this.opts.delayMs, jitterMs: this.opts.jitterMs, lossRate: this.opts.lossRate };
  }

  private advance(t: number): void {
    if (t > this.now) this.now = t;
  }

  private step(): void {
    const q = this.queue.pop()!;
    this.advance(q.t);
    const ev = q.ev;
    switch (ev.kind) {
      case 'call':
        ev.fn();
        break;
      case 'tick':
        this.onTick(ev.agent, ev.life);
        break;
      case 'loop':
        this.onQueuedLoop(ev.agent, ev.life);
        break;
      case 'watch':
        this.onWatch(ev.agent, ev.life);
        break;
      case 'deliver':
        this.onDeliver(ev.to, ev.from, ev.msg);
        break;
      case 'lease': {
        const a = this.agent(ev.agent);
        if (!a.up && a.life === ev.life) this.setKernel(a, []);
        break;
      }
      case 'flip': {
        const a = this.agent(ev.agent);
        if (a.kernelGen === ev.gen) this.flipKernel(a);
        break;
      }
      case 'stallLease': {
        const a = this.agent(ev.agent);
        if (a.up && a.life === ev.life && this.now < a.pausedUntil && a.refreshedAt + this.opts.leaseMs <= this.now) this.setKernel(a, []);
        break;
      }
    }
  }

  private start(a: SimAgent): void {
    a.up = true;
    a.life++;
    a.pausedUntil = 0;
    a.loopQueued = false;
    a.watchAt = Infinity;
    // incarnation = start time in ms, kept strictly growing across fast restarts
    a.incarnation = Math.max(Math.floor(Math.max(0, this.localNow(a))), a.incarnation + 1);
    a.core = core.createCore({
      config: {
        farm: FARM,
        bucketCount: this.bucketCount,
        intervalMs: this.intervalMs,
        failureThresholdMs: this.failureThresholdMs,
        orphanHoldMs: this.opts.orphanHoldMs,
        // 0: no lease, the kernel keeps the sets as long as the node lives
        leaseMs: this.opts.leaseMs > 0 ? this.opts.leaseMs : Infinity,
        ...(this.opts.handoffLeadMs > 0 ? { handoffLeadMs: this.opts.handoffLeadMs } : {}),
      },
      name: a.name,
      weight: a.weight,
      peers: this.names.map((n) => ({ name: n, address: n })),
      now: this.localNow(a),
      incarnation: a.incarnation,
      cache: this.cache,
    });
    this.pushInputs(a, false);
    a.leaseUntil = 0;
    this.queue.push(this.now, { kind: 'tick', agent: a.name, life: a.life });
  }

  /** The sim's state and weight as the agent's inputs: a drain, the checkers, the weight. */
  private pushInputs(a: SimAgent, loopNow = true): void {
    if (!a.core) return;
    let c = a.core;
    c = core.setDraining(c, a.state === 'draining');
    c = core.setCheckersHealthy(c, a.state !== 'down');
    c = core.setWeight(c, a.state === 'standby' ? 0 : a.weight);
    if (c === a.core) return;
    a.core = c;
    if (loopNow && a.up) this.queueLoop(a);
  }

  private onTick(name: string, life: number): void {
    const a = this.agent(name);
    if (!a.up || a.life !== life) return;
    if (this.now < a.pausedUntil) {
      this.queue.push(a.pausedUntil + LOOP_AFTER_RESUME_MS, { kind: 'tick', agent: name, life });
      return;
    }
    this.loop(a, true);
    this.queue.push(this.now + this.intervalMs, { kind: 'tick', agent: name, life });
  }

  /** setImmediate: after what is already queued for this instant, at most one pending. */
  private queueLoop(a: SimAgent): void {
    if (a.loopQueued) return;
    a.loopQueued = true;
    this.queue.push(this.now < a.pausedUntil ? a.pausedUntil + LOOP_AFTER_RESUME_MS : this.now, { kind: 'loop', agent: a.name, life: a.life });
  }

  private onQueuedLoop(name: string, life: number): void {
    const a = this.agent(name);
    if (!a.up || a.life !== life) return;
    a.loopQueued = false;
    this.loop(a, false);
  }

  /** The runtime's silence timer: queued for when it would fire. */
  private armWatch(a: SimAgent): void {
    // the runtime's timer: a peer's silence or a timed handoff's instant, on the agent's clock
    const due = Math.min(core.nextSilenceAt(a.core!), core.nextHandoffAt(a.core!)) - a.clockOffset;
    if (due === Infinity) return;
    const at = Math.max(due + WATCH_LATE_MS, this.now + WATCH_LATE_MS);
    if (at >= a.watchAt) return;
    a.watchAt = at;
    this.queue.push(at, { kind: 'watch', agent: a.name, life: a.life });
  }

  private onWatch(name: string, life: number): void {
    const a = this.agent(name);
    if (!a.up || a.life !== life || this.now !== a.watchAt) return;
    a.watchAt = Infinity;
    if (this.now < a.pausedUntil) {
      a.watchAt = a.pausedUntil + LOOP_AFTER_RESUME_MS;
      this.queue.push(a.watchAt, { kind: 'watch', agent: name, life });
      return;
    }
    const local = this.localNow(a);
    if (core.silenceDue(a.core!, local) || local >= core.nextHandoffAt(a.core!)) this.queueLoop(a);
    this.armWatch(a);
  }

  /** agent.ts's loop(): decide, program the kernel (it accepts), applied, send. */
  private loop(a: SimAgent, timer: boolean): void {
    const d = core.decide(a.core!, this.localNow(a), timer);
    this.record(a.name, d.intents);
    this.setKernel(a, d.ownership.owned, d.ownership.giving, d.ownership.taking);
    if (d.renews) a.refreshedAt = this.now;
    const r = core.applied(d.state, true, this.localNow(a), d.renews);
    a.core = r.state;
    this.record(a.name, r.intents);
    // Without sendOnChange only the timer's loops reach the wire (an ablation).
    if (r.heartbeat && (d.renews || this.opts.sendOnChange)) this.broadcast(a, r.heartbeat);
    this.armWatch(a);
  }

  private onDeliver(to: string, from: string, raw: Heartbeat | Buffer): void {
    const a = this.agent(to);
    if (!a.up) return;
    if (this.now < a.pausedUntil) {
      // read before the loops the timers that fire on resumption ask for
      this.queue.push(a.pausedUntil + READ_AFTER_RESUME_MS, { kind: 'deliver', to, from, msg: raw });
      return;
    }
    const local = this.localNow(a);
    const r = Buffer.isBuffer(raw) ? core.receiveDatagram(a.core!, raw, KEY, from, local) : core.receiveHeartbeat(a.core!, raw, from, local);
    a.core = r.state;
    if ('rejected' in r) {
      this.stats.heartbeatsRejected++;
      return;
    }
    this.stats.heartbeatsDelivered++;
    this.record(to, r.intents);
    if (r.decideNow) this.queueLoop(a);
    this.armWatch(a);
  }

  /** The agent's clock now. */
  private localNow(a: SimAgent): number {
    return this.now + a.clockOffset;
  }

  /** Program the modelled kernel: owned, minus the giving buckets from their instant on,
   *  plus the taking ones from theirs; the instants are on the agent's clock, as the
   *  kernel's meta time is. Flips are scheduled for the instants still ahead. */
  private setKernel(a: SimAgent, owned: readonly number[], giving: core.DesiredOwnership['giving'] = [], taking: core.DesiredOwnership['taking'] = []): void {
    a.programmed = { owned, giving, taking };
    a.kernelGen++;
    const local = this.localNow(a);
    for (const t of [...giving, ...taking]) {
      if (t.atMs > local) this.queue.push(t.atMs - a.clockOffset, { kind: 'flip', agent: a.name, gen: a.kernelGen });
    }
    this.flipKernel(a);
  }

  /** What the programmed sets accept at this instant. */
  private flipKernel(a: SimAgent): void {
    const local = this.localNow(a);
    const p = a.programmed;
    const given = new Set(p.giving.filter((g) => local >= g.atMs).map((g) => g.bucket));
    const now = p.owned.filter((b) => !given.has(b));
    for (const t of p.taking) if (local >= t.atMs) now.push(t.bucket);
    this.applyKernel(a, now);
  }

  /** The modelled kernel: what it accepts, with the per-bucket owner counts kept up to date. */
  private applyKernel(a: SimAgent, owned: readonly number[]): void {
    const prev = new Uint8Array(this.bucketCount);
    for (const b of a.kernel) prev[b] = 1;
    const next = new Uint8Array(this.bucketCount);
    for (const b of owned) next[b] = 1;
    for (let b = 0; b < this.bucketCount; b++) {
      if (prev[b] === next[b]) continue;
      const kind = next[b] ? 'acquire' : 'release';
      if (this.opts.recordTimeline) this.timeline.push({ t: this.now, node: a.name, bucket: b, kind });
      if (kind === 'acquire') this.stats.acquires++;
      else this.stats.releases++;
      this.changeCount(b, next[b] ? 1 : -1);
    }
    a.kernel = [...owned];
  }

  /** Keep per-bucket owner counts and close the gap/overlap interval a change ends. */
  private changeCount(b: number, delta: number): void {
    const before = this.ownerCount[b]!;
    const after = before + delta;
    const cls = (n: number): number => (n === 0 ? 0 : n === 1 ? 1 : 2);
    if (cls(before) !== cls(after)) {
      this.closeInterval(b, before);
      this.since[b] = this.now;
    }
    this.ownerCount[b] = after;
  }

  private closeInterval(b: number, count: number): void {
    if (!this.stats) return;
    const d = this.now - Math.max(this.since[b]!, this.stats.from);
    if (d <= 0) return;
    if (count === 0) {
      this.stats.gapBucketMs += d;
      this.stats.maxGapMs = Math.max(this.stats.maxGapMs, d);
      this.stats.gapIntervals++;
    } else if (count > 1) {
      this.stats.overlapBucketMs += d;
      this.stats.maxOverlapMs = Math.max(this.stats.maxOverlapMs, d);
      this.stats.overlapIntervals++;
    }
  }

  private closeIntervals(): void {
    if (!this.stats) return;
    for (let b = 0; b < this.bucketCount; b++) this.closeInterval(b, this.ownerCount[b]!);
  }

  private broadcast(a: SimAgent, hb: Heartbeat): void {
    // Without the digest (an ablation), as an older sender that does not give one.
    const msg: Heartbeat = this.opts.useDigest ? hb : { ...hb, viewDigest: 0 };
    const wire = this.opts.useCodec ? encodeHeartbeat(msg, KEY) : msg;
    for (const to of this.names) {
      if (to === a.name) continue;
      this.stats.heartbeatsSent++;
      if (this.cut.has(`${a.name}>${to}`)) continue;
      const link = this.linkOf(a.name, to);
      if (link.lossRate > 0 && this.rng.next() < link.lossRate) continue;
      this.queue.push(this.now + link.delayMs + this.rng.next() * link.jitterMs, { kind: 'deliver', to, from: a.name, msg: wire });
    }
  }

  private record(at: string, intents: readonly core.CoreIntent[]): void {
    for (const i of intents) if (i.kind === 'membership') this.stats.events.push({ ...i.event, t: this.now, at });
  }
}

export interface RandomScenarioResult {
  seed: number;
  nodes: number;
  converged: boolean;
  /** virtual ms from the end of the scenario until converged */
  convergeMs: number;
  overlapBucketMs: number;
  maxGapMs: number;
  actions: number;
}

/**
 * A seeded random run: 2..10 agents, random link delay/jitter/loss (0.2-60 ms, scaled by
 * threshold / 500 ms), the agent's kernel
 * leases (threshold - 1 interval, renewed with each heartbeat), and 30 random actions (kill, restart, weight, state, stall)
 * with random pauses; then everything back up and ready. No partitions: the invariant
 * checked is "never two owners" (overlapBucketMs must be 0) and convergence at the end.
 */
export function runRandomScenario(seed: number, intervalMs = 100, failureThresholdMs = 500, extra: Pick<SimOptions, 'handoffLeadMs' | 'clockSkewMs'> = {}): RandomScenarioResult {
  const rng = createRng(seed);
  const linkScale = failureThresholdMs / 500;
  const n = rng.int(2, 10);
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const sim = new Simulation({
    nodes: n,
    bucketCount: rng.pick([64, 256]),
    intervalMs,
    failureThresholdMs,
    seed,
    leaseMs: core.defaultLeaseMs({ intervalMs, failureThresholdMs }),
    lossRate: rng.pick([0, 0.02, 0.1]),
    // links as slow relative to the threshold as at 500 ms (a 60 ms delay against a
    // 120 ms threshold is no LAN; the startup grace of one threshold assumes RTT < it)
    jitterMs: rng.pick([0, 5, 30]) * linkScale,
    delayMs: rng.pick([0.2, 10, 60]) * linkScale,
    recordTimeline: false,
    ...extra,
  });
  sim.runUntilTrue(() => sim.converged(), 5_000);
  sim.runFor(1_000);
  sim.resetStats();
  const down = new Set<string>();
  for (let step = 0; step < 30; step++) {
    const name = rng.pick(names);
    const action = rng.int(0, 5);
    if (action === 0 && down.size < n - 1 && !down.has(name)) {
      sim.kill(name);
      down.add(name);
    } else if (action === 1 && down.has(name)) {
      sim.restart(name);
      down.delete(name);
    } else if (action === 2) sim.setWeight(name, rng.int(0, 4));
    else if (action === 3) sim.setState(name, rng.pick(['ready', 'draining', 'standby', 'down'] as const));
    else if (action === 4) sim.stall(name, rng.int(20, 4 * failureThresholdMs));
    sim.runFor(rng.int(1, 3 * failureThresholdMs));
  }
  for (const name of down) sim.restart(name);
  for (const name of names) {
    sim.setState(name, 'ready');
    sim.setWeight(name, 1);
  }
  const end = sim.now;
  const t = sim.runUntilTrue(() => sim.converged(), end + 10_000);
  const s = sim.getStats();
  return { seed, nodes: n, converged: t !== undefined, convergeMs: t === undefined ? NaN : t - end, overlapBucketMs: s.overlapBucketMs, maxGapMs: s.maxGapMs, actions: 30 };
}
