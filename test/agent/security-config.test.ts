// Hostile heartbeats and bad configuration files against real agent processes.
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { encodeHeartbeat, type HeartbeatInput } from '../../agent/src/core/heartbeat-codec.js';
import { AGENT_MAIN, AgentFarm, HB_PORT } from '../../lab/agent/farm.js';

jest.setTimeout(90_000);

describe('hostile heartbeats', () => {
  let farm: AgentFarm;
  beforeAll(async () => {
    farm = new AgentFarm({ nodes: 3 });
    await farm.startAll();
    await farm.waitReady();
  });
  afterAll(async () => {
    await farm.destroy();
  });

  function sendFromClient(to: string, datagrams: Buffer[]): void {
    const js = `const s=require('dgram').createSocket('udp4');const d=${JSON.stringify(datagrams.map((b) => b.toString('base64')))};
      let n=0;for(const b of d)s.send(Buffer.from(b,'base64'),${HB_PORT},'${to}',()=>{if(++n===d.length)s.close();});`;
    farm.tb.exec(farm.client.netns, [process.execPath, '-e', js]);
  }

  test('malformed, forged, foreign, replayed and stale heartbeats are dropped and counted; the view does not change', async () => {
    const n1 = farm.node('n1');
    const key = readFileSync(farm.keyFile);
    const before = await farm.owners();
    const started = await farm.waitLog(farm.node('n2'), (l) => l.event === 'started');
    const n2Incarnation = Number(started.incarnation);
    // n2 claims every bucket and weight 1000: accepted, this would move everything
    const claim: HeartbeatInput = {
      farm: farm.name, node: 'n2', incarnation: n2Incarnation, seq: 1, sentAt: Date.now(), weight: 1000, state: 'ready',
      bucketCount: farm.bucketCount, held: Array.from({ length: farm.bucketCount }, (_, i) => i),
    };
    const garbage = [randomBytes(3), randomBytes(200), Buffer.from('VF\x01hello')];
    const forged = encodeHeartbeat({ ...claim, seq: 1e9 }, randomBytes(32));
    const foreign = encodeHeartbeat({ ...claim, farm: 'other', seq: 1e9 }, key);
    const replayed = encodeHeartbeat(claim, key); // seq 1 of n2's live incarnation: long seen
    const older = encodeHeartbeat({ ...claim, incarnation: n2Incarnation - 1, seq: 1e9 }, key);
    const skewed = encodeHeartbeat({ ...claim, seq: 1e9, sentAt: Date.now() - 3_600_000 }, key);
    const sentAt = Date.now();
    sendFromClient(n1.ip, [...garbage, forged, foreign, replayed, older, skewed]);
    await new Promise((r) => setTimeout(r, 500));

    const rejected = (reason: string): number => farm.metric(n1, 'vipfarm_heartbeats_rejected_total', `reason="${reason}"`);
    expect(rejected('malformed')).toBe(3);
    expect(rejected('bad_mac')).toBe(1);
    expect(rejected('wrong_farm')).toBe(1);
    expect(rejected('replay')).toBe(1);
    expect(rejected('stale')).toBe(2);
    expect(farm.agents.get('n1')!.proc.exitCode).toBeNull();
    const since = farm.agents.get('n1')!.logs.filter((l) => Date.parse(String(l.timestamp)) >= sentAt);
    expect(since.filter((l) => ['peer_changed', 'peer_joined', 'peer_rejoined', 'buckets'].includes(String(l.event)))).toEqual([]);
    const after = await farm.owners();
    expect(after.owners).toEqual(before.owners);
  });
});

