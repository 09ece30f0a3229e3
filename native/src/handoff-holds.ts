// The timed handoff as the kernel holds it. The agent says which owned buckets it is
// giving away from an instant T and which it is taking over from an instant T'; the
// kernel gets the owned set plus one set `hold` of `bucket . [from, to]` intervals of the
// packet's arrival time in which the bucket takes no new flow:
// - giving, T ahead: owned, and held from T on (the kernel flips it at T);
// - taking, T' ahead: owned already, and held until T';
// - an instant that has passed: giving is simply not owned, taking simply owned.
// Only drops live in the interval set, so a hold that outlives its handoff can never make
// two owners, and it needs no lease: it is written when the handoff begins, not in every
// loop. That matters because the kernel's interval set (pipapo) expands every interval
// into netmasks and rebuilds its tables per netmask: a flush and re-add of 11 intervals
// `[T, end of time]` took 45 ms, of 64 took 364 ms, in every loop (measured on 6.18).
// The bounds below are chosen for few netmasks: ~10 per interval instead of ~31.

/** the unit of the intervals: 1024 ns, so an interval's bounds are whole binary blocks of ns */
export const TICK_NS = 1024;
/** how much longer than the lease past T a giving hold lasts: the owned lease written
 *  just before T (and that batch's latency) must end inside it, since the agent stops
 *  owning the bucket at T */
export const GIVING_HOLD_GRACE_MS = 1000;

export interface TimedBucket {
  bucket: number;
  /** ms since the epoch on this node's CLOCK_REALTIME (µs precision) */
  atMs: number;
}

export interface Hold {
  bucket: number;
  kind: 'giving' | 'taking';
  /** first and last tick held (inclusive), ticks of TICK_NS since the epoch */
  fromTick: number;
  toTick: number;
}

export interface HoldPlan {
  /** what the kernel's owned set holds: owned, minus the given away, plus the taken over */
  owned: number[];
  holds: Hold[];
}

const ticksOf = (ms: number): number => (ms * 1e6) / TICK_NS;
export const msOfTick = (tick: number): number => (tick * TICK_NS) / 1e6;

/** [a, end]: the first end ≥ a + span that ends a binary block (a | 2^k - 1): as many
 *  netmasks as a has zero bits below k, where [a, 2^63) had one per zero bit of all 63 */
export function blockEndFrom(a: number, span: number): number {
  for (let size = 1; ; size *= 2) {
    const end = a - (a % size) + size - 1;
    if (end >= a + span) return end;
  }
}

/** [start, c - 1]: the last start ≤ limit that begins a binary block of c (c rounded
 *  down to 2^k): as many netmasks as c has one bits below k */
export function blockStartTo(c: number, limit: number): number {
  for (let size = 1; ; size *= 2) {
    const start = c - (c % size);
    if (start <= limit) return start;
  }
}

/**
 * The kernel's view of a loop's ownership at nowMs, owned buckets leased for leaseMs.
 * `previous`: the holds written last
 * (kept as they are while they still apply, so the set is not rewritten every loop).
 * Instants round to the safe side: a giving one down, a taking one up (and a tick more,
 * the float's precision at ~1e15 ticks being a fraction of one).
 */
export function planHolds(owned: readonly number[], giving: readonly TimedBucket[], taking: readonly TimedBucket[], nowMs: number, leaseMs: number, previous: readonly Hold[] = []): HoldPlan {
  const now = Math.floor(ticksOf(nowMs));
  const span = Math.ceil(ticksOf(leaseMs + GIVING_HOLD_GRACE_MS));
  const kept = new Map(previous.map((h) => [`${h.kind}:${h.bucket}:${h.kind === 'giving' ? h.fromTick : h.toTick}`, h]));
  const mine = new Set(owned);
  const holds: Hold[] = [];
  for (const g of giving) {
    const a = Math.floor(ticksOf(g.atMs));
    if (a <= now) {
      mine.delete(g.bucket);
      continue;
    }
    const h = kept.get(`giving:${g.bucket}:${a}`);
    holds.push(h && h.toTick >= a + span ? h : { bucket: g.bucket, kind: 'giving', fromTick: a, toTick: blockEndFrom(a, span) });
  }
  for (const t of taking) {
    mine.add(t.bucket);
    const c = Math.ceil(ticksOf(t.atMs)) + 1;
    if (c <= now) continue;
    const h = kept.get(`taking:${t.bucket}:${c - 1}`);
    holds.push(h && h.fromTick <= now ? h : { bucket: t.bucket, kind: 'taking', fromTick: blockStartTo(c, now), toTick: c - 1 });
  }
  return { owned: [...mine].sort((a, b) => a - b), holds };
}

/** Whether the kernel's hold set must be rewritten to `plan`, given what was written last
 *  (undefined: unknown, e.g. a table just replaced). Not when only holds that no longer
 *  matter would go: past their interval, or of a bucket the kernel no longer owns. */
export function holdsChanged(plan: HoldPlan, written: readonly Hold[] | undefined, nowMs: number): boolean {
  if (written === undefined) return true;
  const now = Math.floor(ticksOf(nowMs));
  const owned = new Set(plan.owned);
  const key = (h: Hold): string => `${h.bucket}:${h.fromTick}:${h.toTick}`;
  const live = written.filter((h) => h.toTick >= now && owned.has(h.bucket)).map(key).sort();
  const want = plan.holds.map(key).sort();
  return live.length !== want.length || live.some((k, i) => k !== want[i]);
}

/** the number of netmasks the kernel makes of [from, to] (what an interval costs it) */
export function netmasks(from: number, to: number): number {
  let n = 0;
  for (let a = from; a <= to; n++) {
    let size = 1;
    while (a % (size * 2) === 0 && a + size * 2 - 1 <= to) size *= 2;
    a += size;
  }
  return n;
}
