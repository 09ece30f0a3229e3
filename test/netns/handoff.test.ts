// Tests 3-5: buckets moving between nodes. A planned handoff breaks no established
// connection; a lease that is not refreshed lapses by itself; after a node vanishes,
// the orphan set makes the new owner reset its connections within a second. Each for an
// IPv4 farm and for an IPv6 one on an IPv6-only bed (the same rules, family a parameter).
import { bucketOf } from '../../common/src/jhash.js';
import type { DataplaneFarm } from '../../common/src/types.js';
import { contiguousSplit, startFarm, stopFarm, testFarm } from '../../lab/netns/farm.js';
import { Holder, runClient, startEcho, type Driver } from '../../lab/netns/procs.js';
import type { IPFamily } from '../../common/src/config/syntax.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each<IPFamily>(['ipv4', 'ipv6'])('bucket movement (%s)', (family) => {
  let tb: Testbed;
  let farm: DataplaneFarm;
  let drivers: Driver[] = [];
  const all = Array.from({ length: 256 }, (_, i) => i);
  const split = contiguousSplit(256, [1, 1]);

  beforeEach(async () => {
    tb = createTestbed({ nodes: 2, clients: 1, families: [family] });
    farm = testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], 256, [family]);
    drivers = await startFarm(tb, farm, split);
    await Promise.all(tb.nodes.map((n) => startEcho(tb, n, farm.virtualIPs[0], [80])));
  }, 30000);

  afterEach(async () => {
    try {
      await stopFarm(drivers, farm).catch(() => undefined);
    } finally {
      tb.destroy();
    }
  });

  test('planned handoff: 60 long-lived connections survive, new ones go to the new owner', async () => {
    const holder = Holder.start(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, count: 60, pingMs: 50 });
    const opened = await holder.opened();
    expect(opened.filter((c) => c.error !== null)).toEqual([]);
    const onN1 = opened.filter((c) => c.node === 'n1').length;
    expect(onN1).toBeGreaterThan(5);
    expect(opened.filter((c) => c.node === 'n2').length).toBeGreaterThan(5);
    await sleep(300);

    // release before acquire, as the agent does
    await drivers[0].call('setBuckets', farm.name, [], 600_000);
    await drivers[1].call('setBuckets', farm.name, all, 600_000);
    expect(await drivers[1].call('getBuckets', farm.name, 'owned')).toEqual(all);
    await sleep(1000);

    const fresh = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, protocol: 'tcp', count: 100 });
    expect(fresh.results.filter((r) => r.error !== null)).toEqual([]);
    expect(fresh.results.filter((r) => r.node !== 'n2')).toEqual([]);

    const summary = await holder.stop();
    expect(holder.errors()).toEqual([]);
    const broken = summary.filter((c) => c.error !== null || c.wrongNode > 0 || c.echoed !== c.sent);
    expect(broken).toEqual([]);
    // they kept pinging through the move, each on the node it started on
    for (const c of summary) expect(c.sent).toBeGreaterThan(15);
    expect(summary.filter((c) => c.node === 'n1').length).toBe(onN1);
  });

  test('lease: refreshed buckets stay, unrefreshed ones lapse within the lease; established flows keep going', async () => {
    const lease = 1000;
    await drivers[1].call('setBuckets', farm.name, [], lease);
    await drivers[0].call('setBuckets', farm.name, all, lease);
    const t0 = Date.now();
    while (Date.now() - t0 < 1600) {
      await sleep(300);
      await drivers[0].call('setBuckets', farm.name, all, lease);
    }
    // 1.6 s > lease: only the refreshes kept these
    const alive = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, protocol: 'tcp', count: 20, timeoutMs: 1000 });
    expect(alive.results.filter((r) => r.node !== 'n1')).toEqual([]);

    const holder = Holder.start(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, count: 5, pingMs: 100 });
    expect((await holder.opened()).filter((c) => c.node !== 'n1')).toEqual([]);

    // the agent stops refreshing (hangs or dies): nobody tells the kernel anything
    const stoppedAt = Date.now();
    await sleep(lease + 150);
    expect(await drivers[0].call('getBuckets', farm.name, 'owned')).toEqual([]);
    const late = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, protocol: 'tcp', count: 10, timeoutMs: 500 });
    expect(late.results.filter((r) => r.error === null)).toEqual([]);
    expect(Date.now() - stoppedAt).toBeLessThan(lease + 1500);

    const summary = await holder.stop();
    expect(summary.filter((c) => c.error !== null || c.echoed !== c.sent)).toEqual([]);
  });

  test('dead node: its connections get an RST from the new owner within 1 s of takeover, not before', async () => {
    const holder = Holder.start(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, count: 20, pingMs: 100 });
    const opened = await holder.opened();
    const victims = opened.filter((c) => c.node === 'n1').map((c) => c.i);
    const survivors = opened.filter((c) => c.node === 'n2').map((c) => c.i);
    expect(victims.length).toBeGreaterThan(2);
    expect(survivors.length).toBeGreaterThan(2);

    // n1 vanishes: cable first, so its kernel cannot close the sockets cleanly
    tb.setLink(tb.nodes[0], false);
    const n1Buckets = split[0];
    await drivers[1].call('setBuckets', farm.name, all, 600_000);
    // control: owning the buckets is not enough, mid-stream packets are still dropped
    await sleep(400);
    expect(holder.errors()).toEqual([]);

    const takeoverAt = Date.now();
    await drivers[1].call('setOrphans', farm.name, n1Buckets, 2000);
    expect(await drivers[1].call('getBuckets', farm.name, 'orphan')).toEqual(n1Buckets);
    for (let i = 0; i < 40 && holder.errors().length < victims.length; i++) await sleep(50);

    const errors = holder.errors();
    expect(errors.map((e) => e.i).sort((a, b) => a - b)).toEqual(victims);
    for (const e of errors) {
      expect(e.code).toBe('ECONNRESET');
      expect(e.at - takeoverAt).toBeLessThan(1000);
    }
    // the survivor's connections were never touched, and the lport->bucket math agrees
    const summary = await holder.stop();
    for (const i of survivors) expect(summary[i].error).toBeNull();
    for (const c of opened) {
      const b = bucketOf(c.laddr, c.lport, 'ClientIPAndPort', 256, farm.hashSeed);
      expect(n1Buckets.includes(b)).toBe(victims.includes(c.i));
    }
  });
});
