// Input checks run before any native call, so a bad value never half-applies a change.
// Pure functions: each throws DataplaneInputError naming the field and the value.
// The value syntaxes are the shared ones (common/src/config/syntax.ts), so that a farm the
// parser accepts is one the kernel side accepts.
import {
  LIMITS,
  bucketCountProblem,
  farmNameProblem,
  ifnameProblem,
  canonicalIP,
  unicastIPProblem,
  unicastMACProblem,
  virtualMACProblem,
} from '../../common/src/config/syntax.js';
import { FARM_MODES, type Affinity, type DataplaneFarm, type FarmMode, type Protocol } from '../../common/src/types.js';

export class DataplaneInputError extends Error {
  readonly code = 'EINVAL';
  constructor(message: string) {
    super(message);
    this.name = 'DataplaneInputError';
  }
}

/** a lease longer than a day is a unit mistake (seconds passed as ms, or worse) */
export const MAX_LEASE_MS = 86_400_000;

export function fail(op: string, msg: string): never {
  throw new DataplaneInputError(`${op}: ${msg}`);
}

/** A string that the shared syntax `problem` accepts, else an error naming the field. */
function checked(op: string, field: string, v: unknown, problem: (s: string) => string | undefined): string {
  if (typeof v !== 'string') fail(op, `${field} must be a string, got ${JSON.stringify(v)}`);
  const p = problem(v);
  if (p !== undefined) fail(op, `${field} ${p}`);
  return v;
}

function checkInteger(op: string, field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(op, `${field} ${JSON.stringify(v)} must be an integer from ${min} to ${max}`);
  }
  return v;
}

export function checkFarmName(op: string, name: unknown): string {
  return checked(op, 'farm name', name, farmNameProblem);
}

export function checkIface(op: string, iface: unknown): string {
  return checked(op, 'interface', iface, ifnameProblem);
}

export function checkVips(op: string, vips: unknown, what = 'virtualIPs'): string[] {
  if (!Array.isArray(vips) || vips.length === 0) fail(op, `${what} must be a list of at least one virtual IP`);
  // IPv6 has many texts for one address: duplicates are found by the canonical one
  const canonical = vips.map((ip, i) => canonicalIP(checked(op, `${what}[${i}]`, ip, unicastIPProblem)));
  canonical.forEach((ip, i) => {
    const first = canonical.indexOf(ip);
    if (first !== i) fail(op, `${what}[${i}] duplicates ${what}[${first}] (${String(vips[i])})`);
  });
  return vips as string[];
}

export function checkMac(op: string, mac: unknown): string {
  return checked(op, 'virtualMAC', mac, virtualMACProblem).toLowerCase();
}

/** a peer node's IPv4 address (Directed mode second chance) */
export function checkNodeIP(op: string, field: string, ip: unknown): string {
  return checked(op, field, ip, (v) => unicastIPProblem(v));
}

/** a node's own MAC (Directed mode forwarding targets): any unicast address */
export function checkNodeMac(op: string, mac: unknown): string {
  return checked(op, 'node MAC', mac, unicastMACProblem).toLowerCase();
}

export function checkMode(op: string, mode: unknown): FarmMode {
  if (mode === undefined) return 'Flooding';
  if (!FARM_MODES.includes(mode as FarmMode)) fail(op, `mode ${JSON.stringify(mode)} must be Flooding or Directed`);
  return mode as FarmMode;
}

/** Destination of the L2 heartbeat frames: a unicast MAC (the virtual MAC) or broadcast
 *  (Directed mode, where the virtual MAC is not flooded); never a group we would have to join. */
export function checkFrameDestination(op: string, mac: unknown): string {
  if (typeof mac === 'string' && mac.toLowerCase() === 'ff:ff:ff:ff:ff:ff') return 'ff:ff:ff:ff:ff:ff';
  return checked(op, 'destination MAC', mac, unicastMACProblem).toLowerCase();
}

export function checkBucketCount(op: string, n: unknown): number {
  if (typeof n !== 'number') fail(op, `bucketCount must be a number, got ${JSON.stringify(n)}`);
  const p = bucketCountProblem(n);
  if (p !== undefined) fail(op, `bucketCount ${p}`);
  return n;
}

