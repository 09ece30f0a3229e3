// `npm run bench -- recovery`: from the client's side, time from a node's death (cable cut
// + SIGKILL) until new connections to EVERY bucket succeed again, Flooding mode on a
// flooding switch and Directed mode on a switch that does not flood unknown unicast, side
// by side in one run. The victim is the client's ARP answerer in Directed mode (its
// receiver: the case that needs re-pointing) or another node; in Flooding every node
// receives everything. Each kill probes all buckets (one new SYN per bucket every 10 ms,
// 30 ms connect timeout), then the node is restarted. BENCH_RECOVERY_CYCLES (default 6).
import { loadavg } from 'node:os';
import { arpSlotOf, arpSlotsOf } from '../common/src/arp-slot.js';
import { AgentFarm, servedAgainMs } from '../lab/agent/farm.js';
import { median, percentile } from './dataplane.js';
import { TAKEOVER_PROBE } from './failover.js';
import { writeSection } from './report.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (s: string): void => void process.stderr.write(`[bench recovery] ${s}\n`);

type Case = 'answerer' | 'other';

async function cycles(mode: 'Flooding' | 'Directed', n: number): Promise<Record<Case, number[]>> {
  const farm = new AgentFarm({ nodes: 3, bucketCount: 64, floodUnknownUnicast: mode === 'Flooding', extra: { mode }, name: mode === 'Directed' ? 'dir' : 'fl' });
  const out: Record<Case, number[]> = { answerer: [], other: [] };
  try {
    await farm.startAll();
    await farm.waitReady();
    await sleep(500);
    const names = farm.tb.nodes.map((x) => x.name);
    const answerer = farm.tb.nodes.find((x) => arpSlotsOf(x.name, names).includes(arpSlotOf(farm.client.ip)))!;
    for (let i = 0; i < n; i++) {
      const which: Case = i % 2 === 0 ? 'answerer' : 'other';
      const victim = which === 'answerer' ? answerer : farm.tb.nodes.find((x) => x !== answerer)!;
      const warm = await farm.probe({ maxMs: 5000 });
      if (warm.unserved.length > 0) throw new Error(`bench recovery: ${warm.unserved.length} buckets unserved before the kill`);
      const { results: [p], t0 } = await farm.killUnderProbe(victim, [{ maxMs: 10_000, ...TAKEOVER_PROBE }]);
      const ms = servedAgainMs(p!, t0);
      out[which].push(ms);
      progress(`${mode} cycle ${i + 1}/${n}: ${victim.name} (${which}) killed, every bucket served again after ${ms} ms`);
      farm.tb.setLink(victim, true);
      farm.startAgent(victim);
      await farm.waitReady([victim]);
      await farm.waitLog(victim, (l) => l.event === 'buckets' && Number(l.owned) > 0);
      await sleep(3000); // past the re-announcements (2.2 s) of the join's re-split
    }
    return out;
  } finally {
    await farm.destroy();
  }
}

const f = (x: number): string => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'not within 10 s');

export async function run(): Promise<Record<string, unknown>> {
  const n = Number(process.env.BENCH_RECOVERY_CYCLES ?? 6);
  const load = loadavg().map((x) => x.toFixed(2)).join(', ');
  const flooding = await cycles('Flooding', n);
  const directed = await cycles('Directed', n);
  const row = (label: string, xs: number[]): string => `| ${label} | ${xs.length} | ${f(median(xs))} | ${f(percentile(xs, 99))} | ${f(Math.max(...xs))} | ${xs.map(f).join(', ')} |`;
  writeSection('recovery', [
    '## Recovery seen from the client: every bucket served again after a node dies (`npm run bench -- recovery`)',
    '',
    `Load average at the start: ${load}. 3 agents (default heartbeat timing), 64 buckets. A cycle cuts a node's cable and SIGKILLs its agent, then probes`,
    'EVERY bucket from the client (ClientIPAndPort: source ports chosen per bucket; a new SYN per unserved bucket every 10 ms, 30 ms connect timeout) until each',
    'answered once; the node is restarted before the next cycle (so from the second cycle on, the restarted nodes never saw the client\'s broadcast ARP).',
    'Flooding: flooding switch; Directed: switch that does not flood unknown unicast. "answerer": the node that answers the client\'s ARP in Directed mode',
    '(in Flooding mode the same node, which there is no different from the others).',
    '',
    '| mode, victim | cycles | p50 | p99 | max | each |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    row('Flooding, answerer', flooding.answerer),
    row('Flooding, other node', flooding.other),
    row('Directed, answerer', directed.answerer),
    row('Directed, other node', directed.other),
  ].join('\n'));
  return { cycles: n, flooding, directed, loadavg: load };
}
