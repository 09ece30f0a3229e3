// Value syntaxes: each rule of a farm's values decided once. The parser (./farm-spec.ts)
// and the native wrapper (native/src/validate.ts) both call these, and the CRD's CEL
// rules mirror them; ./validation-cases.ts is the one table of cases all three are tested
// against. Each function returns why a value is refused, or undefined when it is fine.

export const LIMITS = {
  farmNameMax: 40,
  ifnameMax: 15,
  bucketCountMin: 2,
  bucketCountMax: 4096,
  hashSeedMax: 0xffffffff,
  portMax: 65535,
  intervalMinMs: 20,
  intervalMaxMs: 60_000,
  failureThresholdMaxMs: 600_000,
  weightMax: 1000,
  checkerIntervalMinMs: 100,
  checkerIntervalMaxMs: 3_600_000,
  riseFallMax: 100,
  /** gratuitousARPIntervalMs when not 0 (off) */
  announceIntervalMinMs: 1000,
  announceIntervalMaxMs: 3_600_000,
} as const;

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/** DNS label (RFC 1123): lowercase alphanumerics and '-', starting and ending alphanumeric. */
export function dnsLabelProblem(s: string, max: number): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > max) return `must be at most ${max} characters, got ${s.length}`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s)) {
    return `must be a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit), got ${quote(s)}`;
  }
  return undefined;
}

/** Kernel objects (table, sets, chains) are named after the farm, hence the short limit. */
export function farmNameProblem(s: string): string | undefined {
  return dnsLabelProblem(s, LIMITS.farmNameMax);
}

/** Kubernetes node names are DNS subdomains: labels joined by dots, <= 253 characters. */
export function nodeNameProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 253) return `must be at most 253 characters, got ${s.length}`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
    return `must be a DNS subdomain (lowercase letters, digits, '-' and '.'), got ${quote(s)}`;
  }
  return undefined;
}

export type IPFamily = 'ipv4' | 'ipv6';
export const IP_FAMILIES: readonly IPFamily[] = ['ipv4', 'ipv6'];

