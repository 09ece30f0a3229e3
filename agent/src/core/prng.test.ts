import { createRng } from './prng.js';

describe('createRng', () => {
  test('same seed, same sequence; different seeds differ', () => {
    const a = createRng(5);
    const b = createRng(5);
    const c = createRng(6);
    const xs = Array.from({ length: 20 }, () => a.next());
    expect(Array.from({ length: 20 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 20 }, () => c.next())).not.toEqual(xs);
  });
  test('next in [0,1), int within bounds and roughly uniform', () => {
    const r = createRng(1);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      counts[r.int(0, 9)]++;
    }
    for (const n of counts) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
  test('shuffle is a permutation and leaves the input alone', () => {
    const r = createRng(2);
    const xs = [1, 2, 3, 4, 5, 6];
    const ys = r.shuffle(xs);
    expect([...ys].sort()).toEqual(xs);
    expect(xs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(xs).toContain(r.pick(xs));
  });
});
