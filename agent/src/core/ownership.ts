// What this node should own now: the bucket assignment over the live ready members, gated
// by release-before-acquire. Pure; the runtime calls decideOwnership() after every tick
// and every heartbeat that changed the view, programs `owned` (and `orphans`) into the
// kernel, and puts `owned` in its next heartbeat as the buckets it holds.
//
// Rules (DESIGN.md "Membership and bucket ownership"):
// - The assignment counts only members whose state is 'ready' (standby, draining, down
//   weigh 0) and keeps buckets with their current holders where balance allows (sticky,
//   see assignment.ts): its input is the members and the claims of self and the live
//   peers. Every node with the same view computes the same one, and the view digest is a
//   hash of the resulting table, so equal digests mean equal tables.
// - A bucket held but now assigned elsewhere is released as soon as every live peer
//   advertises the same view digest as ours (usually at once, at worst one heartbeat
//   later), or at once if we are leaving; the new owner waits for that release (it sees
//   it in the next heartbeat), so two nodes never accept new connections for one bucket
//   while their views agree. Releasing on a view the others do not share yet made nodes
//   give buckets away and take them back a moment later while a partition healed.
// - A bucket assigned to me is acquired when no live peer claims it in its last
//   heartbeat AND every live peer's last heartbeat carries my view digest (the hash of
//   the assignment input), i.e. they compute the same assignment. Without the second
//   condition two nodes whose views differ for a moment (one has heard a node turn ready,
//   the other not yet) can both find a just-released bucket unclaimed and both take it;
//   the simulator showed exactly that at cold start. A peer whose digest has differed
//   from ours for agreementTimeoutMs on end (a partial partition: its view can never
//   match ours) stops counting, as long as such peers are a minority of our live peers.
//   The timeout is per peer, and 2 * failureThresholdMs by default, because a peer that
//   died keeps its stale digest until it is declared dead; a single farm-wide timer was
//   tripped by chains of such disagreements in the simulator's random scenarios, and
//   double owners followed. The minority condition keeps a node that alone cannot hear
//   some peer (one-way loss) from taking that peer's buckets while it still serves them.
// - A dead peer claims nothing; the buckets it held become `orphans` for
//   orphanHoldMs, so that the new owner also accepts its mid-stream packets and answers
//   them with RST (clients reconnect at once instead of timing out).
// - After a stall of our own (membership tick() saw no tick for a while), acquire nothing
//   for stallSettleMs, and then only once every live peer was heard again: what we knew
//   of their claims is old, and so are the heartbeats that queued up meanwhile. A node
//   that comes out of the stall holding nothing (the stall outlasted the kernel lease)
//   advertises 'standby' meanwhile, as at startup: peers then keep (or take) its share
//   until it turns ready, instead of releasing its buckets to a node that will not take
//   them for stallSettleMs (measured: ~250 ms unowned after SIGSTOP/SIGCONT).
// - Startup: for startupGraceMs (default failureThresholdMs) after start, a node that is
//   configured 'ready' advertises 'standby' and counts itself as such. It acquires nothing
//   and peers do not release anything to it until it has heard them; then it turns ready
//   and everyone agrees at once. (Acquiring early would take buckets a peer it has not
//   heard from yet still serves.)
// - Partition: each side declares the other dead and serves everything; on heal, each
//   side releases what the common assignment gives the other and keeps what it already
//   holds, so every moved bucket changes hands once.
// - Timed handoff (handoffLeadMs > 0): release and acquire happen in two kernels at two
//   instants, and the SYNs between them are lost (release first) or answered twice (acquire
//   first: RST). So the kernels flip at one instant of the wall clock they both match
//   packets against (nftables `meta time`). Where a bucket would be released (the views
//   agree, or we are leaving), the holder instead announces "at T I give away every
//   bucket I hold that the table of digest D gives to others" (T = now + lead) and keeps
//   them, with its kernel dropping their new flows from T on (`giving`); at T it releases
//   them whatever happened meanwhile (never cancelled: the taker may be accepting from T
//   on, and releasing is always safe). Another release waits for that one to end. The new
//   owner, hearing the announcement from the single live holder of a bucket its own table
//   (digest D, the holder's current digest too) gives to itself, with acquisitions
//   allowed, programs `taking` from T' = T + an upper bound of (our clock - its clock)
//   (membership clockAheadBound), so T' is not before T in real time; from T' on it owns
//   the bucket. If it hears late, or the holder dies or the views change, today's rules
//   apply (a gap until the holder stops claiming, failover, orphans). A node going down
//   (checkers failing) releases at once. Local Service sets are not timed.
import type { MemberState } from '../../../common/src/types.js';
import { assignBuckets, currentOwners, hashString, type Member } from './assignment.js';
import { clockAheadBound, type PeerRecord, type View } from './membership.js';

