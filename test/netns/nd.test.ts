// IPv6 neighbour discovery of a farm: the ND responders answer solicitations for the VIP
// with the virtual MAC (solicited + override, hop limit 255, valid checksum, or the client
// would drop them) and advertise it unsolicited to all nodes on start; the kernel itself
// never answers for a VIP that lives on lo, even with the VIP's solicited-node group joined
// on eth0; the nodes never use the VIP as the source of their own solicitations.
import type { DataplaneFarm } from '../../common/src/types.js';
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { FARM_MAC, contiguousSplit, startFarm, teardownFarm, testFarm } from '../../lab/netns/farm.js';
import { runClient, startEcho, type Driver } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

let tb: Testbed;
let farm: DataplaneFarm;
let drivers: Driver[] | undefined;

beforeAll(() => {
  tb = createTestbed({ nodes: 2, clients: 1, families: ['ipv6'] });
  farm = testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], 256, ['ipv6']);
});

afterAll(() => teardownFarm(tb, drivers, farm));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** tcpdump of every ND message on the client's eth0, verbose (flags, options, hop limit) */
async function captureND(): Promise<{ stop: () => Promise<string[]> }> {
  const client = tb.clients[0];
  const dump = tb.spawn(client.netns, ['tcpdump', '-i', 'eth0', '-l', '-n', '-e', '-vv', '-U', 'icmp6 and (ip6[40] == 135 or ip6[40] == 136)']);
  let text = '';
  let err = '';
  dump.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  dump.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100 && !err.includes('listening on'); i++) await sleep(50);
  expect(err).toContain('listening on');
  return {
    stop: async () => {
      await sleep(300);
      process.kill(dump.pid as number, 'SIGTERM');
      await sleep(100);
      // tcpdump -vv prints a message on two or more lines: join each to its first line
      return text.split(/\n(?=\d\d:\d\d:\d\d)/).map((l) => l.replace(/\s+/g, ' ')).filter((l) => l !== '');
    },
  };
}

const neighOf = (vip: string): { lladdr?: string; state?: string[] }[] =>
  JSON.parse(tb.exec(tb.clients[0].netns, ['ip', '-j', '-6', 'neigh', 'show', vip])) as { lladdr?: string; state?: string[] }[];

test('the VIP resolves to the virtual MAC through the ND responders; unsolicited NAs on start; well-formed answers', async () => {
  const client = tb.clients[0];
  const vip = farm.virtualIPs[0];
  const cap = await captureND();
  expect(neighOf(vip)).toEqual([]);
  drivers = await startFarm(tb, farm, contiguousSplit(farm.bucketCount, [1, 1]));
  await Promise.all(tb.nodes.map((n) => startEcho(tb, n, vip, [80])));

  const { results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 20, concurrency: 5 });
  expect(results.filter((r) => r.error !== null)).toEqual([]);
  expect(new Set(results.map((r) => r.node))).toEqual(new Set(['n1', 'n2']));
  expect(neighOf(vip).map((n) => n.lladdr)).toEqual([FARM_MAC]);

  const lines = await cap.stop();
  const nodeMacs = tb.nodes.map((n) => n.mac);
  const srcMac = (l: string): string => l.split(' ')[1];
  const advertisements = lines.filter((l) => l.includes(`neighbor advertisement, length 32, tgt is ${vip}`));
  // on start: one unsolicited NA per node to all nodes (override, not solicited)
  const unsolicited = advertisements.filter((l) => l.includes('> 33:33:00:00:00:01'));
  expect(unsolicited.length).toBe(tb.nodes.length);
  for (const u of unsolicited) {
    expect(u).toContain(`${vip} > ff02::1`);
    expect(u).toContain('Flags [override]');
  }
  const solicited = advertisements.filter((l) => !l.includes('> 33:33:00:00:00:01'));
  expect(solicited.length).toBeGreaterThan(0);
  for (const a of [...unsolicited, ...solicited]) {
    // the frame from a node's own MAC; the VIP's MAC inside it is the virtual one
    expect(nodeMacs).toContain(srcMac(a));
    expect(a).toContain('hlim 255');
    // (tcpdump names option 2, the target link-layer address, "destination link-address")
    expect(a).toContain(`link-address option (2), length 8 (1): ${FARM_MAC}`);
    expect(a).toContain('[icmp6 sum ok]');
  }
  for (const s of solicited) expect(s).toContain('Flags [solicited, override]');
  // nobody but the responders advertises the VIP, and the virtual MAC is never a frame source
  expect(lines.filter((l) => l.includes(`tgt is ${vip}`) && l.includes('advertisement') && !l.includes(FARM_MAC))).toEqual([]);
  expect(lines.filter((l) => srcMac(l) === FARM_MAC)).toEqual([]);
  // the nodes' own solicitations (for the client's address) come from their own addresses, never the VIP
  const fromNodes = lines.filter((l) => l.includes('neighbor solicitation') && nodeMacs.includes(srcMac(l)));
  expect(fromNodes.length).toBeGreaterThan(0);
  for (const s of fromNodes) expect(s).not.toContain(`${vip} >`);

  const stats = await Promise.all(drivers.map((d) => d.call<{ requests: number; replies: number; gratuitous: number }>('arpStats')));
  for (const s of stats) {
    expect(s.gratuitous).toBe(1);
    expect(s.replies).toBe(s.requests);
  }
  expect(stats.reduce((a, s) => a + s.requests, 0)).toBeGreaterThanOrEqual(1);
});

