// The one farm parser: the agent's YAML mode, the agent's Kubernetes mode and the operator
// all turn a spec into a FarmConfig here, so a mistake gets the same message everywhere.
// Pure (hashing is the only "library" call): it never throws on any input, it collects
// every problem instead of stopping at the first, and unknown fields are errors.
import { parseAddressPool } from '../address-pool.js';
import type { FarmClusterSpec } from '../farmcluster-types.js';
import { FARM_MODES, type Affinity, type FarmConfig, type FarmMode, type Protocol, type Rule, type ServiceIPRules } from '../types.js';
import { parseCheckers } from './checkers.js';
import { Collector, integer, isRecord, join, list, object, optInteger, show, string, syntax, type Result } from './collector.js';
import { DEFAULTS, defaultHashSeed, defaultVirtualMAC } from './defaults.js';
import { LIMITS, bucketCountProblem, farmNameProblem, ifnameProblem, nodeNameProblem, canonicalIP, unicastIPProblem, virtualMACProblem } from './syntax.js';

// Every field of the generated CRD spec type, so a field added to the CRD does not compile
// until the parser knows it.
const SPEC_FIELDS: Record<keyof FarmClusterSpec, true> = {
  virtualIPs: true, interface: true, virtualMAC: true, rules: true, bucketCount: true, hashSeed: true,
  heartbeat: true, checkers: true, weights: true, defaultWeight: true, nodeSelector: true, tolerations: true, agent: true,
  addresses: true, servicesWithoutClass: true, mode: true, gratuitousARPIntervalMs: true,
};
export const FARM_SPEC_FIELDS = Object.keys(SPEC_FIELDS) as readonly (keyof FarmClusterSpec)[];
// Only a FarmCluster hands out LoadBalancer addresses: the operator allocates them.
const SERVICE_FIELDS: readonly string[] = ['addresses', 'servicesWithoutClass'] satisfies (keyof FarmClusterSpec)[];
const FARM_FIELDS = FARM_SPEC_FIELDS.filter((f) => !SERVICE_FIELDS.includes(f));

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
      c.err(p, `must be an IPv4 or IPv6 address string, got ${show(item)}`);
      return;
    }
    const problem = unicastIPProblem(item);
    if (problem) {
      bad = true;
      c.err(p, problem);
      return;
    }
    // IPv6 has many texts for one address: compared, and handed on, in the canonical one
    const ip = canonicalIP(item)!;
    const first = seen.get(ip);
    if (first !== undefined) {
      bad = true;
      c.err(p, `duplicate of ${join(path, first)} (${ip})`);
      return;
    }
    seen.set(ip, i);
    out.push(ip);
  });
  return bad ? undefined : out;
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
    const port = integer(c, o.port, join(p, 'port'), 1, LIMITS.portMax);
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
  const dfltThreshold = Math.max(DEFAULTS.failureThresholdMs, 3 * (intervalMs ?? DEFAULTS.intervalMs));
  const failureThresholdMs = optInteger(c, o.failureThresholdMs, join(path, 'failureThresholdMs'), 1, LIMITS.failureThresholdMaxMs, dfltThreshold);
  const port = optInteger(c, o.port, join(path, 'port'), 1, LIMITS.portMax, DEFAULTS.heartbeatPort);
  if (intervalMs === undefined || failureThresholdMs === undefined || port === undefined) return undefined;
  if (failureThresholdMs <= 2 * intervalMs) {
    return c.err(
      join(path, 'failureThresholdMs'),
      `must be greater than 2 * intervalMs (${2 * intervalMs}) so that one lost heartbeat is not a failure, got ${failureThresholdMs}`,
    );
  }
  return { intervalMs, failureThresholdMs, port };
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
  return optInteger(c, o.metricsPort, join(path, 'metricsPort'), 1, LIMITS.portMax, DEFAULTS.metricsPort);
}

function parseInterface(c: Collector, v: unknown, path: string): string | undefined {
  if (v === undefined) return c.err(path, 'is required');
  if (typeof v !== 'string') return c.err(path, `must be a string, got ${show(v)}`);
  const problem = ifnameProblem(v);
  return problem ? c.err(path, problem) : v;
}

function parseBucketCount(c: Collector, v: unknown, path: string): number | undefined {
  if (v === undefined) return DEFAULTS.bucketCount;
  const n = integer(c, v, path, LIMITS.bucketCountMin, LIMITS.bucketCountMax);
  const problem = n === undefined ? undefined : bucketCountProblem(n);
  return problem ? c.err(path, problem) : n;
}