export const DEFAULT_ORPHAN_HOLD_MS = 10_000;

export interface SelfState {
  name: string;
  weight: number;
  /** configured / checker-derived state: 'ready' unless standby, draining or down */
  state: MemberState;
  /** local time the agent started (its incarnation) */
  startedAt: number;
  /** buckets held now: what the kernel accepts. After a stall longer than the kernel lease
   *  the kernel dropped them, and this must be [] (keeping the old list would re-add
   *  buckets that peers took over meanwhile). */
  held: readonly number[];
}

export interface OwnershipInput {
  self: SelfState;
  view: View;
  bucketCount: number;
  now: number;
  failureThresholdMs: number;
  /** default failureThresholdMs */
  startupGraceMs?: number;
  /** default 10 s */
  orphanHoldMs?: number;
  /** a peer disagreeing this long on end stops blocking; default 2 * failureThresholdMs */
  agreementTimeoutMs?: number;
  /** after our own stall, acquire nothing this long (peers we declared dead may be
   *  alive; heartbeats read at once may be old ones that queued up); default
   *  failureThresholdMs */
  stallSettleMs?: number;
  /** the end of our last stall that calls for that settle time (agent-core: one that
   *  outlasted the kernel lease); default the view's awakeSince (every stall) */
  resumedAt?: number;
  /** reuse assignments across calls; recomputed only when members or weights change */
  cache?: AssignmentCache;
  /** `carry` of the previous decision (pass it back every time) */
  carry?: OwnershipCarry;
  /** more assignment input that every node must share before acquiring (the Local
   *  Services' node lists, see service-ownership.ts); '' or absent: none */
  digestExtra?: string;
  /** timed handoff: give buckets away this long after deciding to (0 / absent: release at
   *  once, the old behaviour). Taking over a bucket a peer announces is always timed. */
  handoffLeadMs?: number;
}

/** A bucket and the instant (local clock, ms) its new flows flip in the kernel. */
export interface TimedBucket {
  bucket: number;
  atMs: number;
}

/** A timed release under way: at atMs, these buckets go (digest: the table that gave them away). */
export interface PendingHandoff {
  atMs: number;
  digest: number;
  buckets: readonly number[];
}

/** An announced handoff further ahead than this is not taken timed (a clock far off). */
export const MAX_TAKE_AHEAD_MS = 10_000;

/** What a decision remembers for the next one. */
export interface OwnershipCarry {
  /** per live peer whose digest differs from mine: since when, without a break */
  disagreeingSince?: Readonly<Record<string, number>>;
  /** our timed release under way */
  handoff?: PendingHandoff;
}

export interface OwnershipDecision {
  /** buckets to accept new connections for, ascending */
  owned: number[];
  /** subset of owned: buckets of a peer that died less than orphanHoldMs ago */
  orphans: number[];
  /** owner per bucket under this view ('' = nobody ready) */
  assignment: string[];
  acquired: number[];
  released: number[];
  /** assigned to me but not taken: claimed by these live peers (a handoff in progress),
   *  or holders [] while the peers' digests disagree with mine */
  waiting: Array<{ bucket: number; holders: string[] }>;
  /** subset of owned: held and assigned elsewhere, kept while the peers' views differ
   *  from ours; released once they agree (no flapping while a partition heals) */
  deferred: number[];
  /** the state to advertise in heartbeats */
  advertise: MemberState;
  /** digest of my assignment input, to advertise in heartbeats */
  viewDigest: number;
  /** live peers whose last heartbeat shows another digest (acquisitions wait for them) */
  disagreeing: string[];
  carry: OwnershipCarry;
  /** 'startup' while in the startup grace period; 'resuming' while standing by after a stall */
  phase: 'startup' | 'resuming' | 'running';
  /** the assignment's members (weight 0 unless ready) */
  members: Member[];
  /** acquisitions are allowed now (not resuming, no live peer blocking with another digest) */
  mayAcquire: boolean;
  /** subset of owned: being given away, new flows dropped by the kernel from atMs on */
  giving: TimedBucket[];
  /** not in owned: being taken over, new flows accepted by the kernel from atMs on */
  taking: TimedBucket[];
  /** what to announce in heartbeats (the timed release under way) */
  announce?: { atMs: number; digest: number };
  /** the next instant a decision changes by time alone (a release or take-over is due) */
  nextAt?: number;
}

