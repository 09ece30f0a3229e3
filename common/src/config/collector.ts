// The validation toolkit the parsers are built from: a Collector gathers every problem
// with its field path instead of stopping at the first, and the small readers below
// return undefined on failure so that a caller keeps going and reports the rest.
import type { FieldError } from '../types.js';

export type Result<T> =
  | { ok: true; value: T; warnings: FieldError[] }
  | { ok: false; errors: FieldError[]; warnings: FieldError[] };

export class Collector {
  readonly errors: FieldError[] = [];
  readonly warnings: FieldError[] = [];
  err(field: string, message: string): undefined {
    this.errors.push({ field, message });
    return undefined;
  }
  warn(field: string, message: string): void {
    this.warnings.push({ field, message });
  }
}

/** "spec" + "rules" -> "spec.rules"; "spec.rules" + 1 -> "spec.rules[1]". */
export function join(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** A short, safe rendering of a bad value for an error message. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** ` (did you mean "x"?)` for a near miss among `allowed`, else ''. */
export function suggestion(key: string, allowed: readonly string[]): string {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const a of allowed) {
    const d = editDistance(lower, a.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(key.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** An object whose keys are all in `allowed` (unknown keys are errors: a misspelt optional field would silently fall back to its default). */
export function object(c: Collector, v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> | undefined {
  if (!isRecord(v)) return c.err(path || '(top level)', `must be an object, got ${show(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) c.err(join(path, k), `unknown field${suggestion(k, allowed)}`);
  }
  return v;
}

export function integer(c: Collector, v: unknown, path: string, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) return c.err(path, `must be an integer ${min}..${max}, got ${show(v)}`);
  if (v < min || v > max) return c.err(path, `must be ${min}..${max}, got ${v}`);
  return v;
}

export function optInteger(c: Collector, v: unknown, path: string, min: number, max: number, dflt: number): number | undefined {
  return v === undefined ? dflt : integer(c, v, path, min, max);
}

export function string(c: Collector, v: unknown, path: string): string | undefined {
  if (typeof v !== 'string') return c.err(path, `must be a string, got ${show(v)}`);
  if (v.length === 0) return c.err(path, 'must not be empty');
  return v;
}

/** A string that `problem` (one of ./syntax.ts) accepts. */
export function syntax(c: Collector, v: unknown, path: string, problem: (s: string) => string | undefined): string | undefined {
  const s = string(c, v, path);
  if (s === undefined) return undefined;
  const p = problem(s);
  return p === undefined ? s : c.err(path, p);
}

export function list(c: Collector, v: unknown, path: string, nonEmpty: boolean): unknown[] | undefined {
  if (!Array.isArray(v)) return c.err(path, `must be a list, got ${show(v)}`);
  if (nonEmpty && v.length === 0) return c.err(path, 'must not be empty');
  return v;
}

/** One line per error: "spec.rules[1].port: must be 1..65535, got 0". */
export function formatErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('\n');
}
