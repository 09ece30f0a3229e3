import { alternatingMoves, cliBatch, median, percentile, softirqJiffies } from './dataplane.js';

describe('percentile (nearest rank)', () => {
  it('picks ranks from a sorted copy', () => {
    const xs = [5, 1, 4, 2, 3];
    expect(median(xs)).toBe(3);
    expect(percentile(xs, 100)).toBe(5);
    expect(percentile(xs, 1)).toBe(1);
    expect(xs).toEqual([5, 1, 4, 2, 3]);
  });
  it('p99 of 1..200 is 198', () => {
    expect(percentile(Array.from({ length: 200 }, (_, i) => i + 1), 99)).toBe(198);
  });
  it('is NaN for no samples', () => {
    expect(median([])).toBeNaN();
  });
});

describe('alternatingMoves', () => {
  it('alternates two disjoint lists of k buckets, so each call moves k', () => {
    const m = alternatingMoves(3, 4);
    expect(m).toEqual([[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4, 5]]);
  });
});

describe('cliBatch', () => {
  it('flushes and re-adds with timeouts, one key per bucket', () => {
    const b = cliBatch('t', [1, 258], 5000);
    expect(b).toBe('flush set inet t s\nadd element inet t s { 0.0.0.1 timeout 5000ms, 0.0.1.2 timeout 5000ms }\n');
  });
});

describe('softirqJiffies', () => {
  it('reads the softirq column of the all-CPU line of /proc/stat', () => {
    const stat = 'cpu  100 2 300 4000 5 6 789 0 0 0\ncpu0 50 1 150 2000 2 3 400 0 0 0\nintr 1 2 3\n';
    expect(softirqJiffies(stat)).toBe(789);
  });
  it('refuses a text without the cpu line', () => {
    expect(() => softirqJiffies('intr 1\n')).toThrow('/proc/stat');
  });
});
