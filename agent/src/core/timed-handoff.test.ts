// The timed handoff's pure parts: the clock bound, the giver's announcement and release
// at T, the taker's instant T' (ownership.ts, membership.ts).
import { assignBuckets, currentOwners, type Member } from './assignment.js';
import type { Heartbeat } from './heartbeat-codec.js';
import { applyHeartbeat, clockAheadBound, CLOCK_SAMPLES, createView, MAX_DRIFT, refineClockSample, tick, type View } from './membership.js';
import { decideOwnership, MAX_TAKE_AHEAD_MS, tableDigest, type OwnershipDecision, type OwnershipInput } from './ownership.js';
import { createRng } from './prng.js';

const B = 16;
const TH = 500;
const ALL = [...Array(B).keys()];
const AB: Member[] = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }];

function hb(node: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return { farm: 'f', node, incarnation: 1, seq: 1, sentAt: 0, weight: 1, state: 'ready', viewDigest: 0, bucketCount: B, held: [], nonce: 0, echo: [], ...over };
}

/** digest and table of members whose claims are these */
function table(members: readonly Member[], claims: Array<{ name: string; held: readonly number[] }>): { digest: number; assignment: string[] } {
  const assignment = assignBuckets(members, B, currentOwners(members, B, claims));
  return { digest: tableDigest(assignment), assignment };
}

function input(over: Partial<OwnershipInput> & { view: View }): OwnershipInput {
  return { self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [] }, bucketCount: B, now: 10_000, failureThresholdMs: TH, ...over };
}

const of = (assignment: readonly string[], name: string): number[] => assignment.flatMap((o, b) => (o === name ? [b] : []));

describe('clockAheadBound', () => {
  test('the smallest lag, grown by the drift since its sample; none before any sample', () => {
    expect(clockAheadBound({}, 0)).toBeUndefined();
    const lags = [{ at: 100, lag: 5 }, { at: 200, lag: 2 }, { at: 300, lag: 3 }];
    expect(clockAheadBound({ lags }, 300)).toBeCloseTo(2 + 100 * MAX_DRIFT, 9);
    // far later, the oldest small lag has drifted past a newer one
    expect(clockAheadBound({ lags: [{ at: 0, lag: 1 }, { at: 10_000, lag: 3 }] }, 10_000)).toBeCloseTo(3, 9);
  });

  test('property: a bound of the true offset for any delays >= 0 and a constant offset', () => {
    const rng = createRng(7);
    for (let i = 0; i < 500; i++) {
      const offset = (rng.next() - 0.5) * 200; // our clock - theirs
      let v = createView('a');
      let trueAt = 1000;
      for (let k = 0; k < 12; k++) {
        const sentTrue = trueAt;
        const delay = rng.next() * rng.pick([0.05, 5, 60]);
        trueAt += 50 * rng.next();
        const recvLocal = sentTrue + delay + offset;
        v = applyHeartbeat(v, hb('b', { seq: k + 1, sentAt: sentTrue }), recvLocal).view;
      }
      const p = v.peers.get('b')!;
      expect(p.lags).toHaveLength(CLOCK_SAMPLES);
      expect(clockAheadBound(p, trueAt + offset)!).toBeGreaterThanOrEqual(offset);
    }
  });

  test('the kernel receive time, when given, is the sample: our read latency stays out of the bound', () => {
    // sent at 0 on its clock, arrived at 0.05 (kernel), read at 12 (a busy loop)
    const v = applyHeartbeat(createView('a'), hb('b', { seq: 1, sentAt: 0 }), 12, undefined, 0.05).view;
    expect(v.peers.get('b')!.lags).toEqual([{ at: 0.05, lag: 0.05 }]);
    // a receive time after the read (a clock step in between) or not a number: the read time
    for (const rx of [13, NaN]) {
      const w = applyHeartbeat(createView('a'), hb('b', { seq: 1, sentAt: 0 }), 12, undefined, rx).view;
      expect(w.peers.get('b')!.lags).toEqual([{ at: 12, lag: 12 }]);
    }
  });

  test('the same heartbeat on the other path refines the last sample only if its receive time is tighter', () => {
    // UDP copy taken first (read time 9), then the L2 copy with the kernel's time 0.1
    let v = applyHeartbeat(createView('a'), hb('b', { seq: 1, sentAt: 0 }), 4).view;
    v = applyHeartbeat(v, hb('b', { seq: 2, sentAt: 50 }), 59).view;
    const refined = refineClockSample(v, hb('b', { seq: 2, sentAt: 50 }), 59.5, 50.1);
    expect(refined.peers.get('b')!.lags).toEqual([{ at: 4, lag: 4 }, { at: 50.1, lag: expect.closeTo(0.1, 9) as number }]);
    // not tighter, no kernel time, another seq or incarnation: unchanged (the same object)
    expect(refineClockSample(refined, hb('b', { seq: 2, sentAt: 50 }), 60, 52)).toBe(refined);
    expect(refineClockSample(v, hb('b', { seq: 2, sentAt: 50 }), 60, undefined)).toBe(v);
    expect(refineClockSample(v, hb('b', { seq: 1, sentAt: 0 }), 60, 0.1)).toBe(v);
    expect(refineClockSample(v, hb('b', { incarnation: 2, seq: 2, sentAt: 50 }), 60, 50.1)).toBe(v);
    expect(refineClockSample(v, hb('c', { seq: 2, sentAt: 50 }), 60, 50.1)).toBe(v);
  });

  test('a new incarnation starts the samples over', () => {
    let v = applyHeartbeat(createView('a'), hb('b', { seq: 1, sentAt: 0 }), 1).view;
    v = applyHeartbeat(v, hb('b', { seq: 2, sentAt: 50 }), 90).view;
    expect(v.peers.get('b')!.lags).toHaveLength(2);
    v = applyHeartbeat(v, hb('b', { incarnation: 2, seq: 1, sentAt: 100 }), 140).view;
    expect(v.peers.get('b')!.lags).toEqual([{ at: 140, lag: 40 }]);
  });
});

