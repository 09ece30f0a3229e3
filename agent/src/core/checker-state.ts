// Rise/fall hysteresis of application checkers: a checker flips only after `rise`
// consecutive successes or `fall` consecutive failures, so one slow probe does not move
// buckets around the farm.

export interface CheckerState {
  healthy: boolean;
  /** consecutive results that disagree with `healthy` */
  streak: number;
  lastError?: string;
}

/** A new checker starts unhealthy: a node serves only once its application answered. */
export function initialCheckerState(): CheckerState {
  return { healthy: false, streak: 0 };
}

export function nextCheckerState(
  s: CheckerState,
  ok: boolean,
  rise: number,
  fall: number,
  error?: string,
): CheckerState {
  const lastError = ok ? undefined : error;
  if (ok === s.healthy) return { healthy: s.healthy, streak: 0, lastError };
  const streak = s.streak + 1;
  const needed = ok ? rise : fall;
  if (streak >= needed) return { healthy: ok, streak: 0, lastError };
  return { healthy: s.healthy, streak, lastError };
}
