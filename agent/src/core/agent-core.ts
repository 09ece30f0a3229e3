// The agent's decision step as a pure state machine: heartbeats in, ticks, the kernel's
// answer, checker, weight, peer and drain changes go in; the new state, the ownership the
// kernel should have, the heartbeat to send and what to log or report come out. The agent
// (agent.ts) wires it to timers, sockets, the datapath and metrics; the simulator
// (lab/sim) wires it to virtual time and a fake network, so the simulator checks the
// agent itself, not a model of it.
//
// One loop of the agent is two calls, because the kernel sits between them:
//   const d = decide(state, now);            // membership tick + ownership decision
//   ok = datapath.setOwnership(d.ownership)  // the kernel may refuse
//   const r = applied(d.state, ok, now);     // held := owned only if the kernel took it
//   send(r.heartbeat)                        // claims only what the kernel accepts
import type { MemberState, PeerSpec } from '../../../common/src/types.js';
import { checkReplay, createReplayGuard, decodeHeartbeat, pruneReplayGuard, type Heartbeat, type ReplayGuard } from './heartbeat-codec.js';
import { createEchoTable, echoesToSend, learnNonce, pruneEchoes, type EchoTable } from './echo-table.js';
import { addPeer, applyHeartbeat, createView, refineClockSample, removePeer, setPeerKernel, silenceLimit, tick, type MembershipEvent, type View } from './membership.js';
import { hashString } from './assignment.js';
import { advertisedState, createAssignmentCache, decideOwnership, type AssignmentCache, type OwnershipDecision, type TimedBucket } from './ownership.js';
import { decideServiceOwnership, localServicesKey, type LocalService, type ServiceOwnership } from './service-ownership.js';

/** Heartbeats from a clock further off than this are refused as stale. */
export const MAX_SKEW_MS = 30_000;
/** The replay window forgets senders silent this long. */
const GUARD_KEEP_MS = 10 * 60_000;

export interface CoreConfig {
  farm: string;
  bucketCount: number;
  intervalMs: number;
  failureThresholdMs: number;
  /** kernel lease of the owned sets, refreshed every loop (Infinity: the kernel never
   *  drops them by itself) */
  leaseMs: number;
  orphanHoldMs?: number;
  maxSkewMs?: number;
  /** Service IPs with externalTrafficPolicy Local: their own assignment among their nodes */
  localServices?: readonly LocalService[];
  /** the runtime probes a dead peer's kernel (peerKernel): hold its orphans until then */
  probeDeadKernels?: boolean;
  /** timed handoff (ownership.ts): give buckets away this long after deciding to, at one
   *  instant with their taker; 0 / absent: release at once (the behaviour before) */
  handoffLeadMs?: number;
}

/** The kernel lease, anchored at the periodic loop that sends the heartbeat (see
 *  decide()). Peers declare this node dead failureThresholdMs (or later: silenceLimit)
 *  after the last heartbeat they heard; a lease of threshold - k intervals has stopped its
 *  kernel by then even if the k heartbeats after that one were lost (the simulator found
 *  double owners with lease = threshold under loss, and with k = 1 after two losses in a
 *  row). So two intervals shorter than the threshold (k = 2) where that still leaves two
 *  intervals of lease (one late renewal must not drop our own buckets), else one: the
 *  default 3-interval threshold gets 2 intervals (k = 1), a 5-interval one 3 (k = 2). */
export function defaultLeaseMs(heartbeat: { intervalMs: number; failureThresholdMs: number }): number {
  const { intervalMs: i, failureThresholdMs: t } = heartbeat;
  return Math.max(t - 2 * i, Math.min(2 * i, t - i));
}

export interface Failover {
  /** local time of the dead peer's last heartbeat */
  since: number;
  /** local time it was declared dead */
  declaredAt: number;
  buckets: ReadonlySet<number>;
}

