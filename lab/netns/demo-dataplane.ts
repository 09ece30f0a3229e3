// The data-plane demo (scripts/demo.sh): a 3-node farm in network namespaces, real
// traffic from a client, the per-node counts, a planned handoff and a node failure.
import { bucketOf } from '../../common/src/jhash.js';
import { contiguousSplit, ownerIndex, startFarm, stopFarm, testFarm } from './farm.js';
import { Holder, runClient, startEcho } from './procs.js';
import { createTestbed, type Testbed } from './testbed.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

function countBy<T>(xs: T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

async function main(tb: Testbed): Promise<void> {
  const farm = testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }]);
  const vip = farm.virtualIPs[0];
  const client = tb.clients[0];
  const split = contiguousSplit(farm.bucketCount, [2, 1, 1]);
  say(`1. Three nodes and a client on one switch (namespaces vf${tb.runId}-*):`);
  for (const n of tb.nodes) say(`     ${n.name}  ${n.ip}  ${n.mac}`);
  say(`     ${client.name}  ${client.ip}`);
  say(`   Every node puts the VIP ${vip} on lo, answers ARP for it with the virtual MAC ${farm.virtualMAC},`);
  say(`   and loads a kernel filter that accepts only its own hash buckets (of ${farm.bucketCount}):`);
  tb.nodes.forEach((n, i) => say(`     ${n.name} owns buckets ${split[i][0]}-${split[i][split[i].length - 1]} (${split[i].length})`));
  const drivers = await startFarm(tb, farm, split);
  await Promise.all(tb.nodes.map((n) => startEcho(tb, n, vip, [80])));

  say();
  say(`2. The client opens 300 TCP connections to ${vip}:80; each node answers with its name.`);
  const first = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 300 });
  const got = countBy(first.results, (r) => r.node ?? `failed (${r.error})`);
  const expected = countBy(first.results, (r) => tb.nodes[ownerIndex(split, bucketOf(r.laddr, r.lport, 'ClientIPAndPort', 256, farm.hashSeed))].name);
  for (const n of tb.nodes) say(`     ${n.name}: ${got[n.name] ?? 0} connections (jhash of the source ports predicted ${expected[n.name] ?? 0})`);
  const failed = first.results.filter((r) => r.error !== null).length;
  say(`     failed: ${failed}. Each SYN reached all three nodes; exactly one accepted it.`);

  say();
  say('3. Planned handoff: 30 long-lived connections ping every 100 ms while n3 hands its buckets to n2.');
  const holder = Holder.start(tb, client, { vip, port: 80, count: 30, pingMs: 100 });
  const opened = await holder.opened();
  say(`     open: ${JSON.stringify(countBy(opened, (c) => c.node ?? 'failed'))}`);
  await drivers[2].call('setBuckets', farm.name, [], 600_000);
  await drivers[1].call('setBuckets', farm.name, [...split[1], ...split[2]], 600_000);
  await sleep(800);
  const after = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 100 });
  say(`     new connections now: ${JSON.stringify(countBy(after.results, (r) => r.node ?? 'failed'))}`);
  const summary = await holder.stop();
  const broken = summary.filter((c) => c.error !== null || c.echoed !== c.sent).length;
  say(`     long-lived connections broken: ${broken} of ${summary.length} (n3 kept serving its own until they end:`);
  say('     only SYNs are judged by bucket, conntrack keeps established flows where they are)');

  say();
  say('4. n1 dies (its cable is cut). n2 and n3 take its buckets, and put them in the "orphan"');
  say('   set for 2 s, so their kernels answer n1\'s half-open connections with a reset.');
  const holder2 = Holder.start(tb, client, { vip, port: 80, count: 20, pingMs: 100 });
  const opened2 = await holder2.opened();
  const onN1 = opened2.filter((c) => c.node === 'n1').length;
  tb.setLink(tb.nodes[0], false);
  const half = Math.floor(split[0].length / 2);
  const t0 = Date.now();
  await drivers[1].call('setBuckets', farm.name, [...split[0].slice(0, half), ...split[1], ...split[2]], 600_000);
  await drivers[1].call('setOrphans', farm.name, split[0].slice(0, half), 2000);
  await drivers[2].call('setBuckets', farm.name, split[0].slice(half), 600_000);
  await drivers[2].call('setOrphans', farm.name, split[0].slice(half), 2000);
  for (let i = 0; i < 30 && holder2.errors().length < onN1; i++) await sleep(50);
  const resets = holder2.errors();
  const worst = resets.length ? Math.max(...resets.map((e) => e.at - t0)) : NaN;
  say(`     n1 had ${onN1} open connections; ${resets.length} got ${[...new Set(resets.map((e) => e.code))].join(',') || 'nothing'} within ${worst} ms of the takeover`);
  await holder2.stop();
  const last = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: 100 });
  say(`     new connections: ${JSON.stringify(countBy(last.results, (r) => r.node ?? 'failed'))}`);

  say();
  say('5. Cleaning up: tables removed, VIP unbound, sysctls restored, namespaces deleted.');
  tb.setLink(tb.nodes[0], true);
  await stopFarm(drivers, farm);
}

// handlers first: a Ctrl-C while the (synchronous) test bed is being built is then
// handled right after it, with the bed known, instead of killing us half-way
let tbRef: Testbed | undefined;
const stop = (): void => {
  tbRef?.destroy();
  process.exit(130);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const tb = createTestbed({ nodes: 3, clients: 1 });
tbRef = tb;
main(tb)
  .then(() => {
    tb.destroy();
    process.exit(0);
  })
  .catch((err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    tb.destroy();
    process.exit(1);
  });
