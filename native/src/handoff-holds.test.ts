import { blockEndFrom, blockStartTo, holdsChanged, msOfTick, netmasks, planHolds, TICK_NS, type Hold, type HoldPlan } from './handoff-holds.js';

const NOW = 1_764_700_000_123.456; // ms since the epoch, µs precision like realtimeMs()
const LEASE = 80;
const tick = (ms: number): number => (ms * 1e6) / TICK_NS;

/** does the kernel take a new flow of `bucket` arriving at ms `t`, as planned? */
function accepts(plan: HoldPlan, bucket: number, t: number): boolean {
  if (!plan.owned.includes(bucket)) return false;
  const k = Math.floor(tick(t));
  return !plan.holds.some((h) => h.bucket === bucket && h.fromTick <= k && k <= h.toTick);
}

/** a deterministic stream of numbers in [0, 1) */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe('netmasks', () => {
  test.each([
    [0, 0, 1], [0, 1, 1], [0, 3, 1], [0, 1023, 1], [1, 2, 2], [1, 6, 4], [4, 7, 1], [5, 12, 4], [8, 15, 1], [7, 8, 2],
  ])('[%i, %i] is %i', (from, to, n) => {
    expect(netmasks(from, to)).toBe(n);
  });
});

describe('interval bounds', () => {
  const random = prng(7);
  const starts = Array.from({ length: 200 }, () => Math.floor(tick(NOW) + random() * 2 ** 30));
  test('blockEndFrom: the first end of a binary block of a that covers the span', () => {
    for (const a of starts) {
      for (const span of [1, 1000, tick(1080), tick(601_000)]) {
        const end = blockEndFrom(a, span);
        expect(end).toBeGreaterThanOrEqual(a + span);
        // the end of a's block of 2^i, for growing i: the first one far enough
        const ends = Array.from({ length: 54 }, (_, i) => a - (a % 2 ** i) + 2 ** i - 1);
        expect(end).toBe(ends.find((e) => e >= a + span));
      }
    }
  });
  test('blockStartTo: the last start at or below the limit that c rounds down to', () => {
    for (const c of starts) {
      for (const back of [1, 1000, tick(250), tick(10_000)]) {
        const limit = c - back;
        const start = blockStartTo(c, limit);
        expect(start).toBeLessThanOrEqual(limit);
        // c rounded down to 2^i, for growing i: the first one at or below the limit
        const roundings = Array.from({ length: 54 }, (_, i) => c - (c % 2 ** i));
        expect(start).toBe(roundings.find((r) => r <= limit));
      }
    }
  });
  // (the old intervals to the end of time began at a µs, not a tick: ~5 more each)
  test('fewer than half the netmasks of an interval to the end of time (the kernel builds one rule each)', () => {
    let bounded = 0;
    let open = 0;
    for (const a of starts) {
      bounded += netmasks(a, blockEndFrom(a, tick(LEASE + 1000)));
      open += netmasks(a, 2 ** 53 - 1);
    }
    expect(bounded / starts.length).toBeLessThan(13);
    expect(open / bounded).toBeGreaterThan(2);
  });
});