export interface CoreState {
  readonly config: CoreConfig;
  readonly name: string;
  readonly weight: number;
  readonly startedAt: number;
  readonly incarnation: number;
  /** drawn at start; a peer's first heartbeat taken must echo it (checkReplay) */
  readonly nonce: number;
  readonly seq: number;
  readonly view: View;
  readonly guard: ReplayGuard;
  /** the peers' nonces our heartbeats echo */
  readonly echoes: EchoTable;
  /** buckets the kernel accepted last: what heartbeats claim */
  readonly held: readonly number[];
  readonly orphans: readonly number[];
  /** per Local Service IP: buckets its kernel set accepted last */
  readonly serviceHeld: ReadonlyMap<string, readonly number[]>;
  readonly decision?: OwnershipDecision;
  readonly serviceDecision?: readonly ServiceOwnership[];
  readonly draining: boolean;
  readonly checkersHealthy: boolean;
  /** 0 before the first loop */
  readonly lastLoopAt: number;
  /** the last periodic loop (the one that sends a heartbeat): the kernel leases run from
   *  it, and loops in between program what is left of them (0 before the first) */
  readonly leaseFrom: number;
  /** the end of our last stall that outlasted the kernel lease (or came before the first
   *  lease, or with no lease at all): ownership settles after it before acquiring */
  readonly resumedAt?: number;
  /** what the last heartbeat sent said (a loop between timer ticks sends only news) */
  readonly lastSent?: { state: MemberState; weight: number; viewDigest: number; held: readonly number[]; echoVersion: number; givingAt?: number };
  /** peers declared dead whose buckets are not all served again yet */
  readonly failovers: ReadonlyMap<string, Failover>;
  /** memo of assignments (same input, same output): shared, not state */
  readonly cache: AssignmentCache;
}

/** What to log, count or tell users; the runtime decides how. */
export type CoreIntent =
  | { kind: 'membership'; event: MembershipEvent }
  | {
      kind: 'stall';
      stalledMs: number;
      /** held after the stall (0 when the lease ran out) */
      buckets: number;
      /** the kernel lease ran out meanwhile: our buckets were dropped and peers take them */
      leaseRanOut: boolean;
    }
  | { kind: 'buckets'; owned: number; acquired: number[]; released: number[]; orphans: number[]; waiting: number }
  | { kind: 'service-buckets'; ip: string; owned: number; acquired: number[]; released: number[]; waiting: number }
  | { kind: 'state'; state: MemberState; phase: OwnershipDecision['phase'] }
  | {
      kind: 'failover';
      peer: string;
      buckets: number;
      sinceLastHeartbeatMs: number;
      /** the takeover in phases: last heartbeat → declared dead (the silence threshold and
       *  how late the check ran), declared dead → its buckets accepted here (waiting for
       *  the survivors to agree on the new view, or for a holder's release) */
      detectMs: number;
      agreeMs: number;
    };

export interface DesiredOwnership {
  owned: number[];
  orphans: number[];
  /** timed handoff: subset of owned whose new flows the kernel drops from atMs on, and
   *  buckets not owned whose new flows it accepts from atMs on (local clock, ms) */
  giving: TimedBucket[];
  taking: TimedBucket[];
  leaseMs: number;
  /** per Local Service IP, its owned set (same lease) */
  services: { ip: string; owned: number[] }[];
}

export interface CoreInit {
  config: CoreConfig;
  name: string;
  weight: number;
  peers: readonly PeerSpec[];
  now: number;
  /** default `now`; must grow across restarts of the same node */
  incarnation?: number;
  /** uint32, random per incarnation (the runtime draws it); default derived from name and
   *  incarnation, unique enough for the simulator and tests */
  nonce?: number;
  cache?: AssignmentCache;
}

export function createCore(i: CoreInit): CoreState {
  return {
    config: i.config,
    name: i.name,
    weight: i.weight,
    startedAt: i.now,
    incarnation: i.incarnation ?? Math.floor(i.now),
    nonce: i.nonce ?? derivedNonce(i.name, i.incarnation ?? Math.floor(i.now)),
    seq: 0,
    view: createView(i.name, i.peers, i.now),
    guard: createReplayGuard(),
    echoes: createEchoTable(),
    held: [],
    orphans: [],
    serviceHeld: new Map(),
    draining: false,
    checkersHealthy: true,
    lastLoopAt: 0,
    leaseFrom: 0,
    failovers: new Map(),
    cache: i.cache ?? createAssignmentCache(),
  };
}

