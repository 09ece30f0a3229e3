// Test 6: remove() leaves nothing; apply and bind are idempotent; every bad input is
// refused with a clear error and leaves the kernel exactly as it was; without
// CAP_NET_ADMIN the error says so.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataplaneFarm } from '../../common/src/types.js';
import { testFarm } from '../../lab/netns/farm.js';
import { Driver, DriverError } from '../../lab/netns/procs.js';
import { createTestbed, type Host, type Testbed } from '../../lab/netns/testbed.js';

let tb: Testbed;
let node: Host;
let farm: DataplaneFarm;
const drivers: Driver[] = [];

const SYSCTLS = ['arp_ignore', 'arp_announce', 'rp_filter'].flatMap((k) => [`net.ipv4.conf.eth0.${k}`, `net.ipv4.conf.all.${k}`]);

function sysctls(): string {
  return tb.exec(node.netns, ['sysctl', ...SYSCTLS]);
}
function loAddrs(): string[] {
  const j = JSON.parse(tb.exec(node.netns, ['ip', '-j', 'addr', 'show', 'lo'])) as { addr_info: { local: string; prefixlen: number }[] }[];
  return j[0].addr_info.map((a) => `${a.local}/${a.prefixlen}`).sort();
}
function ruleset(): string {
  return tb.exec(node.netns, ['nft', 'list', 'ruleset']);
}
function start(prefix: string[] = []): Driver {
  const d = Driver.start(tb, node, prefix);
  drivers.push(d);
  return d;
}
async function errorOf(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (e) {
    return e as DriverError;
  }
  throw new Error('expected an error');
}

beforeAll(() => {
  tb = createTestbed({ nodes: 1, clients: 0 });
  node = tb.nodes[0];
  farm = testFarm(tb, [
    { port: 80, protocol: 'tcp', affinity: 'ClientIP' },
    { port: 53, protocol: 'udp', affinity: 'ClientIPAndPort' },
  ]);
  // non-default starting values, so "restored" cannot pass by accident
  tb.exec(node.netns, ['sysctl', '-qw', 'net.ipv4.conf.eth0.arp_announce=1', 'net.ipv4.conf.all.rp_filter=2']);
});

afterAll(() => {
  for (const d of drivers) d.close();
  tb?.destroy();
});