/** State to advertise: a ready node says 'standby' until its startup grace is over. */
export function advertisedState(state: MemberState, startedAt: number, now: number, startupGraceMs: number): MemberState {
  return state === 'ready' && now - startedAt < startupGraceMs ? 'standby' : state;
}

/** Members as the assignment sees them: live peers and self, weight 0 unless ready. */
export function assignmentMembers(view: View, self: { name: string; weight: number; advertise: MemberState }): Member[] {
  const out: Member[] = [{ name: self.name, weight: self.advertise === 'ready' ? self.weight : 0 }];
  for (const p of view.peers.values()) {
    if (p.alive) out.push({ name: p.name, weight: p.state === 'ready' ? p.weight : 0 });
  }
  return out;
}

/** Canonical text of an assignment's member input: equal texts (and equal holders) give equal assignments. */
export function assignmentKey(members: readonly Member[], bucketCount: number): string {
  return `${bucketCount}|${members
    .filter((m) => m.weight > 0)
    .map((m) => `${m.name}=${m.weight}`)
    .sort()
    .join(',')}`;
}

/** 32-bit digest of an assignment table, carried in heartbeats: equal digests, equal tables. */
export function tableDigest(assignment: readonly string[]): number {
  // 0 means "not given" on the wire
  return hashString(`${assignment.length}|${assignment.join(',')}`) || 1;
}

/** Owner per bucket under this view, and its digest. */
export interface Assignment {
  assignment: string[];
  digest: number;
}

export interface AssignmentCache {
  /** `current`: owner per bucket now (currentOwners); omitted = nothing held */
  get(members: readonly Member[], bucketCount: number, current?: readonly string[]): Assignment;
}

/** Remembers the last few assignments by their (sorted members, bucketCount, holders) key. */
export function createAssignmentCache(size = 8): AssignmentCache {
  const entries = new Map<string, Assignment>();
  return {
    get(members, bucketCount, current) {
      const key = `${assignmentKey(members, bucketCount)}#${current?.join(',') ?? ''}`;
      const hit = entries.get(key);
      if (hit) {
        entries.delete(key);
        entries.set(key, hit);
        return hit;
      }
      const assignment = assignBuckets(members, bucketCount, current);
      const value = { assignment, digest: tableDigest(assignment) };
      entries.set(key, value);
      if (entries.size > size) entries.delete(entries.keys().next().value!);
      return value;
    },
  };
}

/** What every agent hears as claims: its own held buckets and each live peer's last heartbeat. */
export function claimsHeard(view: View, self: { name: string; held: readonly number[] }): Array<{ name: string; held: readonly number[] }> {
  const out = [{ name: self.name, held: self.held }];
  for (const p of view.peers.values()) if (p.alive) out.push({ name: p.name, held: p.held });
  return out;
}

/** Names of the live peers claiming each of `buckets` (only those with claims are scanned). */
function holdersOf(view: View, buckets: number[], claims: Uint16Array, bucketCount: number): OwnershipDecision['waiting'] {
  const lists = new Map<number, string[]>();
  for (const b of buckets) lists.set(b, []);
  if (buckets.some((b) => claims[b]! > 0)) {
    for (const p of view.peers.values()) {
      if (!p.alive) continue;
      for (const b of p.held) if (b >= 0 && b < bucketCount) lists.get(b)?.push(p.name);
    }
  }
  return buckets.map((bucket) => ({ bucket, holders: lists.get(bucket)!.sort() }));
}

