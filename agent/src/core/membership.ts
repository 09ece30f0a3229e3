// Who is alive: the agent's view of its peers, built only from authenticated heartbeats
// and the passage of (local) time. Pure: the runtime feeds heartbeats and calls tick()
// every interval, and turns the returned events into logs and metrics.
import type { MemberState, PeerSpec } from '../../../common/src/types.js';
import type { Heartbeat } from './heartbeat-codec.js';

export interface PeerRecord {
  name: string;
  address?: string;
  /** 0 until heard */
  incarnation: number;
  seq: number;
  heard: boolean;
  /** local time of the last accepted heartbeat (not the sender's clock) */
  lastHeardAt: number;
  /** the sender's clock (sentAt) of its last accepted heartbeat */
  sentAt?: number;
  /** the longest recent gap between two of its heartbeats taken here, on the sender's clock
   *  (this incarnation), decaying by GAP_DECAY per heartbeat: how late it can be without
   *  being dead (silenceLimit) */
  gapMs?: number;
  /** recent fraction of its heartbeats never taken here (seq gaps; this incarnation),
   *  decaying by GAP_DECAY per heartbeat sent: how many in a row may go missing (silenceLimit) */
  lossRate?: number;
  weight: number;
  state: MemberState;
  /** the peer's assignment input digest in its last heartbeat (0 until heard) */
  viewDigest: number;
  /** its last heartbeat's timed handoff announcement, if any (heartbeat-codec) */
  giving?: { atMs: number; digest: number };
  /** the last CLOCK_SAMPLES heartbeats of this incarnation: local receive time and how far
   *  that was ahead of their sentAt (delay + clock offset): see clockAheadBound */
  lags?: ReadonlyArray<{ at: number; lag: number }>;
  /** buckets held according to the last heartbeat; kept after death for the orphan set */
  held: readonly number[];
  alive: boolean;
  /** local time it was declared dead, while dead */
  diedAt?: number;
  /** while dead, what a probe of its node's kernel found (the runtime's, when it probes):
   *  'answers' = only the agent stopped (hung, killed) and the kernel still serves its
   *  established connections, which orphan sets elsewhere must then not reset */
  kernel?: 'probing' | 'answers' | 'silent';
}

export interface View {
  self: string;
  peers: ReadonlyMap<string, PeerRecord>;
  /** local time of the previous tick() */
  lastTickAt?: number;
  /** end of our own last stall: silence before it is not held against peers, and
   *  ownership acquires nothing for a while after it */
  awakeSince?: number;
}

export type MembershipEvent =
  | { type: 'joined'; node: string; incarnation: number; weight: number; state: MemberState; address?: string }
  | {
      type: 'rejoined';
      node: string;
      incarnation: number;
      /** true: a new incarnation (it restarted); false: the same process was heard again (partition healed) */
      restarted: boolean;
      /** how long it had been declared dead, if it was */
      deadForMs?: number;
    }
  | { type: 'changed'; node: string; weight?: { from: number; to: number }; state?: { from: MemberState; to: MemberState }; address?: { from?: string; to: string } }
  | { type: 'died'; node: string; silentMs: number; held: readonly number[] };

/** Per heartbeat, the remembered worst gap and the loss rate shrink by this factor
 *  (half-life ~35 heartbeats). */
export const GAP_DECAY = 0.98;
/** A false death from loss alone should be this unlikely per silence window: with loss
 *  rate p, k heartbeats in a row go missing with probability p^k. */
export const FALSE_DEATH_ODDS = 1e-6;

/** How many heartbeats in a row may go missing at loss rate p before a death is likelier
 *  than FALSE_DEATH_ODDS says (0 for a lossless link). */
export function lossesToRideOut(p: number): number {
  if (!(p > 0)) return 0;
  if (p >= 1) return Infinity;
  return Math.ceil(Math.log(FALSE_DEATH_ODDS) / Math.log(p));
}

