// Which LoadBalancer Service gets which farm IP: a pure function of the farms' pools and
// the Services as the API server holds them. It is recomputed from scratch on every
// change, and the Services' own status.loadBalancer.ingress is the only memory, so an
// operator restart rebuilds exactly the allocation it had (no IP moves), and a refusal
// (pool exhausted, address outside the pool, port clash) never disturbs another Service.
import { compareIPs, firstFree, poolContains, poolFamilies, type AddressRange } from '../../common/src/address-pool.js';
import { canonicalIP, ipFamilyOf, unicastIPProblem, type IPFamily } from '../../common/src/config/index.js';
import type { Affinity, Protocol, Rule } from '../../common/src/types.js';

export const LB_CLASS = 'vipfarm.io/farm';
export const SERVICE_ANNOTATIONS = {
  /** "name" (a FarmCluster in the Service's namespace) or "namespace/name" */
  farm: 'vipfarm.io/farm',
  /** the address wanted, or one of each family "10.0.0.5,2001:db8::5"; spec.loadBalancerIP is honoured too (deprecated upstream) */
  ip: 'vipfarm.io/ip',
  /** Services with the same key may share one IP on different ports (MetalLB's allow-shared-ip) */
  sharing: 'vipfarm.io/allow-shared-ip',
} as const;

export interface FarmPool {
  /** "namespace/name" */
  key: string;
  addresses: AddressRange[];
  servicesWithoutClass: boolean;
  /**
   * The spec is invalid right now: what its Services hold they keep (a typo in the farm must
   * not take every address away), nothing new is handed out.
   */
  frozen?: boolean;
}

/** The fields of a core/v1 Service the allocator reads. */
export interface ServiceView {
  /** "namespace/name" */
  key: string;
  namespace: string;
  created: string;
  annotations: Record<string, string>;
  type?: string;
  loadBalancerClass?: string;
  loadBalancerIP?: string;
  sessionAffinity?: string;
  externalTrafficPolicy?: string;
  ports: { port: number; protocol?: string }[];
  /** spec.ipFamilies ("IPv4", "IPv6"), primary first; the API server fills it in */
  ipFamilies?: string[];
  /** spec.ipFamilyPolicy: SingleStack (default), PreferDualStack or RequireDualStack */
  ipFamilyPolicy?: string;
  /** status.loadBalancer.ingress[].ip */
  ingressIPs: string[];
  /** status.loadBalancer was written by this operator */
  heldByUs: boolean;
}

export type RefusalReason =
  | 'NoFarm' | 'InvalidRequest' | 'AddressOutsidePool' | 'AddressInUse' | 'PortClash' | 'PoolExhausted' | 'UnsupportedProtocol'
  | 'FamilyNotInPool';

export type Decision =
  /** `ips`: one per family, in the order of the Service's spec.ipFamilies */
  | { kind: 'allocated'; farm: string; ips: string[]; rules: Rule[]; externalTrafficPolicy: 'Cluster' | 'Local' }
  | { kind: 'refused'; reason: RefusalReason; message: string }
  /** not (or no longer) ours, but its status carries an IP we wrote */
  | { kind: 'release' }
  /** not ours and nothing of ours on it: never touched */
  | { kind: 'ignore' };

interface IpUse {
  farm: string;
  sharing?: string;
  ports: Set<string>;
  services: string[];
}

function portKeys(s: ServiceView): string[] {
  return s.ports.map((p) => `${p.port}/${(p.protocol ?? 'TCP').toLowerCase()}`);
}

/** Is the Service of a class we serve, given the farms? (Other classes are never touched.) */
function ours(s: ServiceView, farms: readonly FarmPool[]): boolean {
  if (s.type !== 'LoadBalancer') return false;
  if (s.loadBalancerClass === LB_CLASS) return true;
  return s.loadBalancerClass === undefined && farms.some((f) => f.servicesWithoutClass && f.addresses.length > 0);
}

function pickFarm(s: ServiceView, farms: readonly FarmPool[]): { farm: FarmPool } | { message: string } {
  const wanted = s.annotations[SERVICE_ANNOTATIONS.farm];
  if (wanted !== undefined) {
    const key = wanted.includes('/') ? wanted : `${s.namespace}/${wanted}`;
    const farm = farms.find((f) => f.key === key);
    if (!farm) return { message: `FarmCluster ${key} (annotation ${SERVICE_ANNOTATIONS.farm}) does not exist or its spec is invalid` };
    if (farm.addresses.length === 0 && !farm.frozen) return { message: `FarmCluster ${key} has no spec.addresses to allocate from` };
    return { farm };
  }
  const offering = farms.filter((f) => f.addresses.length > 0 && (s.loadBalancerClass === LB_CLASS || f.servicesWithoutClass));
  if (offering.length === 1) return { farm: offering[0]! };
  if (offering.length === 0) return { message: 'no FarmCluster offers addresses (spec.addresses)' };
  return { message: `${offering.length} FarmClusters offer addresses (${offering.map((f) => f.key).join(', ')}): choose one with the annotation ${SERVICE_ANNOTATIONS.farm}` };
}