test('the kernel never answers for the VIP, even with its solicited-node group joined on eth0', async () => {
  expect(drivers).toBeDefined();
  const d = drivers as Driver[];
  const vip = farm.virtualIPs[0];
  // Directed mode's filter with no slots: the ND sockets are open (groups joined) but answer nobody
  await Promise.all(d.map((x) => x.call('arpStart', { iface: farm.interface, vips: farm.virtualIPs, mac: farm.virtualMAC }, [])));
  for (const n of tb.nodes) {
    const groups = tb.exec(n.netns, ['ip', '-6', 'maddr', 'show', 'dev', 'eth0']);
    expect(groups).toContain(`ff02::1:ff00:${vip.split(':').pop()!}`);
  }
  tb.exec(tb.clients[0].netns, ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  const cap = await captureND();
  const { results } = await runClient(tb, tb.clients[0], { vip, port: 80, protocol: 'tcp', count: 2, concurrency: 2, timeoutMs: 2500 });
  expect(results.every((r) => r.error !== null)).toBe(true);
  const lines = await cap.stop();
  // the client asked (several times), and nothing answered: no node's MAC for the VIP, ever
  expect(lines.filter((l) => l.includes(`neighbor solicitation, length 32, who has ${vip}`)).length).toBeGreaterThan(0);
  expect(lines.filter((l) => l.includes('advertisement') && l.includes(`tgt is ${vip}`))).toEqual([]);
  for (const n of neighOf(vip)) expect(tb.nodes.map((x) => x.mac)).not.toContain(n.lladdr);
  const stats = await Promise.all(d.map((x) => x.call<{ requests: number; notMine: number; replies: number }>('arpStats')));
  for (const s of stats) {
    expect(s.notMine).toBe(s.requests);
    expect(s.replies).toBe(0);
  }
  expect(stats.reduce((a, s) => a + s.requests, 0)).toBeGreaterThan(0);
  // and answering again restores service at once, to the virtual MAC
  await Promise.all(d.map((x) => x.call('arpStart', { iface: farm.interface, vips: farm.virtualIPs, mac: farm.virtualMAC })));
  tb.exec(tb.clients[0].netns, ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  const again = await runClient(tb, tb.clients[0], { vip, port: 80, protocol: 'tcp', count: 6, concurrency: 3 });
  expect(again.results.filter((r) => r.error !== null)).toEqual([]);
  expect(neighOf(vip).map((n) => n.lladdr)).toEqual([FARM_MAC]);
});

test('Directed mode: the soliciter\'s slot owner answers with its own MAC; announce re-points the client at once', async () => {
  expect(drivers).toBeDefined();
  const d = drivers as Driver[];
  const vip = farm.virtualIPs[0];
  const client = tb.clients[0];
  const names = tb.nodes.map((n) => n.name);
  const slot = arpSlotOf(client.ip6!);
  const answerer = tb.nodes.findIndex((n) => arpSlotsOf(n.name, names).includes(slot));
  const other = 1 - answerer;
  await Promise.all(d.map((x, i) => x.call('arpStart', { iface: farm.interface, vips: farm.virtualIPs, mac: tb.nodes[i].mac, ownMac: true }, arpSlotsOf(names[i], names))));
  tb.exec(client.netns, ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 1, timeoutMs: 1500 });
  expect(neighOf(vip).map((n) => n.lladdr)).toEqual([tb.nodes[answerer].mac]);
  const before = await Promise.all(d.map((x) => x.call<{ replies: number; notMine: number }>('arpStats')));
  expect(before[answerer].replies).toBeGreaterThan(0);
  expect(before[other].replies).toBe(0);
  expect(before[other].notMine).toBeGreaterThan(0);

  // the answerer is gone: the other node takes every slot and tells the soliciters it saw
  await d[other].call('arpSetSlots', Array.from({ length: 256 }, (_, s) => s));
  const sent = await d[other].call<number>('arpAnnounce', [slot]);
  expect(sent).toBe(1);
  await sleep(100);
  expect(neighOf(vip).map((n) => n.lladdr)).toEqual([tb.nodes[other].mac]);
});
