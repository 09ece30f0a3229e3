// The kernel's nft_jhash, reproduced bit for bit, so any process can compute which
// bucket (and so which node) a client lands on: Linux jhash() over the register bytes
// the hash expression reads, then reciprocal_scale() into [0, modulus).
import { ipFamilyOf, parseIPv6 } from './config/syntax.js';
import type { Affinity } from './types.js';

const JHASH_INITVAL = 0xdeadbeef;

function rol32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Linux include/linux/jhash.h jhash(key, length, initval) */
export function jhash(key: Uint8Array, seed: number): number {
  let a = (JHASH_INITVAL + key.length + seed) >>> 0;
  let b = a;
  let c = a;
  const u32 = (i: number): number => (key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)) >>> 0;
  let k = 0;
  let length = key.length;
  while (length > 12) {
    a = (a + u32(k)) >>> 0;
    b = (b + u32(k + 4)) >>> 0;
    c = (c + u32(k + 8)) >>> 0;
    // __jhash_mix
    a = (a - c) >>> 0; a = (a ^ rol32(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol32(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol32(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rol32(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol32(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol32(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  // the tail, byte by byte like the kernel's switch fall-through
  const tail = [0, 0, 0];
  for (let i = 0; i < length; i++) tail[i >> 2] += key[k + i] * 2 ** (8 * (i & 3));
  a = (a + tail[0]) >>> 0;
  b = (b + tail[1]) >>> 0;
  c = (c + tail[2]) >>> 0;
  // __jhash_final
  c = (c ^ b) >>> 0; c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/** Linux reciprocal_scale(): maps a 32-bit hash to [0, n) with a multiply, not a modulo */
export function reciprocalScale(h: number, n: number): number {
  // h * n < 2^44: exact in a double
  return Math.floor((h * n) / 2 ** 32);
}

export function ipv4Bytes(ip: string): number[] {
  const parts = ip.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bucketOf: invalid IPv4 address "${ip}"`);
  return bytes;
}

/** the address in network byte order: 4 bytes, or 16 for IPv6 */
export function addressBytes(ip: string): number[] {
  if (ipFamilyOf(ip) === 'ipv4') return ipv4Bytes(ip);
  const groups = parseIPv6(ip);
  if (groups === undefined) throw new Error(`bucketOf: invalid IPv6 address "${ip}"`);
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The key bytes nft hashes: `ip saddr` is 4 bytes, `ip6 saddr` 16; `. tcp sport` adds 4,
 *  the 2-byte port (network order) sitting in its own 32-bit register whose rest is zero. */
export function hashKey(saddr: string, sport: number | undefined, affinity: Affinity): Uint8Array {
  const ip = addressBytes(saddr);
  if (affinity === 'ClientIP') return Uint8Array.from(ip);
  if (sport === undefined || !Number.isInteger(sport) || sport < 0 || sport > 65535) {
    throw new Error(`bucketOf: ClientIPAndPort needs a source port, got ${String(sport)}`);
  }
  return Uint8Array.from([...ip, sport >> 8, sport & 0xff, 0, 0]);
}

/** The bucket the kernel filter computes for a packet from saddr:sport. */
export function bucketOf(
  saddr: string,
  sport: number | undefined,
  affinity: Affinity,
  bucketCount: number,
  seed: number,
): number {
  return reciprocalScale(jhash(hashKey(saddr, sport, affinity), seed >>> 0), bucketCount);
}
