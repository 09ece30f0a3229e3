import {
  assignBuckets,
  countByOwner,
  currentOwners,
  fmix32,
  hashString,
  minimumMoves,
  movedBuckets,
  normalizeMembers,
  shareBounds,
  type Member,
} from './assignment.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRng, type Rng } from './prng.js';

function randomMembers(rng: Rng, n: number, maxWeight = 10, zeroChance = 0.1): Member[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `n${i}-${rng.int(0, 1e6)}`,
    weight: rng.next() < zeroChance ? 0 : rng.int(1, maxWeight),
  }));
}

function checkBalance(members: Member[], bucketCount: number, owners: string[]): void {
  const live = normalizeMembers(members);
  const total = live.reduce((s, m) => s + m.weight, 0);
  const counts = countByOwner(owners);
  expect(owners).toHaveLength(bucketCount);
  if (live.length === 0) {
    expect(counts.size).toBe(0);
    return;
  }
  const names = new Set(live.map((m) => m.name));
  for (const o of owners) if (!names.has(o)) throw new Error(`bucket owned by ${JSON.stringify(o)}, not a live member`);
  for (const m of live) {
    const exact = (m.weight * bucketCount) / total;
    const got = counts.get(m.name) ?? 0;
    if (got < Math.floor(exact) || got > Math.ceil(exact)) {
      throw new Error(`${m.name} weight ${m.weight} owns ${got}, share ${exact.toFixed(3)}`);
    }
  }
}

describe('hash helpers', () => {
  test('fmix32 is a bijection-like avalanche (distinct outputs on a range)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10000; i++) seen.add(fmix32(i));
    expect(seen.size).toBe(10000);
  });
  test('hashString is stable and spreads', () => {
    expect(hashString('node-a')).toBe(hashString('node-a'));
    expect(hashString('node-a')).not.toBe(hashString('node-b'));
    const low = new Array(16).fill(0);
    for (let i = 0; i < 16000; i++) low[hashString(`n${i}`) & 15]++;
    for (const c of low) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });
});

describe('assignBuckets basics', () => {
  test('no members, or only weight 0, leaves every bucket unowned', () => {
    expect(assignBuckets([], 8)).toEqual(new Array(8).fill(''));
    expect(assignBuckets([{ name: 'a', weight: 0 }], 4)).toEqual(['', '', '', '']);
  });
  test('one member owns everything', () => {
    expect(assignBuckets([{ name: 'a', weight: 3 }], 16)).toEqual(new Array(16).fill('a'));
  });
  test('weight 0 members own nothing', () => {
    const owners = assignBuckets([{ name: 'a', weight: 1 }, { name: 'b', weight: 0 }, { name: 'c', weight: 1 }], 256);
    expect(owners.includes('b')).toBe(false);
    expect(countByOwner(owners).get('a')).toBe(128);
  });
  test('negative, NaN and infinite weights count as 0', () => {
    const owners = assignBuckets([{ name: 'a', weight: 1 }, { name: 'b', weight: -1 }, { name: 'c', weight: NaN }, { name: 'd', weight: Infinity }], 64);
    expect(new Set(owners)).toEqual(new Set(['a']));
  });
  test('duplicate names collapse to the larger weight', () => {
    const a = assignBuckets([{ name: 'a', weight: 1 }, { name: 'a', weight: 3 }, { name: 'b', weight: 1 }], 256);
    const b = assignBuckets([{ name: 'b', weight: 1 }, { name: 'a', weight: 3 }], 256);
    expect(a).toEqual(b);
    expect(countByOwner(a).get('a')).toBe(192);
  });
  test('equal weights split evenly', () => {
    const owners = assignBuckets(['x', 'y', 'z', 'w'].map((name) => ({ name, weight: 5 })), 1024);
    expect([...countByOwner(owners).values()]).toEqual([256, 256, 256, 256]);
  });
  test('shareBounds: floors plus extras add up', () => {
    const { bounds, extra } = shareBounds([{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }], 256);
    expect(bounds.get('a')).toEqual({ floor: 85, ceil: 86 });
    expect(extra).toBe(1);
  });
});

