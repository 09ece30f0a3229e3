// The agent's event loop: timers, the heartbeat socket, the datapath, checkers and
// metrics wired around the pure core (core/agent-core.ts), which makes every decision.
// This file only feeds the core its inputs, carries out what it decides, and reports.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../common/src/log.js';
import type { FarmConfig, MemberState, PeerSpec } from '../../common/src/types.js';
import type { CheckerConfig } from '../../common/src/types.js';
import { CheckerRunner, type ProbeFn } from './edges/checkers.js';
import { establishedToVips } from './edges/connections.js';
import type { Datapath, KernelLoss } from './edges/datapath.js';
import { encodeHeartbeat, type Heartbeat } from './core/heartbeat-codec.js';
import * as core from './core/agent-core.js';
import { bucketRanges, type MemberStatus } from './core/member-status.js';
import { memberCounts, type MembershipEvent } from './core/membership.js';
import type { AgentMetrics } from './edges/metrics.js';
import type { KernelProbe } from './edges/kernel-probe.js';
import { DEFAULT_ORPHAN_HOLD_MS, type OwnershipDecision } from './core/ownership.js';
import { checkFlooding, type PathTimes } from './core/flood-check.js';
import { heartbeatLink, type HeartbeatPath, type HeartbeatTransport } from './edges/transport.js';

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
  /** does a dead peer's kernel still answer (only its agent stopped)? Then its
   *  established connections are its own to serve: no orphan set resets them */
  probeKernel?: KernelProbe;
  /** counts established connections to the VIPs (drain waits for 0) */
  established?: (vips: string[], ports: number[]) => number;
  /** timed handoff lead (ownership.ts); 0 / absent: planned releases are immediate.
   *  Not in Directed mode (its forwarding map would need the same instant). */
  handoffLeadMs?: number;
}

/** How often the kernel is checked for state removed under the agent (a table deleted or
 *  flushed, `nft flush ruleset`, the VIP deleted): the bound on how long such a loss lasts. */
const KERNEL_CHECK_MS = 1000;
const PATHS: readonly HeartbeatPath[] = ['udp', 'l2'];

/** A new configuration, applied as a whole once the kernel has accepted the farm. */
export interface Reconfiguration {
  farm: FarmConfig;
  self: AgentIdentity;
  peers?: PeerSpec[];
  key?: Buffer;
}

export function coreConfig(farm: FarmConfig): core.CoreConfig {
  return {
    farm: farm.name,
    bucketCount: farm.bucketCount,
    intervalMs: farm.heartbeat.intervalMs,
    failureThresholdMs: farm.heartbeat.failureThresholdMs,
    leaseMs: core.defaultLeaseMs(farm.heartbeat),
    localServices: (farm.services ?? []).flatMap((s) => (s.nodes === undefined ? [] : [{ ip: s.ip, nodes: s.nodes }])),
  };
}

export class Agent {
  private farm: FarmConfig;
  private self: AgentIdentity;
  private peers: PeerSpec[];
  private key: Buffer;
  private readonly now: () => number;
  private readonly log: Logger;
  private state: core.CoreState;
  private checkers: CheckerRunner;
  private timer?: NodeJS.Timeout;
  /** fires when the next live peer's silence passes the threshold (armWatch) */
  private watch?: NodeJS.Timeout;
  private watchAt = Infinity;
  /** the instant of the timed handoff last announced (logged once) */
  private announcedAt?: number;
  /** instants of the timed takes already logged (logTakes) */
  private takesLogged = new Set<number>();
  /** how long the last setOwnership() took: the kernel's part of a takeover */
  private lastProgramMs = 0;
  private kernelWatch?: NodeJS.Timeout;
  private pendingTick?: NodeJS.Immediate;
  /** the pending loop is the timer's (it renews the leases and sends a heartbeat) */
  private pendingPeriodic = false;
  private programmed = false;
  /** per peer, local time it was last heard on each heartbeat path (which path is cut) */
  private readonly heardOn = new Map<string, PathTimes>();
  /** the network self-test's last verdict and the peers not heard (undefined: not judged yet) */
  /** the self-test's last verdict (Flooding mode), reported in status */
  private floods?: { floods: boolean; unseenFrom: string[] };
  private readonly pathsUp = new Map<string, string>();