describe('the giver', () => {
  // a holds everything, b is ready and holds nothing, both compute the same table
  const now = 10_000;
  const claims = [{ name: 'a', held: ALL }, { name: 'b', held: [] as number[] }];
  const t = table(AB, claims);
  const toB = of(t.assignment, 'b');
  const view = (over: Partial<Heartbeat> = {}, at = now): View => applyHeartbeat(createView('a'), hb('b', { viewDigest: t.digest, sentAt: at, ...over }), at).view;
  const self = { name: 'a', weight: 1, state: 'ready' as const, startedAt: 0, held: ALL };
  const next = (d: OwnershipDecision, at: number, v = view(), held = d.owned): OwnershipDecision =>
    decideOwnership(input({ view: v, self: { ...self, held }, now: at, handoffLeadMs: 50, carry: d.carry }));

  test('lead 0: releases at once, as before', () => {
    const d = decideOwnership(input({ view: view(), self, now }));
    expect(toB.length).toBeGreaterThan(0);
    expect(d.released).toEqual(toB);
    expect(d.giving).toEqual([]);
    expect(d.announce).toBeUndefined();
  });

  test('announces T = now + lead, keeps the buckets (kernel giving from T), releases them at T', () => {
    const d = decideOwnership(input({ view: view(), self, now, handoffLeadMs: 50 }));
    expect(d.released).toEqual([]);
    expect(d.owned).toEqual(ALL);
    expect(d.giving).toEqual(toB.map((bucket) => ({ bucket, atMs: now + 50 })));
    expect(d.announce).toEqual({ atMs: now + 50, digest: t.digest });
    expect(d.nextAt).toBe(now + 50);
    // meanwhile the same instant, not a later one
    const mid = next(d, now + 30);
    expect(mid.giving).toEqual(d.giving);
    expect(mid.announce).toEqual(d.announce);
    expect(mid.released).toEqual([]);
    // at T: gone, nothing announced any more
    const end = next(mid, now + 50);
    expect(end.released).toEqual(toB);
    expect(end.owned).toEqual(of(t.assignment, 'a'));
    expect(end.giving).toEqual([]);
    expect(end.announce).toBeUndefined();
    expect(end.nextAt).toBeUndefined();
  });

  test('never cancelled: the taker dying during the lead does not keep the buckets past T, nor take them back at T', () => {
    const d = decideOwnership(input({ view: view(), self, now, handoffLeadMs: 50 }));
    // b dies: everything is a's again under the new view
    const dead = tick(view(), now + 40 + TH, TH).view;
    expect(dead.peers.get('b')!.alive).toBe(false);
    const mid = next(d, now + 40, dead);
    expect(mid.giving.map((g) => g.bucket)).toEqual(toB);
    const at = next(mid, now + 40 + TH, dead);
    expect(at.released).toEqual(toB);
    expect(at.acquired).toEqual([]);
    // later, by the usual rules (nobody claims them): acquired again
    const later = next(at, now + 41 + TH, dead);
    expect(later.acquired).toEqual(toB);
  });

  test('a second release waits for the one under way, then gets its own instant', () => {
    const d = decideOwnership(input({ view: view(), self, now, handoffLeadMs: 50 }));
    // c turns up, ready, agreeing: it is given some of a's buckets too
    const ABC: Member[] = [...AB, { name: 'c', weight: 1 }];
    const t3 = table(ABC, claims);
    let v = view({ viewDigest: t3.digest });
    v = applyHeartbeat(v, hb('c', { viewDigest: t3.digest, sentAt: now + 10 }), now + 10).view;
    const mid = next(d, now + 10, v);
    expect(mid.giving).toEqual(d.giving); // the first handoff as it was
    expect(mid.deferred.length).toBeGreaterThan(0); // the rest waits
    for (const b of mid.deferred) expect(mid.owned).toContain(b);
    const at = next(mid, now + 50, v);
    expect(at.released).toEqual(toB);
    expect(at.announce?.atMs).toBe(now + 100);
    expect(at.giving.map((g) => g.bucket).sort((x, y) => x - y)).toEqual(mid.deferred);
  });

  test('a node going down releases at once even with a lead; a draining one gives timed', () => {
    const down = decideOwnership(input({ view: view(), self: { ...self, state: 'down' }, now, handoffLeadMs: 50 }));
    expect(down.released).toEqual(ALL);
    expect(down.giving).toEqual([]);
    const drain = decideOwnership(input({ view: view(), self: { ...self, state: 'draining' }, now, handoffLeadMs: 50 }));
    expect(drain.released).toEqual([]);
    expect(drain.giving.map((g) => g.bucket)).toEqual(ALL);
  });

  test('views that differ: deferred as before, nothing announced', () => {
    const d = decideOwnership(input({ view: view({ viewDigest: t.digest ^ 1 }), self, now, handoffLeadMs: 50 }));
    expect(d.deferred).toEqual(toB);
    expect(d.giving).toEqual([]);
    expect(d.announce).toBeUndefined();
  });
});