describe('planHolds', () => {
  test('giving ahead: owned and held from its instant; passed: not owned, no hold', () => {
    const ahead = planHolds([1, 2, 3], [{ bucket: 2, atMs: NOW + 200 }], [], NOW, LEASE);
    expect(ahead.owned).toEqual([1, 2, 3]);
    expect(ahead.holds).toHaveLength(1);
    const h = ahead.holds[0]!;
    expect(h).toMatchObject({ bucket: 2, kind: 'giving' });
    expect(msOfTick(h.fromTick)).toBeLessThanOrEqual(NOW + 200);
    expect(NOW + 200 - msOfTick(h.fromTick)).toBeLessThan(0.0011);
    expect(msOfTick(h.toTick)).toBeGreaterThan(NOW + 200 + LEASE + 1000);
    const passed = planHolds([1, 2, 3], [{ bucket: 2, atMs: NOW - 1 }], [], NOW, LEASE);
    expect(passed).toEqual({ owned: [1, 3], holds: [] });
  });
  test('taking ahead: owned and held until its instant, from before now; passed: owned, no hold', () => {
    const ahead = planHolds([1], [], [{ bucket: 5, atMs: NOW + 200 }], NOW, LEASE);
    expect(ahead.owned).toEqual([1, 5]);
    const h = ahead.holds[0]!;
    expect(h).toMatchObject({ bucket: 5, kind: 'taking' });
    expect(msOfTick(h.fromTick)).toBeLessThanOrEqual(NOW);
    expect(msOfTick(h.toTick + 1)).toBeGreaterThanOrEqual(NOW + 200);
    expect(msOfTick(h.toTick + 1) - (NOW + 200)).toBeLessThan(0.0031);
    expect(planHolds([1], [], [{ bucket: 5, atMs: NOW - 1 }], NOW, LEASE)).toEqual({ owned: [1, 5], holds: [] });
  });
  test('no instant: the owned set as it is, nothing held', () => {
    expect(planHolds([4, 0, 9], [], [], NOW, LEASE)).toEqual({ owned: [0, 4, 9], holds: [] });
  });
  test('random handoffs: giver and taker never both take a flow, and the gap is a few µs', () => {
    const random = prng(11);
    for (let i = 0; i < 300; i++) {
      const T = NOW + random() * 400;
      // the giver's instant T; the taker takes at T' = T + its clock bound (0..1 ms)
      const Tp = T + random() * 1;
      const plannedAt = NOW - random() * 100;
      const giver = planHolds([0, 1], [{ bucket: 1, atMs: T }], [], plannedAt, LEASE);
      const taker = planHolds([], [], [{ bucket: 1, atMs: Tp }], plannedAt, LEASE);
      for (let j = 0; j < 50; j++) {
        // arrivals from the plan on, up to the giver's lease past T
        const t = plannedAt + random() * (T - plannedAt + LEASE);
        const g = accepts(giver, 1, t);
        const k = accepts(taker, 1, t);
        expect(g && k).toBe(false);
        if (t < T - 0.002) expect(g).toBe(true);
        if (t > Tp + 0.004) expect(k).toBe(true);
      }
    }
  });
  test('kept while they apply: the same holds loop after loop, so nothing is rewritten', () => {
    const giving = [{ bucket: 2, atMs: NOW + 200 }];
    const taking = [{ bucket: 7, atMs: NOW + 150 }];
    const first = planHolds([1, 2], giving, taking, NOW, LEASE);
    expect(holdsChanged(first, undefined, NOW)).toBe(true);
    for (let dt = 10; dt < 150; dt += 10) {
      const next = planHolds([1, 2], giving, taking, NOW + dt, LEASE, first.holds);
      expect(next.holds).toEqual(first.holds);
      expect(holdsChanged(next, first.holds, NOW + dt)).toBe(false);
    }
    // a new instant is written
    const moved = planHolds([1, 2], [{ bucket: 2, atMs: NOW + 400 }], taking, NOW + 20, LEASE, first.holds);
    expect(holdsChanged(moved, first.holds, NOW + 20)).toBe(true);
  });
  test('instants passed: their holds go without a write, unless a held bucket is owned again', () => {
    const giving = [{ bucket: 2, atMs: NOW + 200 }];
    const taking = [{ bucket: 7, atMs: NOW + 150 }];
    const written = planHolds([1, 2], giving, taking, NOW, LEASE).holds;
    // both passed: 2 no longer owned (its hold harmless), 7's hold over
    const after = planHolds([1, 2], giving, taking, NOW + 250, LEASE, written);
    expect(after).toEqual({ owned: [1, 7], holds: [] });
    expect(holdsChanged(after, written, NOW + 250)).toBe(false);
    // the handoff done: 2 gone from the agent's owned, 7 plainly owned
    expect(holdsChanged(planHolds([1, 7], [], [], NOW + 300, LEASE, written), written, NOW + 300)).toBe(false);
    // 2 owned again while its old hold still drops its flows: rewrite (the hold goes)
    const back = planHolds([1, 2, 7], [], [], NOW + 400, LEASE, written);
    expect(holdsChanged(back, written, NOW + 400)).toBe(true);
    expect(back.holds).toEqual([]);
  });
  test('a kept taking hold that does not reach back to now is replaced', () => {
    const stale: Hold[] = [{ bucket: 7, kind: 'taking', fromTick: Math.floor(tick(NOW)) + 5, toTick: Math.ceil(tick(NOW + 150)) }];
    const p = planHolds([], [], [{ bucket: 7, atMs: NOW + 150 }], NOW, LEASE, stale);
    expect(p.holds[0]!.fromTick).toBeLessThanOrEqual(Math.floor(tick(NOW)));
  });
});
