// Bucket assignment: who owns which hash bucket, as a pure function of the members and
// their weights. Every agent with the same view computes the same table, so no
// coordinator is needed.
//
// How: each member may hold the floor or the ceil of its exact weighted share w*B/W.
// Every (bucket, member) pair gets a weighted rendezvous key, -ln(u)/w with u a
// hash of (member, bucket) in (0,1): an exponential variable of rate w, so that the
// member with the smallest key for a bucket wins it with probability w/W, like weighted
// rendezvous hashing. Pairs are taken in increasing key order and a pair is granted when
// its bucket is still free and its member is below its floor, or at its floor while
// ceils remain to hand out. This is a stable matching for those keys: a member change
// disturbs the pairs that involved it plus chains that balance pushes across.
// Measured (bench/assignment.ts): moved/minimum ~1.05 for 3 nodes, ~1.3-1.6 for 16,
// ~2-3 for 64 nodes with 256-1024 buckets (4-16 buckets per node, where exact balance
// and history-freedom conflict most). Tried and measured worse or equal: fixed
// largest-remainder quotas (up to 3.7 at 64 nodes), unweighted keys, rank-level order,
// floors first then ceils (up to 12). Min-cost transport instead of the greedy may
// shorten the chains; not done.

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

/**
 * Owner name per bucket ('' when no member has weight > 0). A pure function of the set of
 * (name, weight) pairs and bucketCount: the order of `members` does not matter.
 */
export function assignBuckets(members: readonly Member[], bucketCount: number): string[] {
  const ms = normalizeMembers(members);
  const owners = new Array<string>(bucketCount).fill('');
  if (ms.length === 0 || bucketCount <= 0) return owners;
  const { bounds, extra } = shareBounds(ms, bucketCount);
  const floorLeft = ms.map((m) => bounds.get(m.name)!.floor);
  const mayTakeExtra = ms.map((m) => bounds.get(m.name)!.ceil > bounds.get(m.name)!.floor);
  let extrasLeft = extra;
  const n = ms.length;
  const pairs = n * bucketCount;

  // One key per pair. The pair index rides in the low mantissa bits of the key, so a plain
  // numeric Float64Array sort (no comparator) orders the pairs and still tells which pair
  // each key was; equal keys then fall back to the index.
  // Most buckets are settled by the cheapest few pairs, so the pairs with a key under
  // t = depth/W are sorted and used first and the rest only if needed: processing stays in
  // global key order either way. A pair's key is under t with probability ~ w*t, so about
  // `depth` pairs per bucket are in the first part. key <= t  <=>  u >= exp(-t*w), so the
  // logarithm is only computed for those.
  const total = ms.reduce((sum, m) => sum + m.weight, 0);
  const t = 4 / total;
  const packed = LITTLE_ENDIAN && pairs <= 2 ** INDEX_BITS;
  const mask = (2 ** INDEX_BITS - 1) >>> 0;
  const bucketHash = new Uint32Array(bucketCount);
  for (let b = 0; b < bucketCount; b++) bucketHash[b] = fmix32(Math.imul(b + 1, 0x9e3779b1));
  const nameHash = ms.map((m) => hashString(m.name));
  const uOf = (i: number, b: number): number => {
    const h = nameHash[i]!;
    const h1 = fmix32(h ^ bucketHash[b]!);
    const h2 = fmix32(h1 ^ 0x5bd1e995 ^ h);
    // 53-bit u in (0, 1): never 0, so the key is finite.
    return (h1 * 2097152 + (h2 >>> 11) + 0.5) / 9007199254740992;
  };
  const keys = new Float64Array(pairs);
  const words = new Uint32Array(keys.buffer);
  for (let i = 0; i < n; i++) {
    const invW = 1 / ms[i]!.weight;
    for (let b = 0, idx = i * bucketCount; b < bucketCount; b++, idx++) {
      keys[idx] = -Math.log(uOf(i, b)) * invW;
      if (packed) words[2 * idx] = ((words[2 * idx]! & ~mask) | idx) >>> 0;
    }
  }
  // A pair whose bucket is taken or whose member is full can never be granted later
  // (both only fill up), so a tier leaves them out: the deep tiers stay small.
  const open = (k: number): boolean => {
    const i = (k / bucketCount) | 0;
    return owners[k - i * bucketCount] === '' && (floorLeft[i]! > 0 || (extrasLeft > 0 && mayTakeExtra[i]!));
  };
  /** Pair indexes whose key is in (lo, hi], in key order, leaving out closed pairs. */
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
      // too many pairs to carry the index in the mantissa: sort indexes by key instead
      const idx = Array.from(part).sort((x, y) => keys[x]! - keys[y]! || x - y);
      for (let j = 0; j < count; j++) out[j] = idx[j]!;
    }
    return out;
  };

  let assigned = 0;
  const take = (idx: number): void => {
    const i = (idx / bucketCount) | 0;
    const b = idx - i * bucketCount;
    if (owners[b] !== '') return;
    if (floorLeft[i]! > 0) floorLeft[i]!--;
    else if (extrasLeft > 0 && mayTakeExtra[i]) {
      // The ceil goes to whoever reaches it first in key order, not to a precomputed set:
      // fixed largest-remainder quotas reshuffle on every change and cost long chains.
      mayTakeExtra[i] = false;
      extrasLeft--;
    } else return;
    owners[b] = ms[i]!.name;
    assigned++;
  };
  // Tiers (0, t], (t, 4t], (4t, 16t], ... : the last few buckets, whose favourite members
  // are full, need deep pairs, but only they do.
  for (let lo = -1, hi = t; assigned < bucketCount; lo = hi, hi = hi * 4) {
    const last = hi > 1e6 / total;
    const part = collect(lo, last ? Infinity : hi);
    for (let k = 0; k < part.length && assigned < bucketCount; k++) take(part[k]!);
    if (last) break;
  }
  return owners;
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