/** The state this node wants, before the startup grace (ownership decides what it advertises). */
export function wantedState(s: CoreState): MemberState {
  if (s.draining) return 'draining';
  if (!s.checkersHealthy) return 'down';
  return s.weight === 0 ? 'standby' : 'ready';
}

/** What this node advertises at `now` (its last decision's, or what one would say). */
export function advertised(s: CoreState, now: number): MemberState {
  return advertisedState(wantedState(s), s.startedAt, now, s.config.failureThresholdMs);
}

// ---- inputs that change the state between loops

export interface Received {
  state: CoreState;
  /** false for our own heartbeat (looped back) */
  accepted: boolean;
  intents: CoreIntent[];
  /** run a loop now, not at the next tick (a membership change, or a peer's claims or
   *  view moved while a handoff waits on them) */
  decideNow: boolean;
  /** the authenticated sender (receiveDatagram) */
  node?: string;
  /** a copy of a heartbeat already taken: the same one on the other heartbeat path, or a
   *  UDP copy arriving after the L2 copy of the next one. Not a replay to report. */
  duplicate?: boolean;
}

/** How far behind the last taken seq a copy still counts as a duplicate (not a replay). */
export const DUPLICATE_WINDOW = 8;

/** `answer`: the sender is a peer just started that waits for our echo: send a heartbeat
 *  now rather than at the next tick, so a restart costs no extra interval. */
export type Rejected = { state: CoreState; rejected: string; answer?: boolean };

/** An authenticated, decoded heartbeat from `from` (an IP address; undefined when it came
 *  as an L2 frame), `receivedAt` the kernel's receive time if known: membership only (no
 *  replay window). */
export function receiveHeartbeat(s: CoreState, msg: Heartbeat, from: string | undefined, now: number, receivedAt?: number): Received {
  const prev = s.view.peers.get(msg.node);
  const u = applyHeartbeat(s.view, msg, now, from, receivedAt);
  // an older incarnation or a reordered datagram: nothing changed
  if (u.view === s.view) return { state: s, accepted: true, intents: [], decideNow: false };
  const next = u.view.peers.get(msg.node)!;
  const heldChanged = !prev || !sameBuckets(prev.held, next.held);
  // a timed handoff announced (or ended) changes neither: a waiting taker needs it at once
  const digestChanged = prev?.viewDigest !== next.viewDigest || prev?.giving?.atMs !== next.giving?.atMs;
  const last = s.decision;
  const pending = last !== undefined && (last.waiting.length > 0 || last.deferred.length > 0 || last.disagreeing.length > 0);
  const state = withFailovers({ ...s, view: u.view }, u.events, now);
  return {
    state,
    accepted: true,
    intents: u.events.map((event) => ({ kind: 'membership', event })),
    decideNow: u.events.length > 0 || ((heldChanged || digestChanged) && pending),
  };
}

/** A datagram off the wire: authenticated, for this farm and bucket count, not a replay.
 *  `receivedAt`: the kernel's receive time, where the path knows it (membership clock samples). */
