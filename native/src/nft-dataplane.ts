// The farm's kernel filter: tables, rules and the two bucket sets, over the native
// module. Every method validates its input completely before the single native call.
import type { DataplaneFarm } from '../../common/src/types.js';
import { aggregateCounters, stageCounters, type RuleCounter, type StageCounter } from './counters.js';
import { native } from './load.js';
import { holdsChanged, msOfTick, planHolds, type Hold, type TimedBucket } from './handoff-holds.js';
import { ipFamilyOf, LIMITS } from '../../common/src/config/syntax.js';
import { checkBuckets, checkFarm, checkFarmName, checkLease, checkNodeIP, checkNodeMac, checkVips, fail } from './validate.js';

export type BucketSet = 'owned' | 'orphan';

/** The bucket sets of a Service IP with its own assignment (externalTrafficPolicy Local). */
export function serviceSets(ip: string): { ownedSet: string; orphanSet: string } {
  const id = ip.replace(/[^0-9a-fA-F]/g, '_');
  return { ownedSet: `owned_${id}`, orphanSet: `orphan_${id}` };
}

/** Directed mode: who owns the buckets this node does not, and every farm node's MAC */
export interface Forwarding {
  /** bucket -> the owner's own MAC; buckets this node owns or nobody owns are absent */
  owners: ReadonlyMap<number, string>;
  /** the own MACs of all farm nodes (this one too): frames from them are never forwarded again */
  nodeMacs: string[];
  /** buckets this node owns -> addresses of the node that held them before, at most one
   *  per family: TCP packets of them that are no SYN and unknown to conntrack here go on
   *  there (second chance), IPv4 packets to the IPv4 address, IPv6 ones to the IPv6 one */
  previous?: ReadonlyMap<number, readonly string[]>;
}

export type { TimedBucket } from './handoff-holds.js';

/** CLOCK_REALTIME in ms with µs precision: the clock `meta time` reads in the kernel. */
export function realtimeMs(): number {
  return native().realtimeUs() / 1000;
}

export class NftDataplane {
  /** bucket counts of the farms applied through this instance, to range-check buckets */
  private readonly bucketCounts = new Map<string, number>();
  /** the hold set as last written per farm; absent: unknown (rewritten at the next call) */
  private readonly holdsWritten = new Map<string, Hold[]>();

  /** Creates or atomically replaces (one netlink batch) both tables of the farm.
   *  When the farm exists with the same bucketCount and hashSeed, the owned and orphan
   *  buckets are carried over with their remaining lease; otherwise the sets start
   *  empty (bucket numbers changed meaning) and the caller sets them right after. */
  apply(farm: DataplaneFarm): void {
    const f = checkFarm('apply', farm);
    // A Service IP with its own node list (externalTrafficPolicy Local) gets its own sets.
    const services = f.services?.map((a) => (a.nodes === undefined ? { ip: a.ip, rules: a.rules } : { ip: a.ip, rules: a.rules, ...serviceSets(a.ip) }));
    native().nftApply(services === undefined ? f : { ...f, services });
    this.bucketCounts.set(f.name, f.bucketCount);
    this.holdsWritten.delete(f.name);
  }

  /** owned buckets of a Service IP that has its own sets (see serviceSets), fresh lease of leaseMs */
  setServiceBuckets(farmName: string, ip: string, owned: number[], leaseMs: number): void {
    const [checked] = checkVips('setServiceBuckets', [ip], 'ip');
    this.setElems('setServiceBuckets', farmName, serviceSets(checked!).ownedSet, owned, leaseMs);
  }

  /** owned = the full desired set, each with a fresh lease of leaseMs (one batch). */
  setBuckets(farmName: string, owned: number[], leaseMs: number): void {
    this.setElems('setBuckets', farmName, 'owned', owned, leaseMs);
  }

  /** Directed mode: the owned set and the forwarding map + node MACs, in one batch, so
   *  no frame is forwarded for a bucket this node already accepts or vice versa. The
   *  forwarding entries carry the same lease as the owned buckets. */
  setBucketsAndForwarding(farmName: string, owned: number[], leaseMs: number, forwarding: Forwarding): void {
    const op = 'setBucketsAndForwarding';
    const name = checkFarmName(op, farmName);
    const count = this.bucketCounts.get(name) ?? LIMITS.bucketCountMax;
    const list = checkBuckets(op, owned, count);
    const lease = checkLease(op, leaseMs);
    const mine = new Set(list);
    const forward: [number, string][] = [];
    for (const [bucket, mac] of forwarding.owners) {
      checkBuckets(op, [bucket], count);
      if (mine.has(bucket)) fail(op, `bucket ${bucket} is both owned here and forwarded to ${mac}`);
      forward.push([bucket, checkNodeMac(op, mac)]);
    }
    const nodeMacs = [...new Set(forwarding.nodeMacs.map((m) => checkNodeMac(op, m)))];
    const previous: [number, string][] = [];
    for (const [bucket, ips] of forwarding.previous ?? []) {
      checkBuckets(op, [bucket], count);
      if (!mine.has(bucket)) fail(op, `bucket ${bucket} has a previous holder but is not owned here`);
      const families = new Set<string>();
      for (const ip of ips) {
        const family = ipFamilyOf(checkNodeIP(op, `previous holder of bucket ${bucket}`, ip));
        if (families.has(family)) fail(op, `bucket ${bucket} has two ${family} previous holders`);
        families.add(family);
        previous.push([bucket, ip]);
      }
    }
    native().nftSetOwnedAndForwarding(name, list, lease, forward, nodeMacs, previous);
  }

