// The one farm parser: the agent's YAML mode, the agent's Kubernetes mode and the operator
// all turn a spec into a FarmConfig here, so a mistake gets the same message everywhere.
// Pure (hashing is the only "library" call): it never throws on any input, it collects
// every problem instead of stopping at the first, and unknown fields are errors because
// a misspelt optional field would otherwise silently fall back to its default.
import { createHash } from 'node:crypto';
import yaml from 'js-yaml';
import { parseAddressPool } from './address-pool.js';
import type {
  Affinity,
  CheckerConfig,
  CheckerType,
  FarmConfig,
  FieldError,
  PeerSpec,
  Protocol,
  Rule,
} from './types.js';

export type Result<T> =
  | { ok: true; value: T; warnings: FieldError[] }
  | { ok: false; errors: FieldError[]; warnings: FieldError[] };

export interface AgentConfig {
  farm: FarmConfig;
  /** weight is the effective one: node.weight ?? farm.weights[node.name] ?? farm.defaultWeight */
  node: { name: string; address: string; weight: number };
  peers: PeerSpec[];
  keyFile: string;
}

export const DEFAULTS = {
  bucketCount: 256,
  // The target is a failover p99 of 300 ms: takeover ~ threshold + one interval.
  intervalMs: 50,
  failureThresholdMs: 200,
  heartbeatPort: 7946,
  metricsPort: 9477,
  defaultWeight: 1,
  checkerIntervalMs: 1000,
  checkerTimeoutMs: 500,
  rise: 2,
  fall: 2,
  checkerHost: '127.0.0.1',
  httpPath: '/',
  httpExpectStatus: 200,
} as const;

export const LIMITS = {
  farmNameMax: 40,
  ifnameMax: 15,
  bucketCountMin: 2,
  bucketCountMax: 4096,
  intervalMinMs: 20,
  intervalMaxMs: 60_000,
  failureThresholdMaxMs: 600_000,
  weightMax: 1000,
  checkerIntervalMinMs: 100,
  checkerIntervalMaxMs: 3_600_000,
  riseFallMax: 100,
} as const;

const FARM_SPEC_FIELDS = [
  'virtualIPs', 'interface', 'virtualMAC', 'rules', 'bucketCount', 'hashSeed', 'heartbeat',
  'checkers', 'weights', 'defaultWeight', 'nodeSelector', 'tolerations', 'agent',
] as const;
const AGENT_FILE_FIELDS = ['name', 'node', 'peers', 'keyFile', 'metricsPort'] as const;
// Only a FarmCluster hands out LoadBalancer addresses: the operator allocates them.
const SERVICE_FIELDS = ['addresses', 'servicesWithoutClass'] as const;

// ---------------------------------------------------------------------------------------
// Small collector: every check appends to `errors` and returns undefined on failure, so a
// caller keeps going and reports the rest.