/** Validate the farm fields of `input` into `c`; `extra` names fields the caller handles. */
export function farmInto(
  c: Collector,
  input: unknown,
  opts: { name: string; path: string; nameField: string; extra: readonly string[] },
): FarmConfig | undefined {
  const path = opts.path;
  const nameProblem = farmNameProblem(opts.name);
  if (nameProblem) c.err(opts.nameField, `farm name ${nameProblem}`);
  const o = object(c, input, path, [...FARM_FIELDS, ...opts.extra]);
  if (!o) return undefined;
  const before = c.errors.length;
  const at = (k: string): string => join(path, k);
  const virtualIPs = o.virtualIPs === undefined ? c.err(at('virtualIPs'), 'is required') : parseVirtualIPs(c, o.virtualIPs, at('virtualIPs'));
  const iface = parseInterface(c, o.interface, at('interface'));
  const virtualMAC = o.virtualMAC === undefined ? defaultVirtualMAC(opts.name) : syntax(c, o.virtualMAC, at('virtualMAC'), virtualMACProblem)?.toLowerCase();
  const rules = o.rules === undefined ? c.err(at('rules'), 'is required') : parseRules(c, o.rules, at('rules'));
  const bucketCount = parseBucketCount(c, o.bucketCount, at('bucketCount'));
  const hashSeed = o.hashSeed === undefined ? defaultHashSeed(opts.name) : integer(c, o.hashSeed, at('hashSeed'), 0, LIMITS.hashSeedMax);
  const heartbeat = parseHeartbeat(c, o.heartbeat, at('heartbeat'));
  const checkers = parseCheckers(c, o.checkers, at('checkers'));
  const weights = parseWeights(c, o.weights, at('weights'));
  const defaultWeight = optInteger(c, o.defaultWeight, at('defaultWeight'), 0, LIMITS.weightMax, DEFAULTS.defaultWeight);
  parseStringMap(c, o.nodeSelector, at('nodeSelector'));
  parseTolerations(c, o.tolerations, at('tolerations'));
  const metricsPort = parseAgentSection(c, o.agent, at('agent'));
  const loadBalancer = parseLoadBalancer(c, o, path, virtualIPs ?? []);
  let mode: FarmMode | undefined = 'Flooding';
  if (o.mode !== undefined) {
    mode = FARM_MODES.includes(o.mode as FarmMode) ? (o.mode as FarmMode) : c.err(at('mode'), `must be Flooding or Directed, got ${show(o.mode)}`);
  }
  const gratuitousARPIntervalMs = parseAnnounceInterval(c, o.gratuitousARPIntervalMs, at('gratuitousARPIntervalMs'));
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
    mode: mode!,
    gratuitousARPIntervalMs: gratuitousARPIntervalMs!,
  };
}

function parseAnnounceInterval(c: Collector, v: unknown, path: string): number | undefined {
  if (v === undefined) return DEFAULTS.gratuitousARPIntervalMs;
  const n = integer(c, v, path, 0, LIMITS.announceIntervalMaxMs);
  // below a second it would be a flood of its own, not a refresh
  if (n === undefined || n === 0 || n >= LIMITS.announceIntervalMinMs) return n;
  return c.err(path, `must be 0 (off) or between ${LIMITS.announceIntervalMinMs} and ${LIMITS.announceIntervalMaxMs}, got ${n}`);
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

/** externalTrafficPolicy Local's eligible nodes: present exactly when the policy is Local; sorted, unique. */
function parseNodeNames(c: Collector, o: Record<string, unknown>, entry: string): string[] | undefined {
  const path = join(entry, 'nodes');
  const local = o.externalTrafficPolicy === 'Local';
  if (o.externalTrafficPolicy !== undefined && o.externalTrafficPolicy !== 'Cluster' && !local) {
    c.err(join(entry, 'externalTrafficPolicy'), `must be Cluster or Local, got ${show(o.externalTrafficPolicy)}`);
    return undefined;
  }
  if (o.nodes === undefined) {
    if (local) c.err(path, 'externalTrafficPolicy Local needs the list of nodes with a ready endpoint (may be empty)');
    return undefined;
  }
  if (!local) {
    c.err(path, 'only externalTrafficPolicy Local restricts the nodes');
    return undefined;
  }
  const items = list(c, o.nodes, path, false);
  if (!items) return undefined;
  const names: string[] = [];
  items.forEach((n, i) => {
    const name = syntax(c, n, join(path, i), nodeNameProblem);
    if (name !== undefined) names.push(name);
  });
  return [...new Set(names)].sort();
}

/**
 * The Service IPs the operator renders into the FarmCluster's status.services (what the
 * agents serve besides the virtualIPs): each an address with its rules, validated as
 * spec.rules are, none repeating a virtual IP or another Service IP.
 */
export function parseServiceAddresses(input: unknown, virtualIPs: readonly string[], path = 'status.services'): Result<ServiceIPRules[]> {
  const c = new Collector();
  const out: ServiceIPRules[] = [];
  const items = input === undefined ? [] : list(c, input, path, false);
  const seen = new Set(virtualIPs);
  items?.forEach((item, i) => {
    const p = join(path, i);
    const o = object(c, item, p, ['ip', 'rules', 'services', 'externalTrafficPolicy', 'nodes']);
    if (!o) return;
    const text = string(c, o.ip, join(p, 'ip'));
    const problem = text === undefined ? undefined : unicastIPProblem(text);
    const ip = text === undefined || problem ? text : canonicalIP(text);
    if (problem) c.err(join(p, 'ip'), problem);
    else if (ip !== undefined && seen.has(ip)) c.err(join(p, 'ip'), `${ip} is served twice (a virtual IP or an earlier entry)`);
    const rules = parseRules(c, o.rules, join(p, 'rules'));
    const nodes = parseNodeNames(c, o, p);
    if (ip !== undefined && !problem && !seen.has(ip) && rules) out.push(nodes === undefined ? { ip, rules } : { ip, rules, nodes });
    if (ip !== undefined) seen.add(ip);
  });
  if (c.errors.length > 0) return { ok: false, errors: c.errors, warnings: c.warnings };
  return { ok: true, value: out, warnings: c.warnings };
}