  constructor(private readonly deps: AgentDeps) {
    this.farm = deps.farm;
    this.self = deps.self;
    this.peers = deps.peers;
    deps.metrics.networkFloods.set(-1);
    this.key = deps.key;
    this.now = deps.now ?? Date.now;
    this.log = deps.log;
    this.state = core.createCore({
      config: this.coreConfig(this.farm), name: this.self.name, weight: this.self.weight, peers: this.peers, now: this.now(), nonce: randomBytes(4).readUInt32BE(0),
    });
    this.checkers = this.makeCheckers(this.farm.checkers);
    this.state = core.setCheckersHealthy(this.state, this.checkers.healthy());
  }

  async start(): Promise<void> {
    // A previous agent that handed over (a rollout) left its tables and VIPs serving its
    // established connections: programming replaces the tables atomically, keeping them.
    if (this.deps.datapath.present(this.farm.name)) {
      this.log.info('adopting the kernel state a previous agent left', { event: 'adopted', incarnation: this.state.incarnation });
    }
    this.deps.datapath.program(this.farm);
    this.programmed = true;
    this.deps.datapath.setOwnership([], [], this.state.config.leaseMs);
    await this.deps.transport.start((buf, from, path, receivedAt) => this.onDatagram(buf, from, path, receivedAt));
    this.checkers.start();
    this.timer = setInterval(() => this.scheduleLoop(true), this.farm.heartbeat.intervalMs);
    this.kernelWatch = setInterval(() => this.checkKernel(), KERNEL_CHECK_MS);
    this.log.info('agent started', {
      event: 'started', incarnation: this.state.incarnation, nonce: this.state.nonce, vips: this.farm.virtualIPs, interface: this.farm.interface,
      buckets: this.farm.bucketCount, peers: this.peers.map((p) => p.name), weight: this.self.weight,
    });
    this.loop(true);
  }