class Collector {
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

function join(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** A short, safe rendering of a bad value for an error message. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') {
    const s = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
    return s;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function suggestion(key: string, allowed: readonly string[]): string {
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

function object(c: Collector, v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> | undefined {
  if (!isRecord(v)) return c.err(path || '(top level)', `must be an object, got ${show(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) c.err(join(path, k), `unknown field${suggestion(k, allowed)}`);
  }
  return v;
}

function integer(c: Collector, v: unknown, path: string, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) return c.err(path, `must be an integer ${min}..${max}, got ${show(v)}`);
  if (v < min || v > max) return c.err(path, `must be ${min}..${max}, got ${v}`);
  return v;
}

function optInteger(c: Collector, v: unknown, path: string, min: number, max: number, dflt: number): number | undefined {
  return v === undefined ? dflt : integer(c, v, path, min, max);
}

function string(c: Collector, v: unknown, path: string): string | undefined {
  if (typeof v !== 'string') return c.err(path, `must be a string, got ${show(v)}`);
  if (v.length === 0) return c.err(path, 'must not be empty');
  return v;
}

function list(c: Collector, v: unknown, path: string, nonEmpty: boolean): unknown[] | undefined {
  if (!Array.isArray(v)) return c.err(path, `must be a list, got ${show(v)}`);
  if (nonEmpty && v.length === 0) return c.err(path, 'must not be empty');
  return v;
}

// ---------------------------------------------------------------------------------------
// Value syntaxes, exported for the operator's and the agent's own use.

/** DNS label (RFC 1123): lowercase alphanumerics and '-', starting and ending alphanumeric. */
export function dnsLabelProblem(s: string, max: number): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > max) return `must be at most ${max} characters, got ${s.length}`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s)) {
    return `must be a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit), got ${show(s)}`;
  }
  return undefined;
}

/** Kubernetes node names are DNS subdomains: labels joined by dots, <= 253 characters. */
export function nodeNameProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 253) return `must be at most 253 characters, got ${s.length}`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
    return `must be a DNS subdomain (lowercase letters, digits, '-' and '.'), got ${show(s)}`;
  }
  return undefined;
}

/** Dotted quad without leading zeros (which some tools read as octal). */
export function parseIPv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** Why an address cannot be a VIP or a node address, if it cannot. */
export function unicastIPv4Problem(s: string): string | undefined {
  const o = parseIPv4(s);
  if (o === undefined) return `must be an IPv4 address (dotted quad), got ${show(s)}`;
  if (o[0] === 0) return `must not be in 0.0.0.0/8, got ${s}`;
  if (o[0] === 127) return `must not be a loopback address, got ${s}`;
  if (o[0]! >= 224) return `must be a unicast address (not multicast, reserved or broadcast), got ${s}`;
  return undefined;
}

/** Linux dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace. */
export function ifnameProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (Buffer.byteLength(s) > LIMITS.ifnameMax) return `must be at most ${LIMITS.ifnameMax} bytes (IFNAMSIZ-1), got ${Buffer.byteLength(s)}`;
  if (s === '.' || s === '..') return `must not be ${show(s)}`;
  if (/[/:\s]/.test(s)) return `must not contain '/', ':' or whitespace, got ${show(s)}`;
  return undefined;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** 02:fa followed by 4 bytes of sha256(name): locally administered unicast, stable per farm. */
export function defaultVirtualMAC(name: string): string {
  const h = createHash('sha256').update(name).digest();
  return ['02', 'fa', ...[0, 1, 2, 3].map((i) => h[i]!.toString(16).padStart(2, '0'))].join(':');
}

/** jhash seed derived from the name, so every node of the farm agrees without configuration. */
export function defaultHashSeed(name: string): number {
  return createHash('sha256').update(`vipfarm-hash-seed:${name}`).digest().readUInt32BE(0);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

// ---------------------------------------------------------------------------------------

function parseVirtualIPs(c: Collector, v: unknown, path: string): string[] | undefined {
  const items = list(c, v, path, true);
  if (!items) return undefined;
  const out: string[] = [];
  const seen = new Map<string, number>();
  let bad = false;
  items.forEach((item, i) => {
    const p = join(path, i);
    if (typeof item !== 'string') {
      bad = true;
      c.err(p, `must be an IPv4 address string, got ${show(item)}`);
      return;
    }
    const problem = unicastIPv4Problem(item);
    if (problem) {
      bad = true;
      c.err(p, problem);
      return;
    }
    const first = seen.get(item);
    if (first !== undefined) {
      bad = true;
      c.err(p, `duplicate of ${join(path, first)} (${item})`);
      return;
    }
    seen.set(item, i);
    out.push(item);
  });
  return bad ? undefined : out;
}

function parseVirtualMAC(c: Collector, v: unknown, path: string, name: string): string | undefined {
  if (v === undefined) return defaultVirtualMAC(name);
  if (typeof v !== 'string' || !MAC_RE.test(v)) {
    return c.err(path, `must be a MAC address aa:bb:cc:dd:ee:ff, got ${show(v)}`);
  }
  const mac = v.toLowerCase();
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) return c.err(path, `must be a unicast MAC (lowest bit of the first byte clear), got ${mac}`);
  if (mac === '00:00:00:00:00:00') return c.err(path, 'must not be all zeros');
  if (!(first & 2)) {
    c.warn(path, `${mac} is not locally administered (second-lowest bit of the first byte); it may collide with a real NIC`);
  }
  return mac;
}

function parseRules(c: Collector, v: unknown, path: string): Rule[] | undefined {
  const items = list(c, v, path, true);
  if (!items) return undefined;
  const out: Rule[] = [];
  const seen = new Map<string, number>();
  let bad = false;
  items.forEach((item, i) => {
    const p = join(path, i);
    const o = object(c, item, p, ['port', 'protocol', 'affinity']);
    if (!o) {
      bad = true;
      return;
    }
    const before = c.errors.length;
    const port = integer(c, o.port, join(p, 'port'), 1, 65535);
    let protocol: Protocol | undefined = 'tcp';
    if (o.protocol !== undefined) {
      protocol = o.protocol === 'tcp' || o.protocol === 'udp' ? o.protocol : c.err(join(p, 'protocol'), `must be tcp or udp, got ${show(o.protocol)}`);
    }
    let affinity: Affinity | undefined = 'ClientIP';
    if (o.affinity !== undefined) {
      affinity =
        o.affinity === 'ClientIP' || o.affinity === 'ClientIPAndPort'
          ? o.affinity
          : c.err(join(p, 'affinity'), `must be ClientIP or ClientIPAndPort, got ${show(o.affinity)}`);
    }
    if (c.errors.length !== before || port === undefined || !protocol || !affinity) {
      bad = true;
      return;
    }
    const key = `${port}/${protocol}`;
    const first = seen.get(key);
    if (first !== undefined) {
      bad = true;
      c.err(p, `duplicate rule for ${key} (same as ${join(path, first)})`);
      return;
    }
    seen.set(key, i);
    out.push({ port, protocol, affinity });
  });
  return bad ? undefined : out;
}

function parseHeartbeat(c: Collector, v: unknown, path: string): FarmConfig['heartbeat'] | undefined {
  const o = v === undefined ? {} : object(c, v, path, ['intervalMs', 'failureThresholdMs', 'port']);
  if (!o) return undefined;
  const intervalMs = optInteger(c, o.intervalMs, join(path, 'intervalMs'), LIMITS.intervalMinMs, LIMITS.intervalMaxMs, DEFAULTS.intervalMs);
  // The default threshold grows with a long interval so that only explicit values can conflict.
  const dfltThreshold = Math.max(DEFAULTS.failureThresholdMs, 4 * (intervalMs ?? DEFAULTS.intervalMs));
  const failureThresholdMs = optInteger(c, o.failureThresholdMs, join(path, 'failureThresholdMs'), 1, LIMITS.failureThresholdMaxMs, dfltThreshold);
  const port = optInteger(c, o.port, join(path, 'port'), 1, 65535, DEFAULTS.heartbeatPort);
  if (intervalMs === undefined || failureThresholdMs === undefined || port === undefined) return undefined;
  if (failureThresholdMs <= 2 * intervalMs) {
    return c.err(
      join(path, 'failureThresholdMs'),
      `must be greater than 2 * intervalMs (${2 * intervalMs}) so that one lost heartbeat is not a failure, got ${failureThresholdMs}`,
    );
  }
  return { intervalMs, failureThresholdMs, port };
}

const CHECKER_COMMON = ['name', 'type', 'intervalMs', 'timeoutMs', 'rise', 'fall'] as const;
const CHECKER_FIELDS: Record<CheckerType, readonly string[]> = {
  tcp: [...CHECKER_COMMON, 'host', 'port'],
  http: [...CHECKER_COMMON, 'host', 'port', 'path', 'expectStatus', 'bodyContains'],
  exec: [...CHECKER_COMMON, 'command'],
};
const ALL_CHECKER_FIELDS = [...new Set(Object.values(CHECKER_FIELDS).flat())];

function hostProblem(s: string): string | undefined {
  if (parseIPv4(s)) return undefined;
  if (/^[0-9.]+$/.test(s)) return `must be an IPv4 address or a host name, got ${show(s)}`;
  if (s.length > 253 || !/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/.test(s)) {
    return `must be an IPv4 address or a host name, got ${show(s)}`;
  }
  return undefined;
}

function parseChecker(c: Collector, item: unknown, p: string): CheckerConfig | undefined {
  if (!isRecord(item)) return c.err(p, `must be an object, got ${show(item)}`);
  const before = c.errors.length;
  const name = string(c, item.name, join(p, 'name'));
  if (name !== undefined) {
    const problem = dnsLabelProblem(name, 63);
    if (problem) c.err(join(p, 'name'), problem);
  }
  const type = item.type;
  if (type !== 'tcp' && type !== 'http' && type !== 'exec') {
    c.err(join(p, 'type'), `must be tcp, http or exec, got ${show(type)}`);
    object(c, item, p, ALL_CHECKER_FIELDS);
    return undefined;
  }
  for (const k of Object.keys(item)) {
    if (CHECKER_FIELDS[type].includes(k)) continue;
    if (ALL_CHECKER_FIELDS.includes(k)) c.err(join(p, k), `not allowed for a ${type} checker`);
    else c.err(join(p, k), `unknown field${suggestion(k, CHECKER_FIELDS[type])}`);
  }
  const intervalMs = optInteger(c, item.intervalMs, join(p, 'intervalMs'), LIMITS.checkerIntervalMinMs, LIMITS.checkerIntervalMaxMs, DEFAULTS.checkerIntervalMs);
  const dfltTimeout = Math.min(DEFAULTS.checkerTimeoutMs, Math.floor((intervalMs ?? DEFAULTS.checkerIntervalMs) / 2));
  const timeoutMs = optInteger(c, item.timeoutMs, join(p, 'timeoutMs'), 1, LIMITS.checkerIntervalMaxMs, dfltTimeout);
  if (intervalMs !== undefined && timeoutMs !== undefined && timeoutMs >= intervalMs) {
    c.err(join(p, 'timeoutMs'), `must be less than intervalMs (${intervalMs}), got ${timeoutMs}`);
  }
  const rise = optInteger(c, item.rise, join(p, 'rise'), 1, LIMITS.riseFallMax, DEFAULTS.rise);
  const fall = optInteger(c, item.fall, join(p, 'fall'), 1, LIMITS.riseFallMax, DEFAULTS.fall);
  const out: CheckerConfig = {
    name: name ?? '',
    type,
    intervalMs: intervalMs ?? 0,
    timeoutMs: timeoutMs ?? 0,
    rise: rise ?? 0,
    fall: fall ?? 0,
    host: DEFAULTS.checkerHost,
  };
  if (type === 'tcp' || type === 'http') {
    if (item.host !== undefined) {
      const host = string(c, item.host, join(p, 'host'));
      const problem = host === undefined ? undefined : hostProblem(host);
      if (problem) c.err(join(p, 'host'), problem);
      if (host !== undefined) out.host = host;
    }
    if (item.port === undefined) c.err(join(p, 'port'), `is required for a ${type} checker`);
    else out.port = integer(c, item.port, join(p, 'port'), 1, 65535);
  }
  if (type === 'http') {
    out.path = DEFAULTS.httpPath;
    if (item.path !== undefined) {
      const path = string(c, item.path, join(p, 'path'));
      if (path !== undefined && !path.startsWith('/')) c.err(join(p, 'path'), `must start with '/', got ${show(path)}`);
      else if (path !== undefined && /[\s\x00-\x1f]/.test(path)) c.err(join(p, 'path'), `must not contain whitespace or control characters, got ${show(path)}`);
      else if (path !== undefined) out.path = path;
    }
    out.expectStatus = optInteger(c, item.expectStatus, join(p, 'expectStatus'), 100, 599, DEFAULTS.httpExpectStatus);
    if (item.bodyContains !== undefined) out.bodyContains = string(c, item.bodyContains, join(p, 'bodyContains'));
  }
  if (type === 'exec') {
    if (item.command === undefined) c.err(join(p, 'command'), 'is required for an exec checker (argv list, exit status 0 = healthy)');
    else {
      const argv = list(c, item.command, join(p, 'command'), true);
      if (argv) {
        const strings: string[] = [];
        argv.forEach((a, i) => {
          const s = string(c, a, join(join(p, 'command'), i));
          if (s !== undefined) strings.push(s);
        });
        out.command = strings;
      }
    }
  }
  return c.errors.length === before ? out : undefined;
}

function parseCheckers(c: Collector, v: unknown, path: string): CheckerConfig[] | undefined {
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

function parseWeights(c: Collector, v: unknown, path: string): Record<string, number> | undefined {
  if (v === undefined) return {};
  if (!isRecord(v)) return c.err(path, `must be a map of node name to weight, got ${show(v)}`);
  const out: Record<string, number> = {};
  let bad = false;
  for (const [node, w] of Object.entries(v)) {
    const p = join(path, node);
    const problem = nodeNameProblem(node);
    if (problem) {
      c.err(p, `node name ${problem}`);
      bad = true;
    }
    const weight = integer(c, w, p, 0, LIMITS.weightMax);
    if (weight === undefined) bad = true;
    else out[node] = weight;
  }
  return bad ? undefined : out;
}

function parseStringMap(c: Collector, v: unknown, path: string): void {
  if (v === undefined) return;
  if (!isRecord(v)) {
    c.err(path, `must be a map of strings, got ${show(v)}`);
    return;
  }
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') c.err(join(path, k), `must be a string, got ${show(s)}`);
  }
}

function parseTolerations(c: Collector, v: unknown, path: string): void {
  if (v === undefined) return;
  const items = list(c, v, path, false);
  items?.forEach((t, i) => {
    object(c, t, join(path, i), ['key', 'operator', 'value', 'effect', 'tolerationSeconds']);
  });
}

function parseAgentSection(c: Collector, v: unknown, path: string): number | undefined {
  if (v === undefined) return DEFAULTS.metricsPort;
  const o = object(c, v, path, ['image', 'resources', 'metricsPort']);
  if (!o) return undefined;
  if (o.image !== undefined) string(c, o.image, join(path, 'image'));
  if (o.resources !== undefined && !isRecord(o.resources)) c.err(join(path, 'resources'), `must be an object, got ${show(o.resources)}`);
  return optInteger(c, o.metricsPort, join(path, 'metricsPort'), 1, 65535, DEFAULTS.metricsPort);
}

/** Validate the farm fields of `spec` into `c`; `extra` names fields the caller handles. */
function farmInto(
  c: Collector,
  input: unknown,
  opts: { name: string; path: string; nameField: string; extra: readonly string[] },
): FarmConfig | undefined {
  const path = opts.path;
  const nameProblem = dnsLabelProblem(opts.name, LIMITS.farmNameMax);
  if (nameProblem) c.err(opts.nameField, `farm name ${nameProblem}`);
  const o = object(c, input, path, [...FARM_SPEC_FIELDS, ...opts.extra]);
  if (!o) return undefined;
  const before = c.errors.length;
  const virtualIPs = o.virtualIPs === undefined ? c.err(join(path, 'virtualIPs'), 'is required') : parseVirtualIPs(c, o.virtualIPs, join(path, 'virtualIPs'));
  let iface: string | undefined;
  if (o.interface === undefined) c.err(join(path, 'interface'), 'is required');
  else if (typeof o.interface !== 'string') c.err(join(path, 'interface'), `must be a string, got ${show(o.interface)}`);
  else {
    const problem = ifnameProblem(o.interface);
    if (problem) c.err(join(path, 'interface'), problem);
    else iface = o.interface;
  }
  const virtualMAC = parseVirtualMAC(c, o.virtualMAC, join(path, 'virtualMAC'), opts.name);
  const rules = o.rules === undefined ? c.err(join(path, 'rules'), 'is required') : parseRules(c, o.rules, join(path, 'rules'));
  let bucketCount: number | undefined = DEFAULTS.bucketCount;
  if (o.bucketCount !== undefined) {
    bucketCount = integer(c, o.bucketCount, join(path, 'bucketCount'), LIMITS.bucketCountMin, LIMITS.bucketCountMax);
    if (bucketCount !== undefined && !isPowerOfTwo(bucketCount)) {
      bucketCount = c.err(join(path, 'bucketCount'), `must be a power of two (2, 4, ... 4096), got ${bucketCount}`);
    }
  }
  const hashSeed = o.hashSeed === undefined ? defaultHashSeed(opts.name) : integer(c, o.hashSeed, join(path, 'hashSeed'), 0, 0xffffffff);
  const heartbeat = parseHeartbeat(c, o.heartbeat, join(path, 'heartbeat'));
  const checkers = parseCheckers(c, o.checkers, join(path, 'checkers'));
  const weights = parseWeights(c, o.weights, join(path, 'weights'));
  const defaultWeight = optInteger(c, o.defaultWeight, join(path, 'defaultWeight'), 0, LIMITS.weightMax, DEFAULTS.defaultWeight);
  parseStringMap(c, o.nodeSelector, join(path, 'nodeSelector'));
  parseTolerations(c, o.tolerations, join(path, 'tolerations'));
  const metricsPort = parseAgentSection(c, o.agent, join(path, 'agent'));
  const loadBalancer = parseLoadBalancer(c, o, path, virtualIPs ?? []);
  if (c.errors.length !== before || nameProblem) return undefined;
  return {
    name: opts.name,
    interface: iface!,
    virtualIPs: virtualIPs!,
    virtualMAC: virtualMAC!,
    rules: rules!,
    bucketCount: bucketCount!,
    hashSeed: hashSeed!,
    heartbeat: heartbeat!,
    checkers: checkers!,
    weights: weights!,
    defaultWeight: defaultWeight!,
    metricsPort: metricsPort!,
    loadBalancer: loadBalancer!,
  };
}

function parseLoadBalancer(c: Collector, o: Record<string, unknown>, path: string, virtualIPs: string[]): FarmConfig['loadBalancer'] | undefined {
  let servicesWithoutClass = false;
  if (o.servicesWithoutClass !== undefined) {
    if (typeof o.servicesWithoutClass !== 'boolean') c.err(join(path, 'servicesWithoutClass'), `must be true or false, got ${show(o.servicesWithoutClass)}`);
    else servicesWithoutClass = o.servicesWithoutClass;
  }
  if (o.addresses === undefined) {
    if (servicesWithoutClass) return c.err(join(path, 'servicesWithoutClass'), 'needs spec.addresses to hand out');
    return { addresses: [], servicesWithoutClass };
  }
  const items = list(c, o.addresses, join(path, 'addresses'), true);
  if (!items) return undefined;
  const pool = parseAddressPool(items, virtualIPs);
  if (!pool.ok) {
    for (const e of pool.errors) c.err(join(join(path, 'addresses'), e.index), e.message);
    return undefined;
  }
  return { addresses: pool.ranges, servicesWithoutClass };
}

/**
 * Validate and default a FarmCluster spec (or the farm part of an agent file).
 * `path` prefixes every field name in errors ("spec" for a FarmCluster); `nameField`
 * is where the name came from ("metadata.name" for a FarmCluster).
 */
export function parseFarmSpec(input: unknown, opts: { name: string; path?: string; nameField?: string }): Result<FarmConfig> {
  const c = new Collector();
  const farm = farmInto(c, input, { name: opts.name, path: opts.path ?? 'spec', nameField: opts.nameField ?? 'metadata.name', extra: SERVICE_FIELDS });
  if (!farm || c.errors.length > 0) return { ok: false, errors: c.errors, warnings: c.warnings };
  return { ok: true, value: farm, warnings: c.warnings };
}

/** Effective weight of a node: its own setting, else the farm's map, else the default. */
export function effectiveWeight(farm: Pick<FarmConfig, 'weights' | 'defaultWeight'>, node: string, own?: number): number {
  return own ?? farm.weights[node] ?? farm.defaultWeight;
}

function parsePeers(c: Collector, v: unknown, self: { name?: string; address?: string }): PeerSpec[] | undefined {
  const items = list(c, v, 'peers', false);
  if (!items) return undefined;
  const out: PeerSpec[] = [];
  const names = new Map<string, number>();
  const addrs = new Map<string, number>();
  const before = c.errors.length;
  items.forEach((item, i) => {
    const p = join('peers', i);
    const o = object(c, item, p, ['name', 'address']);
    if (!o) return;
    const name = string(c, o.name, join(p, 'name'));
    if (name !== undefined) {
      const problem = nodeNameProblem(name);
      if (problem) c.err(join(p, 'name'), problem);
    }
    const address = string(c, o.address, join(p, 'address'));
    if (address !== undefined) {
      const problem = unicastIPv4Problem(address);
      if (problem) c.err(join(p, 'address'), problem);
    }
    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) c.err(join(p, 'name'), `duplicate peer name ${show(name)} (same as peers[${first}])`);
      else names.set(name, i);
    }
    if (address !== undefined) {
      const first = addrs.get(address);
      if (first !== undefined) c.err(join(p, 'address'), `duplicate peer address ${address} (same as peers[${first}])`);
      else addrs.set(address, i);
    }
    if (name !== undefined && address !== undefined && self.name !== undefined && self.address !== undefined) {
      if (name === self.name && address !== self.address) {
        c.err(join(p, 'address'), `this is the node itself (${name}) but node.address is ${self.address}, got ${address}`);
      } else if (name !== self.name && address === self.address) {
        c.err(join(p, 'address'), `${address} is node.address (${self.name}), but this peer is named ${show(name)}`);
      }
    }
    if (name !== undefined && address !== undefined) out.push({ name, address });
  });
  return c.errors.length === before ? out : undefined;
}

/**
 * The standalone agent file: FarmSpec fields at the top level plus name, node, peers,
 * keyFile and metricsPort (which overrides agent.metricsPort). YAML syntax errors become
 * a FieldError on "(yaml)" carrying the line and column.
 */
export function parseAgentFile(yamlText: string): Result<AgentConfig> {
  const c = new Collector();
  let doc: unknown;
  try {
    doc = yaml.load(yamlText, { schema: yaml.CORE_SCHEMA });
  } catch (e) {
    const err = e as { mark?: { line: number; column: number }; reason?: string; message?: string };
    const where = err.mark ? `line ${err.mark.line + 1}, column ${err.mark.column + 1}: ` : '';
    c.err('(yaml)', `${where}${err.reason ?? err.message ?? String(e)}`);
    return { ok: false, errors: c.errors, warnings: c.warnings };
  }
  if (!isRecord(doc)) {
    c.err('(top level)', `must be a YAML mapping, got ${show(doc)}`);
    return { ok: false, errors: c.errors, warnings: c.warnings };
  }
  let name = '';
  if (doc.name === undefined) c.err('name', 'is required (the farm name)');
  else if (typeof doc.name !== 'string') c.err('name', `must be a string, got ${show(doc.name)}`);
  else name = doc.name;
  // An absent name is already reported; validate the rest under a placeholder.
  const farm = farmInto(c, doc, {
    // an absent or non-string name is reported above; do not report it twice
    name: typeof doc.name === 'string' ? name : 'unnamed',
    path: '',
    nameField: 'name',
    extra: AGENT_FILE_FIELDS,
  });

  let node: { name?: string; address?: string; weight?: number } | undefined;
  if (doc.node === undefined) c.err('node', 'is required ({name, address, weight?})');
  else {
    const o = object(c, doc.node, 'node', ['name', 'address', 'weight']);
    if (o) {
      node = {};
      node.name = string(c, o.name, 'node.name');
      if (node.name !== undefined) {
        const problem = nodeNameProblem(node.name);
        if (problem) node.name = c.err('node.name', problem);
      }
      node.address = string(c, o.address, 'node.address');
      if (node.address !== undefined) {
        const problem = unicastIPv4Problem(node.address);
        if (problem) node.address = c.err('node.address', problem);
      }
      if (o.weight !== undefined) node.weight = integer(c, o.weight, 'node.weight', 0, LIMITS.weightMax);
    }
  }
  const peers = doc.peers === undefined ? [] : parsePeers(c, doc.peers, node ?? {});
  let keyFile: string | undefined;
  if (doc.keyFile === undefined) c.err('keyFile', 'is required (path of the heartbeat key file)');
  else keyFile = string(c, doc.keyFile, 'keyFile');
  const metricsPort = doc.metricsPort === undefined ? undefined : integer(c, doc.metricsPort, 'metricsPort', 1, 65535);

  if (c.errors.length > 0 || !farm || !node || !peers || keyFile === undefined) {
    return { ok: false, errors: c.errors, warnings: c.warnings };
  }
  const nodeName = node.name!;
  return {
    ok: true,
    warnings: c.warnings,
    value: {
      farm: metricsPort === undefined ? farm : { ...farm, metricsPort },
      node: { name: nodeName, address: node.address!, weight: effectiveWeight(farm, nodeName, node.weight) },
      peers,
      keyFile,
    },
  };
}

/** One line per error: "spec.rules[1].port: must be 1..65535, got 0". */
export function formatErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('\n');
}