/**
 * How long a live peer may be silent before it is declared dead: the configured threshold,
 * stretched up to twice the threshold while its heartbeats have lately come late or been
 * lost: so that the same number of heartbeats can still go missing after the worst recent
 * gap (a busy sender), and so that as many may go missing in a row as its loss rate makes
 * likely (lossesToRideOut: a lossy link). Both are measured from what the sender did (its
 * clock, its seq), not from when we read it, so every receiver computes the same limit
 * and the survivors of a death declare it at the same moment (the agreement round then
 * costs one delivery). Never shorter than the threshold: the kernel leases (agent-core
 * defaultLeaseMs) are sized against the threshold, and a later detection only adds to
 * that margin. Without intervalMs there is no stretching.
 */
export function silenceLimit(p: Pick<PeerRecord, 'gapMs' | 'lossRate'>, failureThresholdMs: number, intervalMs?: number): number {
  if (intervalMs === undefined) return failureThresholdMs;
  const late = p.gapMs !== undefined && p.gapMs > intervalMs ? p.gapMs + failureThresholdMs - intervalMs : 0;
  const lossy = (lossesToRideOut(p.lossRate ?? 0) + 1) * intervalMs;
  return Math.max(failureThresholdMs, Math.min(2 * failureThresholdMs, Math.max(late, lossy)));
}

export interface ViewUpdate {
  view: View;
  events: MembershipEvent[];
  /** set by tick() when we ourselves were stalled this long (no tick for > threshold/2) */
  stalledMs?: number;
}

/**
 * A view that knows the configured peers (not yet heard, so not alive). Self is left out.
 * Pass `now` (the agent's start): an agent blocked right after it started is then seen
 * as stalled at its first tick, instead of taking every bucket before reading a heartbeat.
 */
export function createView(self: string, peers: readonly PeerSpec[] = [], now?: number): View {
  const map = new Map<string, PeerRecord>();
  for (const p of peers) {
    if (p.name === self) continue;
    map.set(p.name, {
      name: p.name,
      address: p.address,
      incarnation: 0,
      seq: 0,
      heard: false,
      lastHeardAt: 0,
      weight: 0,
      state: 'down',
      viewDigest: 0,
      held: [],
      alive: false,
    });
  }
  return now === undefined ? { self, peers: map } : { self, peers: map, lastTickAt: now };
}

/**
 * Take an authenticated, replay-checked heartbeat received at local time `now` (from
 * `address`, if known; `receivedAt`: the kernel's receive time, when the path gives it).
 * Heartbeats from self, older incarnations or non-increasing seq (reordered datagrams)
 * change nothing.
 */
export function applyHeartbeat(view: View, msg: Heartbeat, now: number, address?: string, receivedAt?: number): ViewUpdate {
  if (msg.node === view.self) return { view, events: [] };
  const prev = view.peers.get(msg.node);
  if (prev && prev.heard) {
    if (msg.incarnation < prev.incarnation) return { view, events: [] };
    if (msg.incarnation === prev.incarnation && msg.seq <= prev.seq) return { view, events: [] };
  }
  const timing = nextTiming(prev, msg, now);
  const next: PeerRecord = {
    name: msg.node,
    address: address ?? prev?.address,
    incarnation: msg.incarnation,
    seq: msg.seq,
    heard: true,
    lastHeardAt: now,
    sentAt: msg.sentAt,
    ...timing,
    weight: msg.weight,
    state: msg.state,
    viewDigest: msg.viewDigest,
    held: msg.held,
    alive: true,
    lags: nextLags(prev, msg, sampleTime(now, receivedAt)),
  };
  if (msg.giving) next.giving = msg.giving;
  const events = heartbeatEvents(prev, msg, next, now, address);
  const peers = new Map(view.peers);
  peers.set(msg.node, next);
  return { view: { ...view, peers }, events };
}

/**
 * The peer's worst recent gap and loss rate after this heartbeat. A new incarnation or a
 * peer that was dead starts over. The gap is on the sender's clock: how late it sent, plus
 * what was lost in between; when we read it does not count (our own lateness is not the
 * peer's, and silence is judged only after the datagrams waiting in the socket were read,
 * agent.ts). A sender clock that went backwards or jumped further than the local gap
 * allows (a clock step) gives way to the local gap.
 */