export function receiveDatagram(s: CoreState, buf: Buffer, key: Buffer, from: string | undefined, now: number, receivedAt?: number): Received | Rejected {
  const d = decodeHeartbeat(buf, key, s.config.farm);
  if (!d.ok) return { state: s, rejected: d.reason };
  const msg = d.msg;
  if (msg.node === s.name) return { state: s, accepted: false, intents: [], decideNow: false };
  if (msg.bucketCount !== s.config.bucketCount) return { state: s, rejected: 'bucket_count' };
  const r = checkReplay(s.guard, msg, now, s.config.maxSkewMs ?? MAX_SKEW_MS, s.nonce);
  if (!r.ok) {
    const prev = s.view.peers.get(msg.node);
    const duplicate = r.reason === 'replay' && prev !== undefined && prev.incarnation === msg.incarnation && prev.seq - msg.seq < DUPLICATE_WINDOW;
    if (duplicate) {
      const view = refineClockSample(s.view, msg, now, receivedAt);
      return { state: view === s.view ? s : { ...s, view }, accepted: false, intents: [], decideNow: false, node: msg.node, duplicate };
    }
    if (r.reason !== 'no_echo') return { state: s, rejected: r.reason };
    // not taken, but its sender needs our echo before it can take ours
    const l = learnNonce(s.echoes, msg, now);
    return { state: { ...s, echoes: l.table }, rejected: r.reason, answer: l.learned };
  }
  const l = learnNonce(s.echoes, msg, now);
  const rec = receiveHeartbeat({ ...s, guard: r.guard, echoes: l.table }, msg, from, now, receivedAt);
  return { ...rec, decideNow: rec.decideNow || l.learned, node: msg.node };
}

/** A probe of dead `node`'s kernel answered (only the agent is stopped) or not (the node is
 *  gone): its orphans are then left out, or served. */
export function peerKernel(s: CoreState, node: string, answers: boolean): CoreState {
  const view = setPeerKernel(s.view, node, answers ? 'answers' : 'silent');
  return view === s.view ? s : { ...s, view };
}

export function setCheckersHealthy(s: CoreState, healthy: boolean): CoreState {
  return healthy === s.checkersHealthy ? s : { ...s, checkersHealthy: healthy };
}

/** Draining hands every bucket off at the next loop (the runtime leaves afterwards). */
export function setDraining(s: CoreState, draining: boolean): CoreState {
  return draining === s.draining ? s : { ...s, draining };
}

export function setWeight(s: CoreState, weight: number): CoreState {
  return weight === s.weight ? s : { ...s, weight };
}

/** The configured peers: new ones are known before they speak, removed ones forgotten. */
export function setPeers(s: CoreState, peers: readonly PeerSpec[]): CoreState {
  const names = new Set(peers.map((p) => p.name));
  let view = s.view;
  for (const p of view.peers.keys()) if (!names.has(p)) view = removePeer(view, p);
  for (const p of peers) view = addPeer(view, p);
  return view === s.view ? s : { ...s, view };
}

/** A new farm configuration the kernel has already accepted. A different bucket count
 *  means a new table: what was held in the old one is gone. */
export function reconfigure(s: CoreState, config: CoreConfig, weight: number): CoreState {
  const bucketsChanged = config.bucketCount !== s.config.bucketCount;
  // A Service IP no longer Local (or gone) has no own set any more.
  const local = new Set((config.localServices ?? []).map((l) => l.ip));
  const serviceHeld = new Map([...s.serviceHeld].filter(([ip]) => local.has(ip)));
  return {
    ...s,
    config,
    weight,
    serviceHeld,
    ...(bucketsChanged ? { held: [], orphans: [], serviceHeld: new Map(), decision: undefined, failovers: new Map() } : {}),
  };
}

/** After the kernel state was removed (stop): nothing is held any more. */
export function removed(s: CoreState): CoreState {
  return { ...s, held: [], orphans: [], serviceHeld: new Map() };
}

/** A handover is complete: this node holds nothing and live peers claim every bucket. */
export function peersHoldAll(s: CoreState): boolean {
  if (s.held.length > 0) return false;
  const claimed = new Set<number>();
  for (const p of s.view.peers.values()) if (p.alive && p.name !== s.name) for (const b of p.held) claimed.add(b);
  return claimed.size >= s.config.bucketCount;
}

// ---- the loop

export interface Decided {
  state: CoreState;
  /** what the kernel should accept now; pass the answer to applied() */
  ownership: DesiredOwnership;
  intents: CoreIntent[];
  /** this loop renews the kernel leases: pass it to applied() as `periodic`, which then
   *  sends a heartbeat (the leases never outlast the last heartbeat by more than leaseMs) */
  renews: boolean;
}

