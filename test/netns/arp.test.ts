// Test 2: a client with no static neighbour entry resolves the VIP to the virtual MAC
// through the responders, the gratuitous ARP is on the wire, and the virtual MAC never
// appears as a frame source (so the switch keeps flooding it to every node).
import type { DataplaneFarm } from '../../common/src/types.js';
import { FARM_MAC, contiguousSplit, startFarm, teardownFarm, testFarm } from '../../lab/netns/farm.js';
import { JsonLines, runClient, startEcho, type Driver } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

let tb: Testbed;
let farm: DataplaneFarm;
let drivers: Driver[] | undefined;

beforeAll(() => {
  tb = createTestbed({ nodes: 2, clients: 1 });
  farm = testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }]);
});

afterAll(() => teardownFarm(tb, drivers, farm));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('VIP resolves to the virtual MAC via the responder; gratuitous ARP seen; virtual MAC never a source', async () => {
  const client = tb.clients[0];
  const vip = farm.virtualIPs[0];
  // every ARP frame, and anything sent *from* the virtual MAC
  const dump = tb.spawn(client.netns, ['tcpdump', '-i', 'eth0', '-l', '-n', '-e', '-U', `arp or ether src ${FARM_MAC}`]);
  const cap = new JsonLines(dump);
  let text = '';
  dump.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  for (let i = 0; i < 100 && !cap.stderr.includes('listening on'); i++) await sleep(50);
  expect(cap.stderr).toContain('listening on');

  expect(tb.exec(client.netns, ['ip', 'neigh', 'show', vip]).trim()).toBe('');
  drivers = await startFarm(tb, farm, contiguousSplit(farm.bucketCount, [1, 1]));
  await Promise.all(tb.nodes.map((n) => startEcho(tb, n, vip, [80])));

  const { results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 20, concurrency: 5 });
  expect(results.filter((r) => r.error !== null)).toEqual([]);
  expect(new Set(results.map((r) => r.node))).toEqual(new Set(['n1', 'n2']));

  const neigh = JSON.parse(tb.exec(client.netns, ['ip', '-j', 'neigh', 'show', vip])) as { lladdr?: string }[];
  expect(neigh.map((n) => n.lladdr)).toEqual([FARM_MAC]);

  await sleep(200);
  process.kill(dump.pid as number, 'SIGTERM');
  const lines = text.split('\n').filter((l) => l !== '');
  const nodeMacs = tb.nodes.map((n) => n.mac);
  const srcOf = (l: string): string => l.split(' ')[1];

  const gratuitous = lines.filter((l) => l.includes(`Request who-has ${vip} tell ${vip}`));
  expect(gratuitous.length).toBeGreaterThanOrEqual(tb.nodes.length);
  for (const g of gratuitous) expect(nodeMacs).toContain(srcOf(g));

  const replies = lines.filter((l) => l.includes(`Reply ${vip} is-at`));
  expect(replies.length).toBeGreaterThan(0);
  // only our responders answer (the kernel keeps quiet: arp_ignore), always with the virtual MAC
  for (const r of replies) {
    expect(r).toContain(`is-at ${FARM_MAC}`);
    expect(nodeMacs).toContain(srcOf(r));
  }
  expect(lines.filter((l) => srcOf(l) === FARM_MAC)).toEqual([]);

  const stats = await Promise.all(drivers.map((d) => d.call<{ requests: number; replies: number; gratuitous: number }>('arpStats')));
  for (const s of stats) {
    expect(s.gratuitous).toBe(1);
    expect(s.requests).toBeGreaterThanOrEqual(1);
    expect(s.replies).toBe(s.requests);
  }
});

test('a link flap does not silence the responder', async () => {
  expect(drivers).toBeDefined();
  const d = drivers as Driver[];
  const client = tb.clients[0];
  const vip = farm.virtualIPs[0];
  const before = await Promise.all(d.map((x) => x.call<{ requests: number; socketErrors: number }>('arpStats')));
  for (const n of tb.nodes) {
    tb.exec(n.netns, ['ip', 'link', 'set', 'eth0', 'down']);
    tb.exec(n.netns, ['ip', 'link', 'set', 'eth0', 'up']);
  }
  await sleep(100);
  tb.exec(client.netns, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
  const { results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 10, concurrency: 2 });
  expect(results.filter((r) => r.error !== null)).toEqual([]);
  const after = await Promise.all(d.map((x) => x.call<{ requests: number; socketErrors: number }>('arpStats')));
  after.forEach((a, i) => {
    expect(a.socketErrors).toBeGreaterThan(before[i].socketErrors);
    expect(a.requests).toBeGreaterThan(before[i].requests);
  });
});
