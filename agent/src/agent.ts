// The agent's event loop: heartbeats in and out, membership ticks, the ownership decision,
// and the data plane programmed from it. All decisions are the pure modules'; this file
// only sequences them, keeps the state between calls, and reports.
import type { Logger } from '../../common/src/log.js';
import type { FarmConfig, MemberState, PeerSpec } from '../../common/src/types.js';
import type { CheckerConfig } from '../../common/src/types.js';
import { CheckerRunner, type ProbeFn } from './edges/checkers.js';
import { establishedToVips } from './edges/connections.js';
import type { Datapath } from './edges/datapath.js';
import {
  checkReplay, createReplayGuard, decodeHeartbeat, encodeHeartbeat, pruneReplayGuard, type ReplayGuard,
} from './core/heartbeat-codec.js';
import { bucketRanges, type MemberStatus } from './core/member-status.js';
import { addPeer, applyHeartbeat, createView, memberCounts, removePeer, tick, type MembershipEvent, type View } from './core/membership.js';
import type { AgentMetrics } from './edges/metrics.js';
import { createAssignmentCache, decideOwnership, type OwnershipDecision } from './core/ownership.js';
import type { HeartbeatTransport } from './edges/transport.js';

export interface AgentIdentity {
  name: string;
  address: string;
  weight: number;
}

export interface AgentDeps {
  farm: FarmConfig;
  self: AgentIdentity;
  peers: PeerSpec[];
  key: Buffer;
  datapath: Datapath;
  transport: HeartbeatTransport;
  metrics: AgentMetrics;
  log: Logger;
  now?: () => number;
  probe?: ProbeFn;
  /** what users should see (Kubernetes Events in Kubernetes mode): membership and failovers */
  onEvent?: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** counts established connections to the VIPs (drain waits for 0) */
  established?: (vips: string[], ports: number[]) => number;
}

/** Heartbeats from a clock further off than this are refused as stale. */
const MAX_SKEW_MS = 30_000;
/** How often silence is checked between loops: a death is seen within this of the
 *  threshold instead of within a heartbeat interval. */
const WATCH_MS = 10;

export class Agent {
  private farm: FarmConfig;
  private self: AgentIdentity;
  private peers: PeerSpec[];
  private key: Buffer;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly startedAt: number;
  private readonly incarnation: number;
  private seq = 0;
  private view: View;
  private guard: ReplayGuard = createReplayGuard();
  private decision?: OwnershipDecision;
  private held: number[] = [];
  private orphans: number[] = [];
  private draining = false;
  private checkers: CheckerRunner;
  private timer?: NodeJS.Timeout;
  private watch?: NodeJS.Timeout;
  private pendingTick?: NodeJS.Immediate;
  private lastLoopAt = 0;
  private programmed = false;
  /** peers declared dead whose buckets we have not all taken yet: node -> {lastHeard, buckets} */
  private readonly failovers = new Map<string, { since: number; buckets: Set<number> }>();
  private readonly cache = createAssignmentCache();

  constructor(private readonly deps: AgentDeps) {
    this.farm = deps.farm;
    this.self = deps.self;
    this.peers = deps.peers;
    this.key = deps.key;
    this.now = deps.now ?? Date.now;
    this.log = deps.log;
    this.startedAt = this.now();
    this.incarnation = this.startedAt;
    this.view = createView(this.self.name, this.peers, this.startedAt);
    this.checkers = this.makeCheckers(this.farm.checkers);
  }

  async start(): Promise<void> {
    this.deps.datapath.program(this.farm);
    this.programmed = true;
    this.deps.datapath.setOwnership([], [], this.leaseMs());
    await this.deps.transport.start((buf, from) => this.onDatagram(buf, from));
    this.checkers.start();
    this.timer = setInterval(() => this.loop(), this.farm.heartbeat.intervalMs);
    this.watch = setInterval(() => this.watchSilence(), WATCH_MS);
    this.log.info('agent started', {
      event: 'started', incarnation: this.incarnation, vips: this.farm.virtualIPs, interface: this.farm.interface,
      buckets: this.farm.bucketCount, peers: this.peers.map((p) => p.name), weight: this.self.weight,
    });
    this.loop();
  }

