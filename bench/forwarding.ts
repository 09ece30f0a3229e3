// Part of `npm run bench -- dataplane`: what Directed mode's L2 forwarding costs. Two nodes
// on a switch that does not flood unknown unicast; the client's VIP entry names node 0.
// "direct": node 0 holds every bucket; "forwarded": node 1 holds every bucket, so each of
// the client's frames crosses node 0's netdev forward rule (rewrite the MAC, out again).
// Alternating rounds, connections/s and per-connection latency side by side.
import { loadavg } from 'node:os';
import type { DataplaneFarm } from '../common/src/types.js';
import { testFarm } from '../lab/netns/farm.js';
import { Driver, runClient, startEcho } from '../lab/netns/procs.js';
import { createTestbed } from '../lab/netns/testbed.js';
import { median, percentile } from './dataplane.js';
import { writeSection } from './report.js';

const BUCKETS = 256;
const ROUNDS = Number(process.env.BENCH_FWD_ROUNDS ?? 20);
const CONNS = 1000;
const LEASE = 600_000;

export async function forwardingCost(): Promise<Record<string, number>> {
  const tb = createTestbed({ nodes: 2, clients: 1, floodUnknownUnicast: false });
  const farm: DataplaneFarm = { ...testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], BUCKETS), mode: 'Directed' };
  const drivers = tb.nodes.map((n) => Driver.start(tb, n));
  const all = Array.from({ length: BUCKETS }, (_, i) => i);
  const macs = tb.nodes.map((n) => n.mac);
  try {
    await Promise.all(
      drivers.map(async (d) => {
        await d.call('bindVips', farm.name, farm.interface, farm.virtualIPs);
        await d.call('apply', farm);
      }),
    );
    const client = tb.clients[0];
    const vip = farm.virtualIPs[0];
    await Promise.all(tb.nodes.map((n) => startEcho(tb, n, vip, [80])));
    tb.exec(client.netns, ['ip', 'neigh', 'replace', vip, 'lladdr', tb.nodes[0].mac, 'dev', 'eth0', 'nud', 'permanent']);
    // the switch learns each node's MAC from a first frame (an agent's heartbeats do this)
    for (const n of tb.nodes) tb.exec(n.netns, ['ip', 'neigh', 'replace', client.ip, 'lladdr', client.mac, 'dev', 'eth0']);
    await Promise.all(tb.nodes.map((n) => runClient(tb, n, { vip: client.ip, port: 9, protocol: 'udp', count: 1, timeoutMs: 100 })));
    const sources = tb.addAddresses(client, 16);
    tb.exec(client.netns, ['sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
    /** holder: the node holding every bucket; the other forwards to it */
    const hold = async (holder: number): Promise<void> => {
      await Promise.all(
        drivers.map((d, i) => d.call('setBucketsAndForwarding', farm.name, i === holder ? all : [], LEASE, i === holder ? [] : all.map((b) => [b, macs[holder]]), macs)),
      );
    };
    const rates = { direct: [] as number[], forwarded: [] as number[] };
    const took = { direct: [] as number[], forwarded: [] as number[] };
    const order = ['direct', 'forwarded'] as const;
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < 2; k++) {
        const which = order[(round + k) % 2];
        await hold(which === 'direct' ? 0 : 1);
        const { elapsedMs, results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: CONNS, concurrency: 16, sources });
        const failed = results.filter((r) => r.error !== null).length;
        if (failed > 0) throw new Error(`bench dataplane forwarding: ${failed} connections failed (${which})`);
        const want = tb.nodes[which === 'direct' ? 0 : 1].name;
        if (results.some((r) => r.node !== want)) throw new Error(`bench dataplane forwarding: a connection not served by ${want}`);
        rates[which].push((CONNS / elapsedMs) * 1000);
        took[which].push(...results.map((r) => r.tookMs ?? NaN).filter(Number.isFinite));
      }
    }
    const r = {
      fwd_conn_rate_direct: median(rates.direct),
      fwd_conn_rate_forwarded: median(rates.forwarded),
      fwd_latency_p50_direct_ms: median(took.direct),
      fwd_latency_p50_forwarded_ms: median(took.forwarded),
      fwd_latency_p99_direct_ms: percentile(took.direct, 99),
      fwd_latency_p99_forwarded_ms: percentile(took.forwarded, 99),
    };
    const ratio = r.fwd_conn_rate_forwarded / r.fwd_conn_rate_direct;
    writeSection('dataplane-forwarding', [
      '## Directed mode: the cost of forwarding (`npm run bench -- dataplane`)',
      '',
      `Two nodes on a switch that does not flood unknown unicast, Directed mode, the client's VIP entry naming node 0. *Direct*: node 0 holds all ${BUCKETS} buckets.`,
      '*Forwarded*: node 1 holds them, so every client frame enters node 0, hits its netdev ingress forward rule (bucket -> owner MAC, source MAC rewritten) and',
      `goes out again to node 1, which answers the client straight. ${ROUNDS} alternating rounds of ${CONNS} connections (Node.js client, 16 in flight, 16 source addresses);`,
      'connections/s is the median of the rounds, latency (each connection as the client times it, from connect to the server answering) over all of them.',
      '',
      '| set-up | connections/s (median) | latency p50 ms | latency p99 ms | rounds |',
      '|---|---:|---:|---:|---|',
      `| direct | ${r.fwd_conn_rate_direct.toFixed(0)} | ${r.fwd_latency_p50_direct_ms.toFixed(2)} | ${r.fwd_latency_p99_direct_ms.toFixed(2)} | ${rates.direct.map((x) => x.toFixed(0)).join(', ')} |`,
      `| forwarded by node 0 | ${r.fwd_conn_rate_forwarded.toFixed(0)} | ${r.fwd_latency_p50_forwarded_ms.toFixed(2)} | ${r.fwd_latency_p99_forwarded_ms.toFixed(2)} | ${rates.forwarded.map((x) => x.toFixed(0)).join(', ')} |`,
      `| forwarded / direct | ${ratio.toFixed(3)} | | | |`,
      '',
      `Load average while measuring: ${loadavg().map((x) => x.toFixed(2)).join(', ')}.`,
    ].join('\n'));
    return { ...r, fwd_conn_rate_ratio: ratio };
  } finally {
    for (const d of drivers) {
      try {
        await d.call('remove', farm.name);
        await d.call('unbindVips', farm.name, farm.interface, farm.virtualIPs);
      } catch {
        // the namespaces go below anyway
      }
      d.close();
    }
    tb.destroy();
  }
}