/**
 * First half of a loop: the membership tick and the ownership decision. `periodic`: the
 * timer's loop, which sends a heartbeat (see applied()) and renews the kernel leases for
 * leaseMs; a loop in between programs only what is left of them, so the kernel never
 * accepts for longer than leaseMs after the last heartbeat sent.
 */
export function decide(s0: CoreState, now: number, periodic = true): Decided {
  const cfg = s0.config;
  let s = s0;
  // Stalled past the lease: the kernel has already dropped our buckets and peers may have
  // taken them; claiming them again from memory would make two owners.
  const leaseRanOut = s.leaseFrom > 0 && now - s.leaseFrom > cfg.leaseMs;
  if (leaseRanOut) s = { ...s, held: [], orphans: [], serviceHeld: new Map() };
  // A loop that finds the lease run out (the timer is late) renews it, and sends a heartbeat
  // like a periodic one, or what it acquires would expire at once.
  const renews = periodic || s.leaseFrom === 0 || now - s.leaseFrom >= cfg.leaseMs;
  const leaseFrom = renews ? now : s.leaseFrom;
  // the kernel wants whole milliseconds, at least one
  const leaseMs = cfg.leaseMs === Infinity ? Infinity : Math.max(1, Math.floor(leaseFrom + cfg.leaseMs - now));
  const t = tick(s.view, now, cfg.failureThresholdMs, cfg.intervalMs);
  const intents: CoreIntent[] = [];
  if (t.stalledMs !== undefined) {
    intents.push({ kind: 'stall', stalledMs: t.stalledMs, buckets: s.held.length, leaseRanOut });
    s = afterStall(s, leaseRanOut, now);
  }
  for (const event of t.events) intents.push({ kind: 'membership', event });
  let view = t.view;
  if (cfg.probeDeadKernels) for (const e of t.events) if (e.type === 'died') view = setPeerKernel(view, e.node, 'probing');
  s = withFailovers({ ...s, view, lastLoopAt: now, leaseFrom }, t.events, now);
  const d = decideOwnership({
    self: { name: s.name, weight: s.weight, state: wantedState(s), startedAt: s.startedAt, held: s.held },
    view: s.view,
    bucketCount: cfg.bucketCount,
    now,
    failureThresholdMs: cfg.failureThresholdMs,
    resumedAt: s.resumedAt ?? -Infinity,
    ...tuning(cfg),
    cache: s.cache,
    carry: s.decision?.carry,
    digestExtra: localServicesKey(cfg.localServices ?? []),
  });
  const sd = decideServiceOwnership({
    services: cfg.localServices ?? [], self: s.name, members: d.members, bucketCount: cfg.bucketCount,
    held: s.serviceHeld, mayAcquire: d.mayAcquire, cache: s.cache,
  });
  const prev = s.decision;
  if (prev?.advertise !== d.advertise) intents.push({ kind: 'state', state: d.advertise, phase: d.phase });
  const services = sd.map((x) => ({ ip: x.ip, owned: x.owned }));
  return {
    state: { ...s, decision: d, serviceDecision: sd },
    ownership: { owned: d.owned, orphans: d.orphans, giving: d.giving, taking: d.taking, leaseMs, services },
    intents,
    renews,
  };
}

/** The optional ownership settings of the configuration. */
function tuning(cfg: CoreConfig): Pick<Parameters<typeof decideOwnership>[0], 'orphanHoldMs' | 'handoffLeadMs'> {
  return { ...(cfg.orphanHoldMs !== undefined ? { orphanHoldMs: cfg.orphanHoldMs } : {}), handoffLeadMs: cfg.handoffLeadMs ?? 0 };
}

/** Only a stall that cost us the kernel lease (or came before any, or with no lease at
 *  all) calls for the settle time (ownership resumingAfterStall): after a shorter one the
 *  kernel still serves and no peer can have declared us dead. Settling after every late
 *  loop kept a loaded node that stalls every ~150 ms from ever acquiring (at 40/120,
 *  docs/progress/issue-14-takeover.md). */