test('remove and unbind leave no table, no VIP, the original sysctls; both are idempotent', async () => {
  const before = { sysctls: sysctls(), lo: loAddrs(), nft: ruleset() };
  const d = start();
  await d.call('bindVips', farm.name, 'eth0', farm.virtualIPs);
  await d.call('bindVips', farm.name, 'eth0', farm.virtualIPs);
  expect(loAddrs()).toEqual([...before.lo, `${farm.virtualIPs[0]}/32`].sort());
  expect(sysctls()).toContain('net.ipv4.conf.eth0.arp_ignore = 1');
  expect(sysctls()).toContain('net.ipv4.conf.all.rp_filter = 0');

  await d.call('apply', farm);
  await d.call('setBuckets', farm.name, [1, 2, 3], 60_000);
  await d.call('setOrphans', farm.name, [9], 60_000);
  const once = ruleset();
  await d.call('apply', farm);
  // same buckets and seed: the live leases are carried over by the replace
  expect(await d.call('getBuckets', farm.name, 'owned')).toEqual([1, 2, 3]);
  expect(await d.call('getBuckets', farm.name, 'orphan')).toEqual([9]);
  // same tables, chains, rules; only the set elements' remaining time differs
  const strip = (s: string): string => s.replace(/(timeout|expires) \S+/g, '');
  expect(strip(ruleset())).toEqual(strip(once));
  expect(once).toContain(`table inet vipfarm_${farm.name}`);
  expect(once).toContain(`table netdev vipfarm_${farm.name}_in`);
  expect(once).toMatch(/elements = \{ 1 timeout 1m expires/);
  // another bucket count: old bucket numbers mean nothing any more, the sets start empty
  await d.call('apply', { ...farm, bucketCount: 512 });
  expect(await d.call('getBuckets', farm.name, 'owned')).toEqual([]);
  await d.call('setBuckets', farm.name, [1, 2, 3], 60_000);
  await d.call('apply', { ...farm, hashSeed: 99 });
  expect(await d.call('getBuckets', farm.name, 'owned')).toEqual([]);

  // a restarted agent binds again: the saved originals must survive it
  d.close();
  const d2 = start();
  await d2.call('bindVips', farm.name, 'eth0', farm.virtualIPs);

  await d2.call('remove', farm.name);
  await d2.call('remove', farm.name);
  await d2.call('unbindVips', farm.name, 'eth0', farm.virtualIPs);
  await d2.call('unbindVips', farm.name, 'eth0', farm.virtualIPs);
  expect(ruleset()).toEqual(before.nft);
  expect(loAddrs()).toEqual(before.lo);
  expect(sysctls()).toEqual(before.sysctls);
});

test('two farms on one node: the last one to unbind restores the sysctls', async () => {
  const before = sysctls();
  const d = start();
  await d.call('bindVips', 'one', 'eth0', [tb.vip(1)]);
  await d.call('bindVips', 'two', 'eth0', [tb.vip(2)]);
  await d.call('unbindVips', 'one', 'eth0', [tb.vip(1)]);
  // farm two still needs the VIP kept quiet on ARP
  expect(sysctls()).toContain('net.ipv4.conf.eth0.arp_ignore = 1');
  expect(loAddrs()).toContain(`${tb.vip(2)}/32`);
  expect(loAddrs()).not.toContain(`${tb.vip(1)}/32`);
  await d.call('unbindVips', 'two', 'eth0', [tb.vip(2)]);
  expect(sysctls()).toEqual(before);
});

test('a farm moved to another interface: the old one gets its originals back at once (unless another farm uses it), the new one at unbind', async () => {
  tb.exec(node.netns, ['ip', 'link', 'add', 'vfm1', 'type', 'veth', 'peer', 'name', 'vfm1p']);
  const vf = (): string => tb.exec(node.netns, ['sysctl', 'net.ipv4.conf.vfm1.arp_ignore', 'net.ipv4.conf.vfm1.arp_announce', 'net.ipv4.conf.vfm1.rp_filter']);
  tb.exec(node.netns, ['sysctl', '-qw', 'net.ipv4.conf.vfm1.arp_ignore=2', 'net.ipv4.conf.vfm1.rp_filter=1']);
  try {
    const before = { eth0: sysctls(), vf: vf() };
    const d = start();
    await d.call('bindVips', 'mover', 'eth0', [tb.vip(3)]);
    await d.call('bindVips', 'stayer', 'eth0', [tb.vip(4)]);
    await d.call('bindVips', 'mover', 'vfm1', [tb.vip(3)]);
    await d.call('releaseInterface', 'mover', 'eth0');
    // farm "stayer" still runs on eth0: its settings stay
    expect(sysctls()).toContain('net.ipv4.conf.eth0.arp_ignore = 1');
    expect(vf()).toContain('net.ipv4.conf.vfm1.arp_ignore = 1');
    await d.call('unbindVips', 'stayer', 'eth0', [tb.vip(4)]);
    // eth0 back (mover no longer claims it); "all" still the farm's
    expect(sysctls()).toContain('net.ipv4.conf.eth0.arp_announce = 1');
    expect(sysctls()).toContain('net.ipv4.conf.all.rp_filter = 0');
    await d.call('unbindVips', 'mover', 'vfm1', [tb.vip(3)]);
    expect({ eth0: sysctls(), vf: vf() }).toEqual(before);
  } finally {
    tb.exec(node.netns, ['ip', 'link', 'del', 'vfm1']);
  }
});

test('bad input: clear error, kernel unchanged', async () => {
  const d = start();
  await d.call('apply', farm);
  await d.call('setBuckets', farm.name, [5, 6], 60_000);
  await d.call('setOrphans', farm.name, [7], 60_000);
  const strip = (s: string): string => s.replace(/expires \S+/g, '');
  const before = { nft: strip(ruleset()), lo: loAddrs(), sysctls: sysctls() };

  const bad: [string, unknown[], RegExp, string][] = [
    ['apply', [{ ...farm, virtualIPs: ['10.0.0.300'] }], /virtualIPs\[0\] must be an IPv4 address \(dotted quad\), got "10.0.0.300"/, 'EINVAL'],
    ['apply', [{ ...farm, virtualMAC: '02:fa:00:00:00' }], /virtualMAC/, 'EINVAL'],
    ['apply', [{ ...farm, rules: [{ port: 80, protocol: 'tcp', affinity: 'Sticky' }] }], /affinity "Sticky"/, 'EINVAL'],
    ['apply', [{ ...farm, rules: [{ port: 80, protocol: 'icmp', affinity: 'ClientIP' }] }], /protocol "icmp"/, 'EINVAL'],
    ['apply', [{ ...farm, name: 'Bad_Name' }], /farm name/, 'EINVAL'],
    ['apply', [{ ...farm, bucketCount: 300 }], /bucketCount/, 'EINVAL'],
    ['apply', [{ ...farm, interface: 'nosuch0' }], /apply vipfarm_tf: interface nosuch0: No such device/, 'ENODEV'],
    ['setBuckets', [farm.name, [1, 256], 1000], /bucket 256 is out of range \[0, 256\)/, 'EINVAL'],
    ['setBuckets', [farm.name, [-1], 1000], /bucket -1 is out of range/, 'EINVAL'],
    ['setBuckets', [farm.name, [1], 0], /leaseMs/, 'EINVAL'],
    ['setOrphans', [farm.name, [1.5], 1000], /bucket 1.5/, 'EINVAL'],
    ['setBuckets', ['other', [1], 1000], /set owned buckets of vipfarm_other: flush set owned: No such file or directory/, 'ENOENT'],
    ['bindVips', [farm.name, 'nosuch0', farm.virtualIPs], /bindVips: interface nosuch0: No such device/, 'ENODEV'],
    ['bindVips', [farm.name, 'eth0', ['10.1.1']], /virtualIPs\[0\]/, 'EINVAL'],
    ['arpStart', [{ iface: 'nosuch0', vips: farm.virtualIPs, mac: farm.virtualMAC }], /ARP responder on nosuch0: interface: No such device/, 'ENODEV'],
  ];
  for (const [op, args, message, code] of bad) {
    const err = await errorOf(d.call(op, ...args));
    expect({ op, message: err.message }).toEqual({ op, message: expect.stringMatching(message) });
    expect({ op, code: err.code }).toEqual({ op, code });
  }
  expect(strip(ruleset())).toEqual(before.nft);
  expect(loAddrs()).toEqual(before.lo);
  expect(sysctls()).toEqual(before.sysctls);
  expect(await d.call('getBuckets', farm.name, 'owned')).toEqual([5, 6]);
  expect(await d.call('getBuckets', farm.name, 'orphan')).toEqual([7]);
  await d.call('remove', farm.name);
});

test('without CAP_NET_ADMIN / CAP_NET_RAW: errors name the operation and EPERM', async () => {
  const d = start(['setpriv', '--inh-caps=-all', '--bounding-set=-all', '--']);
  const before = ruleset();
  const apply = await errorOf(d.call('apply', farm));
  expect(apply.message).toMatch(/^apply vipfarm_tf: .*Operation not permitted$/);
  expect(apply.code).toBe('EPERM');
  const set = await errorOf(d.call('setBuckets', farm.name, [1], 1000));
  expect(set.message).toMatch(/set owned buckets of vipfarm_tf.*Operation not permitted/);
  expect(set.code).toBe('EPERM');
  const arp = await errorOf(d.call('arpStart', { iface: 'eth0', vips: farm.virtualIPs, mac: farm.virtualMAC }));
  expect(arp.message).toMatch(/ARP responder on eth0: packet socket: Operation not permitted/);
  expect(arp.code).toBe('EPERM');
  expect(ruleset()).toEqual(before);
});

test('VIPFARM_SYSCTL_ROOT (the DaemonSet mounts the host\'s /proc/sys/net there): sysctls go under that root', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vipfarm-sysroot-'));
  try {
    const file = (dev: string, k: string): string => join(root, 'net/ipv4/conf', dev, k);
    for (const dev of ['eth0', 'all']) {
      mkdirSync(join(root, 'net/ipv4/conf', dev), { recursive: true });
      for (const k of ['arp_ignore', 'arp_announce', 'rp_filter']) writeFileSync(file(dev, k), '3\n');
    }
    const real = sysctls();
    const d = start(['env', `VIPFARM_SYSCTL_ROOT=${root}`]);
    await d.call('bindVips', 'sysroot', 'eth0', [farm.virtualIPs[0]]);
    for (const dev of ['eth0', 'all']) {
      expect(readFileSync(file(dev, 'arp_ignore'), 'utf8').trim()).toBe('1');
      expect(readFileSync(file(dev, 'arp_announce'), 'utf8').trim()).toBe('2');
      expect(readFileSync(file(dev, 'rp_filter'), 'utf8').trim()).toBe('0');
    }
    expect(sysctls()).toBe(real);
    await d.call('unbindVips', 'sysroot', 'eth0', [farm.virtualIPs[0]]);
    expect(readFileSync(file('eth0', 'arp_ignore'), 'utf8').trim()).toBe('3');
    expect(loAddrs()).not.toContain(`${farm.virtualIPs[0]}/32`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
