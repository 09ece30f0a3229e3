// Data-plane bench, in a namespace test bed:
//  1. moving 1, 32 and 256 buckets: one native netlink batch vs `nft -f` of the same
//     batch (flush the set, add the new elements with a timeout), both timed from a
//     process inside the node's namespace;
//  2. new TCP connections per second from a client to the VIP with the whole farm data
//     plane (virtual MAC, filter chain, bucket lookup) vs the same namespaces with no
//     nft tables at all (the client sends straight to the node's own MAC);
//  3. softirq CPU per SYN of a paced SYN flood from many (spoofed) sources: a bucket the
//     node owns, a foreign bucket (dropped before conntrack, chain raw), a foreign bucket
//     as before that chain (dropped after conntrack), no filter; each minus a baseline of
//     frames dropped at the node's ingress (what the sender, veth and bridge cost);
//  4. Directed mode: connections/s and latency through a forwarding node vs direct (forwarding.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contiguousSplit, startFarm, stopFarm, testFarm } from '../lab/netns/farm.js';
import { Driver, runClient, startEcho } from '../lab/netns/procs.js';
import { createTestbed } from '../lab/netns/testbed.js';
import { writeSection } from './report.js';
import { forwardingCost } from './forwarding.js';

export const MOVES = [1, 32, 256];
const BUCKETS = 1024;
const NATIVE_RUNS = 300;
const CLI_RUNS = 60;
// Rounds alternate between set-ups. Even at 25 the filter/no-filter ratio still moves by a few
// percent from run to run on this machine (0.92-0.98 seen on a quiet one); filter/conntrack-only stays 0.99-1.01.
const CONN_ROUNDS = 25;
const CONNS_PER_ROUND = 1000;

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** nearest-rank percentile */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1];
}

/** two disjoint lists of k buckets: alternating between them moves k buckets each call */
export function alternatingMoves(k: number, runs: number): number[][] {
  const a = Array.from({ length: k }, (_, i) => i);
  const b = Array.from({ length: k }, (_, i) => k + i);
  return Array.from({ length: runs }, (_, i) => (i % 2 === 0 ? a : b));
}

/** the nft CLI equivalent of one setBuckets: same set semantics, plain-typed keys */
export function cliBatch(table: string, buckets: number[], leaseMs: number): string {
  const elems = buckets.map((b) => `0.0.${b >> 8}.${b & 255} timeout ${leaseMs}ms`).join(', ');
  return `flush set inet ${table} s\nadd element inet ${table} s { ${elems} }\n`;
}

const CONNTRACK_ONLY = `table inet vfbench_ct {
  chain pre {
    type filter hook prerouting priority -150; policy accept;
    ct state established,related accept
  }
}
`;

const FLOOD = fileURLToPath(new URL('../../lab/netns/helpers/syn-flood.py', import.meta.url));
const FLOOD_ROUNDS = 5;
const FLOOD_SYNS = 150_000;
const FLOOD_RATE = 50_000;
const FLOOD_FLOWS = 4096;
const FLOOD_NET = 77;

/** softirq jiffies of every CPU together (/proc/stat is not per namespace: the whole machine) */
export function softirqJiffies(procStat: string): number {
  const cpu = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (cpu === undefined) throw new Error('/proc/stat: no cpu line');
  const f = cpu.trim().split(/\s+/).map(Number);
  return f[7]!;
}

const fmt = (x: number): string => (x < 10 ? x.toFixed(3) : x.toFixed(1));

