// Input checks run before any native call, so a bad value never half-applies a change.
// Pure functions: each throws DataplaneInputError naming the field and the value.
import { FARM_MODES, type Affinity, type DataplaneFarm, type FarmMode, type Protocol } from '../../common/src/types.js';

export class DataplaneInputError extends Error {
  readonly code = 'EINVAL';
  constructor(message: string) {
    super(message);
    this.name = 'DataplaneInputError';
  }
}

const FARM_NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IFNAME = /^[A-Za-z0-9_.@:+-]{1,15}$/;
export const MAX_BUCKETS = 4096;
/** a lease longer than a day is a unit mistake (seconds passed as ms, or worse) */
export const MAX_LEASE_MS = 86_400_000;

export function fail(op: string, msg: string): never {
  throw new DataplaneInputError(`${op}: ${msg}`);
}

export function checkFarmName(op: string, name: unknown): string {
  if (typeof name !== 'string' || !FARM_NAME.test(name)) {
    fail(op, `farm name ${JSON.stringify(name)} must be a DNS label of at most 40 lowercase letters, digits and '-'`);
  }
  return name;
}

export function checkIface(op: string, iface: unknown): string {
  if (typeof iface !== 'string' || !IFNAME.test(iface) || iface === '.' || iface === '..') {
    fail(op, `interface ${JSON.stringify(iface)} is not a valid interface name`);
  }
  return iface;
}

export function isIPv4(ip: unknown): ip is string {
  if (typeof ip !== 'string') return false;
  const parts = ip.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function checkVips(op: string, vips: unknown): string[] {
  if (!Array.isArray(vips) || vips.length === 0) fail(op, 'at least one virtual IP is needed');
  vips.forEach((ip, i) => {
    if (!isIPv4(ip)) fail(op, `virtualIPs[${i}] ${JSON.stringify(ip)} is not an IPv4 address`);
    const first = Number(ip.split('.')[0]);
    if (first === 0 || first === 127 || first >= 224) fail(op, `virtualIPs[${i}] ${ip} is not a unicast host address`);
  });
  if (new Set(vips).size !== vips.length) fail(op, 'virtualIPs contains duplicates');
  return vips as string[];
}

export function checkMac(op: string, mac: unknown): string {
  if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase())) fail(op, `virtual MAC ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`);
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) fail(op, `virtual MAC ${mac} is a multicast address`);
  if (!(first & 2)) fail(op, `virtual MAC ${mac} is not locally administered (second bit of the first octet)`);
  return mac.toLowerCase();
}

/** a node's own MAC (Directed mode forwarding targets): any unicast address */
export function checkNodeMac(op: string, mac: unknown): string {
  if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase())) fail(op, `node MAC ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`);
  if (parseInt(mac.slice(0, 2), 16) & 1) fail(op, `node MAC ${mac} is a multicast address`);
  if (/^0{2}(:0{2}){5}$/.test(mac)) fail(op, 'node MAC 00:00:00:00:00:00 is not an address');
  return mac.toLowerCase();
}

export function checkMode(op: string, mode: unknown): FarmMode {
  if (mode === undefined) return 'Flooding';
  if (!FARM_MODES.includes(mode as FarmMode)) fail(op, `mode ${JSON.stringify(mode)} must be Flooding or Directed`);
  return mode as FarmMode;
}

export function checkBucketCount(op: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 2 || n > MAX_BUCKETS || (n & (n - 1)) !== 0) {
    fail(op, `bucketCount ${JSON.stringify(n)} must be a power of two from 2 to ${MAX_BUCKETS}`);
  }
  return n;
}

export function checkSeed(op: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    fail(op, `hashSeed ${JSON.stringify(seed)} must be an integer from 0 to 2^32-1`);
  }
  return seed;
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
  if (!Array.isArray(f.rules) || f.rules.length === 0) fail(op, 'at least one rule is needed');
  const seen = new Set<string>();
  const rules = f.rules.map((r: unknown, i: number) => {
    const rule = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    const { port, protocol, affinity } = rule;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      fail(op, `rules[${i}].port ${JSON.stringify(port)} must be an integer from 1 to 65535`);
    }
    if (!PROTOCOLS.includes(protocol as Protocol)) fail(op, `rules[${i}].protocol ${JSON.stringify(protocol)} must be tcp or udp`);
    if (!AFFINITIES.includes(affinity as Affinity)) {
      fail(op, `rules[${i}].affinity ${JSON.stringify(affinity)} must be ClientIP or ClientIPAndPort`);
    }
    const key = `${String(protocol)}/${port}`;
    if (seen.has(key)) fail(op, `rules[${i}] repeats ${key}`);
    seen.add(key);
    return { port, protocol: protocol as Protocol, affinity: affinity as Affinity };
  });
  return { name, interface: iface, virtualIPs, virtualMAC, rules, bucketCount, hashSeed, mode };
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
