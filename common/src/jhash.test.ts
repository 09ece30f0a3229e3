import { bucketOf, hashKey, jhash, reciprocalScale } from './jhash.js';

describe('jhash', () => {
  it('hashes the empty key to the initial value (kernel: length 0 returns c untouched)', () => {
    expect(jhash(new Uint8Array(0), 0)).toBe(0xdeadbeef);
    expect(jhash(new Uint8Array(0), 1)).toBe(0xdeadbef0);
  });

  it('returns unsigned 32-bit values for every key length 1..40', () => {
    for (let len = 1; len <= 40; len++) {
      const key = Uint8Array.from({ length: len }, (_, i) => (i * 37 + len) & 0xff);
      const h = jhash(key, 0x1234);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });

  it('depends on every byte, the length and the seed', () => {
    const base = Uint8Array.from([10, 0, 0, 1, 0x1f, 0x90, 0, 0]);
    const h = jhash(base, 7);
    for (let i = 0; i < base.length; i++) {
      const k = Uint8Array.from(base);
      k[i] ^= 1;
      expect(jhash(k, 7)).not.toBe(h);
    }
    expect(jhash(base, 8)).not.toBe(h);
    expect(jhash(base.subarray(0, 7), 7)).not.toBe(h);
  });

  it('matches the reference C implementation on a 13-byte key (mix + tail path)', () => {
    // Independent re-implementation with BigInt arithmetic, mirroring jhash.h literally.
    const ref = (key: Uint8Array, seed: number): number => {
      const M = 0xffffffffn;
      const rol = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M;
      let a = (0xdeadbeefn + BigInt(key.length) + BigInt(seed)) & M;
      let b = a;
      let c = a;
      let len = key.length;
      let o = 0;
      const get = (i: number): bigint => BigInt(key[i] ?? 0);
      const w = (i: number): bigint => get(i) | (get(i + 1) << 8n) | (get(i + 2) << 16n) | (get(i + 3) << 24n);
      while (len > 12) {
        a = (a + w(o)) & M; b = (b + w(o + 4)) & M; c = (c + w(o + 8)) & M;
        a = (a - c) & M; a ^= rol(c, 4n); c = (c + b) & M;
        b = (b - a) & M; b ^= rol(a, 6n); a = (a + c) & M;
        c = (c - b) & M; c ^= rol(b, 8n); b = (b + a) & M;
        a = (a - c) & M; a ^= rol(c, 16n); c = (c + b) & M;
        b = (b - a) & M; b ^= rol(a, 19n); a = (a + c) & M;
        c = (c - b) & M; c ^= rol(b, 4n); b = (b + a) & M;
        len -= 12; o += 12;
      }
      if (len === 0) return Number(c);
      const t = [0n, 0n, 0n];
      for (let i = 0; i < len; i++) t[i >> 2] |= get(o + i) << BigInt(8 * (i & 3));
      a = (a + t[0]) & M; b = (b + t[1]) & M; c = (c + t[2]) & M;
      c ^= b; c = (c - rol(b, 14n)) & M;
      a ^= c; a = (a - rol(c, 11n)) & M;
      b ^= a; b = (b - rol(a, 25n)) & M;
      c ^= b; c = (c - rol(b, 16n)) & M;
      a ^= c; a = (a - rol(c, 4n)) & M;
      b ^= a; b = (b - rol(a, 14n)) & M;
      c ^= b; c = (c - rol(b, 24n)) & M;
      return Number(c);
    };
    for (const len of [1, 4, 8, 12, 13, 24, 25]) {
      const key = Uint8Array.from({ length: len }, (_, i) => (i * 91 + 3) & 0xff);
      for (const seed of [0, 0x1234, 0xffffffff]) expect(jhash(key, seed)).toBe(ref(key, seed));
    }
  });
});

describe('reciprocalScale', () => {
  it('maps the 32-bit range onto [0, n) monotonically', () => {
    expect(reciprocalScale(0, 256)).toBe(0);
    expect(reciprocalScale(0xffffffff, 256)).toBe(255);
    expect(reciprocalScale(0x80000000, 256)).toBe(128);
    expect(reciprocalScale(0x7fffffff, 256)).toBe(127);
    expect(reciprocalScale(0xffffffff, 4096)).toBe(4095);
  });
});

describe('hashKey', () => {
  it('is the 16 bytes of ip6 saddr, or 20 with the port in its own register (as nft loads them)', () => {
    expect([...hashKey('fd00:0:7::a:1', undefined, 'ClientIP')]).toEqual([0xfd, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 1]);
    expect([...hashKey('2001:db8::1', 0x1f90, 'ClientIPAndPort')]).toEqual([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1, 0x1f, 0x90, 0, 0]);
  });
  it('is the 4 address bytes for ClientIP, the port ignored', () => {
    expect([...hashKey('10.1.2.3', 80, 'ClientIP')]).toEqual([10, 1, 2, 3]);
    expect([...hashKey('10.1.2.3', undefined, 'ClientIP')]).toEqual([10, 1, 2, 3]);
  });
  it('pads the port to a 32-bit register in network order for ClientIPAndPort', () => {
    expect([...hashKey('192.168.0.9', 0x1f90, 'ClientIPAndPort')]).toEqual([192, 168, 0, 9, 0x1f, 0x90, 0, 0]);
  });
  it('rejects malformed input', () => {
    expect(() => hashKey('10.1.2', 1, 'ClientIP')).toThrow(/invalid IPv4/);
    expect(() => hashKey('fd00::1::1', 1, 'ClientIP')).toThrow(/invalid IPv6/);
    expect(() => hashKey('10.1.2.256', 1, 'ClientIP')).toThrow(/invalid IPv4/);
    expect(() => hashKey('10.1.2.3', undefined, 'ClientIPAndPort')).toThrow(/source port/);
    expect(() => hashKey('10.1.2.3', 70000, 'ClientIPAndPort')).toThrow(/source port/);
  });
});

describe('bucketOf', () => {
  it('stays in range and spreads 10000 clients over 64 buckets roughly evenly', () => {
    const counts = new Array(64).fill(0);
    for (let i = 0; i < 10000; i++) {
      const b = bucketOf(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, undefined, 'ClientIP', 64, 0x1234);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(64);
      counts[b]++;
    }
    // expected 156 per bucket; a uniform hash stays well within +-50%
    expect(Math.min(...counts)).toBeGreaterThan(78);
    expect(Math.max(...counts)).toBeLessThan(234);
  });
  it('uses the source port only with ClientIPAndPort', () => {
    const ports = Array.from({ length: 50 }, (_, i) => 30000 + i);
    const byIp = new Set(ports.map((p) => bucketOf('10.0.0.7', p, 'ClientIP', 256, 1)));
    const byPort = new Set(ports.map((p) => bucketOf('10.0.0.7', p, 'ClientIPAndPort', 256, 1)));
    expect(byIp.size).toBe(1);
    expect(byPort.size).toBeGreaterThan(30);
  });
  it('changes with the seed', () => {
    const a = Array.from({ length: 20 }, (_, i) => bucketOf(`10.0.0.${i}`, undefined, 'ClientIP', 256, 1));
    const b = Array.from({ length: 20 }, (_, i) => bucketOf(`10.0.0.${i}`, undefined, 'ClientIP', 256, 2));
    expect(a).not.toEqual(b);
  });
});