export async function run(): Promise<Record<string, unknown>> {
  const tb = createTestbed({ nodes: 1, clients: 1 });
  const tmp = mkdtempSync(join(tmpdir(), 'vf-bench-'));
  const result: Record<string, number> = {};
  try {
    const node = tb.nodes[0];
    const client = tb.clients[0];
    const farm = testFarm(tb, [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], BUCKETS);

    // -- 1. bucket moves --------------------------------------------------------
    const d = Driver.start(tb, node);
    await d.call('apply', farm);
    tb.exec(node.netns, ['nft', '-f', '-'], 'table inet vfbench {\n set s {\n  type ipv4_addr\n  flags timeout\n }\n}\n');
    for (const k of MOVES) {
      const native = await d.call<number[]>('timeSetBuckets', farm.name, alternatingMoves(k, NATIVE_RUNS), 600_000);
      const files = [0, 1].map((i) => {
        const f = join(tmp, `move-${k}-${i}.nft`);
        writeFileSync(f, cliBatch('vfbench', alternatingMoves(k, 2)[i], 600_000));
        return f;
      });
      const cli = [
        ...(await d.call<number[]>('timeExec', ['nft', '-f', files[0]], CLI_RUNS / 2)),
        ...(await d.call<number[]>('timeExec', ['nft', '-f', files[1]], CLI_RUNS / 2)),
      ];
      // first calls warm caches (netlink socket, page faults): drop them
      const nat = native.slice(10);
      result[`native_${k}_median_ms`] = median(nat);
      result[`native_${k}_p99_ms`] = percentile(nat, 99);
      result[`nft_cli_${k}_median_ms`] = median(cli.slice(2));
      result[`nft_cli_${k}_p99_ms`] = percentile(cli.slice(2), 99);
    }
    await d.call('remove', farm.name);
    tb.exec(node.netns, ['nft', 'delete', 'table', 'inet', 'vfbench']);
    d.close();

    // -- 2. connection rate -----------------------------------------------------
    const vip = farm.virtualIPs[0];
    const drivers = await startFarm(tb, farm, contiguousSplit(BUCKETS, [1]));
    await startEcho(tb, node, vip, [80]);
    const rates: Record<'filter' | 'conntrack' | 'nofilter', number[]> = { filter: [], conntrack: [], nofilter: [] };
    // tens of thousands of connections from one address would run out of ports
    // (TIME_WAIT) and stall on SYN retries: spread them over 16 source addresses
    const sources = tb.addAddresses(client, 16);
    tb.exec(client.netns, ['sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
    const measure = async (): Promise<number> => {
      const { elapsedMs, results } = await runClient(tb, client, { vip, port: 80, protocol: 'tcp', count: CONNS_PER_ROUND, concurrency: 16, sources });
      const failed = results.filter((r) => r.error !== null).length;
      if (failed > 0) throw new Error(`bench dataplane: ${failed} connections failed`);
      return (CONNS_PER_ROUND / elapsedMs) * 1000;
    };
    const neigh = (mac: string): void => {
      tb.exec(client.netns, ['ip', 'neigh', 'replace', vip, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    };
    const setups: Record<keyof typeof rates, () => Promise<void>> = {
      filter: async () => {
        await drivers[0].call('apply', farm);
        await drivers[0].call('setBuckets', farm.name, contiguousSplit(BUCKETS, [1])[0], 600_000);
        neigh(farm.virtualMAC);
      },
      // what conntrack alone costs: the SYN gating needs it, so it is part of the price
      conntrack: async () => {
        await drivers[0].call('remove', farm.name);
        tb.exec(node.netns, ['nft', '-f', '-'], CONNTRACK_ONLY);
        neigh(node.mac);
      },
      nofilter: async () => {
        await drivers[0].call('remove', farm.name);
        neigh(node.mac);
      },
    };
    // rotate the order so drift on a shared machine hits every set-up alike
    const order: (keyof typeof rates)[] = ['filter', 'conntrack', 'nofilter'];
    for (let round = 0; round < CONN_ROUNDS; round++) {
      for (let k = 0; k < order.length; k++) {
        const which = order[(round + k) % order.length];
        await setups[which]();
        rates[which].push(await measure());
        if (which === 'conntrack') tb.exec(node.netns, ['nft', 'delete', 'table', 'inet', 'vfbench_ct']);
      }
    }
    // -- 3. CPU per SYN ----------------------------------------------------------
    tb.exec(node.netns, ['ip', 'route', 'replace', `10.${FLOOD_NET}.0.0/16`, 'via', client.ip]);
    const ingressDrop = `table netdev vfbench_drop {\n chain in {\n  type filter hook ingress device eth0 priority -600; policy accept;\n  ip daddr ${vip} drop\n }\n}\n`;
    const farmWith = async (owned: number[]): Promise<void> => {
      await drivers[0].call('apply', farm);
      await drivers[0].call('setBuckets', farm.name, owned, 600_000);
      neigh(farm.virtualMAC);
    };
    const all = Array.from({ length: BUCKETS }, (_, i) => i);
    type Flood = 'baseline' | 'owned' | 'foreign' | 'foreign_conntrack' | 'nofilter';
    const floodSetups: Record<Flood, { up: () => Promise<void>; down?: () => void }> = {
      baseline: { up: () => farmWith(all).then(() => void tb.exec(node.netns, ['nft', '-f', '-'], ingressDrop)), down: () => void tb.exec(node.netns, ['nft', 'delete', 'table', 'netdev', 'vfbench_drop']) },
      owned: { up: () => farmWith(all) },
      foreign: { up: () => farmWith([]) },
      // what a foreign SYN cost before the raw chain: dropped in `pre`, after conntrack
      foreign_conntrack: { up: () => farmWith([]).then(() => void tb.exec(node.netns, ['nft', 'flush', 'chain', 'inet', `vipfarm_${farm.name}`, 'raw'])) },
      nofilter: { up: async () => { await drivers[0].call('remove', farm.name); neigh(node.mac); } },
    };
    const perSyn: Record<Flood, number[]> = { baseline: [], owned: [], foreign: [], foreign_conntrack: [], nofilter: [] };
    const floodOrder = Object.keys(floodSetups) as Flood[];
    for (let round = 0; round < FLOOD_ROUNDS; round++) {
      for (let k = 0; k < floodOrder.length; k++) {
        const which = floodOrder[(round + k) % floodOrder.length];
        await floodSetups[which].up();
        const before = softirqJiffies(readFileSync('/proc/stat', 'utf8'));
        const out = JSON.parse(tb.exec(client.netns, ['python3', FLOOD, vip, '80', String(FLOOD_SYNS), String(FLOOD_RATE), String(FLOOD_FLOWS), String(FLOOD_NET)])) as { sent: number };
        const after = softirqJiffies(readFileSync('/proc/stat', 'utf8'));
        // USER_HZ 100: a jiffy is 10 ms
        perSyn[which].push(((after - before) * 10_000) / out.sent);
        floodSetups[which].down?.();
      }
    }
    const base = median(perSyn.baseline);
    for (const k of floodOrder) result[`syn_softirq_us_${k}`] = median(perSyn[k]);
    const net = (k: Flood): number => Math.max(0, median(perSyn[k]) - base);
    result.foreign_vs_owned_cpu_ratio = net('foreign') / net('owned');
    result.foreign_conntrack_vs_owned_cpu_ratio = net('foreign_conntrack') / net('owned');
    result.foreign_vs_foreign_conntrack_cpu_ratio = net('foreign') / net('foreign_conntrack');
    await drivers[0].call('apply', farm);

    await stopFarm(drivers, farm);
    result.conn_rate_filter = median(rates.filter);
    result.conn_rate_nofilter = median(rates.nofilter);
    result.conn_rate_conntrack_only = median(rates.conntrack);
    result.filter_conn_rate_ratio = result.conn_rate_filter / result.conn_rate_nofilter;
    result.filter_vs_conntrack_ratio = result.conn_rate_filter / result.conn_rate_conntrack_only;

    const rows = MOVES.map(
      (k) =>
        `| ${k} | ${fmt(result[`native_${k}_median_ms`])} | ${fmt(result[`native_${k}_p99_ms`])} | ` +
        `${fmt(result[`nft_cli_${k}_median_ms`])} | ${fmt(result[`nft_cli_${k}_p99_ms`])} | ` +
        `${(result[`nft_cli_${k}_median_ms`] / result[`native_${k}_median_ms`]).toFixed(0)}x |`,
    );
    writeSection(
      'dataplane',
      [
        '## Data plane (`npm run bench -- dataplane`)',
        '',
        `Moving buckets: one \`setBuckets\` call (flush the set, add k elements with a timeout, one netlink batch) vs \`nft -f\` of the same batch on a plain-typed set; both timed from a process inside the node's namespace, ${NATIVE_RUNS - 10} native and ${CLI_RUNS - 2} CLI runs per size, ${BUCKETS} buckets. Target: 256 buckets under 0.5 ms natively.`,
        '',
        '| buckets moved | native median ms | native p99 ms | nft CLI median ms | nft CLI p99 ms | CLI / native |',
        '|---:|---:|---:|---:|---:|---:|',
        ...rows,
        '',
        `New TCP connections per second, one client (Node.js, 16 in flight) to one node, ${CONN_ROUNDS} alternating rounds of ${CONNS_PER_ROUND} connections from 16 source addresses, median. The client process is the bottleneck on this 2-CPU machine shared with other jobs, so the ratio mostly shows that the filter's cost is below the noise. "Filter" is the full farm data plane; "no filter" is the same namespaces without any nft table (so without conntrack either); "conntrack only" isolates what connection tracking, which the SYN gating relies on, costs by itself. Target: the filter costs under 5%.`,
        '',
        '| set-up | connections/s (median) | rounds |',
        '|---|---:|---|',
        `| no filter | ${result.conn_rate_nofilter.toFixed(0)} | ${rates.nofilter.map((r) => r.toFixed(0)).join(', ')} |`,
        `| conntrack only (one \`ct state established,related accept\` rule) | ${result.conn_rate_conntrack_only.toFixed(0)} | ${rates.conntrack.map((r) => r.toFixed(0)).join(', ')} |`,
        `| filter (full farm data plane) | ${result.conn_rate_filter.toFixed(0)} | ${rates.filter.map((r) => r.toFixed(0)).join(', ')} |`,
        `| filter / no filter | ${result.filter_conn_rate_ratio.toFixed(3)} | |`,
        `| filter / conntrack only | ${result.filter_vs_conntrack_ratio.toFixed(3)} | |`,
        '',
        `Both ratios from the same run: filter / no filter = **${result.filter_conn_rate_ratio.toFixed(3)}**, filter / conntrack only = **${result.filter_vs_conntrack_ratio.toFixed(3)}** (goal >= 0.98).`,
        '',
        `CPU per SYN (softirq time of the whole machine from /proc/stat, so other jobs add noise; median of ${FLOOD_ROUNDS} alternating rounds): ${FLOOD_SYNS} SYNs per round at ${FLOOD_RATE}/s from ${FLOOD_FLOWS} spoofed (address, port) pairs to the VIP, port 80 with a listener. *Net* subtracts the baseline (frames dropped at the node's netdev ingress: the sender's veth, the bridge), leaving what the node's stack spends. *Foreign* is a bucket the node does not own, dropped in chain raw before conntrack; *foreign via conntrack* is how it was dropped before (chain raw flushed: conntrack allocates an entry, the filter drops the packet, the entry is freed); *owned* answers with a SYN-ACK (SYN cookies once the backlog is full).`,
        '',
        '| SYN to | softirq us/SYN (median) | net us/SYN | rounds |',
        '|---|---:|---:|---|',
        ...floodOrder.map((k) => `| ${k.replace('_', ' via ')} | ${median(perSyn[k]).toFixed(2)} | ${k === 'baseline' ? '' : net(k).toFixed(2)} | ${perSyn[k].map((x) => x.toFixed(2)).join(', ')} |`),
        `| foreign / owned (net) | ${result.foreign_vs_owned_cpu_ratio.toFixed(2)} | | |`,
        `| foreign via conntrack / owned (net) | ${result.foreign_conntrack_vs_owned_cpu_ratio.toFixed(2)} | | |`,
        `| foreign / foreign via conntrack (net) | ${result.foreign_vs_foreign_conntrack_cpu_ratio.toFixed(2)} | | |`,
        '',
        `Load average while measuring: ${loadavg().map((x) => x.toFixed(2)).join(', ')}.`,
      ].join('\n'),
    );
  } finally {
    tb.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
  // 4. Directed mode's forwarding, on a bed of its own
  return { ...result, ...(await forwardingCost()) };
}