function rulesOf(s: ServiceView): Rule[] {
  // sessionAffinity ClientIP keeps a client on one node (and kube-proxy on one endpoint);
  // None spreads a client's connections by source port too.
  const affinity: Affinity = s.sessionAffinity === 'ClientIP' ? 'ClientIP' : 'ClientIPAndPort';
  return s.ports.map((p) => ({ port: p.port, protocol: (p.protocol ?? 'TCP').toLowerCase() as Protocol, affinity }));
}

const byAge = (a: ServiceView, b: ServiceView): number => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** The decision for every Service, by key. */
export function allocate(farms: readonly FarmPool[], services: readonly ServiceView[]): Map<string, Decision> {
  const out = new Map<string, Decision>();
  const uses = new Map<string, IpUse>();

  const mine: ServiceView[] = [];
  for (const s of services) {
    if (ours(s, farms)) mine.push(s);
    else out.set(s.key, s.heldByUs && s.ingressIPs.length > 0 ? { kind: 'release' } : { kind: 'ignore' });
  }
  // Those already holding an address are placed first, oldest first: what they hold they keep.
  const holding = mine.filter((s) => s.ingressIPs.length > 0).sort(byAge);
  const rest = mine.filter((s) => s.ingressIPs.length === 0).sort(byAge);
  for (const s of [...holding, ...rest]) out.set(s.key, place(s, farms, uses));
  return out;
}

type Refused = Extract<Decision, { kind: 'refused' }>;
const refused = (reason: RefusalReason, message: string): Refused => ({ kind: 'refused', reason, message });

/** One Service's decision given the addresses the Services placed before it use (updated). */
function place(s: ServiceView, farms: readonly FarmPool[], uses: Map<string, IpUse>): Decision {
  const f = pickFarm(s, farms);
  if ('message' in f) return refused('NoFarm', f.message);
  const farm = f.farm;
  if (farm.frozen) return placeOnFrozen(s, farm, uses);
  const request = readRequest(s);
  if ('kind' in request) return request;
  const families = familiesFor(s, farm);
  if (!Array.isArray(families)) return families;
  const sharing = s.annotations[SERVICE_ANNOTATIONS.sharing] || undefined;
  const ips = chooseAddresses(s, farm, uses, request, families, sharing);
  if (!Array.isArray(ips)) return ips;
  for (const ip of ips) take(uses, ip, farm.key, sharing, request.ports, s.key);
  return allocated(s, farm, ips);
}

/** One address of each family the Service gets (nothing taken yet), or why not. */
function chooseAddresses(
  s: ServiceView,
  farm: FarmPool,
  uses: Map<string, IpUse>,
  request: { ports: string[]; requested?: string[] },
  families: IPFamily[],
  sharing: string | undefined,
): string[] | Refused {
  const requested = request.requested;
  const wrong = requested?.find((ip) => !families.includes(ipFamilyOf(ip)));
  if (wrong !== undefined) {
    return refused('InvalidRequest', `requested address ${wrong} is ${FAMILY_NAME[ipFamilyOf(wrong)]}, not one of the Service's families (${families.map((f) => FAMILY_NAME[f]).join(', ')})`);
  }
  const policy = s.ipFamilyPolicy ?? 'SingleStack';
  // Addresses asked for are exactly what the Service gets; else one of each family.
  const wanted = requested ? requested.map(ipFamilyOf) : families;
  if (policy === 'RequireDualStack' && wanted.length < 2) {
    return refused('InvalidRequest', `ipFamilyPolicy RequireDualStack needs an address of each family, ${SERVICE_ANNOTATIONS.ip} names only ${requested!.join(', ')}`);
  }
  const ips: string[] = [];
  let firstRefusal: Refused | undefined;
  for (const family of wanted) {
    const want = requested?.find((ip) => ipFamilyOf(ip) === family) ?? s.ingressIPs.map(canonicalIP).find((ip) => ip !== undefined && ipFamilyOf(ip) === family);
    const ip = chooseAddress(farm, uses, want, sharing, request.ports, family);
    if (typeof ip === 'string') ips.push(ip);
    else firstRefusal ??= ip;
  }
  // PreferDualStack: one family is enough when the other's pool is exhausted (the next sync tries again).
  const partialOk = policy === 'PreferDualStack' && requested === undefined && firstRefusal?.reason === 'PoolExhausted' && ips.length > 0;
  return firstRefusal && !partialOk ? firstRefusal : ips;
}