describe('the taker', () => {
  // b holds everything and gives a its share at T; a hears it with a lag
  const now = 10_000;
  const claims = [{ name: 'b', held: ALL }];
  const t = table(AB, claims);
  const mine = of(t.assignment, 'a');
  const T = now + 50;
  /** b's heartbeats: sent at b-clock s, received here at local s + lag */
  const viewWith = (lags: number[], giving: Heartbeat['giving'] | null = { atMs: T, digest: t.digest }, over: Partial<Heartbeat> = {}): View => {
    let v = createView('a');
    lags.forEach((lag, i) => {
      const sentAt = now - 10 * (lags.length - 1 - i);
      v = applyHeartbeat(v, hb('b', { seq: i + 1, sentAt, held: ALL, viewDigest: t.digest, ...(giving ? { giving } : {}), ...over }), sentAt + lag).view;
    });
    return v;
  };
  const decide = (v: View, at = now, over: Partial<OwnershipInput> = {}): OwnershipDecision => decideOwnership(input({ view: v, now: at, ...over }));

  test('takes from T + the smallest lag, not owned before', () => {
    const d = decide(viewWith([3, 0.4, 2]));
    const from = d.taking[0]!.atMs;
    expect(d.taking.map((x) => x.bucket)).toEqual(mine);
    expect(from).toBeGreaterThanOrEqual(T + 0.4);
    expect(from).toBeLessThan(T + 0.5);
    expect(d.owned).toEqual([]);
    expect(d.waiting.map((w) => w.bucket)).toEqual(mine);
    expect(d.nextAt).toBe(from);
    // its own lead does not matter: taking is always timed
    expect(decide(viewWith([3, 0.4, 2]), now, { handoffLeadMs: 0 }).taking).toEqual(d.taking);
    // at T' (its holder still claims them, its kernel no longer takes them): acquired
    const at = decide(viewWith([3, 0.4, 2]), from);
    expect(at.acquired).toEqual(mine);
    expect(at.taking).toEqual([]);
    expect(at.nextAt).toBeUndefined();
  });

  test('a holder whose clock is ahead of ours: T is early on our clock, by that much', () => {
    // b's clock 30 ms ahead: lags are delay - 30
    const d = decide(viewWith([-29.5, -29.8, -29]));
    // (+ the drift allowance over the ~70 ms from the sample to T, and 2 µs of rounding)
    expect(d.taking[0]!.atMs).toBeGreaterThanOrEqual(T - 29.8);
    expect(d.taking[0]!.atMs).toBeLessThan(T - 29.8 + 0.1);
  });

  test('no timed take: another digest (announced or current), two holders, no announcement, too far ahead, acquisitions blocked', () => {
    expect(decide(viewWith([1], { atMs: T, digest: t.digest ^ 1 })).taking).toEqual([]);
    expect(decide(viewWith([1], { atMs: T, digest: t.digest }, { viewDigest: t.digest ^ 1 })).taking).toEqual([]);
    expect(decide(viewWith([1], null)).taking).toEqual([]);
    expect(decide(viewWith([1], { atMs: now + MAX_TAKE_AHEAD_MS + 1, digest: t.digest })).taking).toEqual([]);
    // resuming after a stall: nothing acquired, nothing taken
    const v = viewWith([1]);
    expect(decide({ ...v, awakeSince: now - 1 }, now, { stallSettleMs: TH }).taking).toEqual([]);
    // a second claimant (c holds the same buckets): not a handoff
    const ABC: Member[] = [...AB, { name: 'c', weight: 1 }];
    const t3 = table(ABC, [{ name: 'b', held: ALL }, { name: 'c', held: ALL }]);
    let v3 = createView('a');
    v3 = applyHeartbeat(v3, hb('b', { held: ALL, viewDigest: t3.digest, giving: { atMs: T, digest: t3.digest }, sentAt: now }), now).view;
    v3 = applyHeartbeat(v3, hb('c', { held: ALL, viewDigest: t3.digest, sentAt: now }), now).view;
    const d3 = decide(v3);
    expect(d3.taking).toEqual([]);
    expect(d3.acquired).toEqual([]);
  });

  test('a dead holder: today\'s rules (orphans), no taking', () => {
    const v = tick(viewWith([1]), now + TH + 1, TH).view;
    const d = decide(v, now + TH + 1);
    expect(d.taking).toEqual([]);
    expect(d.acquired).toEqual(mine);
  });
});

