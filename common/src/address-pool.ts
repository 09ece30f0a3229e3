// A farm's LoadBalancer address pool: the one parser of spec.addresses (the farm parser
// calls it; crds/farmcluster.yaml mirrors its syntax in CEL) and the arithmetic the
// operator's allocator needs. Addresses are handled as unsigned 32-bit integers so a
// range of 65536 addresses costs nothing until one is handed out.
import { parseIPv4, unicastIPProblem } from './config/syntax.js';

/** One entry of the pool: `first`..`last` inclusive, as host-order integers. */
export interface AddressRange {
  /** the entry as the user wrote it, for messages */
  text: string;
  first: number;
  last: number;
}

export const POOL_LIMITS = {
  entriesMax: 32,
  /** a /16: far more than a farm's L2 segment serves, small enough to never be a mistake */
  sizeMax: 65_536,
} as const;

export function ipToInt(s: string): number | undefined {
  const o = parseIPv4(s);
  return o === undefined ? undefined : ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** One entry: "a.b.c.d", "a.b.c.d-e.f.g.h" or "a.b.c.d/len" (host bits zero). */
export function parseAddressEntry(s: string): { range: AddressRange } | { problem: string } {
  const bad = { problem: `must be an IPv4 address, a range "10.0.0.200-10.0.0.220" or a CIDR "10.0.1.0/28", got ${JSON.stringify(s)}` };
  let first: number | undefined;
  let last: number | undefined;
  let lo: string;
  let hi: string;
  const slash = s.split('/');
  const dash = s.split('-');
  if (slash.length === 2 && dash.length === 1) {
    if (!/^(0|[1-9][0-9]?)$/.test(slash[1]!)) return bad;
    const len = Number(slash[1]);
    first = ipToInt(slash[0]!);
    if (first === undefined || len > 32) return bad;
    const size = 2 ** (32 - len);
    if (first % size !== 0) {
      return { problem: `${s} has host bits set: the network of a /${len} containing it is ${intToIp(first - (first % size))}/${len}` };
    }
    last = first + size - 1;
    lo = slash[0]!;
    hi = intToIp(last);
  } else if (dash.length === 2 && slash.length === 1) {
    [lo, hi] = [dash[0]!, dash[1]!];
    first = ipToInt(lo);
    last = ipToInt(hi);
    if (first === undefined || last === undefined) return bad;
    if (first > last) return { problem: `${s}: the first address is after the last` };
  } else if (dash.length === 1 && slash.length === 1) {
    first = last = ipToInt(s);
    if (first === undefined || last === undefined) return bad;
    lo = hi = s;
  } else return bad;
  if (last - first + 1 > POOL_LIMITS.sizeMax) return { problem: `${s} holds ${last - first + 1} addresses, more than ${POOL_LIMITS.sizeMax}` };
  // Both ends unicast and at most a /16 apart: no range can reach across 127.0.0.0/8.
  for (const [what, ip] of [['first', lo], ['last', hi]] as const) {
    const problem = unicastIPProblem(ip, 'ipv4');
    if (problem) return { problem: `${s}: the ${what} address ${problem}` };
  }
  return { range: { text: s, first, last } };
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
    const other = ranges.find((o) => o.range.first <= r.range.last && r.range.first <= o.range.last);
    if (other) {
      errors.push({ index, message: `${e} overlaps entry [${other.index}] (${other.range.text})` });
      return;
    }
    const vip = virtualIPs.find((v) => rangeContains(r.range, ipToInt(v)));
    if (vip !== undefined) {
      errors.push({ index, message: `${e} contains ${vip}, one of the farm's virtualIPs` });
      return;
    }
    ranges.push({ range: r.range, index });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, ranges: ranges.map((r) => r.range) };
}

function rangeContains(r: AddressRange, n: number | undefined): boolean {
  return n !== undefined && n >= r.first && n <= r.last;
}

export function poolContains(pool: readonly AddressRange[], ip: string): boolean {
  const n = ipToInt(ip);
  return pool.some((r) => rangeContains(r, n));
}

/** The lowest address of the pool for which `taken` is false, in the order the entries are written. */
export function firstFree(pool: readonly AddressRange[], taken: (ip: string) => boolean): string | undefined {
  for (const r of pool) {
    for (let n = r.first; n <= r.last; n++) {
      const ip = intToIp(n);
      if (!taken(ip)) return ip;
    }
  }
  return undefined;
}

export function poolSize(pool: readonly AddressRange[]): number {
  return pool.reduce((s, r) => s + r.last - r.first + 1, 0);
}
