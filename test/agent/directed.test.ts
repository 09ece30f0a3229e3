// Directed mode with real agents on a switch that does not flood unknown unicast: the
// client's ARP is answered with one node's own MAC, that node forwards the other nodes'
// buckets, and every node serves its share. SIGKILL of the node that answered the
// client's ARP: the survivors take its buckets and re-point the client by unicast ARP.
import { jest } from '@jest/globals';
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { AgentFarm, APP_PORT } from '../../lab/agent/farm.js';
import { runClient } from '../../lab/netns/procs.js';

jest.setTimeout(120_000);

test('Directed agents on a flood-off switch: 600 connections over all nodes; SIGKILL of the ARP answerer is survived', async () => {
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

    const t0 = Date.now();
    await f.kill(answerer, 'SIGKILL');
    f.tb.setLink(answerer, false); // its kernel state would still answer: it is dead for the network too
    let served = false;
    let lastErrors = 0;
    while (!served && Date.now() - t0 < 15_000) {
      const r = await runClient(f.tb, client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 60, concurrency: 10, timeoutMs: 500 });
      lastErrors = r.results.filter((x) => x.error !== null).length;
      served = lastErrors === 0;
    }
    const recoveryMs = Date.now() - t0;
    console.log(JSON.stringify({ event: 'directed-sigkill-answerer', recoveryMs }));
    expect(lastErrors).toBe(0);
    const after = JSON.parse(f.tb.exec(client.netns, ['ip', '-j', 'neigh', 'show', f.vip])) as { lladdr?: string }[];
    expect(after[0]?.lladdr).not.toBe(answerer.mac);
    const { results: again } = await runClient(f.tb, client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 300, concurrency: 20 });
    expect(again.filter((r) => r.error !== null)).toEqual([]);
    expect(new Set(again.map((r) => r.node))).toEqual(new Set(names.filter((n) => n !== answerer.name)));
  } finally {
    await f.destroy();
  }
});
