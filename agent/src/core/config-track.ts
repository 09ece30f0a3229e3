// Last seen vs last applied configuration, and the retry of one the kernel refused.
// Pure. Kubernetes mode feeds it every spec the watch delivers and every answer of the
// kernel; it says whether to program now, and what this node's status entry reports.
// A refused spec stays "seen, not applied", so the same spec delivered again is tried
// again (not dropped as unchanged), and a timer retries it with backoff: the refusal
// may be the node's passing state (an interface being renamed, a device not up yet).

export interface Seen<T> {
  value: T;
  /** metadata.generation of the object it came from */
  generation: number;
  /** canonical text: equal texts are the same configuration */
  key: string;
}

export interface Refusal {
  generation: number;
  /** CamelCase, e.g. KernelRefused */
  reason: string;
  message: string;
  /** first refusal of this configuration (ISO time) */
  since: string;
  attempts: number;
  /** local time (ms) of the next try */
  retryAt: number;
}

export interface ConfigTrack<T> {
  seen?: Seen<T>;
  applied?: Seen<T>;
  refused?: Refusal;
}

export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 60_000;

export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, attempts - 1));
}

/** A configuration arrived. `apply`: program it now (it differs from what runs). */
export function configSeen<T>(t: ConfigTrack<T>, seen: Seen<T>): { track: ConfigTrack<T>; apply: boolean } {
  if (t.applied && t.applied.key === seen.key) {
    // what runs already: a refusal of something else is over (the spec went back)
    return { track: { applied: { ...t.applied, generation: seen.generation }, seen }, apply: false };
  }
  const sameAsRefused = t.seen !== undefined && t.seen.key === seen.key && t.refused !== undefined;
  // the same refused spec again (a resync, a status write echoed back): the retry timer
  // decides when, so a watch that fires often does not hammer the kernel
  if (sameAsRefused) return { track: { ...t, seen }, apply: false };
  const { refused: _old, ...rest } = t;
  return { track: { ...rest, seen }, apply: true };
}

/** The kernel accepted what was seen. */
export function configApplied<T>(t: ConfigTrack<T>): ConfigTrack<T> {
  if (!t.seen) return t;
  return { seen: t.seen, applied: t.seen };
}

/** The kernel (or the parser) refused what was seen; the running one stays. */
export function configRefused<T>(t: ConfigTrack<T>, reason: string, message: string, now: number): ConfigTrack<T> {
  if (!t.seen) return t;
  const prev = t.refused && t.refused.generation === t.seen.generation ? t.refused : undefined;
  const attempts = (prev?.attempts ?? 0) + 1;
  return {
    ...t,
    refused: {
      generation: t.seen.generation,
      reason,
      message,
      since: prev?.since ?? new Date(now).toISOString(),
      attempts,
      retryAt: now + retryDelayMs(attempts),
    },
  };
}

/** A refused configuration whose retry time has come. */
export function retryDue<T>(t: ConfigTrack<T>, now: number): boolean {
  return t.refused !== undefined && t.seen !== undefined && t.applied?.key !== t.seen.key && now >= t.refused.retryAt;
}

/** What this node's status entry says about its configuration. */
export interface ConfigStatus {
  appliedGeneration?: number;
  configRefused?: { generation: number; reason: string; message: string; since: string };
}

export function configStatus<T>(t: ConfigTrack<T>): ConfigStatus {
  const out: ConfigStatus = {};
  if (t.applied) out.appliedGeneration = t.applied.generation;
  if (t.refused) {
    const { generation, reason, message, since } = t.refused;
    out.configRefused = { generation, reason, message, since };
  }
  return out;
}