function afterStall(s: CoreState, leaseRanOut: boolean, now: number): CoreState {
  return leaseRanOut || s.leaseFrom === 0 || s.config.leaseMs === Infinity ? { ...s, resumedAt: now } : s;
}

export interface Applied {
  state: CoreState;
  /** to every peer, signed by the runtime; none from a loop between ticks with no news */
  heartbeat?: Heartbeat;
  intents: CoreIntent[];
}

/**
 * Second half of a loop: the kernel accepted the decided ownership (ok) or refused it.
 * Only what it accepted is held and claimed; a refusal keeps the previous claim (the
 * kernel still has the previous sets, until their leases end).
 *
 * The timer's loops (`periodic`) always send a heartbeat: it is what keeps us alive in
 * the peers' views. A loop run between ticks (a heartbeat or a checker asked for it)
 * sends one only when its claims, view digest, state or weight changed: that is what a
 * waiting peer needs at once. Sending after every such loop made each heartbeat trigger
 * a heartbeat from every peer while a farm converged; the simulator counted a million
 * datagrams for a cold start of 32 agents.
 */
export function applied(s0: CoreState, ok: boolean, now: number, periodic = true): Applied {
  const d = s0.decision;
  if (!d) throw new Error('applied() before decide()');
  let s = s0;
  const intents: CoreIntent[] = [];
  if (ok) {
    if (d.acquired.length > 0 || d.released.length > 0) {
      intents.push({ kind: 'buckets', owned: d.owned.length, acquired: d.acquired, released: d.released, orphans: d.orphans, waiting: d.waiting.length });
    }
    s = serviceApplied({ ...s, held: d.owned, orphans: d.orphans }, intents);
  }
  s = observeFailovers(s, now, intents);
  // A refused kernel write may have left released Local Service buckets in the kernel
  // (they are not in the heartbeat's claims): keep advertising the digest the kernel
  // matches, so no peer acquires them on the strength of the new one.
  const digest = ok || (s.config.localServices ?? []).length === 0 ? d.viewDigest : s.lastSent?.viewDigest ?? 0;
  // A timed handoff is announced only once the kernel took its giving elements (ok).
  const giving = ok ? d.announce : undefined;
  if (!periodic && !isNews(s, d.advertise, digest, giving?.atMs)) return { state: s, intents };
  const hb = heartbeat(s, d.advertise, now, digest, giving);
  s = hb.state;
  if (s.seq % 100 === 0) s = { ...s, guard: pruneReplayGuard(s.guard, now, GUARD_KEEP_MS), echoes: pruneEchoes(s.echoes, now, GUARD_KEEP_MS) };
  return { state: s, heartbeat: hb.msg, intents };
}

/** Whether a heartbeat now would say anything the last one did not. */
function isNews(s: CoreState, state: MemberState, digest: number, givingAt: number | undefined): boolean {
  const last = s.lastSent;
  if (!last) return true;
  return last.state !== state || last.weight !== s.weight || last.viewDigest !== digest || !sameBuckets(last.held, s.held) ||
    last.echoVersion !== s.echoes.version || last.givingAt !== givingAt;
}

/** The kernel took the Local Service sets: they are what is held now. */
function serviceApplied(s: CoreState, intents: CoreIntent[]): CoreState {
  const sd = s.serviceDecision ?? [];
  for (const x of sd) {
    if (x.acquired.length > 0 || x.released.length > 0) {
      intents.push({ kind: 'service-buckets', ip: x.ip, owned: x.owned.length, acquired: x.acquired, released: x.released, waiting: x.waiting.length });
    }
  }
  return { ...s, serviceHeld: new Map(sd.map((x) => [x.ip, x.owned])) };
}

/** The heartbeat of a node leaving: after removed(), it claims nothing. */
export function goodbye(s: CoreState, now: number): { state: CoreState; heartbeat: Heartbeat } {
  const hb = heartbeat(s, 'down', now);
  return { state: hb.state, heartbeat: hb.msg };
}

