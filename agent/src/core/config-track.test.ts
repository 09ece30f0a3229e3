import { configApplied, configRefused, configSeen, configStatus, retryDelayMs, retryDue, type ConfigTrack, type Seen } from './config-track.js';

const spec = (key: string, generation: number): Seen<string> => ({ value: key, generation, key });

describe('config track: last seen vs last applied', () => {
  test('a new spec is applied; the same one delivered again is not', () => {
    let t: ConfigTrack<string> = {};
    let r = configSeen(t, spec('a', 1));
    expect(r.apply).toBe(true);
    t = configApplied(r.track);
    r = configSeen(t, spec('a', 1));
    expect(r.apply).toBe(false);
    expect(configStatus(r.track)).toEqual({ appliedGeneration: 1 });
  });

  test('a refused spec stays seen, not applied: reported, retried with backoff, not re-tried on every resync', () => {
    let t = configApplied(configSeen({}, spec('a', 1)).track);
    t = configSeen(t, spec('b', 2)).track;
    t = configRefused(t, 'KernelRefused', 'no such device', 10_000);
    expect(configStatus(t)).toEqual({
      appliedGeneration: 1,
      configRefused: { generation: 2, reason: 'KernelRefused', message: 'no such device', since: new Date(10_000).toISOString() },
    });
    expect(retryDue(t, 10_999)).toBe(false);
    expect(retryDue(t, 11_000)).toBe(true);
    // the watch delivering the same spec again leaves the timing to the retry
    expect(configSeen(t, spec('b', 2)).apply).toBe(false);
    t = configRefused(t, 'KernelRefused', 'no such device', 11_000);
    expect(t.refused).toMatchObject({ attempts: 2, retryAt: 13_000, since: new Date(10_000).toISOString() });
    expect(retryDue(configApplied(t), 20_000)).toBe(false);
  });

  test('a corrected spec is applied at once and clears the refusal', () => {
    let t = configApplied(configSeen({}, spec('a', 1)).track);
    t = configRefused(configSeen(t, spec('b', 2)).track, 'KernelRefused', 'x', 0);
    const r = configSeen(t, spec('c', 3));
    expect(r.apply).toBe(true);
    expect(r.track.refused).toBeUndefined();
    expect(configStatus(configApplied(r.track))).toEqual({ appliedGeneration: 3 });
  });

  test('going back to the running spec ends the refusal without programming', () => {
    let t = configApplied(configSeen({}, spec('a', 1)).track);
    t = configRefused(configSeen(t, spec('b', 2)).track, 'KernelRefused', 'x', 0);
    const r = configSeen(t, spec('a', 3));
    expect(r.apply).toBe(false);
    expect(configStatus(r.track)).toEqual({ appliedGeneration: 3 });
    expect(retryDue(r.track, 1e9)).toBe(false);
  });

  test('backoff doubles from 1 s up to a minute', () => {
    expect([1, 2, 3, 4, 7, 8, 20].map(retryDelayMs)).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
  });
});
