// Replayed heartbeats with real agents in network namespaces (issue 10 item 4). The client
// namespace plays the attacker: it hears every agent's L2 heartbeats (they go to the
// flooded virtual MAC), keeps them, and sends them again later as L2 frames and as UDP
// datagrams. The key is never needed; the heartbeats are the agents' own, authentic bytes.
import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultVirtualMAC } from '../../common/src/config/defaults.js';
import { decodeHeartbeat } from '../../agent/src/core/heartbeat-codec.js';
import { AgentFarm, distRoot, HB_PORT, type LogLine } from '../../lab/agent/farm.js';
import type { Host } from '../../lab/netns/testbed.js';

jest.setTimeout(120_000);

const HELPER = join(distRoot, 'lab/agent/helpers/hb-replay.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function run(farm: AgentFarm, args: string[], input?: string): Promise<string> {
  const p = farm.tb.spawn(farm.client.netns, [process.execPath, HELPER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stdin!.end(input ?? '');
  return new Promise((resolve, reject) => p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`hb-replay ${args[0]} exited ${code}: ${out}`)))));
}

/** the L2 heartbeats of `node` heard by the client in `ms` (authentic bytes, decoded only to pick the sender) */
async function capture(farm: AgentFarm, node: string, ms: number): Promise<string[]> {
  const out = await run(farm, ['capture', farm.client.iface, defaultVirtualMAC(farm.name), String(ms)]);
  const key = readFileSync(farm.keyFile);
  return out.split('\n').filter((l) => l && !l.startsWith('{')).filter((l) => {
    const d = decodeHeartbeat(Buffer.from(l, 'base64'), key, farm.name);
    return d.ok && d.msg.node === node;
  });
}

function replay(farm: AgentFarm, frames: string[], ms: number, intervalMs: number, to: Host[]): Promise<number> {
  const args = ['replay', farm.client.iface, defaultVirtualMAC(farm.name), String(ms), String(intervalMs), to.map((n) => n.ip).join(','), String(HB_PORT)];
  return run(farm, args, frames.join('\n')).then((out) => (JSON.parse(out.trim().split('\n').pop()!) as { sent: number }).sent);
}

const at = (l: LogLine): number => Date.parse(String(l.timestamp));
const about = (farm: AgentFarm, node: Host, peer: string, since: number): LogLine[] =>
  farm.agents.get(node.name)!.logs.filter((l) => at(l) >= since && l.peer === peer && ['peer_joined', 'peer_rejoined', 'peer_changed'].includes(String(l.event)));

