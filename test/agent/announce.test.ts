// Periodic announcements (spec.gratuitousARPIntervalMs), seen from a client's capture:
// Flooding agents send a gratuitous ARP and an unsolicited Neighbour Advertisement per VIP
// with the virtual MAC at the interval; Directed agents send a unicast reply with their own
// MAC to the requesters they answer for. A reload to 0 stops them, live.
import { jest } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { arpSlotOf, arpSlotsOf } from '../../common/src/arp-slot.js';
import { AgentFarm, APP_PORT } from '../../lab/agent/farm.js';
import { runClient } from '../../lab/netns/procs.js';
import type { Host } from '../../lab/netns/testbed.js';

jest.setTimeout(120_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const INTERVAL_MS = 1000;
const WINDOW_MS = 4000;

/** tcpdump on the client: one line per frame, `-e` so the source MAC is the 2nd field */
interface Capture {
  lines: () => string[];
  stop: () => void;
}

async function capture(f: AgentFarm, filter: string): Promise<Capture> {
  const dump: ChildProcess = f.tb.spawn(f.client.netns, ['tcpdump', '-i', 'eth0', '-l', '-n', '-e', '-U', filter]);
  let out = '';
  let err = '';
  dump.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  dump.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100 && !err.includes('listening on'); i++) await sleep(50);
  expect(err).toContain('listening on');
  return { lines: () => out.split('\n').filter((l) => l !== ''), stop: () => void dump.kill('SIGTERM') };
}

/** the lines that arrive during `ms` */
async function during(cap: { lines: () => string[] }, ms: number): Promise<string[]> {
  const from = cap.lines().length;
  await sleep(ms);
  return cap.lines().slice(from);
}

async function reloadAll(f: AgentFarm, overrides: Record<string, unknown>): Promise<void> {
  await Promise.all(
    f.tb.nodes.map(async (n) => {
      const a = f.agents.get(n.name)!;
      const seen = a.logs.length;
      f.writeConfig(n, overrides);
      a.proc.kill('SIGHUP');
      const r = await f.waitLog(n, (l) => a.logs.indexOf(l) >= seen && (l.event === 'reload' || l.event === 'reload_error'));
      expect(r).toMatchObject({ event: 'reload' });
    }),
  );
}

const srcOf = (l: string): string => l.split(' ')[1]!;
const perNode = (lines: string[], nodes: Host[]): number[] => nodes.map((n) => lines.filter((l) => srcOf(l) === n.mac).length);

test('Flooding: every node re-announces every VIP (ARP and NA) at the interval; 0 stops it live', async () => {
  const f = new AgentFarm({ nodes: 2, families: ['ipv4', 'ipv6'], extra: { gratuitousARPIntervalMs: INTERVAL_MS } });
  let cap: Capture | undefined;
  try {
    const [vip4, vip6] = f.vips as [string, string];
    cap = await capture(f, 'arp or (icmp6 and ip6[40] == 136)');
    await f.startAll();
    await f.waitReady();
    await sleep(500);
    const seen = await during(cap, WINDOW_MS);
    const garp = seen.filter((l) => l.includes(`Request who-has ${vip4} tell ${vip4}`));
    const na = seen.filter((l) => l.includes('neighbor advertisement') && l.includes(`tgt is ${vip6}`));
    const counts = { garp: perNode(garp, f.tb.nodes), na: perNode(na, f.tb.nodes) };
    console.log(JSON.stringify({ event: 'periodic-announcements', mode: 'Flooding', intervalMs: INTERVAL_MS, windowMs: WINDOW_MS, ...counts }));
    // ~4 in 4 s; a loaded machine's timers drift late, never early
    for (const c of [...counts.garp, ...counts.na]) {
      expect(c).toBeGreaterThanOrEqual(3);
      expect(c).toBeLessThanOrEqual(6);
    }

    await reloadAll(f, { gratuitousARPIntervalMs: 0 });
    await sleep(300);
    const after = await during(cap, WINDOW_MS);
    expect(after.filter((l) => l.includes(`tell ${vip4}`) || l.includes('neighbor advertisement'))).toEqual([]);
  } finally {
    cap?.stop();
    await f.destroy();
  }
});

test('Directed: the node answering a client re-announces itself to it by unicast at the interval; 0 stops it live', async () => {
  // 100/1000 as the other Directed agent tests: a loaded machine's stalls must not move slots here
  const f = new AgentFarm({ nodes: 3, floodUnknownUnicast: false, intervalMs: 100, failureThresholdMs: 1000, extra: { mode: 'Directed', gratuitousARPIntervalMs: INTERVAL_MS } });
  let cap: Capture | undefined;
  try {
    cap = await capture(f, 'arp');
    await f.startAll();
    await f.waitReady();
    await sleep(1500); // slots settled, the gained-slot announcements (and their repeat) done
    // the client becomes a known requester: its ARP request reached every node
    const { results } = await runClient(f.tb, f.client, { vip: f.vip, port: APP_PORT, protocol: 'tcp', count: 10, concurrency: 2 });
    if (results.some((r) => r.error !== null)) {
      const changes = [...f.agents.entries()].map(([n, a]) => [n, a.logs.filter((l) => ['peer_dead', 'peer_joined', 'peer_rejoined', 'stall', 'buckets'].includes(String(l.event)))]);
      console.log(JSON.stringify(changes), cap.lines().join('\n'));
    }
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const names = f.tb.nodes.map((n) => n.name);
    const answerer = f.tb.nodes.find((n) => arpSlotsOf(n.name, names).includes(arpSlotOf(f.client.ip)))!;
    await sleep(500);

    const seen = await during(cap, WINDOW_MS);
    const replies = seen.filter((l) => l.includes(`Reply ${f.vip} is-at`));
    // replies the client asked for in the window are not announcements
    const asked = seen.filter((l) => l.includes(`Request who-has ${f.vip}`) && srcOf(l) === f.client.mac).length;
    const counts = perNode(replies, f.tb.nodes);
    console.log(JSON.stringify({ event: 'periodic-announcements', mode: 'Directed', intervalMs: INTERVAL_MS, windowMs: WINDOW_MS, answerer: answerer.name, replies: counts, asked }));
    const mine = counts[f.tb.nodes.indexOf(answerer)]! - asked;
    expect(mine).toBeGreaterThanOrEqual(3);
    expect(mine).toBeLessThanOrEqual(6);
    // only the answerer speaks to this client, and it names itself
    expect(counts.reduce((a, b) => a + b, 0)).toBe(counts[f.tb.nodes.indexOf(answerer)]);
    for (const r of replies) expect(r).toContain(`is-at ${answerer.mac}`);

    await reloadAll(f, { gratuitousARPIntervalMs: 0 });
    await sleep(300);
    const after = await during(cap, WINDOW_MS);
    const askedAfter = after.filter((l) => l.includes(`Request who-has ${f.vip}`)).length;
    expect(after.filter((l) => l.includes(`Reply ${f.vip} is-at`)).length).toBe(askedAfter);
  } finally {
    cap?.stop();
    await f.destroy();
  }
});