describe('assignBuckets properties (seeded)', () => {
  test('balanced within one bucket of the weighted share, 1..64 nodes, 256/1024 buckets', () => {
    const rng = createRng(1);
    for (let trial = 0; trial < 120; trial++) {
      const n = rng.int(1, 64);
      const B = rng.pick([256, 1024]);
      const ms = randomMembers(rng, n, rng.pick([1, 3, 10, 1000]));
      checkBalance(ms, B, assignBuckets(ms, B));
    }
  });
  test('small and odd bucket counts are balanced too', () => {
    const rng = createRng(2);
    for (let trial = 0; trial < 200; trial++) {
      const ms = randomMembers(rng, rng.int(1, 12), 5);
      const B = rng.int(1, 40);
      checkBalance(ms, B, assignBuckets(ms, B));
    }
  });
  test('order of members does not matter', () => {
    const rng = createRng(3);
    for (let trial = 0; trial < 30; trial++) {
      const ms = randomMembers(rng, rng.int(1, 40));
      const B = rng.pick([256, 1024]);
      expect(assignBuckets(rng.shuffle(ms), B)).toEqual(assignBuckets(ms, B));
    }
  });
  test('weights are relative: scaling every weight changes nothing', () => {
    const rng = createRng(4);
    for (let trial = 0; trial < 10; trial++) {
      const ms = randomMembers(rng, rng.int(1, 20), 10, 0);
      const scaled = ms.map((m) => ({ ...m, weight: m.weight * 7 }));
      // shares are identical; keys differ by a common factor, so the greedy order is the same
      expect(assignBuckets(scaled, 256)).toEqual(assignBuckets(ms, 256));
    }
  });

  type Change = 'join' | 'leave' | 'weight';
  function change(rng: Rng, ms: Member[], kind: Change): Member[] {
    if (kind === 'join') return [...ms, { name: `new-${rng.int(0, 1e9)}`, weight: rng.int(1, 5) }];
    if (kind === 'leave') {
      const j = rng.int(0, ms.length - 1);
      return ms.filter((_, i) => i !== j);
    }
    const j = rng.int(0, ms.length - 1);
    return ms.map((m, i) => (i === j ? { ...m, weight: m.weight === 5 ? 2 : m.weight + 1 } : m));
  }
  function averageRatio(seed: number, nodes: number, B: number, trials: number): { avg: number; worst: number } {
    const rng = createRng(seed);
    let sum = 0;
    let count = 0;
    let worst = 0;
    for (let t = 0; t < trials; t++) {
      const ms = randomMembers(rng, nodes, 5, 0);
      const before = assignBuckets(ms, B);
      for (const kind of ['join', 'leave', 'weight'] as Change[]) {
        const after = assignBuckets(change(rng, ms, kind), B);
        const moved = movedBuckets(before, after);
        const min = minimumMoves(before, after);
        expect(moved).toBeGreaterThanOrEqual(min);
        if (min === 0) continue;
        sum += moved / min;
        count++;
        worst = Math.max(worst, moved / min);
      }
    }
    return { avg: sum / count, worst };
  }
  // History-free (nothing held): what a cold start computes. Bounds a little above the
  // measured averages, so a regression fails; the sticky tables below are what agents use.
  test.each([
    [3, 256, 1.3],
    [16, 1024, 2.5],
    [64, 256, 5],
  ])('history-free, %i nodes x %i buckets: moved/minimum averages <= %f', (nodes, B, bound) => {
    const { avg } = averageRatio(nodes * 31 + B, nodes, B, nodes >= 64 ? 12 : 25);
    expect(avg).toBeLessThanOrEqual(bound);
  });
  test('a leave only moves buckets to survivors and takes every bucket of the leaver', () => {
    const rng = createRng(5);
    const ms = randomMembers(rng, 10, 5, 0);
    const before = assignBuckets(ms, 1024);
    const gone = ms[3]!.name;
    const after = assignBuckets(ms.filter((m) => m.name !== gone), 1024);
    expect(after.includes(gone)).toBe(false);
    for (let b = 0; b < 1024; b++) if (before[b] === gone) expect(after[b]).not.toBe('');
  });
  test('minimumMoves counts what must move', () => {
    expect(minimumMoves(['a', 'a', 'b', 'b'], ['a', 'b', 'b', 'b'])).toBe(1);
    expect(minimumMoves(['a', 'a', 'b', 'b'], ['b', 'b', 'a', 'a'])).toBe(0);
    expect(minimumMoves(['a', 'a'], ['', ''])).toBe(2);
    expect(minimumMoves(['', ''], ['a', 'b'])).toBe(2);
    expect(movedBuckets(['a', 'a', 'b', 'b'], ['b', 'b', 'a', 'a'])).toBe(4);
  });
});