export function decideOwnership(input: OwnershipInput): OwnershipDecision {
  const { self, view, bucketCount, now } = input;
  const grace = input.startupGraceMs ?? input.failureThresholdMs;
  const resuming = resumingAfterStall(view, input.resumedAt ?? view.awakeSince, now, input.stallSettleMs ?? input.failureThresholdMs);
  const startup = advertisedState(self.state, self.startedAt, now, grace);
  const advertise = startup === 'ready' && resuming && self.held.length === 0 ? 'standby' : startup;
  const members = assignmentMembers(view, { name: self.name, weight: self.weight, advertise });
  const current = currentOwners(members, bucketCount, claimsHeard(view, self));
  const table = (input.cache ?? createAssignmentCache(1)).get(members, bucketCount, current);
  const assignment = table.assignment;
  // The extra input (Local Services' node lists) is computed from the members and weights,
  // which the table alone does not pin down: both go into the digest with it.
  const digest = input.digestExtra ? hashString(`${table.digest}|${assignmentKey(members, bucketCount)}|${input.digestExtra}`) || 1 : table.digest;
  const { claims, orphaned } = peerClaims(view, bucketCount, now, input.orphanHoldMs ?? DEFAULT_ORPHAN_HOLD_MS);
  const { disagreeing, disagreeingSince, blocking } = agreement(view, digest, now, input.agreementTimeoutMs ?? 2 * input.failureThresholdMs, input.carry);
  const mayAcquire = !resuming && blocking.length === 0;
  const lead = input.handoffLeadMs ?? 0;
  const split = splitBuckets({
    assignment, self, bucketCount, claims, orphaned, mayAcquire, advertise, now, digest,
    // a node going down releases at once: its service is failing
    lead: advertise === 'down' ? 0 : lead,
    pending: input.carry?.handoff,
    takeFrom: (b) => takeFrom(view, b, digest, now),
  });
  const waiting = holdersOf(view, split.waitingBuckets, claims, bucketCount);
  const handoff = split.handoff;
  const carry: OwnershipCarry = { ...(disagreeing.length === 0 ? {} : { disagreeingSince }), ...(handoff ? { handoff } : {}) };
  return {
    owned: split.owned,
    orphans: split.orphans,
    assignment,
    acquired: split.acquired,
    released: split.released,
    waiting,
    deferred: split.deferred,
    advertise,
    viewDigest: digest,
    disagreeing,
    carry,
    phase: startup !== self.state ? 'startup' : advertise !== self.state ? 'resuming' : 'running',
    members,
    mayAcquire,
    ...handoffOutputs(split, now),
  };
}

/** The decision's timed handoff part: what the kernel flips when, what to announce, when to look again. */
function handoffOutputs(split: Split, now: number): Pick<OwnershipDecision, 'giving' | 'taking' | 'announce' | 'nextAt'> {
  const h = split.handoff;
  let nextAt = h && h.atMs > now ? h.atMs : undefined;
  for (const t of split.taking) nextAt = nextAt === undefined ? t.atMs : Math.min(nextAt, t.atMs);
  return {
    giving: split.giving,
    taking: split.taking,
    ...(h ? { announce: { atMs: h.atMs, digest: h.digest } } : {}),
    ...(nextAt !== undefined ? { nextAt } : {}),
  };
}

/**
 * When our kernel may start taking bucket b's new flows (local clock), if its single live
 * holder announces a timed release of it under our table: the announced instant plus the
 * bound of how far our clock is ahead of the holder's, so that it is not before the
 * holder's kernel stopped, in real time. Undefined: no such announcement (wait as before).
 */
function takeFrom(view: View, b: number, digest: number, now: number): number | undefined {
  let holder: PeerRecord | undefined;
  for (const p of view.peers.values()) {
    if (!p.alive || !p.held.includes(b)) continue;
    if (holder) return undefined; // two claim it: not a handoff
    holder = p;
  }
  const g = holder?.giving;
  if (!holder || !g || g.digest !== digest || holder.viewDigest !== digest) return undefined;
  const ahead = clockAheadBound(holder, g.atMs);
  if (ahead === undefined) return undefined;
  // + 2 µs: both instants are kept to the µs (the codec floors, the kernel rounds up ours)
  const from = g.atMs + ahead + 0.002;
  return from - now > MAX_TAKE_AHEAD_MS ? undefined : from;
}

