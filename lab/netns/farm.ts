// A farm on a test bed: one data-plane driver per node, each binding the VIPs,
// applying the farm, holding its share of the buckets and answering ARP.
import type { IPFamily } from '../../common/src/config/syntax.js';
import type { DataplaneFarm } from '../../common/src/types.js';
import { Driver } from './procs.js';
import type { Testbed } from './testbed.js';

export const FARM_MAC = '02:fa:00:00:00:01';

/** the farm every data-plane test starts from; VIP 10.x.0.200 (IPv6 fd00:0:x::200) on eth0, one per family */
export function testFarm(tb: Testbed, rules: DataplaneFarm['rules'], bucketCount = 256, families: readonly IPFamily[] = ['ipv4']): DataplaneFarm {
  const virtualIPs = families.map((f) => (f === 'ipv4' ? tb.vip(0) : tb.vip6(0)));
  return { name: 'tf', interface: 'eth0', virtualIPs, virtualMAC: FARM_MAC, rules, bucketCount, hashSeed: 0x1234 };
}

/** buckets [0, n) cut into contiguous shares proportional to weights */
export function contiguousSplit(bucketCount: number, weights: number[]): number[][] {
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[][] = [];
  let start = 0;
  let acc = 0;
  for (const w of weights) {
    acc += w;
    const end = Math.round((acc / total) * bucketCount);
    out.push(Array.from({ length: end - start }, (_, k) => start + k));
    start = end;
  }
  return out;
}

export function ownerIndex(split: number[][], bucket: number): number {
  return split.findIndex((s) => s.includes(bucket));
}

/** starts drivers on every node and programs the farm with the given split */
export async function startFarm(tb: Testbed, farm: DataplaneFarm, split: number[][], leaseMs = 600_000): Promise<Driver[]> {
  const drivers = tb.nodes.map((n) => Driver.start(tb, n));
  await Promise.all(
    drivers.map(async (d, i) => {
      await d.call('bindVips', farm.name, farm.interface, farm.virtualIPs);
      await d.call('apply', farm);
      await d.call('setBuckets', farm.name, split[i] ?? [], leaseMs);
      await d.call('arpStart', { iface: farm.interface, vips: farm.virtualIPs, mac: farm.virtualMAC });
    }),
  );
  return drivers;
}

export async function stopFarm(drivers: Driver[], farm: DataplaneFarm): Promise<void> {
  await Promise.all(
    drivers.map(async (d) => {
      await d.call('arpStop');
      await d.call('remove', farm.name);
      await d.call('unbindVips', farm.name, farm.interface, farm.virtualIPs);
      d.close();
    }),
  );
}

/** a test's teardown: the farm's kernel state off every node (if it was started), then the
 *  bed, even when stopping the farm failed */
export async function teardownFarm(tb: Testbed | undefined, drivers: Driver[] | undefined, farm: DataplaneFarm): Promise<void> {
  try {
    if (drivers !== undefined) await stopFarm(drivers, farm);
  } finally {
    tb?.destroy();
  }
}