describe('assignBuckets speed', () => {
  // Measured in a plain node process: inside jest's vm sandbox every global lookup (Math.log)
  // is ~20x slower, which says nothing about the agent.
  test('64 nodes x 1024 buckets stays in the millisecond range', () => {
    const here = fileURLToPath(new URL('./assignment.js', import.meta.url));
    const script = `
      const { assignBuckets } = await import(${JSON.stringify(pathToFileURL(here).href)});
      const ms = Array.from({ length: 64 }, (_, i) => ({ name: 'node-' + i, weight: 1 + (i % 5) }));
      for (let i = 0; i < 10; i++) assignBuckets(ms, 1024);
      let best = Infinity;
      for (let i = 0; i < 10; i++) {
        const t0 = process.cpuUsage();
        assignBuckets(ms, 1024);
        const c = process.cpuUsage(t0);
        best = Math.min(best, (c.user + c.system) / 1000);
      }
      console.log(best);`;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const best = Number(out.stdout.trim());
    expect(Number.isFinite(best)).toBe(true);
    // a sanity bound, not a benchmark: 3-9 ms best of 10 on this 2-core machine (9 with the
    // other tests running, 17 seen once under the full suite); a quadratic regression is 100s
    expect(best).toBeLessThan(50);
  });
});

/** Holders for a sticky step: a table, as each member's held list. */
function claimsOf(owners: readonly string[]): Array<{ name: string; held: number[] }> {
  const by = new Map<string, number[]>();
  owners.forEach((o, b) => {
    if (o !== '') by.set(o, [...(by.get(o) ?? []), b]);
  });
  return [...by.entries()].map(([name, held]) => ({ name, held }));
}