/**
 * After our own stall (see membership tick), the peers' claims we know may predate
 * takeovers made while we were away, the datagrams that queued up meanwhile are read
 * first, and peers we had declared dead may be alive and serving our buckets: like at
 * startup, acquire nothing for stallSettleMs after resuming, and then only once every
 * live peer was heard since. (The simulator found each of these traps.) agent-core asks
 * for this only after a stall that outlasted the kernel lease: a shorter one left the
 * kernel serving, so no peer can have declared us dead and taken our buckets (the lease
 * ends before their threshold), and the datagrams it queued are read before the loop.
 */
function resumingAfterStall(view: View, resumedAt: number | undefined, now: number, stallSettleMs: number): boolean {
  const freshAfter = (resumedAt ?? -Infinity) + stallSettleMs;
  if (now < freshAfter) return true;
  for (const p of view.peers.values()) if (p.alive && p.lastHeardAt < freshAfter) return true;
  return false;
}

/** Per bucket: how many live peers hold it, and whether a peer that died lately held it. */
function peerClaims(view: View, bucketCount: number, now: number, orphanHoldMs: number): { claims: Uint16Array; orphaned: Uint8Array } {
  // Typed arrays, not per-bucket lists: this runs after every heartbeat that changed the view.
  const claims = new Uint16Array(bucketCount);
  const orphaned = new Uint8Array(bucketCount);
  const lately = (p: PeerRecord): boolean => p.heard && p.diedAt !== undefined && now - p.diedAt < orphanHoldMs;
  // A node that lost more peers lately than it still hears (itself included) is more
  // likely the one cut off than the survivor of their deaths: their connections may
  // well be alive on the other side, and when the network heals an orphan set here
  // would reset every one whose packets reach us before we hear their nodes again.
  let live = 1;
  let lost = 0;
  for (const p of view.peers.values()) {
    if (p.alive) live++;
    else if (lately(p)) lost++;
  }
  const minority = lost > live;
  for (const p of view.peers.values()) {
    if (p.alive) {
      for (const b of p.held) if (b >= 0 && b < bucketCount) claims[b]!++;
    } else if (!minority && lately(p) && p.kernel !== 'probing' && p.kernel !== 'answers') {
      // orphans only for a node whose kernel is gone (or not probed): a live kernel still
      // serves the connections, and an orphan set here would reset them
      for (const b of p.held) if (b >= 0 && b < bucketCount) orphaned[b] = 1;
    }
  }
  return { claims, orphaned };
}

/** Live peers whose view digest differs from ours, since when, and which of them block acquisitions. */
function agreement(view: View, digest: number, now: number, timeoutMs: number, carry: OwnershipCarry | undefined): { disagreeing: string[]; disagreeingSince: Record<string, number>; blocking: string[] } {
  const disagreeing: string[] = [];
  for (const p of view.peers.values()) {
    if (p.alive && p.viewDigest !== 0 && p.viewDigest !== digest) disagreeing.push(p.name);
  }
  disagreeing.sort();
  const disagreeingSince: Record<string, number> = {};
  const blocking: string[] = [];
  const persistent: string[] = [];
  for (const name of disagreeing) {
    const since = carry?.disagreeingSince?.[name] ?? now;
    disagreeingSince[name] = since;
    (now - since < timeoutMs ? blocking : persistent).push(name);
  }
  // Persistent dissenters are overruled only while they are a minority of our live peers:
  // if most peers see the farm differently, we are the odd one out (e.g. we cannot hear a
  // node they all hear) and must not take what it still serves.
  let live = 0;
  for (const p of view.peers.values()) if (p.alive) live++;
  if (2 * persistent.length >= live) blocking.push(...persistent);
  return { disagreeing, disagreeingSince, blocking };
}

interface SplitInput {
  assignment: readonly string[];
  self: SelfState;
  bucketCount: number;
  claims: Uint16Array;
  orphaned: Uint8Array;
  mayAcquire: boolean;
  advertise: MemberState;
  now: number;
  digest: number;
  /** 0: release at once */
  lead: number;
  pending?: PendingHandoff;
  /** a bucket assigned to us that one live holder gives away timed: from when to take it */
  takeFrom: (bucket: number) => number | undefined;
}

