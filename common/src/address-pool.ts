// A farm's LoadBalancer address pool: the one parser of spec.addresses (the farm parser
// calls it; crds/farmcluster.yaml mirrors its syntax in CEL) and the arithmetic the
// operator's allocator needs. Both families go through one code path: addresses are
// numbers (config/syntax.ts parseIP, a bigint) while computing, so a range of 65536
// addresses costs nothing until one is handed out, and canonical text when stored.
import { IP_BITS, formatIP, parseIP, unicastIPProblem, type IPFamily, type IPValue } from './config/syntax.js';

/** One entry of the pool: `first`..`last` inclusive, of one family. */
export interface AddressRange {
  /** the entry as the user wrote it, for messages */
  text: string;
  family: IPFamily;
  /** canonical text (a 128-bit number has no JSON form, and configs are compared as JSON) */
  first: string;
  last: string;
}

export const POOL_LIMITS = {
  entriesMax: 32,
  /** a /16 (IPv6: a /112): far more than a farm's L2 segment serves, small enough to never be a mistake */
  sizeMax: 65_536,
} as const;

const FORMS = 'must be an address (10.0.0.200, 2001:db8::200), a range "10.0.0.200-10.0.0.220" or a CIDR "10.0.1.0/28", "2001:db8:1::/120"';

function cidr(s: string, prefix: string): { lo: IPValue; hi: IPValue } | { problem: string } | undefined {
  const lo = parseIP(s);
  if (lo === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefix)) return undefined;
  const bits = IP_BITS[lo.family];
  const len = Number(prefix);
  if (len > bits) return undefined;
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  if ((lo.value & hostMask) !== 0n) {
    return { problem: `${s}/${len} has host bits set: the network of a /${len} containing it is ${formatIP({ ...lo, value: lo.value & ~hostMask })}/${len}` };
  }
  return { lo, hi: { ...lo, value: lo.value | hostMask } };
}

function ends(s: string): { lo: IPValue; hi: IPValue } | { problem: string } | undefined {
  const slash = s.split('/');
  const dash = s.split('-');
  if (slash.length === 2 && dash.length === 1) return cidr(slash[0]!, slash[1]!);
  if (slash.length !== 1 || dash.length > 2) return undefined;
  const lo = parseIP(dash[0]!);
  const hi = parseIP(dash[dash.length - 1]!);
  if (lo === undefined || hi === undefined) return undefined;
  if (lo.family !== hi.family) return { problem: `${s}: both ends must be of one family` };
  if (lo.value > hi.value) return { problem: `${s}: the first address is after the last` };
  return { lo, hi };
}

/** One entry: an address, "first-last" or "network/len" (host bits zero), of either family. */
export function parseAddressEntry(s: string): { range: AddressRange } | { problem: string } {
  const e = ends(s);
  if (e === undefined) return { problem: `${FORMS}, got ${JSON.stringify(s)}` };
  if ('problem' in e) return e;
  const size = e.hi.value - e.lo.value + 1n;
  if (size > BigInt(POOL_LIMITS.sizeMax)) {
    return { problem: `${s} holds ${size} addresses, more than ${POOL_LIMITS.sizeMax} (an IPv4 /16, an IPv6 /112)` };
  }
  // Both ends unicast and at most 65536 apart: every refused block is larger (or lies
  // inside ::/96), so no range can reach across one with both ends outside it.
  for (const [what, ip] of [['first', e.lo], ['last', e.hi]] as const) {
    const problem = unicastIPProblem(formatIP(ip));
    if (problem) return { problem: `${s}: the ${what} address ${problem}` };
  }
  return { range: { text: s, family: e.lo.family, first: formatIP(e.lo), last: formatIP(e.hi) } };
}

function bounds(r: AddressRange): { family: IPFamily; lo: bigint; hi: bigint } {
  return { family: r.family, lo: parseIP(r.first)!.value, hi: parseIP(r.last)!.value };
}

function rangeContains(r: AddressRange, ip: IPValue | undefined): boolean {
  if (ip === undefined || ip.family !== r.family) return false;
  const b = bounds(r);
  return ip.value >= b.lo && ip.value <= b.hi;
}

function overlap(a: AddressRange, b: AddressRange): boolean {
  const x = bounds(a);
  const y = bounds(b);
  return x.family === y.family && x.lo <= y.hi && y.lo <= x.hi;
}

/**
 * The whole pool: every entry valid, no two overlapping, none overlapping the farm's own
 * virtualIPs (those are served by the farm's rules already). Errors name the entry by index.
 */
export function parseAddressPool(
  entries: readonly unknown[],
  virtualIPs: readonly string[],
): { ok: true; ranges: AddressRange[] } | { ok: false; errors: { index: number; message: string }[] } {
  const errors: { index: number; message: string }[] = [];
  if (entries.length > POOL_LIMITS.entriesMax) errors.push({ index: POOL_LIMITS.entriesMax, message: `at most ${POOL_LIMITS.entriesMax} entries, got ${entries.length}` });
  const ranges: { range: AddressRange; index: number }[] = [];
  entries.forEach((e, index) => {
    if (typeof e !== 'string') {
      errors.push({ index, message: `must be a string, got ${e === null ? 'null' : Array.isArray(e) ? 'a list' : typeof e}` });
      return;
    }
    const r = parseAddressEntry(e);
    if ('problem' in r) {
      errors.push({ index, message: r.problem });
      return;
    }
    const other = ranges.find((o) => overlap(o.range, r.range));
    if (other) {
      errors.push({ index, message: `${e} overlaps entry [${other.index}] (${other.range.text})` });
      return;
    }
    const vip = virtualIPs.find((v) => rangeContains(r.range, parseIP(v)));
    if (vip !== undefined) {
      errors.push({ index, message: `${e} contains ${vip}, one of the farm's virtualIPs` });
      return;
    }
    ranges.push({ range: r.range, index });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, ranges: ranges.map((r) => r.range) };
}

export function poolContains(pool: readonly AddressRange[], ip: string): boolean {
  const v = parseIP(ip);
  return pool.some((r) => rangeContains(r, v));
}

/** The families the pool has addresses of, IPv4 first. */
export function poolFamilies(pool: readonly AddressRange[]): IPFamily[] {
  return (['ipv4', 'ipv6'] as const).filter((f) => pool.some((r) => r.family === f));
}

/**
 * The lowest address of the pool (of `family`, when given) for which `taken` is false, in
 * the order the entries are written; `taken` sees canonical text.
 */
export function firstFree(pool: readonly AddressRange[], taken: (ip: string) => boolean, family?: IPFamily): string | undefined {
  for (const r of pool) {
    if (family !== undefined && r.family !== family) continue;
    const b = bounds(r);
    for (let n = b.lo; n <= b.hi; n++) {
      const ip = formatIP({ family: r.family, value: n });
      if (!taken(ip)) return ip;
    }
  }
  return undefined;
}

export function poolSize(pool: readonly AddressRange[]): number {
  return pool.reduce((s, r) => {
    const b = bounds(r);
    return s + Number(b.hi - b.lo) + 1;
  }, 0);
}

/** Address order for lists: IPv4 before IPv6, then by value (undefined for non-addresses sorts last). */
export function compareIPs(a: string, b: string): number {
  const x = parseIP(a);
  const y = parseIP(b);
  if (x === undefined || y === undefined) return (x === undefined ? 1 : 0) - (y === undefined ? 1 : 0) || (a < b ? -1 : a > b ? 1 : 0);
  if (x.family !== y.family) return x.family === 'ipv4' ? -1 : 1;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