  /**
   * Live reconfiguration: the kernel first (established connections survive a table
   * replace). If it refuses, this throws and nothing changes: the running farm, key and
   * peers keep serving. Only then the rest is swapped.
   */
  reconfigure(next: Reconfiguration): void {
    this.deps.datapath.program(next.farm);
    this.deps.transport.relink?.(heartbeatLink(next.farm));
    const { farm, self } = next;
    this.farm = farm;
    this.self = self;
    this.state = core.reconfigure(this.state, this.coreConfig(farm), self.weight);
    if (next.key) this.key = next.key;
    if (next.peers) this.setPeers(next.peers);
    this.checkers.stop();
    this.checkers = this.makeCheckers(farm.checkers, this.checkers);
    this.state = core.setCheckersHealthy(this.state, this.checkers.healthy());
    this.checkers.start();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.scheduleLoop(true), farm.heartbeat.intervalMs);
    this.log.info('farm reconfigured', { event: 'reconfigured', vips: farm.virtualIPs, rules: farm.rules, buckets: farm.bucketCount, weight: self.weight });
    // periodic: the new timer's first tick is an interval away, and the lease was renewed
    // up to an interval before this; without a renewal here it could run out in between
    // and the kernel drop this node's buckets (seen: every SIGHUP at 40/120 lost n3's
    // share for ~60 ms, 2 SYNs per weight change at 200/s)
    this.loop(true);
  }

  /** The farm the kernel runs now. */
  current(): FarmConfig {
    return this.farm;
  }

  setPeers(peers: PeerSpec[]): void {
    // pod watches report every status change; only a different peer list is news
    if (JSON.stringify(peers) === JSON.stringify(this.peers)) return;
    this.state = core.setPeers(this.state, peers);
    this.peers = peers;
    this.log.info('peers changed', { event: 'peers', peers: peers.map((p) => `${p.name}@${p.address}`) });
  }

  /** Hands off every bucket, then waits for established connections to end or the deadline. */
  async drain(deadlineMs: number): Promise<{ remaining: number; waitedMs: number }> {
    const t0 = this.now();
    this.state = core.setDraining(this.state, true);
    this.log.info('draining', { event: 'drain_start', deadlineMs, buckets: this.state.held.length });
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

  /**
   * A rollout: hands off every bucket and waits until live peers hold them all (or the
   * deadline), without waiting for established connections, which stay on this node's
   * kernel for the next agent (stop({ keepKernelState: true })).
   */
  async handOver(deadlineMs: number): Promise<{ handedOff: boolean; waitedMs: number }> {
    const t0 = this.now();
    this.state = core.setDraining(this.state, true);
    this.log.info('handing over to the next agent', { event: 'handover_start', deadlineMs, buckets: this.state.held.length });
    this.loop();
    let handedOff = core.peersHoldAll(this.state);
    while (!handedOff && this.now() - t0 < deadlineMs) {
      await new Promise((r) => setTimeout(r, 20));
      handedOff = core.peersHoldAll(this.state);
    }
    const waitedMs = this.now() - t0;
    this.log.info('handover finished', { event: 'handover_done', handedOff, waitedMs, buckets: this.state.held.length });
    return { handedOff, waitedMs };
  }

  /** Stops the loop and removes everything the agent put in the kernel; with
   *  keepKernelState (a rollout), the tables and VIPs stay for the next agent, owning nothing. */
  async stop(opts: { keepKernelState?: boolean } = {}): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.watch);
    this.watch = undefined;
    clearInterval(this.kernelWatch);
    if (this.pendingTick) clearImmediate(this.pendingTick);
    this.checkers.stop();
    try {
      // Kernel first: only then may the last heartbeat say we hold nothing, so peers can
      // take our buckets at once instead of waiting for the lease, without two owners.
      if (this.programmed) {
        if (opts.keepKernelState) this.deps.datapath.detach();
        else this.deps.datapath.remove();
      }
      this.programmed = false;
      this.state = core.removed(this.state);
      const bye = core.goodbye(this.state, this.now());
      this.state = bye.state;
      this.send(bye.heartbeat);
    } finally {
      await this.deps.transport.stop();
    }
    if (opts.keepKernelState) this.log.info('agent stopped, kernel state left to the next agent', { event: 'stopped', kernelState: 'kept' });
    else this.log.info('agent stopped, kernel state removed', { event: 'stopped', kernelState: 'removed' });
  }

  /** For /healthz: the loop ran within a few intervals. */
  live(): boolean {
    return this.now() - this.state.lastLoopAt < Math.max(5000, 20 * this.farm.heartbeat.intervalMs);
  }

  ready(): { ready: boolean; reason: string } {
    if (!this.programmed) return { ready: false, reason: 'data plane not programmed' };
    if (this.state.draining) return { ready: false, reason: 'draining' };
    if (!this.checkers.healthy()) {
      const bad = Object.entries(this.checkers.snapshot()).filter(([, s]) => !s.healthy).map(([n, s]) => `${n}${s.lastError ? ` (${s.lastError})` : ''}`);
      return { ready: false, reason: `checkers failing: ${bad.join(', ')}` };
    }
    const phase = this.state.decision?.phase ?? 'startup';
    if (phase === 'startup') return { ready: false, reason: 'starting: listening for peers' };
    return { ready: true, reason: `ready: ${this.state.held.length} buckets` };
  }

  status(): MemberStatus {
    const counts = memberCounts(this.state.view);
    const selfState = this.state.decision?.advertise ?? 'standby';
    return {
      node: this.self.name,
      ready: this.ready().ready,
      state: selfState,
      weight: this.self.weight,
      buckets: this.state.held.length,
      bucketRanges: bucketRanges([...this.state.held]),
      peersReady: counts.ready + (selfState === 'ready' ? 1 : 0),
      checkers: Object.entries(this.checkers.snapshot()).map(([name, s]) => ({ name, healthy: s.healthy, ...(s.lastError ? { lastError: s.lastError } : {}) })),
      lastHeartbeat: new Date(this.now()).toISOString(),
      ...(this.floods ? { networkFloods: { floods: this.floods.floods, unseenFrom: [...this.floods.unseenFrom] } } : {}),
    };
  }

  private makeCheckers(configs: CheckerConfig[], carry?: CheckerRunner): CheckerRunner {
    const runner: CheckerRunner = new CheckerRunner(configs, (name, s) => {
      this.deps.metrics.checkerUp.set({ checker: name }, s.healthy ? 1 : 0);
      this.log.warn(s.healthy ? 'checker recovered' : 'checker failed', { event: s.healthy ? 'checker_up' : 'checker_down', checker: name, error: s.lastError });
      // a runner replaced by a reconfiguration reports nothing any more
      if (runner !== this.checkers) return;
      this.state = core.setCheckersHealthy(this.state, runner.healthy());
      this.scheduleLoop();
    }, this.deps.probe, carry);
    return runner;
  }

  /**
   * Puts back what was removed from the kernel under the running agent, so it never goes
   * on reporting buckets its kernel does not serve. A lost table took the bucket sets with
   * it: nothing is held until the loop claims the buckets again.
   */
  private coreConfig(farm: FarmConfig): core.CoreConfig {
    const lead = farm.mode === 'Directed' ? 0 : this.deps.handoffLeadMs ?? 0;
    return { ...coreConfig(farm), ...(this.deps.probeKernel ? { probeDeadKernels: true } : {}), ...(lead > 0 ? { handoffLeadMs: lead } : {}) };
  }

  /**
   * Probes a dead peer's kernel; while it answers (a hung or killed agent on a healthy node)
   * it is probed again every kernel check, for as long as its orphans would last, in case
   * the node itself goes down meanwhile.
   */
  private probePeerKernel(peer: string): void {
    const probe = this.deps.probeKernel;
    const p = this.state.view.peers.get(peer);
    if (!probe || !p || p.alive) return;
    if (!p.address) {
      // heard on L2 only: nothing to probe, a dead node as before probes existed
      this.state = core.peerKernel(this.state, peer, false);
      return;
    }
    const t0 = this.now();
    const address = p.address;
    void probe(address).then((answers) => {
      const now = this.now();
      const q = this.state.view.peers.get(peer);
      // heard again meanwhile, or another death: this probe is not about it
      if (!q || q.alive || q.diedAt !== p.diedAt) return;
      if (q.kernel !== (answers ? 'answers' : 'silent')) {
        this.log.info(answers ? 'dead peer\'s kernel answers: its connections are left to it' : 'dead peer\'s kernel is silent: its connections are reset', {
          event: 'peer_kernel', peer, answers, probeMs: now - t0, buckets: q.held.length,
        });
      }
      this.state = core.peerKernel(this.state, peer, answers);
      this.scheduleLoop();
    });
  }

  private checkKernel(): void {
    const hold = this.state.config.orphanHoldMs ?? DEFAULT_ORPHAN_HOLD_MS;
    for (const p of this.state.view.peers.values()) {
      if (!p.alive && p.kernel === 'answers' && p.diedAt !== undefined && this.now() - p.diedAt < hold) this.probePeerKernel(p.name);
    }
    this.checkOwnKernel();
  }

  private checkOwnKernel(): void {
    if (!this.programmed) return;
    let lost: KernelLoss[];
    try {
      lost = this.deps.datapath.missing();
    } catch (err) {
      this.log.error('cannot read the kernel state', { event: 'kernel_check_error', error: (err as Error).message });
      return;
    }
    if (lost.length === 0) return;
    for (const l of lost) this.deps.metrics.kernelRestores.inc({ what: l.what });
    this.log.warn('kernel state removed under the agent, restoring it', {
      event: 'kernel_state_lost', lost: lost.map((l) => l.detail), buckets: this.state.held.length,
    });
    if (lost.some((l) => l.what !== 'vip')) this.state = core.removed(this.state);
    try {
      this.deps.datapath.program(this.farm);
      this.log.info('kernel state restored', { event: 'kernel_state_restored', restored: lost.map((l) => l.what) });
    } catch (err) {
      this.log.error('restoring the kernel state failed', { event: 'kernel_restore_error', error: (err as Error).message });
    }
    this.loop(true);
  }

  /**
   * Runs a loop from setImmediate: after the datagrams already waiting in the sockets have
   * been read (Node runs timers, then I/O, then immediates). The timer's own loop goes
   * this way too (`periodic`): run straight from the timer, a loop that wakes up late
   * judged the peers' silence before reading the heartbeats that queued up meanwhile.
   */
  private scheduleLoop(periodic = false): void {
    this.pendingPeriodic ||= periodic;
    if (this.pendingTick) return;
    this.pendingTick = setImmediate(() => {
      const p = this.pendingPeriodic;
      this.pendingTick = undefined;
      this.pendingPeriodic = false;
      this.loop(p);
    });
  }

  /**
   * Runs the loop as soon as a live peer has been silent past the threshold: a timer for
   * that instant, not a poll (a 10 ms poll added 0-10 ms to every detection). Heartbeats
   * only move the instant later, so an armed timer that is earlier stays: it finds nothing
   * due and re-arms. The loop runs from setImmediate, after the datagrams that are waiting
   * in the socket have been read, so a late timer does not blame peers for our own lag.
   */
  private armWatch(): void {
    // a peer's silence, or a timed handoff's instant (ours to release, or a take-over)
    const due = Math.min(core.nextSilenceAt(this.state), core.nextHandoffAt(this.state));
    if (due === Infinity || (this.watch && this.watchAt <= due)) return;
    clearTimeout(this.watch);
    this.watchAt = due;
    // silence counts as due strictly after the instant; timers round down to whole ms
    this.watch = setTimeout(() => this.watchSilence(), Math.max(0, Math.ceil(due - this.now())) + 1);
  }

  private watchSilence(): void {
    this.watch = undefined;
    this.watchAt = Infinity;
    const now = this.now();
    if (core.silenceDue(this.state, now) || now >= core.nextHandoffAt(this.state)) this.scheduleLoop();
    else this.armWatch();
  }

  private onDatagram(buf: Buffer, from: string, path: HeartbeatPath = 'udp', receivedAt?: number): void {
    const now = this.now();
    // an L2 source is a MAC: the peer's address stays what UDP said
    const r = core.receiveDatagram(this.state, buf, this.key, path === 'udp' ? from : undefined, now, receivedAt);
    this.state = r.state;
    if ('rejected' in r) {
      this.deps.metrics.heartbeatsRejected.inc({ reason: r.rejected });
      this.log.debug('heartbeat rejected', { event: 'heartbeat_rejected', reason: r.rejected, from, path });
      if (r.answer) this.scheduleLoop();
      return;
    }
    if (r.node !== undefined && (r.accepted || r.duplicate)) this.heard(r.node, path, now);
    if (!r.accepted) return;
    this.report(r.intents);
    if (r.decideNow) this.scheduleLoop();
    else this.armWatch();
  }

  private heard(node: string, path: HeartbeatPath, now: number): void {
    this.deps.metrics.heartbeatsReceived.inc({ path });
    let h = this.heardOn.get(node);
    if (!h) this.heardOn.set(node, (h = { since: now, udp: 0, l2: 0 }));
    h[path] = now;
  }

  /** Which paths each live peer is heard on; a change is logged once. A cut heartbeat
   *  path no longer changes membership, so this is how an operator sees it. */
  private observePaths(now: number): void {
    const limit = now - this.farm.heartbeat.failureThresholdMs;
    const counts: Record<HeartbeatPath, number> = { udp: 0, l2: 0 };
    for (const p of this.state.view.peers.values()) {
      const h = this.heardOn.get(p.name);
      const up = p.alive && h ? PATHS.filter((path) => h[path] >= limit) : [];
      for (const path of up) counts[path]++;
      const text = up.join(',');
      const prev = this.pathsUp.get(p.name);
      if (prev === text) continue;
      this.pathsUp.set(p.name, text);
      // first sighting and death have their own events
      if (prev === undefined || prev === '' || text === '') continue;
      const lost = PATHS.filter((path) => prev.split(',').includes(path) && !up.includes(path));
      this.log.warn(lost.length > 0 ? 'peer heard on fewer heartbeat paths' : 'peer heard on every heartbeat path again', {
        event: lost.length > 0 ? 'heartbeat_path_lost' : 'heartbeat_path_restored', peer: p.name, paths: up, lost,
      });
    }
    for (const path of PATHS) this.deps.metrics.peersHeard.set({ path }, counts[path]);
    this.selfTest(now);
  }

  /** Flooding mode: every peer's L2 heartbeat is a frame to the virtual MAC, i.e. a probe of
   *  whether the switch delivers the clients' frames for the VIP here. (Directed mode sends
   *  them to broadcast, which proves nothing about the virtual MAC, and needs no flooding.) */
  private selfTest(now: number): void {
    if (this.farm.mode === 'Directed') {
      // reconfigured from Flooding: the old verdict says nothing any more
      if (this.floods) this.deps.metrics.networkFloods.set(-1);
      this.floods = undefined;
      return;
    }
    const alive = new Set([...this.state.view.peers.values()].filter((p) => p.alive).map((p) => p.name));
    const r = checkFlooding(this.heardOn, alive, now, Math.max(1000, 3 * this.farm.heartbeat.failureThresholdMs));
    if (r.floods === undefined || (r.floods === this.floods?.floods && r.unseen.join(',') === this.floods.unseenFrom.join(','))) return;
    this.floods = { floods: r.floods, unseenFrom: r.unseen };
    this.deps.metrics.networkFloods.set(r.floods ? 1 : 0);
    if (r.floods) {
      this.log.info('frames to the virtual MAC reach this node', { event: 'network_floods', floods: true });
      return;
    }
    const text = `switch does not flood the virtual MAC ${this.farm.virtualMAC} to ${this.self.name}: no L2 heartbeat from ${r.unseen.join(', ')} arrived while their UDP heartbeats did; use mode: Directed`;
    this.log.error('switch does not flood the virtual MAC; use mode: Directed', { event: 'network_floods', floods: false, node: this.self.name, unseenFrom: r.unseen, virtualMAC: this.farm.virtualMAC });
    this.deps.onEvent?.('Warning', 'NetworkFloods', text);
  }

  /** `periodic`: the timer's loop, which always sends a heartbeat (see core.applied). */
  private loop(periodic = false): void {
    const now = this.now();
    const d = core.decide(this.state, now, periodic);
    this.state = d.state;
    this.report(d.intents);
    let ok = true;
    const t0 = performance.now();
    try {
      // Refreshed every loop: the kernel leases are what stop a hung agent from serving.
      this.deps.datapath.setOwnership(d.ownership.owned, d.ownership.orphans, d.ownership.leaseMs, {
        assignment: d.state.decision?.assignment ?? [],
        self: this.self.name,
        peers: this.peers,
        claims: [...this.state.view.peers.values()].map((p) => ({ name: p.name, alive: p.alive, held: p.held })),
      }, { giving: d.ownership.giving, taking: d.ownership.taking });
      if (d.ownership.services.length > 0) this.deps.datapath.setServiceOwnership(d.ownership.services, d.ownership.leaseMs);
    } catch (err) {
      // Claim only what the kernel really accepts.
      ok = false;
      this.log.error('programming buckets failed', { event: 'datapath_error', error: (err as Error).message });
      // most likely our table is gone: look now rather than at the next kernel check
      setImmediate(() => this.checkOwnKernel());
    }
    this.lastProgramMs = performance.now() - t0;
    const announce = ok ? d.state.decision?.announce : undefined;
    if (announce && announce.atMs !== this.announcedAt) {
      const giving = d.ownership.giving.filter((g) => g.atMs === announce.atMs).map((g) => g.bucket);
      this.log.info('timed handoff announced', { event: 'handoff', atMs: announce.atMs, inMs: announce.atMs - now, giving: bucketRanges(giving) });
    }
    this.announcedAt = announce?.atMs;
    if (ok) this.logTakes(d.ownership.taking, now);
    const a = core.applied(this.state, ok, now, d.renews);
    this.state = a.state;
    this.report(a.intents);
    if (a.heartbeat) this.send(a.heartbeat);
    this.observePaths(now);
    this.updateGauges(this.state.decision!);
    this.armWatch();
  }

  /** The taker's side of a timed handoff, once per instant: `aheadMs` is T' - T, the clock
   *  bound it waits past the giver's instant (the gap in which a new flow finds no owner). */
  private logTakes(taking: readonly { bucket: number; atMs: number }[], now: number): void {
    const fresh = taking.filter((t) => !this.takesLogged.has(t.atMs));
    this.takesLogged = new Set(taking.map((t) => t.atMs));
    for (const atMs of new Set(fresh.map((t) => t.atMs))) {
      const buckets = fresh.filter((t) => t.atMs === atMs).map((t) => t.bucket);
      const giver = [...this.state.view.peers.values()].find((p) => p.giving && p.held.includes(buckets[0]!));
      this.log.info('timed handoff: taking at the giver\'s instant plus the clock bound', {
        event: 'handoff_take', atMs, inMs: atMs - now, from: giver?.name, aheadMs: giver?.giving ? Math.round((atMs - giver.giving.atMs) * 1000) / 1000 : undefined,
        taking: bucketRanges(buckets),
      });
    }
  }

  private send(msg: Heartbeat): void {
    // Stamped as it leaves, not when the loop began: the loop's kernel batch in between
    // (ms, more on a busy node) would count as network delay in every receiver's clock
    // bound (membership clockAheadBound) and delay each timed take-over by as much.
    const buf = encodeHeartbeat({ ...msg, sentAt: Math.max(msg.sentAt, this.now()) }, this.key);
    const to = this.peers.filter((p) => p.name !== this.self.name).map((p) => p.address);
    this.deps.metrics.heartbeatsSent.inc(this.deps.transport.send(buf, to));
  }

  private report(intents: core.CoreIntent[]): void {
    for (const i of intents) {
      if (i.kind === 'membership') this.reportMembership(i.event);
      else if (i.kind === 'stall') {
        this.deps.metrics.stalls.inc();
        this.log.warn('agent loop stalled', { event: 'stall', stalledMs: i.stalledMs, buckets: i.buckets, leaseRanOut: i.leaseRanOut });
      } else if (i.kind === 'buckets') {
        this.log.info('buckets changed', {
          event: 'buckets', owned: i.owned, acquired: bucketRanges(i.acquired), released: bucketRanges(i.released),
          orphans: bucketRanges(i.orphans), waiting: i.waiting,
        });
      } else if (i.kind === 'service-buckets') {
        this.log.info('service buckets changed', {
          event: 'service_buckets', ip: i.ip, owned: i.owned, acquired: bucketRanges(i.acquired), released: bucketRanges(i.released), waiting: i.waiting,
        });
      } else if (i.kind === 'state') {
        this.log.info('state', { event: 'state', state: i.state, phase: i.phase });
        this.announceState(i.state);
      } else {
        const m = this.deps.metrics;
        m.failovers.inc();
        m.failoverDuration.observe(i.sinceLastHeartbeatMs / 1000);
        m.failoverPhase.observe({ phase: 'detect' }, i.detectMs / 1000);
        m.failoverPhase.observe({ phase: 'agree' }, i.agreeMs / 1000);
        m.failoverPhase.observe({ phase: 'program' }, this.lastProgramMs / 1000);
        this.log.warn('took over buckets of a dead peer', {
          event: 'failover', peer: i.peer, buckets: i.buckets, sinceLastHeartbeatMs: i.sinceLastHeartbeatMs,
          detectMs: i.detectMs, agreeMs: i.agreeMs, programMs: Math.round(this.lastProgramMs * 100) / 100,
        });
        this.deps.onEvent?.('Warning', 'Failover', `${this.self.name} took over ${i.buckets} buckets of ${i.peer}, ${i.sinceLastHeartbeatMs} ms after its last heartbeat`);
      }
    }
  }

  private reportMembership(e: MembershipEvent): void {
    if (e.type === 'died') {
      this.log.warn('peer declared dead', { event: 'peer_dead', peer: e.node, silentMs: e.silentMs, buckets: bucketRanges([...e.held]) });
      this.probePeerKernel(e.node);
    }
    else if (e.type === 'joined') this.log.info('peer joined', { event: 'peer_joined', peer: e.node, weight: e.weight, state: e.state });
    else if (e.type === 'rejoined') this.log.info('peer rejoined', { event: 'peer_rejoined', peer: e.node, restarted: e.restarted, deadForMs: e.deadForMs });
    else this.log.info('peer changed', { event: 'peer_changed', peer: e.node, weight: e.weight, state: e.state });
  }

  private announceState(state: MemberState): void {
    const me = this.self.name;
    if (state === 'ready') this.deps.onEvent?.('Normal', 'MemberReady', `${me} is ready and takes its share of the buckets`);
    else if (state === 'draining') this.deps.onEvent?.('Normal', 'MemberDraining', `${me} hands off its buckets and keeps its established connections`);
    else if (state === 'down') this.deps.onEvent?.('Warning', 'MemberDown', `${me} left the farm: ${this.ready().reason}`);
  }

  private updateGauges(d: OwnershipDecision): void {
    const m = this.deps.metrics;
    const counts = memberCounts(this.state.view);
    const selfCounts: Partial<Record<MemberState, number>> = { ...counts };
    selfCounts[d.advertise] = (selfCounts[d.advertise] ?? 0) + 1;
    m.setMembers(selfCounts);
    m.bucketsOwned.set(this.state.held.length);
    m.setServiceBuckets(this.state.serviceHeld);
    m.bucketsOrphan.set(this.state.orphans.length);
    m.nodeReady.set(this.ready().ready ? 1 : 0);
    m.setOwners(d.assignment);
  }
}
