// A Service IP with its own node list (externalTrafficPolicy Local) has its own bucket
// sets: its new connections go to the nodes holding its buckets there, whatever the farm's
// own split; re-applying the farm keeps what the sets hold.
import { jest } from '@jest/globals';
import type { DataplaneFarm } from '../../common/src/types.js';
import { contiguousSplit, startFarm, stopFarm, testFarm } from '../../lab/netns/farm.js';
import { runClient, startEcho, type Driver } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

jest.setTimeout(60_000);

let tb: Testbed;
let farm: DataplaneFarm;
let drivers: Driver[];
const B = 64;
const all = [...Array(B).keys()];

beforeAll(async () => {
  tb = createTestbed({ nodes: 2, clients: 1 });
  farm = {
    ...testFarm(tb, [{ port: 9090, protocol: 'tcp', affinity: 'ClientIPAndPort' }], B),
    services: [{ ip: tb.vip(1), rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }], nodes: ['n1'] }],
  };
  const served = [...farm.virtualIPs, tb.vip(1)];
  drivers = await startFarm(tb, { ...farm, virtualIPs: served, services: [] }, contiguousSplit(B, [1, 1]));
  // startFarm bound both addresses and answers ARP for both; now the real farm, with the Service IP
  for (const d of drivers) await d.call('apply', farm);
  for (const h of tb.nodes) await startEcho(tb, h, '0.0.0.0', [8080, 9090]);
});

afterAll(async () => {
  if (drivers) await stopFarm(drivers, { ...farm, virtualIPs: [...farm.virtualIPs, tb.vip(1)] });
  tb?.destroy();
});

const spread = async (ip: string, port: number): Promise<Record<string, number>> => {
  const r = await runClient(tb, tb.clients[0]!, { vip: ip, port, protocol: 'tcp', count: 60, concurrency: 6, timeoutMs: 1500 });
  const by: Record<string, number> = {};
  for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
  return by;
};

test('the Service IP\'s own set decides its new connections; the farm\'s set decides the VIP\'s', async () => {
  await drivers[0]!.call('setServiceBuckets', farm.name, tb.vip(1), all, 60_000);
  await drivers[1]!.call('setServiceBuckets', farm.name, tb.vip(1), [], 60_000);
  expect(await spread(tb.vip(1), 8080)).toEqual({ n1: 60 });
  const vip = await spread(tb.vip(0), 9090);
  expect(vip.failed).toBeUndefined();
  expect(vip.n1).toBeGreaterThan(10);
  expect(vip.n2).toBeGreaterThan(10);
});

test('moved to the other node: it takes every new connection; a re-apply keeps the sets\' contents', async () => {
  await drivers[0]!.call('setServiceBuckets', farm.name, tb.vip(1), [], 60_000);
  await drivers[1]!.call('setServiceBuckets', farm.name, tb.vip(1), all, 60_000);
  await drivers[1]!.call('apply', farm);
  expect(await drivers[1]!.call('getServiceBuckets', farm.name, tb.vip(1))).toEqual(all);
  expect(await spread(tb.vip(1), 8080)).toEqual({ n2: 60 });
});

test('nobody holds its buckets: its new connections are dropped, not served by the farm\'s owners', async () => {
  await drivers[1]!.call('setServiceBuckets', farm.name, tb.vip(1), [], 60_000);
  const r = await runClient(tb, tb.clients[0]!, { vip: tb.vip(1), port: 8080, protocol: 'tcp', count: 6, concurrency: 6, timeoutMs: 500 });
  expect(r.results.every((a) => a.node === null)).toBe(true);
  // the farm's own VIP is untouched
  expect((await spread(tb.vip(0), 9090)).failed).toBeUndefined();
});
