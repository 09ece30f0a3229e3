// Bucket assignment: who owns which hash bucket, as a pure function of the members, their
// weights and who holds each bucket now. Every agent with the same view computes the same
// table, so no coordinator is needed; the view digest (ownership.ts) is a hash of the
// table itself, so "the peers advertise my digest" means "they computed my table".
//
// How (sticky): each member gets a quota, the floor or the ceil of its exact weighted share
// w*B/W; the ceils go first to members already holding at least their ceil, then by
// largest remainder. A member keeps what it holds up to its quota, and releases the excess
// it likes least (a fixed per-pair key). The free buckets (unheld, held by a non-member, or
// released) go to members below quota by a greedy stable matching on weighted rendezvous
// keys -ln(u)/w (u a hash of (member, bucket)): pairs in increasing key order, granted
// while the bucket is free and the member below quota. With nothing held (cold start) this
// is the history-free weighted rendezvous fill.
//
// Why the current holders: a history-free table cannot be exactly balanced and move only
// what must move (measured 1.72x the minimum at 16 nodes, 3.28x at 64 nodes, 256 buckets);
// keeping what is held moves ~1.0x. The holders are what every agent hears in the
// heartbeats, so agents agree on them once the heartbeats are in, and the digest tells
// when they do. A handoff must not change the table half-way (or it would chase itself):
// for every state between the holders and the table (each moving bucket still with its
// giver, free, or with its taker) the result is the same table. That holds because quotas
// only depend on who holds >= ceil among the givers and takers in a way the handoff keeps,
// a giver's excess is a fixed worst-first order, and a greedy stable matching on one key
// per pair is unique and keeps its other pairs when a matched pair is removed. Tested in
// assignment.test.ts ("handoff states give the same table").

export interface Member {
  name: string;
  weight: number;
}

/** FNV-1a over the UTF-16 code units, then a murmur3 finalizer for avalanche. */
export function hashString(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** murmur3's 32-bit finalizer: every input bit flips each output bit with p ~ 1/2. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Members with weight > 0, one per name (the largest weight wins a duplicate), sorted by name. */
export function normalizeMembers(members: readonly Member[]): Member[] {
  const byName = new Map<string, number>();
  for (const m of members) {
    const w = Number.isFinite(m.weight) && m.weight > 0 ? m.weight : 0;
    const prev = byName.get(m.name);
    if (prev === undefined || w > prev) byName.set(m.name, w);
  }
  return [...byName.entries()]
    .filter(([, w]) => w > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, weight]) => ({ name, weight }));
}

/**
 * Each member's exact weighted share w*B/W, as floor and ceil. A member ends with either;
 * `extra` is how many members get their ceil (the buckets left after every floor).
 */