describe('configuration errors', () => {
  let farm: AgentFarm;
  beforeAll(() => {
    farm = new AgentFarm({ nodes: 1, clients: 0 });
  });
  afterAll(async () => {
    await farm.destroy();
  });

  function runAgent(args: string[]): { status: number | null; stderr: string; stdout: string } {
    const n1 = farm.tb.nodes[0];
    const r = spawnSync('ip', ['netns', 'exec', n1.netns, process.execPath, AGENT_MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  }

  function withConfig(mutate: (c: Record<string, unknown>) => void): string {
    const c = farm.config(farm.tb.nodes[0]);
    mutate(c);
    const path = join(farm.dir, `bad-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, yaml.dump(c));
    return path;
  }

  const shortKey = (): string => {
    const p = join(farm.dir, 'short.key');
    writeFileSync(p, 'tiny');
    return p;
  };

  const keyOf = (bytes: number): string => {
    const p = join(farm.dir, `key-${bytes}.key`);
    writeFileSync(p, randomBytes(bytes));
    return p;
  };

  const cases: [string, () => string, RegExp][] = [
    ['a missing file', () => join(farm.dir, 'nope.yaml'), /cannot read config .*nope\.yaml: ENOENT/],
    ['broken YAML', () => {
      const p = join(farm.dir, 'broken.yaml');
      writeFileSync(p, 'name: demo\nrules: [\n');
      return p;
    }, /\(yaml\): line \d+/],
    ['a bad VIP', () => withConfig((c) => (c.virtualIPs = ['10.0.0.300'])), /virtualIPs\[0\]/],
    ['port 0', () => withConfig((c) => (c.rules = [{ port: 0, protocol: 'tcp', affinity: 'ClientIP' }])), /rules\[0\]\.port/],
    ['an unknown affinity', () => withConfig((c) => (c.rules = [{ port: 80, protocol: 'tcp', affinity: 'Sticky' }])), /rules\[0\]\.affinity/],
    ['bucketCount 100', () => withConfig((c) => (c.bucketCount = 100)), /bucketCount.*power of two/],
    ['a misspelt field', () => withConfig((c) => (c.virtualIP = c.virtualIPs)), /virtualIP\b/],
    ['a threshold below two intervals', () => withConfig((c) => (c.heartbeat = { intervalMs: 100, failureThresholdMs: 150 })), /heartbeat\.failureThresholdMs/],
    ['a key file too short', () => withConfig((c) => (c.keyFile = shortKey())), /heartbeat key .*want at least 16/],
    ['a missing key file', () => withConfig((c) => (c.keyFile = join(farm.dir, 'absent.key'))), /cannot read heartbeat key .*absent\.key: ENOENT/],
    ['an empty key file', () => withConfig((c) => (c.keyFile = keyOf(0))), /heartbeat key .*: 0 bytes, want at least 16/],
    ['an 8-byte key file', () => withConfig((c) => (c.keyFile = keyOf(8))), /heartbeat key .*: 8 bytes, want at least 16/],
    ['an interface that does not exist', () => withConfig((c) => (c.interface = 'nosuch0')), /interface nosuch0: No such device/],
    ['a malformed MAC', () => withConfig((c) => (c.virtualMAC = '02:fa:zz:00:00:01')), /virtualMAC/],
  ];

  test.each(cases)('%s: exits 1 naming the problem, kernel untouched', (_what, make, message) => {
    const path = make();
    const r = runAgent(['--config', path]);
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(1);
    // --check-config refuses the same file with the same words
    const check = runAgent(['--check-config', path]);
    expect(check.stderr).toMatch(message);
    expect(check.status).toBe(1);
    expect(check.stdout).not.toMatch(/valid/);
    const n1 = farm.tb.nodes[0];
    expect(farm.tb.exec(n1.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
    expect(farm.tb.exec(n1.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).not.toContain(farm.vip);
  });

  test('--check-config says valid for a good file and lists every error of a bad one', () => {
    const good = farm.writeConfig(farm.tb.nodes[0]);
    const ok = runAgent(['--check-config', good]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/valid \(farm demo, node n1, 64 buckets\)/);
    const bad = withConfig((c) => {
      c.bucketCount = 3;
      c.rules = [{ port: 70000, protocol: 'sctp', affinity: 'ClientIP' }];
    });
    const r = runAgent(['--check-config', bad]);
    expect(r.status).toBe(1);
    for (const f of ['bucketCount', 'rules[0].port', 'rules[0].protocol']) expect(r.stderr).toContain(f);
  });

  test('usage errors exit 2 and --help exits 0', () => {
    expect(runAgent(['--confg', 'x']).status).toBe(2);
    const h = runAgent(['--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('vipfarm-agent --config FILE');
  });
});
