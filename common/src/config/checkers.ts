// spec.checkers: each entry becomes the CheckerConfig variant of its type, with that
// type's fields only (a field of another type is named as such, not as unknown).
import type { CheckerConfig, CheckerType } from '../types.js';
import { Collector, integer, isRecord, join, list, object, optInteger, show, string, suggestion, syntax } from './collector.js';
import { DEFAULTS } from './defaults.js';
import { LIMITS, canonicalHost, dnsLabelProblem, hostProblem } from './syntax.js';

const COMMON = ['name', 'type', 'intervalMs', 'timeoutMs', 'rise', 'fall'] as const;
const FIELDS: Record<CheckerType, readonly string[]> = {
  tcp: [...COMMON, 'host', 'port'],
  http: [...COMMON, 'host', 'port', 'path', 'expectStatus', 'bodyContains'],
  exec: [...COMMON, 'command'],
};
const ALL_FIELDS = [...new Set(Object.values(FIELDS).flat())];

type Common = Pick<CheckerConfig, 'name' | 'intervalMs' | 'timeoutMs' | 'rise' | 'fall'>;

function parseCommon(c: Collector, item: Record<string, unknown>, p: string): Common | undefined {
  const name = syntax(c, item.name, join(p, 'name'), (s) => dnsLabelProblem(s, 63));
  const intervalMs = optInteger(c, item.intervalMs, join(p, 'intervalMs'), LIMITS.checkerIntervalMinMs, LIMITS.checkerIntervalMaxMs, DEFAULTS.checkerIntervalMs);
  const dfltTimeout = Math.min(DEFAULTS.checkerTimeoutMs, Math.floor((intervalMs ?? DEFAULTS.checkerIntervalMs) / 2));
  const timeoutMs = optInteger(c, item.timeoutMs, join(p, 'timeoutMs'), 1, LIMITS.checkerIntervalMaxMs, dfltTimeout);
  if (intervalMs !== undefined && timeoutMs !== undefined && timeoutMs >= intervalMs) {
    c.err(join(p, 'timeoutMs'), `must be less than intervalMs (${intervalMs}), got ${timeoutMs}`);
  }
  const rise = optInteger(c, item.rise, join(p, 'rise'), 1, LIMITS.riseFallMax, DEFAULTS.rise);
  const fall = optInteger(c, item.fall, join(p, 'fall'), 1, LIMITS.riseFallMax, DEFAULTS.fall);
  if (name === undefined || intervalMs === undefined || timeoutMs === undefined || rise === undefined || fall === undefined) return undefined;
  return { name, intervalMs, timeoutMs, rise, fall };
}

function parseTarget(c: Collector, item: Record<string, unknown>, p: string, type: 'tcp' | 'http'): { host: string; port: number } | undefined {
  const host = item.host === undefined ? DEFAULTS.checkerHost : syntax(c, item.host, join(p, 'host'), hostProblem);
  if (item.port === undefined) return c.err(join(p, 'port'), `is required for a ${type} checker`);
  const port = integer(c, item.port, join(p, 'port'), 1, LIMITS.portMax);
  return host === undefined || port === undefined ? undefined : { host: canonicalHost(host), port };
}

function parseHttpPath(c: Collector, v: unknown, p: string): string | undefined {
  if (v === undefined) return DEFAULTS.httpPath;
  const path = string(c, v, p);
  if (path === undefined) return undefined;
  if (!path.startsWith('/')) return c.err(p, `must start with '/', got ${show(path)}`);
  if (/[\s\x00-\x1f]/.test(path)) return c.err(p, `must not contain whitespace or control characters, got ${show(path)}`);
  return path;
}

function parseCommand(c: Collector, v: unknown, p: string): string[] | undefined {
  if (v === undefined) return c.err(p, 'is required for an exec checker (argv list, exit status 0 = healthy)');
  const argv = list(c, v, p, true);
  if (!argv) return undefined;
  const before = c.errors.length;
  const out = argv.map((a, i) => string(c, a, join(p, i)) ?? '');
  return c.errors.length === before ? out : undefined;
}

function parseChecker(c: Collector, item: unknown, p: string): CheckerConfig | undefined {
  if (!isRecord(item)) return c.err(p, `must be an object, got ${show(item)}`);
  const type = item.type;
  if (type !== 'tcp' && type !== 'http' && type !== 'exec') {
    c.err(join(p, 'type'), `must be tcp, http or exec, got ${show(type)}`);
    parseCommon(c, item, p);
    object(c, item, p, ALL_FIELDS);
    return undefined;
  }
  const before = c.errors.length;
  for (const k of Object.keys(item)) {
    if (FIELDS[type].includes(k)) continue;
    if (ALL_FIELDS.includes(k)) c.err(join(p, k), `not allowed for a ${type} checker`);
    else c.err(join(p, k), `unknown field${suggestion(k, FIELDS[type])}`);
  }
  const common = parseCommon(c, item, p);
  let out: CheckerConfig | undefined;
  if (type === 'exec') {
    const command = parseCommand(c, item.command, join(p, 'command'));
    if (common && command) out = { ...common, type, command };
  } else {
    const target = parseTarget(c, item, p, type);
    if (type === 'tcp') {
      if (common && target) out = { ...common, type, ...target };
    } else {
      const http = parseHttpFields(c, item, p);
      if (common && target && http) out = { ...common, type, ...target, ...http };
    }
  }
  return c.errors.length === before ? out : undefined;
}

/** What only an http checker has: path, expectStatus, bodyContains. */
function parseHttpFields(c: Collector, item: Record<string, unknown>, p: string): { path: string; expectStatus: number; bodyContains?: string } | undefined {
  const path = parseHttpPath(c, item.path, join(p, 'path'));
  const expectStatus = optInteger(c, item.expectStatus, join(p, 'expectStatus'), 100, 599, DEFAULTS.httpExpectStatus);
  const bodyContains = item.bodyContains === undefined ? undefined : string(c, item.bodyContains, join(p, 'bodyContains'));
  if (path === undefined || expectStatus === undefined) return undefined;
  return { path, expectStatus, ...(bodyContains === undefined ? {} : { bodyContains }) };
}

export function parseCheckers(c: Collector, v: unknown, path: string): CheckerConfig[] | undefined {
  if (v === undefined) return [];
  const items = list(c, v, path, false);
  if (!items) return undefined;
  const out: CheckerConfig[] = [];
  const seen = new Map<string, number>();
  let bad = false;
  items.forEach((item, i) => {
    const p = join(path, i);
    const checker = parseChecker(c, item, p);
    const name = isRecord(item) && typeof item.name === 'string' ? item.name : undefined;
    if (name !== undefined) {
      const first = seen.get(name);
      if (first !== undefined) {
        c.err(join(p, 'name'), `duplicate checker name ${show(name)} (same as ${join(path, first)})`);
        bad = true;
      } else seen.set(name, i);
    }
    if (checker) out.push(checker);
    else bad = true;
  });
  return bad ? undefined : out;
}