interface Split {
  owned: number[];
  orphans: number[];
  acquired: number[];
  released: number[];
  waitingBuckets: number[];
  deferred: number[];
  giving: TimedBucket[];
  taking: TimedBucket[];
  /** the timed release under way after this decision */
  handoff?: PendingHandoff;
}

/** Each bucket as owned (and orphan), acquired, released, waiting for its holders, deferred, given or taken. */
function splitBuckets(x: SplitInput): Split {
  const { assignment, self, bucketCount, orphaned, now } = x;
  const heldSet = new Uint8Array(bucketCount);
  for (const b of self.held) if (b >= 0 && b < bucketCount) heldSet[b] = 1;
  // a timed release under way: its buckets go at its instant, whatever the view says now
  const pending = x.pending && x.pending.atMs > now ? x.pending : undefined;
  const due = new Set(pending ? [] : x.pending?.buckets ?? []);
  const inPending = new Set(pending?.buckets ?? []);
  const out: Split & { toGive: number[] } = { owned: [], orphans: [], acquired: [], released: [], waitingBuckets: [], deferred: [], giving: [], taking: [], toGive: [] };
  const keep = (b: number): void => {
    out.owned.push(b);
    if (orphaned[b]) out.orphans.push(b);
  };
  for (let b = 0; b < bucketCount; b++) {
    const held = heldSet[b] === 1;
    if (held && inPending.has(b)) {
      keep(b);
      out.giving.push({ bucket: b, atMs: pending!.atMs });
    } else if (due.has(b)) {
      // its instant passed: the kernel no longer takes its new flows, a taker may; even if
      // it is ours again by now, take it back only by the usual rules, in a later decision
      if (held) out.released.push(b);
    } else if (assignment[b] === self.name) {
      if (held || mineToTake(x, b, out)) keep(b);
    } else if (held) heldElsewhere(x, b, pending !== undefined, out, keep);
  }
  return withNewHandoff(out, pending, x);
}

/** The timed release under way after this decision: the pending one, or a new one for toGive. */
function withNewHandoff(out: Split & { toGive: number[] }, pending: PendingHandoff | undefined, x: SplitInput): Split {
  const { toGive, ...split } = out;
  if (toGive.length === 0) return pending ? { ...split, handoff: pending } : split;
  const handoff = { atMs: x.now + x.lead, digest: x.digest, buckets: toGive };
  for (const b of toGive) split.giving.push({ bucket: b, atMs: handoff.atMs });
  split.giving.sort((a, b) => a.bucket - b.bucket);
  return { ...split, handoff };
}

/** A bucket we hold that the table gives to another node: deferred, given (timed) or released. */
function heldElsewhere(x: SplitInput, b: number, pending: boolean, out: Split & { toGive: number[] }, keep: (b: number) => void): void {
  if (!x.mayAcquire && x.advertise === 'ready') {
    // Our views differ (a heal or a change half-way through): the assignment we see
    // may be a passing one, and releasing now can mean taking the bucket back a moment
    // later (flapping; the simulator saw it while a partition healed). The new owner
    // waits for our release either way, so keep serving until we agree. A node leaving
    // (draining, standby, down) releases at once: it will not want the bucket back.
    out.deferred.push(b);
    keep(b);
  } else if (x.lead > 0) {
    // timed: announced and given with the others at once, or after the one under way
    if (pending) out.deferred.push(b);
    else out.toGive.push(b);
    keep(b);
  } else out.released.push(b);
}

/** A bucket the table gives us that we do not hold: acquired now (true), or waiting (and maybe taking). */
function mineToTake(x: SplitInput, b: number, out: Split): boolean {
  if (!x.mayAcquire) {
    out.waitingBuckets.push(b);
    return false;
  }
  if (x.claims[b]! > 0) {
    const from = x.takeFrom(b);
    // from <= now: its holder's kernel stopped taking it before now, ours from now on
    if (from === undefined || from > x.now) {
      if (from !== undefined) out.taking.push({ bucket: b, atMs: from });
      out.waitingBuckets.push(b);
      return false;
    }
  }
  out.acquired.push(b);
  return true;
}
