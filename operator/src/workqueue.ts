// Per-key work queue: at most one reconcile in flight per farm, events that arrive during a
// reconcile fold into one rerun, failures back off exponentially per key, and a limited
// number of farms reconcile in parallel.

/** What a reconcile asks of the queue next. */
export type Outcome =
  | { kind: 'done' }
  /** run again after ms (polling something that has no watch event, e.g. a finalizer wait) */
  | { kind: 'requeueAfter'; ms: number }
  /** infrastructure error: retry with backoff */
  | { kind: 'retry'; error: Error }
  /** invalid input: retrying cannot help, wait for the next change */
  | { kind: 'noRetry'; error: Error };

export interface QueueOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  concurrency: number;
}

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = { baseDelayMs: 200, maxDelayMs: 60_000, concurrency: 2 };

/** Delay before retry number `failures` (1 = first retry). */
export function backoffDelay(failures: number, opts: Pick<QueueOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  if (failures <= 0) return 0;
  return Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.min(failures - 1, 30));
}

type Handler = (key: string) => Promise<Outcome>;

export class WorkQueue {
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  /** keys added while running: run once more when the current run ends */
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly handler: Handler,
    private readonly opts: QueueOptions = DEFAULT_QUEUE_OPTIONS,
    private readonly onOutcome: (key: string, outcome: Outcome | { kind: 'crash'; error: Error }) => void = () => {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.clearTimer(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  /** Adds `key` after `ms`; an earlier add() wins, a later addAfter() replaces the timer. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    this.clearTimer(key);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resolves when nothing is queued, running or waiting on a timer. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking work and waits for the reconciles in flight. */
  async shutDown(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.length = 0;
    this.queued.clear();
    this.dirty.clear();
    await this.idle();
  }

  private isIdle(): boolean {
    return this.pending.length === 0 && this.running.size === 0 && this.timers.size === 0;
  }

  private clearTimer(key: string): void {
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t);
      this.timers.delete(key);
    }
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.opts.concurrency && this.pending.length > 0) {
      const key = this.pending.shift()!;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
    if (this.isIdle()) this.idleWaiters.splice(0).forEach((w) => w());
  }

  private async run(key: string): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.handler(key);
      this.onOutcome(key, outcome);
    } catch (err) {
      // A handler should return an outcome; a throw is a bug, retried like an infra error.
      const error = err instanceof Error ? err : new Error(String(err));
      outcome = { kind: 'retry', error };
      this.onOutcome(key, { kind: 'crash', error });
    }
    this.running.delete(key);
    if (outcome.kind === 'retry') {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      // A change that arrived meanwhile is retried with the same backoff, not at once.
      this.dirty.delete(key);
      this.addAfter(key, backoffDelay(n, this.opts));
    } else {
      this.failures.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      else if (outcome.kind === 'requeueAfter') this.addAfter(key, outcome.ms);
    }
    this.pump();
  }
}
