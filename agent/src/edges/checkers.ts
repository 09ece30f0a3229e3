// Runs the farm's application checkers on their intervals and reports when the node's
// overall health (all checkers healthy) flips. A probe still in flight is never started twice.
import type { CheckerConfig } from '../../../common/src/types.js';
import { initialCheckerState, nextCheckerState, type CheckerState } from '../core/checker-state.js';
import { probe, type ProbeResult } from './probes.js';

export type ProbeFn = (c: CheckerConfig) => Promise<ProbeResult>;

export class CheckerRunner {
  private readonly states = new Map<string, CheckerState>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlight = new Set<string>();

  /** `carry`: a runner being replaced (a reconfiguration); checkers it ran with the same
   *  settings keep their state, so a spec edit does not take every node out at once until
   *  its checkers rise again. */
  constructor(
    private readonly checkers: CheckerConfig[],
    private readonly onChange: (name: string, state: CheckerState) => void,
    private readonly probeFn: ProbeFn = probe,
    carry?: CheckerRunner,
  ) {
    for (const c of checkers) {
      const same = carry?.checkers.find((o) => o.name === c.name && JSON.stringify(o) === JSON.stringify(c));
      this.states.set(c.name, (same ? carry?.states.get(c.name) : undefined) ?? initialCheckerState());
    }
  }

  start(): void {
    for (const c of this.checkers) {
      void this.runOnce(c);
      this.timers.push(setInterval(() => void this.runOnce(c), c.intervalMs));
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }

  /** true when there are no checkers, or every one is healthy */
  healthy(): boolean {
    for (const s of this.states.values()) if (!s.healthy) return false;
    return true;
  }

  snapshot(): Record<string, CheckerState> {
    return Object.fromEntries(this.states);
  }

  private async runOnce(c: CheckerConfig): Promise<void> {
    if (this.inFlight.has(c.name)) return;
    this.inFlight.add(c.name);
    try {
      const r = await this.probeFn(c);
      const prev = this.states.get(c.name) ?? initialCheckerState();
      const next = nextCheckerState(prev, r.ok, c.rise, c.fall, r.error);
      this.states.set(c.name, next);
      if (next.healthy !== prev.healthy) this.onChange(c.name, next);
    } finally {
      this.inFlight.delete(c.name);
    }
  }
}