const FAMILY_NAME: Record<IPFamily, string> = { ipv4: 'IPv4', ipv6: 'IPv6' };

/**
 * The families a Service gets an address of, primary first: those of its spec.ipFamilies
 * (kube-proxy serves a LoadBalancer IP only of a family the Service has), SingleStack the
 * first, PreferDualStack those the pool has, RequireDualStack all of them.
 */
export function familiesFor(s: Pick<ServiceView, 'ipFamilies' | 'ipFamilyPolicy'>, farm: Pick<FarmPool, 'key' | 'addresses'>): IPFamily[] | Refused {
  const inPool = poolFamilies(farm.addresses);
  const listed = (s.ipFamilies ?? []).flatMap((f) => (f === 'IPv4' ? ['ipv4' as const] : f === 'IPv6' ? ['ipv6' as const] : []));
  // No spec.ipFamilies (the API server always sets it; an old object): the pool's first family.
  if (listed.length === 0) listed.push(inPool[0] ?? 'ipv4');
  const policy = s.ipFamilyPolicy ?? 'SingleStack';
  const wanted = policy === 'SingleStack' ? listed.slice(0, 1) : listed;
  const missing = wanted.filter((f) => !inPool.includes(f));
  const poolText = `FarmCluster ${farm.key}'s pool has ${inPool.length === 0 ? 'no addresses' : `only ${inPool.map((f) => FAMILY_NAME[f]).join(' and ')} addresses`}`;
  if (policy === 'RequireDualStack' && wanted.length < 2) {
    return refused('InvalidRequest', `ipFamilyPolicy RequireDualStack but spec.ipFamilies lists ${wanted.map((f) => FAMILY_NAME[f]).join(', ')} only`);
  }
  if (policy === 'PreferDualStack') {
    const have = wanted.filter((f) => inPool.includes(f));
    if (have.length > 0) return have;
  }
  if (missing.length > 0) return refused('FamilyNotInPool', `the Service wants ${missing.map((f) => FAMILY_NAME[f]).join(' and ')} (${policy}), but ${poolText}`);
  return wanted;
}

/** A farm whose spec is invalid: a Service keeps what it holds, gets nothing new. */
function placeOnFrozen(s: ServiceView, farm: FarmPool, uses: Map<string, IpUse>): Decision {
  const held = s.ingressIPs.flatMap((ip) => canonicalIP(ip) ?? []);
  if (held.length === 0 || held.some((ip) => uses.get(ip) !== undefined && uses.get(ip)!.farm !== farm.key)) {
    return refused('NoFarm', `the spec of FarmCluster ${farm.key} is invalid: addresses it handed out are kept, no new ones until it is fixed`);
  }
  for (const ip of held) take(uses, ip, farm.key, s.annotations[SERVICE_ANNOTATIONS.sharing] || undefined, portKeys(s), s.key);
  return allocated(s, farm, held);
}

/** The Service's ports and the address it asks for, or why the request itself is invalid. */
function readRequest(s: ServiceView): { ports: string[]; requested?: string[] } | Refused {
  const sctp = s.ports.find((p) => p.protocol !== undefined && p.protocol !== 'TCP' && p.protocol !== 'UDP');
  if (sctp) return refused('UnsupportedProtocol', `port ${sctp.port}/${sctp.protocol}: vipfarm serves TCP and UDP only`);
  const ports = portKeys(s);
  const dup = ports.find((p, i) => ports.indexOf(p) !== i);
  if (dup !== undefined) return refused('InvalidRequest', `port ${dup} is listed twice`);
  const annotated = s.annotations[SERVICE_ANNOTATIONS.ip];
  const text = annotated ?? (s.loadBalancerIP || undefined);
  if (annotated !== undefined && s.loadBalancerIP && canonicalIP(s.loadBalancerIP) !== canonicalIP(annotated)) {
    return refused('InvalidRequest', `annotation ${SERVICE_ANNOTATIONS.ip} (${annotated}) and spec.loadBalancerIP (${s.loadBalancerIP}) disagree`);
  }
  if (text === undefined) return { ports };
  const requested: string[] = [];
  for (const item of text.split(',').map((t) => t.trim())) {
    const problem = unicastIPProblem(item);
    if (problem) return refused('InvalidRequest', `requested address ${problem}`);
    const ip = canonicalIP(item)!;
    if (requested.some((r) => ipFamilyOf(r) === ipFamilyOf(ip))) {
      return refused('InvalidRequest', `${SERVICE_ANNOTATIONS.ip} (${text}) names two ${FAMILY_NAME[ipFamilyOf(ip)]} addresses: at most one of each family`);
    }
    requested.push(ip);
  }
  return { ports, requested };
}