describe('giver and taker together (pure, shared true time, random skew and delay)', () => {
  test('property: the taker never takes before the giver stops, in true time', () => {
    const rng = createRng(11);
    for (let i = 0; i < 300; i++) {
      const offA = (rng.next() - 0.5) * 100; // a (taker) clock - true
      const offB = (rng.next() - 0.5) * 100; // b (giver) clock - true
      const claims = [{ name: 'b', held: ALL }];
      const t = table(AB, claims);
      let va = createView('a');
      let trueNow = 5000;
      // b's heartbeats to a, with random delays; the last one announces T (b's clock)
      const lead = 20 + rng.next() * 80;
      let T = 0;
      for (let k = 0; k < 10; k++) {
        const sentTrue = trueNow;
        const giving = k === 9 ? { atMs: (T = sentTrue + offB + lead), digest: t.digest } : undefined;
        const delay = rng.next() * rng.pick([0.1, 3, 40]);
        va = applyHeartbeat(va, hb('b', { seq: k + 1, sentAt: sentTrue + offB, held: ALL, viewDigest: t.digest, ...(giving ? { giving } : {}) }), sentTrue + delay + offA).view;
        trueNow += 50;
      }
      const d = decideOwnership(input({ view: va, now: trueNow - 50 + offA + 40 }));
      if (d.taking.length === 0) continue;
      const takeTrue = d.taking[0]!.atMs - offA;
      const giveTrue = T - offB;
      expect(takeTrue).toBeGreaterThanOrEqual(giveTrue);
    }
  });
});
