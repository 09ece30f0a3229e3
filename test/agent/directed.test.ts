// Directed mode with real agents on a switch that does not flood unknown unicast: the
// client's ARP is answered with one node's own MAC, that node forwards the other nodes'
// buckets, and every node serves its share. (SIGKILL of the ARP answerer with real agents
// recovered in 601 ms once and not within 15 s twice on a loaded machine: see the issue
// note; the data-plane mechanism is tested in test/netns/directed.test.ts.)
import { jest } from '@jest/globals';
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { AgentFarm, APP_PORT } from '../../lab/agent/farm.js';
import { runClient } from '../../lab/netns/procs.js';

jest.setTimeout(120_000);

test('Directed agents on a flood-off switch: 600 connections over all nodes, the client resolved to its slot\'s node', async () => {
  const f = new AgentFarm({ nodes: 3, floodUnknownUnicast: false, extra: { mode: 'Directed' } });
  try {
    await f.startAll();
    await f.waitReady();
    await new Promise((r) => setTimeout(r, 500)); // every node's view agrees on the owners
    const client = f.client;
    const names = f.tb.nodes.map((n) => n.name);
    const { results } = await runClient(f.tb, client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 600, concurrency: 20 });
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const perNode = names.map((n) => results.filter((r) => r.node === n).length);
    for (const c of perNode) expect(c).toBeGreaterThan(100);

    const slot = arpSlotOf(client.ip);
    const answerer = f.tb.nodes.find((n) => arpSlotsOf(n.name, names).includes(slot))!;
    const neigh = JSON.parse(f.tb.exec(client.netns, ['ip', '-j', 'neigh', 'show', f.vip])) as { lladdr?: string }[];
    expect(neigh[0]?.lladdr).toBe(answerer.mac);

  } finally {
    await f.destroy();
  }
});
