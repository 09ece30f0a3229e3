import { WorkQueue, backoffDelay, type Outcome } from './workqueue.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('backoffDelay', () => {
  test.each([
    [0, 0],
    [1, 100],
    [2, 200],
    [3, 400],
    [8, 12_800],
    [9, 20_000],
    [1000, 20_000],
  ])('failure %i -> %i ms', (n, ms) => {
    expect(backoffDelay(n, { baseDelayMs: 100, maxDelayMs: 20_000 })).toBe(ms);
  });
});

describe('WorkQueue', () => {
  test('one reconcile in flight per key; adds during a run fold into one rerun', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const runs: string[] = [];
    const gate = deferred();
    const q = new WorkQueue(async (key) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      runs.push(key);
      if (runs.length === 1) await gate.promise;
      inFlight--;
      return { kind: 'done' };
    }, { baseDelayMs: 10, maxDelayMs: 100, concurrency: 4 });
    q.add('a');
    await sleep(5);
    q.add('a');
    q.add('a');
    q.add('a');
    gate.resolve();
    await q.idle();
    expect(runs).toEqual(['a', 'a']);
    expect(maxInFlight).toBe(1);
  });

  test('different keys run in parallel up to the concurrency', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const q = new WorkQueue(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(20);
      inFlight--;
      return { kind: 'done' };
    }, { baseDelayMs: 10, maxDelayMs: 100, concurrency: 2 });
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    await q.idle();
    expect(maxInFlight).toBe(2);
  });

  test('retry backs off and the count resets on success', async () => {
    const times: number[] = [];
    let n = 0;
    const q = new WorkQueue(async (): Promise<Outcome> => {
      times.push(Date.now());
      n++;
      return n <= 3 ? { kind: 'retry', error: new Error('apiserver down') } : { kind: 'done' };
    }, { baseDelayMs: 20, maxDelayMs: 1000, concurrency: 1 });
    q.add('a');
    await sleep(5);
    expect(q.failureCount('a')).toBe(1);
    await q.idle();
    expect(n).toBe(4);
    expect(q.failureCount('a')).toBe(0);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(18);
    expect(gaps[1]).toBeGreaterThanOrEqual(38);
    expect(gaps[2]).toBeGreaterThanOrEqual(78);
  });

  test('noRetry is not retried', async () => {
    let n = 0;
    const q = new WorkQueue(async () => {
      n++;
      return { kind: 'noRetry', error: new Error('spec.rules[0].port: bad') };
    }, { baseDelayMs: 5, maxDelayMs: 10, concurrency: 1 });
    q.add('a');
    await q.idle();
    await sleep(30);
    expect(n).toBe(1);
  });

  test('a throwing handler is retried and reported as a crash', async () => {
    const seen: string[] = [];
    let n = 0;
    const q = new WorkQueue(
      async () => {
        if (++n === 1) throw new Error('bug');
        return { kind: 'done' };
      },
      { baseDelayMs: 5, maxDelayMs: 10, concurrency: 1 },
      (_k, o) => seen.push(o.kind),
    );
    q.add('a');
    await q.idle();
    expect(seen).toEqual(['crash', 'done']);
  });

  test('requeueAfter runs again later; add() before the timer runs at once and only once', async () => {
    const runs: number[] = [];
    const t0 = Date.now();
    const q = new WorkQueue(async (): Promise<Outcome> => {
      runs.push(Date.now() - t0);
      return runs.length === 1 ? { kind: 'requeueAfter', ms: 200 } : { kind: 'done' };
    }, { baseDelayMs: 5, maxDelayMs: 10, concurrency: 1 });
    q.add('a');
    await sleep(20);
    q.add('a');
    await q.idle();
    await sleep(250);
    expect(runs.length).toBe(2);
    expect(runs[1]).toBeLessThan(150);
  });

  test('shutDown waits for the run in flight and drops the rest', async () => {
    const gate = deferred();
    let finished = false;
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
      await gate.promise;
      finished = true;
      return { kind: 'requeueAfter', ms: 5 };
    }, { baseDelayMs: 5, maxDelayMs: 10, concurrency: 1 });
    q.add('a');
    q.add('b');
    await sleep(5);
    const done = q.shutDown();
    gate.resolve();
    await done;
    expect(finished).toBe(true);
    await sleep(20);
    expect(runs).toBe(1);
  });
});