/** When the next live peer's silence passes the threshold, counted as the membership tick
 *  counts it (not before our own resumption after a stall); Infinity if none is alive. */
export function nextSilenceAt(s: CoreState): number {
  const awake = s.view.awakeSince ?? -Infinity;
  let t = Infinity;
  for (const p of s.view.peers.values()) {
    if (p.alive) t = Math.min(t, Math.max(p.lastHeardAt, awake) + silenceLimit(p, s.config.failureThresholdMs, s.config.intervalMs));
  }
  return t;
}

/** True when a live peer has been silent past the threshold: run a loop to declare it. */
export function silenceDue(s: CoreState, now: number): boolean {
  return now > nextSilenceAt(s);
}

/** When a loop must run because of time alone: a timed release is due, or a bucket being
 *  taken over becomes ours (the kernel already flips it then; the loop makes it owned and
 *  claimed). Infinity: none. */
export function nextHandoffAt(s: CoreState): number {
  return s.decision?.nextAt ?? Infinity;
}

/** The ownership decision one loop would make now, without changing anything. */
export function peekDecision(s: CoreState, now: number): OwnershipDecision {
  return decide(s, now).state.decision!;
}

function heartbeat(s: CoreState, state: MemberState, now: number, digest = s.decision?.viewDigest ?? 0, giving?: Heartbeat['giving']): { state: CoreState; msg: Heartbeat } {
  const seq = s.seq + 1;
  const msg: Heartbeat = {
    farm: s.config.farm,
    node: s.name,
    incarnation: s.incarnation,
    seq,
    // sub-ms when the runtime's clock has it: receivers bound the clock skew with it
    sentAt: now,
    weight: s.weight,
    state,
    bucketCount: s.config.bucketCount,
    held: [...s.held],
    viewDigest: digest,
    nonce: s.nonce,
    echo: echoesToSend(s.echoes, seq),
    ...(giving ? { giving } : {}),
  };
  const lastSent = { state, weight: s.weight, viewDigest: msg.viewDigest, held: s.held, echoVersion: s.echoes.version, ...(giving ? { givingAt: giving.atMs } : {}) };
  return { state: { ...s, seq, lastSent }, msg };
}

/** Distinct per incarnation without a random source (tests, the simulator). */
function derivedNonce(name: string, incarnation: number): number {
  return hashString(`${name}/${incarnation}`);
}

function withFailovers(s: CoreState, events: readonly MembershipEvent[], now: number): CoreState {
  let f: Map<string, Failover> | undefined;
  for (const e of events) {
    if (e.type === 'died' && e.held.length > 0) {
      f ??= new Map(s.failovers);
      f.set(e.node, { since: now - e.silentMs, declaredAt: now, buckets: new Set(e.held) });
    } else if (e.type === 'rejoined' && s.failovers.has(e.node)) {
      f ??= new Map(s.failovers);
      f.delete(e.node);
    }
  }
  return f ? { ...s, failovers: f } : s;
}

/** A failover ends when every bucket of the dead peer is served again (by us or another node). */
function observeFailovers(s: CoreState, now: number, intents: CoreIntent[]): CoreState {
  const d = s.decision;
  if (s.failovers.size === 0 || !d) return s;
  const held = new Set(s.held);
  let f: Map<string, Failover> | undefined;
  for (const [node, fo] of s.failovers) {
    let mine = 0;
    let pending = 0;
    for (const b of fo.buckets) {
      if (d.assignment[b] !== s.name) continue;
      if (held.has(b)) mine++;
      else pending++;
    }
    if (pending > 0) continue;
    f ??= new Map(s.failovers);
    f.delete(node);
    if (mine > 0) {
      intents.push({ kind: 'failover', peer: node, buckets: mine, sinceLastHeartbeatMs: now - fo.since, detectMs: fo.declaredAt - fo.since, agreeMs: now - fo.declaredAt });
    }
  }
  return f ? { ...s, failovers: f } : s;
}

function sameBuckets(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