/** The address wanted (requested or already held) if it may be used, else a shareable or the first free one. */
function chooseAddress(
  farm: FarmPool,
  uses: Map<string, IpUse>,
  want: string | undefined,
  sharing: string | undefined,
  ports: string[],
  family: IPFamily,
): string | Refused {
  if (want !== undefined) {
    if (!poolContains(farm.addresses, want)) {
      return refused('AddressOutsidePool', `${want} is not in the address pool of FarmCluster ${farm.key} (${farm.addresses.map((r) => r.text).join(', ')})`);
    }
    const use = uses.get(want);
    const problem = use ? shareProblem(use, farm.key, sharing, ports, want) : undefined;
    return problem ? refused(problem.reason, problem.message) : want;
  }
  let ip: string | undefined;
  if (sharing !== undefined) {
    for (const [candidate, use] of uses) {
      if (ipFamilyOf(candidate) === family && poolContains(farm.addresses, candidate) && !shareProblem(use, farm.key, sharing, ports, candidate)) {
        ip = candidate;
        break;
      }
    }
  }
  ip ??= firstFree(farm.addresses, (a) => uses.has(a), family);
  return ip ?? refused('PoolExhausted', `every ${FAMILY_NAME[family]} address of FarmCluster ${farm.key}'s pool (${farm.addresses.filter((r) => r.family === family).map((r) => r.text).join(', ')}) is in use`);
}

function take(uses: Map<string, IpUse>, ip: string, farm: string, sharing: string | undefined, ports: string[], service: string): void {
  const use = uses.get(ip) ?? { farm, sharing, ports: new Set<string>(), services: [] };
  for (const p of ports) use.ports.add(p);
  use.services.push(service);
  uses.set(ip, use);
}

function allocated(s: ServiceView, farm: FarmPool, ips: string[]): Decision {
  return { kind: 'allocated', farm: farm.key, ips, rules: rulesOf(s), externalTrafficPolicy: s.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster' };
}

function shareProblem(use: IpUse, farm: string, sharing: string | undefined, ports: string[], ip: string): { reason: RefusalReason; message: string } | undefined {
  // Sorted: the order Services arrive in (informer, restart) must not change the Event text.
  const holders = [...use.services].sort().join(', ');
  if (use.farm !== farm) return { reason: 'AddressInUse', message: `${ip} is in use by ${holders} of FarmCluster ${use.farm}` };
  if (sharing === undefined || use.sharing !== sharing) {
    return { reason: 'AddressInUse', message: `${ip} is in use by ${holders}; Services share an address only with the same ${SERVICE_ANNOTATIONS.sharing} annotation` };
  }
  const clash = ports.filter((p) => use.ports.has(p));
  if (clash.length > 0) return { reason: 'PortClash', message: `${ip} is shared with ${holders}, which already use port ${clash.join(', ')}` };
  return undefined;
}

/** One Service IP as the farm serves it: the rules of every Service sharing it. */
export interface ServiceAddress {
  ip: string;
  rules: Rule[];
  /** the Services behind the IP, "namespace/name" */
  services: string[];
  externalTrafficPolicy: 'Cluster' | 'Local';
  /** Local only: the nodes with a ready endpoint of every Local Service behind the IP, sorted */
  nodes?: string[];
}

/**
 * What farm `farm` must serve for Services, IPs in address order. `readyNodes` gives, per
 * Service ("namespace/name"), the nodes where it has a ready endpoint (EndpointSlices).
 */
export function farmServiceAddresses(farm: string, decisions: ReadonlyMap<string, Decision>, readyNodes: ReadonlyMap<string, readonly string[]> = new Map()): ServiceAddress[] {
  const byIp = new Map<string, ServiceAddress>();
  for (const [key, d] of [...decisions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (d.kind !== 'allocated' || d.farm !== farm) continue;
    for (const ip of d.ips) {
      const a = byIp.get(ip) ?? { ip, rules: [], services: [], externalTrafficPolicy: d.externalTrafficPolicy };
      a.rules.push(...d.rules);
      a.services.push(key);
      if (d.externalTrafficPolicy === 'Local') {
        // One Local Service on a shared IP makes the whole IP Local, on the nodes where every
        // Local Service behind it has an endpoint: a client is never sent to a node whose
        // kube-proxy would drop it for lack of a local endpoint.
        const here = readyNodes.get(key) ?? [];
        a.nodes = a.nodes === undefined ? [...here] : a.nodes.filter((n) => here.includes(n));
        a.externalTrafficPolicy = 'Local';
      }
      byIp.set(ip, a);
    }
  }
  for (const a of byIp.values()) if (a.nodes) a.nodes = [...new Set(a.nodes)].sort();
  return [...byIp.values()].sort((x, y) => compareIPs(x.ip, y.ip));
}
