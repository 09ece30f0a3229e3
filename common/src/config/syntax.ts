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
  if (o === undefined) return `must be an IPv4 address (dotted quad), got ${quote(s)}`;
  if (o[0] === 0) return `must not be in 0.0.0.0/8, got ${s}`;
  if (o[0] === 127) return `must not be a loopback address, got ${s}`;
  if (o[0]! >= 224) return `must be a unicast address (not multicast, reserved or broadcast), got ${s}`;
  return undefined;
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

/** A checker's host: an IPv4 address or a DNS host name. */
export function hostProblem(s: string): string | undefined {
  if (parseIPv4(s)) return undefined;
  if (/^[0-9.]+$/.test(s)) return `must be an IPv4 address or a host name, got ${quote(s)}`;
  if (s.length > 253 || !/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/.test(s)) {
    return `must be an IPv4 address or a host name, got ${quote(s)}`;
  }
  return undefined;
}