export function checkSeed(op: string, seed: unknown): number {
  return checkInteger(op, 'hashSeed', seed, 0, LIMITS.hashSeedMax);
}

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];
const AFFINITIES: readonly Affinity[] = ['ClientIP', 'ClientIPAndPort'];

/** Returns a normalized copy (lowercase MAC) of a fully checked farm. */
export function checkFarm(op: string, farm: unknown): DataplaneFarm {
  if (typeof farm !== 'object' || farm === null) fail(op, 'farm must be an object');
  const f = farm as Record<string, unknown>;
  const name = checkFarmName(op, f.name);
  const iface = checkIface(op, f.interface);
  const virtualIPs = checkVips(op, f.virtualIPs);
  const virtualMAC = checkMac(op, f.virtualMAC);
  const bucketCount = checkBucketCount(op, f.bucketCount);
  const hashSeed = checkSeed(op, f.hashSeed);
  const mode = checkMode(op, f.mode);
  const rules = checkRules(op, f.rules, 'rules');
  if (f.services === undefined) return { name, interface: iface, virtualIPs, virtualMAC, rules, bucketCount, hashSeed, mode };
  if (!Array.isArray(f.services)) fail(op, 'services must be a list');
  const ips = new Set(virtualIPs);
  const services = f.services.map((a: unknown, i: number) => {
    const o = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
    const [ip] = checkVips(op, [o.ip], `services[${i}].ip`);
    if (ips.has(ip!)) fail(op, `services[${i}].ip ${ip} is already a virtual IP or another service IP`);
    ips.add(ip!);
    const rules = checkRules(op, o.rules, `services[${i}].rules`);
    if (o.nodes === undefined) return { ip: ip!, rules };
    if (!Array.isArray(o.nodes) || o.nodes.some((n) => typeof n !== 'string' || n === '')) fail(op, `services[${i}].nodes must be a list of node names`);
    return { ip: ip!, rules, nodes: [...(o.nodes as string[])] };
  });
  return { name, interface: iface, virtualIPs, virtualMAC, rules, services, bucketCount, hashSeed, mode };
}

function checkRules(op: string, v: unknown, path: string): DataplaneFarm['rules'] {
  if (!Array.isArray(v) || v.length === 0) fail(op, `${path} must be a list of at least one rule`);
  const seen = new Set<string>();
  return v.map((r: unknown, i: number) => {
    const rule = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    const { port, protocol, affinity } = rule;
    checkInteger(op, `${path}[${i}].port`, port, 1, LIMITS.portMax);
    if (!PROTOCOLS.includes(protocol as Protocol)) fail(op, `${path}[${i}].protocol ${JSON.stringify(protocol)} must be tcp or udp`);
    if (!AFFINITIES.includes(affinity as Affinity)) {
      fail(op, `${path}[${i}].affinity ${JSON.stringify(affinity)} must be ClientIP or ClientIPAndPort`);
    }
    const key = `${String(protocol)}/${port}`;
    if (seen.has(key)) fail(op, `${path}[${i}] repeats ${key}`);
    seen.add(key);
    return { port: port as number, protocol: protocol as Protocol, affinity: affinity as Affinity };
  });
}

/** Sorted, de-duplicated buckets, each an integer in [0, bucketCount). */
export function checkBuckets(op: string, buckets: unknown, bucketCount: number): number[] {
  if (!Array.isArray(buckets)) fail(op, 'buckets must be an array of integers');
  for (const b of buckets) {
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b >= bucketCount) {
      fail(op, `bucket ${JSON.stringify(b)} is out of range [0, ${bucketCount})`);
    }
  }
  return [...new Set(buckets as number[])].sort((a, b) => a - b);
}

export function checkLease(op: string, leaseMs: unknown): number {
  if (typeof leaseMs !== 'number' || !Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > MAX_LEASE_MS) {
    fail(op, `leaseMs ${JSON.stringify(leaseMs)} must be an integer from 1 to ${MAX_LEASE_MS}`);
  }
  return leaseMs;
}