describe('sticky assignment (with the current holders)', () => {
  type Step = 'join' | 'leave' | 'weight' | 'standby';
  function step(rng: Rng, ms: Member[], kind: Step): Member[] {
    if (kind === 'join' || ms.length === 0) return [...ms, { name: `j-${rng.int(0, 1e9)}`, weight: rng.int(1, 5) }];
    const j = rng.int(0, ms.length - 1);
    if (kind === 'leave') return ms.filter((_, i) => i !== j);
    if (kind === 'standby') return ms.map((m, i) => (i === j ? { ...m, weight: m.weight === 0 ? rng.int(1, 5) : 0 } : m));
    return ms.map((m, i) => (i === j ? { ...m, weight: m.weight === 5 ? 1 : m.weight + 1 } : m));
  }

  test('a table is its own fixed point: holding it moves nothing', () => {
    const rng = createRng(21);
    for (let trial = 0; trial < 150; trial++) {
      const ms = randomMembers(rng, rng.int(1, 64), 5);
      const B = rng.pick([16, 64, 256, 1024]);
      const t = assignBuckets(ms, B);
      expect(assignBuckets(ms, B, t)).toEqual(t);
      const next = step(rng, ms, rng.pick(['join', 'leave', 'weight', 'standby'] as Step[]));
      const after = assignBuckets(next, B, t);
      expect(assignBuckets(next, B, after)).toEqual(after);
    }
  });

  test('sequences of joins, leaves, weight changes and standby, 1..64 nodes: balanced, deterministic, moved/minimum ~1', () => {
    const rng = createRng(22);
    let sum = 0;
    let count = 0;
    let worstRun = 0;
    for (let run = 0; run < 40; run++) {
      const B = rng.pick([64, 256, 1024]);
      let ms = randomMembers(rng, rng.int(1, 64), 5, 0.05);
      let table = assignBuckets(ms, B);
      let runSum = 0;
      let runCount = 0;
      for (let k = 0; k < 12; k++) {
        const next = step(rng, ms, rng.pick(['join', 'leave', 'weight', 'standby'] as Step[]));
        const after = assignBuckets(next, B, table);
        checkBalance(next, B, after);
        // deterministic from the shared input: order of members does not matter
        expect(assignBuckets(rng.shuffle(next), B, table)).toEqual(after);
        const moved = movedBuckets(table, after);
        const min = minimumMoves(table, after);
        expect(moved).toBeGreaterThanOrEqual(min);
        if (min > 0) {
          runSum += moved / min;
          runCount++;
        }
        ms = next;
        table = after;
      }
      if (runCount > 0) worstRun = Math.max(worstRun, runSum / runCount);
      sum += runSum;
      count += runCount;
    }
    expect(sum / count).toBeLessThanOrEqual(1.1);
    expect(worstRun).toBeLessThanOrEqual(1.5);
  });

  test.each([
    [3, 256],
    [16, 256],
    [64, 256],
    [64, 1024],
  ])('%i nodes x %i buckets, one change from a table: moved/minimum averages <= 1.1', (nodes, B) => {
    const rng = createRng(nodes * 131 + B);
    let sum = 0;
    let count = 0;
    for (let t = 0; t < (B > 256 ? 6 : 20); t++) {
      const ms = randomMembers(rng, nodes, 5, 0);
      const before = assignBuckets(ms, B);
      for (const kind of ['join', 'leave', 'weight'] as Step[]) {
        const after = assignBuckets(step(rng, ms, kind), B, before);
        const min = minimumMoves(before, after);
        if (min === 0) continue;
        sum += movedBuckets(before, after) / min;
        count++;
      }
    }
    expect(sum / count).toBeLessThanOrEqual(1.1);
  });

  test('handoff states give the same table: each moving bucket with its giver, free, or with its taker', () => {
    const rng = createRng(23);
    for (let trial = 0; trial < 150; trial++) {
      const B = rng.pick([16, 64, 256]);
      const ms = randomMembers(rng, rng.int(1, 40), 5, 0.1);
      // some holders: a table of another membership, perturbed (free buckets, strangers, leavers)
      const base = assignBuckets(step(rng, step(rng, ms, 'join'), rng.pick(['leave', 'weight', 'standby'] as Step[])), B)
        .map((o) => (rng.next() < 0.05 ? '' : rng.next() < 0.03 ? 'stranger' : o));
      const target = assignBuckets(ms, B, base);
      for (let k = 0; k < 8; k++) {
        const mid = base.map((o, b) => (o === target[b] ? o : rng.pick([o, '', target[b]!])));
        expect(assignBuckets(ms, B, mid)).toEqual(target);
      }
      expect(assignBuckets(ms, B, target)).toEqual(target);
    }
  });

  test('currentOwners: non-members and out-of-range claims ignored, a double claim settled the same way whatever the order', () => {
    const rng = createRng(24);
    for (let trial = 0; trial < 60; trial++) {
      const B = rng.pick([16, 64, 256]);
      const ms = randomMembers(rng, rng.int(2, 10), 5, 0.2);
      const claims = [...ms, { name: 'gone', weight: 0 }].map((m) => ({ name: m.name, held: [...Array(B).keys()].filter(() => rng.next() < 0.4).concat([-1, B]) }));
      const a = currentOwners(ms, B, claims);
      expect(currentOwners(ms, B, rng.shuffle(claims))).toEqual(a);
      const live = new Set(normalizeMembers(ms).map((m) => m.name));
      for (let b = 0; b < B; b++) {
        const claimants = claims.filter((c) => live.has(c.name) && c.held.includes(b)).map((c) => c.name);
        if (claimants.length === 0) expect(a[b]).toBe('');
        else expect(claimants).toContain(a[b]);
      }
    }
    // a table heard back is itself
    const ms = randomMembers(rng, 12, 5, 0);
    const t = assignBuckets(ms, 256);
    expect(currentOwners(ms, 256, claimsOf(t))).toEqual(t);
  });

  test('a partition heal (both sides hold everything) ends balanced, each side keeping part of what it held', () => {
    const ms = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, weight: 1 }));
    const left = assignBuckets(ms.slice(0, 2), 256);
    const right = assignBuckets(ms.slice(2), 256);
    const current = currentOwners(ms, 256, [...claimsOf(left), ...claimsOf(right)]);
    const healed = assignBuckets(ms, 256, current);
    checkBalance(ms, 256, healed);
    let kept = 0;
    for (let b = 0; b < 256; b++) if (healed[b] === left[b] || healed[b] === right[b]) kept++;
    // nearly every bucket stays with one of the two nodes that held it; a bucket settled to
    // a claimant above its quota can go to a third node (it still moves only once)
    expect(kept).toBeGreaterThanOrEqual(230);
    expect(assignBuckets(ms, 256, healed)).toEqual(healed);
  });
});