  /** Live reconfiguration (Kubernetes mode): established connections survive a table replace. */
  reconfigure(farm: FarmConfig, self: AgentIdentity): void {
    const bucketsChanged = farm.bucketCount !== this.farm.bucketCount;
    this.farm = farm;
    this.self = self;
    this.deps.datapath.program(farm);
    if (bucketsChanged) this.held = [];
    this.checkers.stop();
    this.checkers = this.makeCheckers(farm.checkers);
    this.checkers.start();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.loop(), farm.heartbeat.intervalMs);
    this.log.info('farm reconfigured', { event: 'reconfigured', vips: farm.virtualIPs, rules: farm.rules, buckets: farm.bucketCount, weight: self.weight });
    this.loop();
  }

  setPeers(peers: PeerSpec[]): void {
    // pod watches report every status change; only a different peer list is news
    if (JSON.stringify(peers) === JSON.stringify(this.peers)) return;
    const names = new Set(peers.map((p) => p.name));
    for (const p of this.view.peers.keys()) if (!names.has(p)) this.view = removePeer(this.view, p);
    for (const p of peers) this.view = addPeer(this.view, p);
    this.peers = peers;
    this.log.info('peers changed', { event: 'peers', peers: peers.map((p) => `${p.name}@${p.address}`) });
  }

  setKey(key: Buffer): void {
    this.key = key;
  }

  /** Hands off every bucket, then waits for established connections to end or the deadline. */
  async drain(deadlineMs: number): Promise<{ remaining: number; waitedMs: number }> {
    const t0 = this.now();
    this.draining = true;
    this.log.info('draining', { event: 'drain_start', deadlineMs, buckets: this.held.length });
    this.loop();
    const ports = this.farm.rules.filter((r) => r.protocol === 'tcp').map((r) => r.port);
    const count = (): number => (this.deps.established ?? establishedToVips)(this.farm.virtualIPs, ports);
    let remaining = count();
    while (remaining > 0 && this.now() - t0 < deadlineMs) {
      await new Promise((r) => setTimeout(r, 100));
      remaining = count();
    }
    const waitedMs = this.now() - t0;
    this.log.info('drain finished', { event: 'drain_done', remaining, waitedMs });
    return { remaining, waitedMs };
  }

  /** Stops the loop and removes everything the agent put in the kernel. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.watch);
    if (this.pendingTick) clearImmediate(this.pendingTick);
    this.checkers.stop();
    try {
      // Kernel first: only then may the last heartbeat say we hold nothing, so peers can
      // take our buckets at once instead of waiting for the lease, without two owners.
      if (this.programmed) this.deps.datapath.remove();
      this.programmed = false;
      this.held = [];
      this.sendHeartbeat('down');
    } finally {
      await this.deps.transport.stop();
    }
    this.log.info('agent stopped, kernel state removed', { event: 'stopped' });
  }

  /** For /healthz: the loop ran within a few intervals. */
  live(): boolean {
    return this.now() - this.lastLoopAt < Math.max(5000, 20 * this.farm.heartbeat.intervalMs);
  }

  ready(): { ready: boolean; reason: string } {
    if (!this.programmed) return { ready: false, reason: 'data plane not programmed' };
    if (this.draining) return { ready: false, reason: 'draining' };
    if (!this.checkers.healthy()) {
      const bad = Object.entries(this.checkers.snapshot()).filter(([, s]) => !s.healthy).map(([n, s]) => `${n}${s.lastError ? ` (${s.lastError})` : ''}`);
      return { ready: false, reason: `checkers failing: ${bad.join(', ')}` };
    }
    const phase = this.decision?.phase ?? 'startup';
    if (phase === 'startup') return { ready: false, reason: 'starting: listening for peers' };
    return { ready: true, reason: `ready: ${this.held.length} buckets` };
  }

  status(): MemberStatus {
    const counts = memberCounts(this.view);
    const selfState = this.decision?.advertise ?? 'standby';
    return {
      node: this.self.name,
      ready: this.ready().ready,
      state: selfState,
      weight: this.self.weight,
      buckets: this.held.length,
      bucketRanges: bucketRanges(this.held),
      peersReady: counts.ready + (selfState === 'ready' ? 1 : 0),
      checkers: Object.entries(this.checkers.snapshot()).map(([name, s]) => ({ name, healthy: s.healthy, ...(s.lastError ? { lastError: s.lastError } : {}) })),
      lastHeartbeat: new Date(this.now()).toISOString(),
    };
  }

  /** The state this node wants, before the startup grace (ownership decides what it advertises). */
  private wantedState(): MemberState {
    if (this.draining) return 'draining';
    if (!this.checkers.healthy()) return 'down';
    return this.self.weight === 0 ? 'standby' : 'ready';
  }

  private makeCheckers(configs: CheckerConfig[]): CheckerRunner {
    return new CheckerRunner(configs, (name, s) => {
      this.deps.metrics.checkerUp.set({ checker: name }, s.healthy ? 1 : 0);
      this.log.warn(s.healthy ? 'checker recovered' : 'checker failed', { event: s.healthy ? 'checker_up' : 'checker_down', checker: name, error: s.lastError });
      this.scheduleLoop();
    }, this.deps.probe);
  }

  /** Shorter than the failure threshold by two intervals: by the time peers declare this
   *  node dead, its kernel has stopped taking new connections even if its last heartbeat
   *  was lost (the simulator found double owners with lease = threshold under loss). */
  private leaseMs(): number {
    return this.farm.heartbeat.failureThresholdMs - 2 * this.farm.heartbeat.intervalMs;
  }

  private scheduleLoop(): void {
    if (this.pendingTick) return;
    this.pendingTick = setImmediate(() => {
      this.pendingTick = undefined;
      this.loop();
    });
  }

  /** Runs the loop as soon as a live peer has been silent past the threshold. */
  private watchSilence(): void {
    const limit = this.now() - this.farm.heartbeat.failureThresholdMs;
    for (const p of this.view.peers.values()) {
      if (p.alive && p.lastHeardAt < limit) {
        this.scheduleLoop();
        return;
      }
    }
  }

  private onDatagram(buf: Buffer, from: string): void {
    const now = this.now();
    const d = decodeHeartbeat(buf, this.key, this.farm.name);
    if (!d.ok) {
      this.reject(d.reason, from);
      return;
    }
    const msg = d.msg;
    if (msg.node === this.self.name) return;
    if (msg.bucketCount !== this.farm.bucketCount) {
      this.reject('bucket_count', from);
      return;
    }
    const r = checkReplay(this.guard, msg, now, MAX_SKEW_MS);
    if (!r.ok) {
      this.reject(r.reason, from);
      return;
    }
    this.guard = r.guard;
    this.deps.metrics.heartbeatsReceived.inc();
    const prevPeer = this.view.peers.get(msg.node);
    const prevHeld = prevPeer?.held;
    const u = applyHeartbeat(this.view, msg, now, from);
    this.view = u.view;
    this.report(u.events);
    // A peer releasing a bucket we wait for, or any membership change: decide now, not at the next tick.
    const heldChanged = prevHeld === undefined || prevHeld.length !== msg.held.length || prevHeld.some((b, i) => b !== msg.held[i]);
    const digestChanged = prevPeer?.viewDigest !== msg.viewDigest;
    const last = this.decision;
    const pending = last !== undefined && (last.waiting.length > 0 || last.deferred.length > 0 || last.disagreeing.length > 0);
    if (u.events.length > 0 || ((heldChanged || digestChanged) && pending)) this.scheduleLoop();
  }

  private reject(reason: string, from: string): void {
    this.deps.metrics.heartbeatsRejected.inc({ reason });
    this.log.debug('heartbeat rejected', { event: 'heartbeat_rejected', reason, from });
  }

  private loop(): void {
    const now = this.now();
    // Stalled past the lease: the kernel has already dropped our buckets and peers may have
    // taken them; claiming them again from memory would make two owners.
    if (this.lastLoopAt > 0 && now - this.lastLoopAt > this.leaseMs()) this.held = [];
    this.lastLoopAt = now;
    const t = tick(this.view, now, this.farm.heartbeat.failureThresholdMs);
    this.view = t.view;
    if (t.stalledMs !== undefined) {
      this.deps.metrics.stalls.inc();
      this.log.warn('agent loop stalled', { event: 'stall', stalledMs: t.stalledMs, buckets: this.held.length });
    }
    this.report(t.events);
    const d = decideOwnership({
      self: { name: this.self.name, weight: this.self.weight, state: this.wantedState(), startedAt: this.startedAt, held: this.held },
      view: this.view,
      bucketCount: this.farm.bucketCount,
      now,
      failureThresholdMs: this.farm.heartbeat.failureThresholdMs,
      cache: this.cache,
      carry: this.decision?.carry,
    });
    const prev = this.decision;
    this.decision = d;
    if (d.acquired.length > 0 || d.released.length > 0) {
      this.log.info('buckets changed', {
        event: 'buckets', owned: d.owned.length, acquired: bucketRanges(d.acquired), released: bucketRanges(d.released),
        orphans: bucketRanges(d.orphans), waiting: d.waiting.length,
      });
    }
    if (prev?.advertise !== d.advertise) {
      this.log.info('state', { event: 'state', state: d.advertise, phase: d.phase });
      this.announceState(d.advertise);
    }
    try {
      // Refreshed every loop: the kernel leases are what stop a hung agent from serving.
      this.deps.datapath.setOwnership(d.owned, d.orphans, this.leaseMs());
      this.held = d.owned;
      this.orphans = d.orphans;
    } catch (err) {
      // Claim only what the kernel really accepts.
      this.log.error('programming buckets failed', { event: 'datapath_error', error: (err as Error).message });
    }
    this.observeFailovers(now);
    this.sendHeartbeat(d.advertise);
    this.updateGauges(d);
    if (now - this.startedAt > 0 && this.seq % 100 === 0) this.guard = pruneReplayGuard(this.guard, now, 10 * 60_000);
  }

  private sendHeartbeat(state: MemberState): void {
    const buf = encodeHeartbeat({
      farm: this.farm.name, node: this.self.name, incarnation: this.incarnation, seq: ++this.seq, sentAt: this.now(),
      weight: this.self.weight, state, bucketCount: this.farm.bucketCount, held: this.held,
      viewDigest: this.decision?.viewDigest ?? 0,
    }, this.key);
    const to = this.peers.filter((p) => p.name !== this.self.name).map((p) => p.address);
    this.deps.transport.send(buf, to);
    this.deps.metrics.heartbeatsSent.inc(to.length);
  }

  private report(events: MembershipEvent[]): void {
    for (const e of events) {
      if (e.type === 'died') {
        this.log.warn('peer declared dead', { event: 'peer_dead', peer: e.node, silentMs: e.silentMs, buckets: bucketRanges([...e.held]) });
        if (e.held.length > 0) this.failovers.set(e.node, { since: this.now() - e.silentMs, buckets: new Set(e.held) });
      } else if (e.type === 'joined') {
        this.log.info('peer joined', { event: 'peer_joined', peer: e.node, weight: e.weight, state: e.state });
      } else if (e.type === 'rejoined') {
        this.failovers.delete(e.node);
        this.log.info('peer rejoined', { event: 'peer_rejoined', peer: e.node, restarted: e.restarted, deadForMs: e.deadForMs });
      } else {
        this.log.info('peer changed', { event: 'peer_changed', peer: e.node, weight: e.weight, state: e.state });
      }
    }
  }

  /** A failover ends when every bucket of the dead peer is served again (by us or another node). */
  private observeFailovers(now: number): void {
    if (this.failovers.size === 0 || !this.decision) return;
    for (const [node, f] of this.failovers) {
      let mine = 0;
      let pending = 0;
      for (const b of f.buckets) {
        const owner = this.decision.assignment[b];
        if (owner === this.self.name) {
          if (this.held.includes(b)) mine++;
          else pending++;
        }
      }
      if (pending > 0) continue;
      this.failovers.delete(node);
      if (mine > 0) {
        const seconds = (now - f.since) / 1000;
        this.deps.metrics.failovers.inc();
        this.deps.metrics.failoverDuration.observe(seconds);
        this.log.warn('took over buckets of a dead peer', { event: 'failover', peer: node, buckets: mine, sinceLastHeartbeatMs: now - f.since });
        this.deps.onEvent?.('Warning', 'Failover', `${this.self.name} took over ${mine} buckets of ${node}, ${now - f.since} ms after its last heartbeat`);
      }
    }
  }

  private announceState(state: MemberState): void {
    const me = this.self.name;
    if (state === 'ready') this.deps.onEvent?.('Normal', 'MemberReady', `${me} is ready and takes its share of the buckets`);
    else if (state === 'draining') this.deps.onEvent?.('Normal', 'MemberDraining', `${me} hands off its buckets and keeps its established connections`);
    else if (state === 'down') this.deps.onEvent?.('Warning', 'MemberDown', `${me} left the farm: ${this.ready().reason}`);
  }

  private updateGauges(d: OwnershipDecision): void {
    const m = this.deps.metrics;
    const counts = memberCounts(this.view);
    const selfCounts: Partial<Record<MemberState, number>> = { ...counts };
    selfCounts[d.advertise] = (selfCounts[d.advertise] ?? 0) + 1;
    m.setMembers(selfCounts);
    m.bucketsOwned.set(d.owned.length);
    m.bucketsOrphan.set(d.orphans.length);
    m.nodeReady.set(this.ready().ready ? 1 : 0);
    m.setOwners(d.assignment);
  }
}