/** The family a literal is written in: only IPv6 has ':'. */
export function ipFamilyOf(s: string): IPFamily {
  return s.includes(':') ? 'ipv6' : 'ipv4';
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

/**
 * Eight 16-bit groups: full (2001:0db8:0:0:0:0:0:1) or compressed (2001:db8::1), either
 * case, '::' at most once. Refused: zones (fe80::1%eth0: a VIP is not scoped to a link)
 * and the embedded dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4), so that '.' means
 * IPv4 and ':' IPv6 everywhere; 64:ff9b::102:304 writes the same address.
 */
export function parseIPv6(s: string): number[] | undefined {
  if (s.length > 39 || !/^[0-9a-fA-F:]+$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const parts = h.split(':');
    return parts.every((p) => /^[0-9a-fA-F]{1,4}$/.test(p)) ? parts.map((p) => parseInt(p, 16)) : undefined;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  // '::' stands for at least one zero group
  if (head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** An address as a number (IPv4 32 bits, IPv6 128 bits): one arithmetic for both families. */
export interface IPValue {
  family: IPFamily;
  value: bigint;
}

export const IP_BITS: Record<IPFamily, number> = { ipv4: 32, ipv6: 128 };

export function parseIP(s: string): IPValue | undefined {
  const family = ipFamilyOf(s);
  const parts = family === 'ipv4' ? parseIPv4(s) : parseIPv6(s);
  if (parts === undefined) return undefined;
  const width = BigInt(family === 'ipv4' ? 8 : 16);
  return { family, value: parts.reduce((acc, p) => (acc << width) | BigInt(p), 0n) };
}

/** The text of an address: dotted quad, or IPv6 as RFC 5952 says (lowercase, longest zero run as '::'). */
export function formatIP(ip: IPValue): string {
  if (ip.family === 'ipv4') return [24n, 16n, 8n, 0n].map((sh) => String((ip.value >> sh) & 255n)).join('.');
  const g = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((sh) => Number((ip.value >> sh) & 0xffffn));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (a: number[]): string => a.map((n) => n.toString(16)).join(':');
  if (best.at < 0) return hex(g);
  return `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}

/** The one text of an address (IPv6 has many), for comparing and for the kernel; undefined if not an address. */
export function canonicalIP(s: string): string | undefined {
  const ip = parseIP(s);
  return ip === undefined ? undefined : formatIP(ip);
}

/** Address blocks that are never a VIP, a pool address or a node's address; the first match names the reason. */
const NOT_UNICAST: Record<IPFamily, readonly { net: string; len: number; why: string }[]> = {
  ipv4: [
    { net: '0.0.0.0', len: 8, why: 'must not be in 0.0.0.0/8' },
    { net: '127.0.0.0', len: 8, why: 'must not be a loopback address' },
    { net: '224.0.0.0', len: 3, why: 'must be a unicast address (not multicast, reserved or broadcast)' },
  ],
  ipv6: [
    { net: '::', len: 128, why: 'must not be the unspecified address ::' },
    { net: '::1', len: 128, why: 'must not be the loopback address ::1' },
    { net: '::ffff:0:0', len: 96, why: 'must not be an IPv4-mapped address (::ffff:0:0/96): write the IPv4 address itself' },
    { net: '::', len: 96, why: 'must not be an IPv4-compatible address (::/96, deprecated by RFC 4291)' },
    { net: 'fe80::', len: 10, why: 'must not be a link-local address (fe80::/10): a virtual IP must be routable beyond one link' },
    { net: 'ff00::', len: 8, why: 'must be a unicast address, not multicast (ff00::/8)' },
  ],
};

function inBlock(ip: IPValue, net: string, len: number): boolean {
  const shift = BigInt(IP_BITS[ip.family] - len);
  return ip.value >> shift === parseIP(net)!.value >> shift;
}

const FORM: Record<IPFamily, string> = {
  ipv4: 'an IPv4 address (dotted quad)',
  ipv6: "an IPv6 address (hex groups separated by ':', '::' at most once, no zone and no embedded dotted quad)",
};

/**
 * Why an address cannot be a VIP, a pool address or a node address, if it cannot. `family`
 * restricts it to one family; without it either family is fine.
 */
export function unicastIPProblem(s: string, family?: IPFamily): string | undefined {
  const written = ipFamilyOf(s);
  if (family !== undefined && written !== family) return `must be ${FORM[family]}, got ${quote(s)}`;
  const ip = parseIP(s);
  if (ip === undefined) return `must be ${FORM[written]}, got ${quote(s)}`;
  return NOT_UNICAST[ip.family].find((b) => inBlock(ip, b.net, b.len))?.why.concat(`, got ${s}`);
}

/**
 * An interface name: 1..15 printable ASCII characters (IFNAMSIZ-1), not "." or "..", no
 * '/' or ':' (Linux dev_valid_name() refuses '/', ':' and whitespace; ':' would also read
 * as an alias label). ASCII only, so that characters and bytes are the same count in the
 * CRD's maxLength, here and in the kernel.
 */
export function ifnameProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > LIMITS.ifnameMax) return `must be at most ${LIMITS.ifnameMax} characters (IFNAMSIZ-1), got ${s.length}`;
  if (s === '.' || s === '..') return `must not be ${quote(s)}`;
  if (!/^[!-.0-9;-~]+$/.test(s)) return `must be printable ASCII without '/', ':' or spaces, got ${quote(s)}`;
  return undefined;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Any unicast MAC that is an address (a node's own NIC, in Directed mode). */
export function unicastMACProblem(s: string): string | undefined {
  if (!MAC_RE.test(s)) return `must be a MAC address aa:bb:cc:dd:ee:ff, got ${quote(s)}`;
  if (parseInt(s.slice(0, 2), 16) & 1) return `must be a unicast MAC (lowest bit of the first byte clear), got ${s.toLowerCase()}`;
  if (/^0{2}(:0{2}){5}$/.test(s)) return 'must not be 00:00:00:00:00:00';
  return undefined;
}

/**
 * The farm's virtual MAC: unicast and locally administered. The kernel datapath refuses
 * any other, and a universally administered MAC could be a real NIC's on the same segment.
 */
export function virtualMACProblem(s: string): string | undefined {
  const problem = unicastMACProblem(s);
  if (problem) return problem;
  if (!(parseInt(s.slice(0, 2), 16) & 2)) {
    return `must be a locally administered MAC (second hex digit 2, 6, a or e, e.g. 02:fa:00:00:00:01) so that it cannot be a real NIC's, got ${s.toLowerCase()}`;
  }
  return undefined;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export function bucketCountProblem(n: number): string | undefined {
  if (!Number.isInteger(n) || n < LIMITS.bucketCountMin || n > LIMITS.bucketCountMax || !isPowerOfTwo(n)) {
    return `must be a power of two from ${LIMITS.bucketCountMin} to ${LIMITS.bucketCountMax}, got ${n}`;
  }
  return undefined;
}

/** Addresses a checker cannot connect to: the node's own services answer on loopback or on
 *  a routable address, not on these (link-local would need a zone, which is not taken). */
const NOT_CHECKER_HOST: readonly { net: string; len: number; why: string }[] = [
  { net: '::', len: 128, why: 'must not be the unspecified address ::' },
  { net: '::ffff:0:0', len: 96, why: 'must not be an IPv4-mapped address (::ffff:0:0/96): write the IPv4 address itself' },
  { net: '::', len: 96, why: 'must not be an IPv4-compatible address (::/96, deprecated by RFC 4291)' },
  { net: 'fe80::', len: 10, why: 'must not be a link-local address (fe80::/10; zones are not taken)' },
  { net: 'ff00::', len: 8, why: 'must be a unicast address, not multicast (ff00::/8)' },
];

const HOST_FORM = 'must be an IPv4 or IPv6 address or a host name';

/**
 * A checker's host: an IPv4 address, an IPv6 address (loopback ::1 or a unicast address,
 * written without brackets; the http checker brackets it in its URL) or a DNS host name.
 */
export function hostProblem(s: string): string | undefined {
  if (s.includes(':')) {
    if (s.startsWith('[')) return `must be an IPv6 address without brackets (the checker adds them in URLs), got ${quote(s)}`;
    const ip = parseIP(s);
    if (ip === undefined) return `must be ${FORM.ipv6}, got ${quote(s)}`;
    // ::1 lies in ::/96 too: the loopback address is what a checker of the node's own app uses
    if (ip.value === 1n) return undefined;
    return NOT_CHECKER_HOST.find((b) => inBlock(ip, b.net, b.len))?.why.concat(`, got ${s}`);
  }
  if (parseIPv4(s)) return undefined;
  if (/^[0-9.]+$/.test(s)) return `${HOST_FORM}, got ${quote(s)}`;
  if (s.length > 253 || !/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/.test(s)) {
    return `${HOST_FORM}, got ${quote(s)}`;
  }
  return undefined;
}

/** The host as the checker uses it: IPv6 in canonical text (RFC 5952), anything else as written. */
export function canonicalHost(s: string): string {
  return s.includes(':') ? canonicalIP(s) ?? s : s;
}
