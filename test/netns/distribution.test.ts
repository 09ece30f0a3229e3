// Test 1: 3 nodes with a fixed, uneven bucket split; 600 connections from a client
// land each on exactly one node, on the node bucketOf() predicts, with no failures.
import { bucketOf } from '../../common/src/jhash.js';
import type { Affinity, DataplaneFarm } from '../../common/src/types.js';
import { contiguousSplit, ownerIndex, startFarm, teardownFarm, testFarm } from '../../lab/netns/farm.js';
import { runClient, startEcho, type Attempt, type JsonLines } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';
import type { Driver } from '../../lab/netns/procs.js';

let tb: Testbed;
let farm: DataplaneFarm;
let drivers: Driver[];
let servers: JsonLines[];
let sources: string[];
// uneven on purpose, so a wrong owner cannot pass by symmetry
const split = contiguousSplit(256, [2, 1, 1]);

beforeAll(async () => {
  tb = createTestbed({ nodes: 3, clients: 1 });
  farm = testFarm(tb, [
    { port: 80, protocol: 'tcp', affinity: 'ClientIP' },
    { port: 81, protocol: 'tcp', affinity: 'ClientIPAndPort' },
    { port: 53, protocol: 'udp', affinity: 'ClientIPAndPort' },
  ]);
  // a second VIP: every rule applies to each VIP of the farm
  farm.virtualIPs.push(tb.vip(1));
  sources = tb.addAddresses(tb.clients[0], 600);
  drivers = await startFarm(tb, farm, split);
  servers = await Promise.all(tb.nodes.map((n) => startEcho(tb, n, farm.virtualIPs.join(','), [80, 81], [53])));
}, 60000);

afterAll(() => teardownFarm(tb, drivers, farm));

function expectedNode(a: Attempt, affinity: Affinity): string {
  const b = bucketOf(a.laddr, a.lport, affinity, farm.bucketCount, farm.hashSeed);
  return tb.nodes[ownerIndex(split, b)].name;
}

function check(results: Attempt[], affinity: Affinity, protocol: 'tcp' | 'udp', port: number, vip = farm.virtualIPs[0]): void {
  expect(results.filter((r) => r.error !== null)).toEqual([]);
  const mismatched = results.filter((r) => r.node !== expectedNode(r, affinity));
  expect(mismatched).toEqual([]);

  // what each node saw is exactly what the client attributes to it: nobody else answered
  for (const [i, node] of tb.nodes.entries()) {
    const seen = servers[i].lines
      .filter((l) => l.event === protocol && l.port === port && l.local === vip)
      .map((l) => l.peer as string)
      .sort();
    const attributed = results.filter((r) => r.node === node.name).map((r) => `${r.laddr}:${r.lport}`).sort();
    expect(seen).toEqual(attributed);
  }
  const counts = tb.nodes.map((n) => results.filter((r) => r.node === n.name).length);
  // every node got some traffic: the split really splits
  for (const c of counts) expect(c).toBeGreaterThan(0);
  expect(counts.reduce((a, b) => a + b, 0)).toBe(results.length);
}

test('ClientIP: 600 TCP connections from 600 addresses land on the owners of their buckets', async () => {
  const { results } = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 80, protocol: 'tcp', count: 600, concurrency: 30, sources });
  expect(results).toHaveLength(600);
  check(results, 'ClientIP', 'tcp', 80);
});

test('ClientIPAndPort: 600 TCP connections from one address spread by source port', async () => {
  const { results } = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 81, protocol: 'tcp', count: 600, concurrency: 30 });
  expect(results).toHaveLength(600);
  check(results, 'ClientIPAndPort', 'tcp', 81);
});

test('UDP ClientIPAndPort: 600 datagrams answered by exactly the owners', async () => {
  const { results } = await runClient(tb, tb.clients[0], { vip: farm.virtualIPs[0], port: 53, protocol: 'udp', count: 600, concurrency: 30 });
  expect(results).toHaveLength(600);
  check(results, 'ClientIPAndPort', 'udp', 53);
});

test('second VIP: 300 TCP connections split by the same buckets', async () => {
  const vip = farm.virtualIPs[1];
  const { results } = await runClient(tb, tb.clients[0], { vip, port: 81, protocol: 'tcp', count: 300, concurrency: 30 });
  expect(results).toHaveLength(300);
  check(results, 'ClientIPAndPort', 'tcp', 81, vip);
});

test('counters: accepted packets per node add up, drops are counted', async () => {
  const per = await Promise.all(drivers.map((d) => d.call<{ port: number; protocol: string; verdict: string; packets: number }[]>('counters', farm.name)));
  for (const c of per) {
    const accepted80 = c.find((x) => x.port === 80 && x.protocol === 'tcp' && x.verdict === 'accept');
    const dropped80 = c.find((x) => x.port === 80 && x.protocol === 'tcp' && x.verdict === 'drop');
    expect(accepted80?.packets).toBeGreaterThan(0);
    // every node sees the others' SYNs and drops them
    expect(dropped80?.packets).toBeGreaterThan(0);
  }
});
