import { initialCheckerState, nextCheckerState, type CheckerState } from './checker-state.js';

function run(results: boolean[], rise: number, fall: number, from: CheckerState = initialCheckerState()): boolean[] {
  const out: boolean[] = [];
  let s = from;
  for (const r of results) {
    s = nextCheckerState(s, r, rise, fall, r ? undefined : 'boom');
    out.push(s.healthy);
  }
  return out;
}

describe('checker hysteresis', () => {
  test('starts unhealthy and rises after `rise` successes', () => {
    expect(run([true, true, true], 2, 2)).toEqual([false, true, true]);
  });
  test('rise 1 flips at once', () => {
    expect(run([true], 1, 3)).toEqual([true]);
  });
  test('falls only after `fall` consecutive failures', () => {
    const healthy = { healthy: true, streak: 0 };
    expect(run([false, false, false], 2, 3, healthy)).toEqual([true, true, false]);
  });
  test('an interrupted streak starts over', () => {
    const healthy = { healthy: true, streak: 0 };
    expect(run([false, true, false, false], 2, 2, healthy)).toEqual([true, true, true, false]);
  });
  test('flapping probe never flips with rise=fall=2', () => {
    const healthy = { healthy: true, streak: 0 };
    expect(run([false, true, false, true, false, true], 2, 2, healthy).every((h) => h)).toBe(true);
  });
  test('keeps the last error while failing and clears it on success', () => {
    let s = nextCheckerState({ healthy: true, streak: 0 }, false, 2, 2, 'connect ECONNREFUSED');
    expect(s.lastError).toBe('connect ECONNREFUSED');
    s = nextCheckerState(s, true, 2, 2);
    expect(s.lastError).toBeUndefined();
  });
});