function nextTiming(prev: PeerRecord | undefined, msg: Heartbeat, now: number): Pick<PeerRecord, 'gapMs' | 'lossRate'> {
  if (!prev || !prev.heard || !prev.alive || prev.incarnation !== msg.incarnation) return {};
  const local = now - prev.lastHeardAt;
  const sent = prev.sentAt === undefined ? NaN : msg.sentAt - prev.sentAt;
  const gap = sent >= 0 && sent <= local + MAX_SENDER_GAP_EXCESS_MS ? sent : local;
  const missed = msg.seq - prev.seq;
  const decay = GAP_DECAY ** missed;
  const lossRate = (prev.lossRate ?? 0) * decay + (1 - decay) * ((missed - 1) / missed);
  return { gapMs: prev.gapMs === undefined ? gap : Math.max(gap, prev.gapMs * GAP_DECAY), ...(lossRate > 0 ? { lossRate } : {}) };
}

/** Clock samples kept per peer (at 50 ms heartbeats: the last 0.4 s). */
export const CLOCK_SAMPLES = 8;
/** How fast two clocks may drift apart: NTP slews each by at most 500 ppm. */
export const MAX_DRIFT = 1e-3;

function nextLags(prev: PeerRecord | undefined, msg: Heartbeat, at: number): ReadonlyArray<{ at: number; lag: number }> {
  const keep = prev && prev.heard && prev.incarnation === msg.incarnation ? (prev.lags ?? []) : [];
  return [...keep.slice(-(CLOCK_SAMPLES - 1)), { at, lag: at - msg.sentAt }];
}

/** A clock sample's local time: the kernel's receive time when known (any instant after the
 *  send keeps the bound true; the earliest is the tightest), else when we read it. */
function sampleTime(now: number, receivedAt: number | undefined): number {
  return receivedAt !== undefined && Number.isFinite(receivedAt) && receivedAt < now ? receivedAt : now;
}

/**
 * A copy of the peer's last taken heartbeat (same incarnation and seq) on the other path,
 * with the kernel's receive time: only its clock sample counts, and only if it is tighter
 * (the UDP copy, read first, carries our read latency; the L2 one the kernel's time).
 */
export function refineClockSample(view: View, msg: Heartbeat, now: number, receivedAt: number | undefined): View {
  const p = view.peers.get(msg.node);
  const last = p?.lags?.at(-1);
  if (!p || !last || receivedAt === undefined || p.incarnation !== msg.incarnation || p.seq !== msg.seq) return view;
  const at = sampleTime(now, receivedAt);
  const lag = at - msg.sentAt;
  if (lag >= last.lag) return view;
  const peers = new Map(view.peers);
  peers.set(p.name, { ...p, lags: [...p.lags!.slice(0, -1), { at, lag }] });
  return { ...view, peers };
}

/**
 * An upper bound of (our clock - the peer's clock) at our local time `at`: every sample's
 * lag is the datagram's delay (>= 0) plus the offset then, and the offset moves by at most
 * MAX_DRIFT per ms since. Undefined before any sample. It holds as long as neither clock
 * steps (an NTP step, a manual change) within the samples' window and until `at`.
 * Receive times are the kernel's (L2 heartbeats) or when the agent read the datagram
 * (UDP), later than its arrival: that only loosens the bound, by our read latency, which
 * is why a copy with the kernel's time replaces the sample (refineClockSample).
 */
export function clockAheadBound(p: Pick<PeerRecord, 'lags'>, at: number): number | undefined {
  let bound: number | undefined;
  for (const s of p.lags ?? []) {
    const b = s.lag + Math.abs(at - s.at) * MAX_DRIFT;
    if (bound === undefined || b < bound) bound = b;
  }
  return bound;
}

/** How much longer than the local gap the sender's own gap may be (its earlier heartbeat
 *  took longer through the network than this one) before it counts as a clock step. */
const MAX_SENDER_GAP_EXCESS_MS = 1000;