describe('replayed heartbeats', () => {
  let farm: AgentFarm;
  beforeAll(async () => {
    farm = new AgentFarm({ nodes: 3, intervalMs: 100, failureThresholdMs: 1000 });
    await farm.startAll();
    await farm.waitReady();
  });
  afterAll(async () => {
    await farm.destroy();
  });

  test('a restarted agent takes none of a dead peer\'s heartbeats captured before its start, and takes its share at once', async () => {
    const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((n) => farm.node(n));
    const captured = await capture(farm, 'n3', 1500);
    expect(captured.length).toBeGreaterThanOrEqual(8);
    await farm.kill(n3!);
    // n1 restarts while the attacker replays n3's heartbeats to it, starting before it is up
    await farm.kill(n1!, 'SIGTERM');
    const replaying = replay(farm, captured, 6000, 20, [n1!]);
    await sleep(300);
    const since = Date.now();
    farm.startAgent(n1!);
    const started = await farm.waitLog(n1!, (l) => l.event === 'started');
    const ready = await farm.waitLog(n1!, (l) => l.event === 'state' && l.state === 'ready' && at(l) >= since, 15_000);
    // its share of a farm without n3 (half of 64), while the replays still arrive
    const share = await farm.waitLog(n1!, (l) => l.event === 'buckets' && Number(l.owned) === farm.bucketCount / 2 && at(l) >= since, 15_000);
    const owners = await farm.owners();
    const sent = await replaying;
    expect(owners.unserved).toEqual([]);
    expect(owners.shares).toEqual({ n1: farm.bucketCount / 2, n2: farm.bucketCount / 2 });
    expect(about(farm, n1!, 'n3', since)).toEqual([]);
    // every replay that reached the new agent was dropped as no_echo (two copies: L2 and UDP)
    const noEcho = farm.metric(n1!, 'vipfarm_heartbeats_rejected_total', 'reason="no_echo"');
    expect(sent).toBeGreaterThan(100);
    expect(noEcho).toBeGreaterThanOrEqual(sent);
    // not delayed: n2 was heard at once, the share taken at the end of the startup grace
    const joined = farm.agents.get('n1')!.logs.find((l) => l.event === 'peer_joined' && l.peer === 'n2')!;
    const timing = { n2HeardMs: at(joined) - at(started), readyMs: at(ready) - at(started), shareMs: at(share) - at(started) };
    console.log(`restarted under replays: ${sent} replays sent, ${noEcho} dropped as no_echo; ${JSON.stringify(timing)}`);
    expect(timing.n2HeardMs).toBeLessThan(500);
    expect(timing.shareMs).toBeLessThan(1000 + 1500);
    // n3 comes back for the next test
    farm.startAgent(n3!);
    await farm.waitLog(n3!, (l) => l.event === 'state' && l.state === 'ready' && at(l) >= since, 15_000);
    void n2;
  });

  test('a restarted node\'s heartbeats of its previous incarnation are dropped by its peers: no view change, no bucket moves', async () => {
    const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((n) => farm.node(n));
    await sleep(1500); // settled after the previous test's rejoin
    const captured = await capture(farm, 'n3', 1500);
    expect(captured.length).toBeGreaterThanOrEqual(8);
    await farm.kill(n3!, 'SIGTERM');
    const since = Date.now();
    farm.startAgent(n3!);
    const started = await farm.waitLog(n3!, (l) => l.event === 'started');
    // taken at once by its peers (a new incarnation), and it hears them at once
    const rejoined = await farm.waitLog(n1!, (l) => l.event === 'peer_rejoined' && l.peer === 'n3' && l.restarted === true && at(l) >= since);
    const heard = await farm.waitLog(n3!, (l) => l.event === 'peer_joined' && l.peer === 'n1' && at(l) >= since);
    await farm.waitLog(n3!, (l) => l.event === 'buckets' && Number(l.owned) > 0 && at(l) >= since, 15_000);
    await sleep(1500);
    const before = await farm.owners();
    expect(before.unserved).toEqual([]);
    const rejected = (n: Host): number => farm.metric(n, 'vipfarm_heartbeats_rejected_total', 'reason="stale"');
    const stale0 = [rejected(n1!), rejected(n2!)];
    const t0 = Date.now();
    const sent = await replay(farm, captured, 2000, 20, [n1!, n2!]);
    await sleep(300);
    const after = await farm.owners();
    const stale = [rejected(n1!) - stale0[0]!, rejected(n2!) - stale0[1]!];
    console.log(`previous incarnation replayed: ${sent} sent, stale ${JSON.stringify(stale)}; n1 took the restart ${at(rejoined) - at(started)} ms after its start, n3 heard n1 after ${at(heard) - at(started)} ms`);
    expect(sent).toBeGreaterThan(50);
    // each replay arrives twice (L2 frame, UDP datagram) at each of n1 and n2
    for (const s of stale) expect(s).toBeGreaterThanOrEqual(2 * sent);
    expect(after.owners).toEqual(before.owners);
    for (const n of [n1!, n2!]) {
      const moved = farm.agents.get(n.name)!.logs.filter((l) => at(l) >= t0 && (l.event === 'buckets' || String(l.event).startsWith('peer_')));
      expect(moved).toEqual([]);
    }
    expect(at(rejoined) - at(started)).toBeLessThan(500);
    expect(at(heard) - at(started)).toBeLessThan(500);
  });
});