export function shareBounds(members: readonly Member[], bucketCount: number): { bounds: Map<string, { floor: number; ceil: number }>; extra: number } {
  const ms = normalizeMembers(members);
  const bounds = new Map<string, { floor: number; ceil: number }>();
  if (ms.length === 0) return { bounds, extra: 0 };
  const total = ms.reduce((s, m) => s + m.weight, 0);
  let floors = 0;
  for (const m of ms) {
    const exact = (m.weight * bucketCount) / total;
    const floor = Math.floor(exact);
    bounds.set(m.name, { floor, ceil: exact === floor ? floor : floor + 1 });
    floors += floor;
  }
  return { bounds, extra: bucketCount - floors };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const INDEX_BITS = 24;

/** Per-bucket hashes, fixed: the rendezvous keys of every pair derive from them. */
function bucketHashes(bucketCount: number): Uint32Array {
  const out = new Uint32Array(bucketCount);
  for (let b = 0; b < bucketCount; b++) out[b] = fmix32(Math.imul(b + 1, 0x9e3779b1));
  return out;
}

/** 53-bit u in (0, 1) for (member hash, bucket hash): never 0, so -ln(u) is finite. */
function pairU(nameHash: number, bucketHash: number): number {
  const h1 = fmix32(nameHash ^ bucketHash);
  const h2 = fmix32(h1 ^ 0x5bd1e995 ^ nameHash);
  return (h1 * 2097152 + (h2 >>> 11) + 0.5) / 9007199254740992;
}

/**
 * Owner per bucket now, from the claims heard (self and live peers): '' when no member
 * (weight > 0) claims it. Two member claimants (a partition healing) are settled by the
 * smaller rendezvous key, so every agent picks the same one.
 */
export function currentOwners(members: readonly Member[], bucketCount: number, claims: Iterable<{ name: string; held: readonly number[] }>): string[] {
  const weights = new Map(normalizeMembers(members).map((m) => [m.name, m.weight]));
  const owners = new Array<string>(bucketCount).fill('');
  let hashes: Uint32Array | undefined;
  const key = (name: string, b: number): number => -Math.log(pairU(hashString(name), (hashes ??= bucketHashes(bucketCount))[b]!)) / weights.get(name)!;
  for (const c of claims) {
    if (!weights.has(c.name)) continue;
    for (const b of c.held) {
      if (!(b >= 0 && b < bucketCount)) continue;
      const o = owners[b]!;
      if (o === '' || (o !== c.name && (key(c.name, b) < key(o, b) || (key(c.name, b) === key(o, b) && c.name < o)))) owners[b] = c.name;
    }
  }
  return owners;
}

/**
 * Each member's quota: floor of its share, or ceil for `extra` of the members that can
 * take one (ceil > floor). Members holding at least their ceil come first (keeping it
 * moves nothing), then the largest remainders, then a name hash.
 */
function quotas(ms: readonly Member[], bucketCount: number, kept: Int32Array): Int32Array {
  const { bounds, extra } = shareBounds(ms, bucketCount);
  const total = ms.reduce((s, m) => s + m.weight, 0);
  const q = new Int32Array(ms.length);
  const eligible: Array<{ i: number; cls: number; rem: number; h: number }> = [];
  ms.forEach((m, i) => {
    const { floor, ceil } = bounds.get(m.name)!;
    q[i] = floor;
    if (ceil > floor) eligible.push({ i, cls: kept[i]! >= ceil ? 0 : 1, rem: (m.weight * bucketCount) / total - floor, h: hashString(m.name) });
  });
  eligible.sort((x, y) => x.cls - y.cls || y.rem - x.rem || x.h - y.h || (ms[x.i]!.name < ms[y.i]!.name ? -1 : 1));
  for (let k = 0; k < extra && k < eligible.length; k++) q[eligible[k]!.i]!++;
  return q;
}

/**
 * Owner name per bucket ('' when no member has weight > 0). A pure function of the set of
 * (name, weight) pairs, bucketCount and `current` (owner per bucket now, see
 * currentOwners; omitted = nothing held): the order of `members` does not matter.
 */
export function assignBuckets(members: readonly Member[], bucketCount: number, current?: readonly string[]): string[] {
  const ms = normalizeMembers(members);
  const owners = new Array<string>(bucketCount).fill('');
  if (ms.length === 0 || bucketCount <= 0) return owners;
  const n = ms.length;
  const index = new Map(ms.map((m, i) => [m.name, i]));
  const bucketHash = bucketHashes(bucketCount);
  const nameHash = ms.map((m) => hashString(m.name));
  const ownerIdx = new Int32Array(bucketCount).fill(-1);
  const kept = new Int32Array(n);
  if (current) {
    for (let b = 0; b < bucketCount; b++) {
      const i = index.get(current[b] ?? '');
      if (i !== undefined) {
        ownerIdx[b] = i;
        kept[i]!++;
      }
    }
  }
  const q = quotas(ms, bucketCount, kept);
  releaseExcess(ownerIdx, kept, q, nameHash, bucketHash);
  fill(ms, ownerIdx, kept, q, nameHash, bucketHash);
  for (let b = 0; b < bucketCount; b++) if (ownerIdx[b]! >= 0) owners[b] = ms[ownerIdx[b]!]!.name;
  return owners;
}

/** A member above its quota gives up the buckets of its smallest u (largest key) first. */
function releaseExcess(ownerIdx: Int32Array, kept: Int32Array, q: Int32Array, nameHash: readonly number[], bucketHash: Uint32Array): void {
  for (let i = 0; i < kept.length; i++) {
    const excess = kept[i]! - q[i]!;
    if (excess <= 0) continue;
    const mine: Array<{ b: number; u: number }> = [];
    for (let b = 0; b < ownerIdx.length; b++) if (ownerIdx[b] === i) mine.push({ b, u: pairU(nameHash[i]!, bucketHash[b]!) });
    mine.sort((x, y) => x.u - y.u || x.b - y.b);
    for (let k = 0; k < excess; k++) ownerIdx[mine[k]!.b] = -1;
    kept[i] = q[i]!;
  }
}

/**
 * The free buckets to the members below quota: pairs in increasing key order, each granted
 * while its bucket is free and its member below quota (a greedy stable matching).
 */
function fill(ms: readonly Member[], ownerIdx: Int32Array, kept: Int32Array, q: Int32Array, nameHash: readonly number[], bucketHash: Uint32Array): void {
  const bucketCount = ownerIdx.length;
  const capLeft = new Int32Array(ms.length);
  const takers: number[] = [];
  for (let i = 0; i < ms.length; i++) {
    capLeft[i] = q[i]! - kept[i]!;
    if (capLeft[i]! > 0) takers.push(i);
  }
  const free: number[] = [];
  for (let b = 0; b < bucketCount; b++) if (ownerIdx[b]! < 0) free.push(b);
  if (takers.length === 0 || free.length === 0) return;
  const pairs = takers.length * free.length;
  // One key per candidate pair. The pair's position rides in the low mantissa bits of the
  // key, so a plain numeric Float64Array sort (no comparator) orders the pairs and still
  // tells which pair each key was; equal keys then fall back to the position.
  // Most buckets are settled by the cheapest few pairs, so the pairs with a key under
  // t = depth/W are sorted and used first and the rest only if needed: processing stays in
  // global key order either way. A pair's key is under t with probability ~ w*t.
  const total = takers.reduce((sum, i) => sum + ms[i]!.weight, 0);
  const t = 4 / total;
  const packed = LITTLE_ENDIAN && pairs <= 2 ** INDEX_BITS;
  const mask = (2 ** INDEX_BITS - 1) >>> 0;
  const F = free.length;
  const keys = new Float64Array(pairs);
  const words = new Uint32Array(keys.buffer);
  for (let j = 0; j < takers.length; j++) {
    const i = takers[j]!;
    const invW = 1 / ms[i]!.weight;
    for (let f = 0, idx = j * F; f < F; f++, idx++) {
      keys[idx] = -Math.log(pairU(nameHash[i]!, bucketHash[free[f]!]!)) * invW;
      if (packed) words[2 * idx] = ((words[2 * idx]! & ~mask) | idx) >>> 0;
    }
  }
  const taker = (k: number): number => (k / F) | 0;
  // A pair whose bucket is taken or whose member is full can never be granted later
  // (both only fill up), so a tier leaves them out: the deep tiers stay small.
  const open = (k: number): boolean => {
    const j = taker(k);
    return ownerIdx[free[k - j * F]!]! < 0 && capLeft[takers[j]!]! > 0;
  };
  /** Pair positions whose key is in (lo, hi], in key order, leaving out closed pairs. */
  const collect = (lo: number, hi: number): Uint32Array => {
    const picked: number[] = [];
    for (let k = 0; k < pairs; k++) if (keys[k]! > lo && keys[k]! <= hi && open(k)) picked.push(k);
    const count = picked.length;
    const part = new Float64Array(count);
    for (let j = 0; j < count; j++) part[j] = packed ? keys[picked[j]!]! : picked[j]!;
    const out = new Uint32Array(count);
    if (packed) {
      part.sort();
      const w = new Uint32Array(part.buffer);
      for (let j = 0; j < count; j++) out[j] = w[2 * j]! & mask;
    } else {
      // too many pairs to carry the position in the mantissa: sort positions by key instead
      const idx = Array.from(part).sort((x, y) => keys[x]! - keys[y]! || x - y);
      for (let j = 0; j < count; j++) out[j] = idx[j]!;
    }
    return out;
  };
  let toFill = Math.min(F, takers.reduce((s, i) => s + capLeft[i]!, 0));
  const take = (k: number): void => {
    if (!open(k)) return;
    const j = taker(k);
    ownerIdx[free[k - j * F]!] = takers[j]!;
    capLeft[takers[j]!]!--;
    toFill--;
  };
  // Tiers (0, t], (t, 4t], (4t, 16t], ... : the last few buckets, whose favourite members
  // are full, need deep pairs, but only they do.
  for (let lo = -1, hi = t; toFill > 0; lo = hi, hi = hi * 4) {
    const last = hi > 1e6 / total;
    const part = collect(lo, last ? Infinity : hi);
    for (let k = 0; k < part.length && toFill > 0; k++) take(part[k]!);
    if (last) break;
  }
}

/** Buckets per owner in an assignment ('' = unowned, left out). */
export function countByOwner(assignment: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of assignment) if (o !== '') out.set(o, (out.get(o) ?? 0) + 1);
  return out;
}

/** Buckets whose owner differs between two assignments of the same size. */
export function movedBuckets(before: readonly string[], after: readonly string[]): number {
  let moved = 0;
  for (let b = 0; b < before.length; b++) if (before[b] !== after[b]) moved++;
  return moved;
}

/**
 * The fewest buckets any pair of assignments with these per-owner counts can differ in:
 * every bucket a member must lose (or an unowned bucket that must be filled) moves once.
 */
export function minimumMoves(before: readonly string[], after: readonly string[]): number {
  const a = countByOwner(before);
  const b = countByOwner(after);
  let gained = 0;
  for (const [name, n] of b) gained += Math.max(0, n - (a.get(name) ?? 0));
  // buckets that become unowned move without anybody gaining them
  const unownedBefore = before.filter((o) => o === '').length;
  const unownedAfter = after.filter((o) => o === '').length;
  return gained + Math.max(0, unownedAfter - unownedBefore);
}