/** What a newer heartbeat from a peer tells: it joined, rejoined, or changed weight, state or address. */
function heartbeatEvents(prev: PeerRecord | undefined, msg: Heartbeat, next: PeerRecord, now: number, address: string | undefined): MembershipEvent[] {
  const events: MembershipEvent[] = [];
  if (!prev || !prev.heard) {
    events.push({ type: 'joined', node: msg.node, incarnation: msg.incarnation, weight: msg.weight, state: msg.state, ...(next.address ? { address: next.address } : {}) });
  } else {
    const restarted = msg.incarnation > prev.incarnation;
    if (restarted || !prev.alive) {
      events.push({
        type: 'rejoined',
        node: msg.node,
        incarnation: msg.incarnation,
        restarted,
        ...(prev.diedAt !== undefined && !prev.alive ? { deadForMs: now - prev.diedAt } : {}),
      });
    }
    const changed: Extract<MembershipEvent, { type: 'changed' }> = { type: 'changed', node: msg.node };
    if (prev.weight !== msg.weight) changed.weight = { from: prev.weight, to: msg.weight };
    if (prev.state !== msg.state) changed.state = { from: prev.state, to: msg.state };
    if (address !== undefined && prev.address !== address) changed.address = { ...(prev.address ? { from: prev.address } : {}), to: address };
    if (changed.weight || changed.state || changed.address) events.push(changed);
  }
  return events;
}

/**
 * Declare dead every live peer silent for more than failureThresholdMs (stretched by its
 * recent gaps when intervalMs is given: silenceLimit). If we ourselves
 * were stalled (no tick for more than half the threshold: a blocked event loop, a
 * starved CPU, a suspended VM), the peers' heartbeats of that time are still waiting in
 * the socket buffer: silence is then counted only from our resumption, so a stalled agent
 * does not declare the whole farm dead and grab every bucket before reading them.
 */
export function tick(view: View, now: number, failureThresholdMs: number, intervalMs?: number): ViewUpdate {
  const gap = view.lastTickAt === undefined ? 0 : now - view.lastTickAt;
  const stalled = gap > failureThresholdMs / 2;
  const awakeSince = stalled ? now : view.awakeSince;
  let peers: Map<string, PeerRecord> | undefined;
  const events: MembershipEvent[] = [];
  for (const p of view.peers.values()) {
    if (!p.alive) continue;
    const silentMs = now - p.lastHeardAt;
    if (now - Math.max(p.lastHeardAt, awakeSince ?? -Infinity) <= silenceLimit(p, failureThresholdMs, intervalMs)) continue;
    peers ??= new Map(view.peers);
    peers.set(p.name, { ...p, alive: false, diedAt: now });
    events.push({ type: 'died', node: p.name, silentMs, held: p.held });
  }
  const next: View = { ...view, peers: peers ?? view.peers, lastTickAt: now, ...(awakeSince !== undefined ? { awakeSince } : {}) };
  return stalled ? { view: next, events, stalledMs: gap } : { view: next, events };
}

/** What a probe found of a dead peer's kernel; no-op for a live or unknown peer. */
export function setPeerKernel(view: View, node: string, kernel: NonNullable<PeerRecord['kernel']>): View {
  const p = view.peers.get(node);
  if (!p || p.alive || p.kernel === kernel) return view;
  const peers = new Map(view.peers);
  peers.set(node, { ...p, kernel });
  return { ...view, peers };
}

/** Know a configured peer before it has spoken (so heartbeats go to it); no-op if known or self. */
export function addPeer(view: View, peer: PeerSpec): View {
  if (peer.name === view.self || view.peers.has(peer.name)) return view;
  const fresh = createView(view.self, [peer]).peers.get(peer.name)!;
  return { ...view, peers: new Map([...view.peers, [peer.name, fresh]]) };
}

/** Forget a peer entirely (e.g. removed from the configuration). */
export function removePeer(view: View, name: string): View {
  if (!view.peers.has(name)) return view;
  const peers = new Map(view.peers);
  peers.delete(name);
  return { ...view, peers };
}

export function livePeers(view: View): PeerRecord[] {
  return [...view.peers.values()].filter((p) => p.alive);
}

/** Counts by what a metrics gauge wants: alive peers by state, plus dead ones. */
export function memberCounts(view: View): Record<MemberState | 'dead', number> {
  const out: Record<MemberState | 'dead', number> = { ready: 0, draining: 0, standby: 0, down: 0, dead: 0 };
  for (const p of view.peers.values()) {
    if (!p.heard) continue;
    if (p.alive) out[p.state]++;
    else out.dead++;
  }
  return out;
}