  /** Timed handoff: owned as setBuckets, and in the same batch the buckets being given
   *  away (their new flows dropped from atMs on) and taken over (accepted from atMs on).
   *  The kernel flips each at the packet's arrival time, so two nodes flip one bucket at
   *  one instant; the hold set that does it (handoff-holds.ts) is rewritten only when a
   *  handoff begins or changes. Rounded to the safe side: a giving instant down, a taking
   *  one up, to the 1.024 µs tick. */
  setBucketsAndHandoff(farmName: string, owned: number[], leaseMs: number, giving: readonly TimedBucket[], taking: readonly TimedBucket[]): void {
    const op = 'setBucketsAndHandoff';
    const name = checkFarmName(op, farmName);
    const count = this.bucketCounts.get(name) ?? LIMITS.bucketCountMax;
    const list = checkBuckets(op, owned, count);
    const lease = checkLease(op, leaseMs);
    const check = (what: string, xs: readonly TimedBucket[]): void => {
      const seen = new Set<number>();
      for (const { bucket, atMs } of xs) {
        checkBuckets(op, [bucket], count);
        if (seen.has(bucket)) fail(op, `bucket ${bucket} is twice in ${what}`);
        seen.add(bucket);
        if (!Number.isFinite(atMs) || atMs < 0 || atMs * 1000 > Number.MAX_SAFE_INTEGER) fail(op, `${what} instant of bucket ${bucket} must be ms since the epoch, got ${atMs}`);
      }
    };
    check('giving', giving);
    check('taking', taking);
    const mine = new Set(list);
    for (const { bucket } of giving) if (!mine.has(bucket)) fail(op, `bucket ${bucket} is given away but not owned here`);
    for (const { bucket } of taking) if (mine.has(bucket)) fail(op, `bucket ${bucket} is taken over but already owned here`);
    const now = realtimeMs();
    const written = this.holdsWritten.get(name);
    const plan = planHolds(list, giving, taking, now, lease, written);
    const write = holdsChanged(plan, written, now);
    // an element lives as long as its interval can matter
    const holds = plan.holds.map((h): [number, number, number, number] => [h.bucket, h.fromTick, h.toTick, Math.max(1, Math.ceil(msOfTick(h.toTick) - now) + 1)]);
    native().nftSetOwnedAndHold(name, plan.owned, lease, write ? holds : null);
    if (write) this.holdsWritten.set(name, plan.holds);
  }

  /** the live elements of the hold set: a bucket takes no new flow from fromMs to toMs */
  getHolds(farmName: string): { bucket: number; fromMs: number; toMs: number }[] {
    const name = checkFarmName('getHolds', farmName);
    return native().nftGetHolds(name).map(([bucket, from, to]) => ({ bucket, fromMs: msOfTick(from), toMs: msOfTick(to + 1) })).sort((a, b) => a.bucket - b.bucket || a.fromMs - b.fromMs);
  }

  /** the takeover set: a dead node's buckets, accepted on every packet for leaseMs */
  setOrphans(farmName: string, buckets: number[], leaseMs: number): void {
    this.setElems('setOrphans', farmName, 'orphan', buckets, leaseMs);
  }

  getBuckets(farmName: string, set: BucketSet): number[] {
    const name = checkFarmName('getBuckets', farmName);
    if (set !== 'owned' && set !== 'orphan') throw new TypeError(`getBuckets: unknown set ${JSON.stringify(set)}`);
    return native().nftGetElems(name, set).sort((a, b) => a - b);
  }

  /** the owned buckets of a Service IP with its own sets */
  getServiceBuckets(farmName: string, ip: string): number[] {
    const name = checkFarmName('getServiceBuckets', farmName);
    const [checked] = checkVips('getServiceBuckets', [ip], 'ip');
    return native().nftGetElems(name, serviceSets(checked!).ownedSet).sort((a, b) => a - b);
  }

  /** per VIP x rule: accepted (established + owned + orphan) and dropped packets/bytes */
  counters(farmName: string): RuleCounter[] {
    return aggregateCounters(this.stageCounters(farmName));
  }

  /** per VIP x rule and stage (established, owned, orphan, drop) */
  stageCounters(farmName: string): StageCounter[] {
    const name = checkFarmName('counters', farmName);
    return stageCounters(native().nftCounters(name));
  }

  /** rules in the farm's inet and netdev chains (-1: absent); read-only and cheap */
  ruleCounts(farmName: string): { inet: number; netdev: number } {
    return native().nftRuleCounts(checkFarmName('ruleCounts', farmName));
  }

  /** deletes the farm's tables; no error when they are absent */
  remove(farmName: string): void {
    const name = checkFarmName('remove', farmName);
    native().nftRemove(name);
    this.bucketCounts.delete(name);
  }

  private setElems(op: string, farmName: string, set: string, buckets: number[], leaseMs: number): void {
    const name = checkFarmName(op, farmName);
    const list = checkBuckets(op, buckets, this.bucketCounts.get(name) ?? LIMITS.bucketCountMax);
    const lease = checkLease(op, leaseMs);
    native().nftSetElems(name, set, list, lease);
  }
}
