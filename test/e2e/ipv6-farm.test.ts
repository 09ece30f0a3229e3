// End to end with an IPv6 VIP: the real control plane, the operator and real agents (run by
// the test kubelet in three network-namespace nodes of a dual-stack bed) — the FarmCluster
// with an IPv6 and an IPv4 virtual IP converges to Ready and serves both to a client.
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../../lab/cluster/cluster.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';
import { Holder, runClient, startEcho } from '../../lab/netns/procs.js';
import { applyCrd, farmYaml, startOperator, until, type OperatorProc } from '../operator/helpers.js';
import { AGENT_MAIN } from '../../lab/agent/farm.js';

jest.setTimeout(240_000);

const NS = 'lb6';
const FARM = 'web6';

describe('FarmCluster with an IPv6 VIP, end to end', () => {
  let tb: Testbed;
  let cluster: Cluster;
  let operator: OperatorProc;
  let dir: string;

  const kubectl = (args: string[], input?: string): Promise<string> => cluster.controlPlane.kubectl(args, input);
  const farmStatus = async (): Promise<any> => JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status ?? {};

  beforeAll(async () => {
    tb = createTestbed({ nodes: 3, clients: 1, families: ['ipv4', 'ipv6'] });
    dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-e2e6-'));
    cluster = await startCluster({ nodes: tb.nodes.map((h) => ({ name: h.name, ip: h.ip, netns: h.netns })), env: { VIPFARM_RUN_DIR: tb.runDir } });
    await applyCrd(cluster.controlPlane);
    operator = startOperator(cluster.controlPlane, path.join(dir, 'operator.log'), [
      '--agent-entrypoint', AGENT_MAIN, '--node-binary', process.execPath, '--leader-elect', 'false',
    ]);
    // '::' serves both families
    for (const h of tb.nodes) await startEcho(tb, h, '::', [8080]);
    await kubectl(['create', 'namespace', NS]);
  });

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
    tb?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('converges to Ready 3/3 and serves the IPv6 VIP (and the IPv4 one) from every node', async () => {
    // a non-canonical text on purpose: the farm serves the address, whatever its text
    const written = tb.vip6(0).replace('::', ':0:0::').toUpperCase();
    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, {
      virtualIPs: [written, tb.vip(0)],
      interface: 'eth0',
      rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
      bucketCount: 64,
      heartbeat: { intervalMs: 100, failureThresholdMs: 500 },
    }));
    const st = await until('Ready 3/3', async () => {
      const s = await farmStatus();
      const buckets = (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
      const ready = s.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
      return s.readyNodes === 3 && buckets === 64 && ready ? s : undefined;
    }, 150_000);
    expect(st.members.map((m: any) => m.node).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const h of tb.nodes) expect(tb.exec(h.netns, ['ip', '-6', 'addr', 'show', 'dev', 'lo'])).toContain(`${tb.vip6(0)}/128`);
    for (const vip of [tb.vip6(0), tb.vip(0)]) {
      const r = await runClient(tb, tb.clients[0], { vip, port: 8080, protocol: 'tcp', count: 300, concurrency: 16 });
      const by: Record<string, number> = {};
      for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
      expect(by.failed).toBeUndefined();
      for (const n of ['n1', 'n2', 'n3']) expect(by[n]).toBeGreaterThan(50);
    }
  });
});

// Kubernetes mode, Directed, dual-stack nodes heartbeating over IPv4: the second chance of
// IPv6 connections needs each peer's IPv6 address, which the agents take from the other
// agent pods' status.hostIPs (the test kubelet lists both addresses of a node).
describe('Directed dual-stack FarmCluster on a flood-off switch: IPv6 connections kept through a weight change', () => {
  const FARM_D = 'web6d';
  let tb: Testbed;
  let cluster: Cluster;
  let operator: OperatorProc;
  let dir: string;

  const kubectl = (args: string[], input?: string): Promise<string> => cluster.controlPlane.kubectl(args, input);
  const farmStatus = async (): Promise<any> => JSON.parse(await kubectl(['get', 'farmcluster', FARM_D, '-n', NS, '-o', 'json'])).status ?? {};
  const spec = (weights?: Record<string, number>): Record<string, unknown> => ({
    virtualIPs: [tb.vip(0), tb.vip6(0)],
    interface: 'eth0',
    mode: 'Directed',
    rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
    bucketCount: 64,
    // planned moves only: a 1 s threshold keeps a loaded machine's stalls from adding deaths
    heartbeat: { intervalMs: 100, failureThresholdMs: 1000 },
    ...(weights ? { weights } : {}),
  });
  /** packets the ip6 second-chance rules of every node passed on */
  const passed6 = (): number => tb.nodes.reduce((sum, h) => {
    let text = '';
    try {
      text = tb.exec(h.netns, ['nft', 'list', 'table', 'ip6', `vipfarm_${FARM_D}_prev`]);
    } catch {
      // not there (yet)
    }
    return sum + [...text.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  }, 0);

  beforeAll(async () => {
    tb = createTestbed({ nodes: 3, clients: 1, families: ['ipv4', 'ipv6'], floodUnknownUnicast: false });
    dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-e2e6d-'));
    cluster = await startCluster({ nodes: tb.nodes.map((h) => ({ name: h.name, ip: h.ip, otherIP: h.ip6, netns: h.netns })), env: { VIPFARM_RUN_DIR: tb.runDir } });
    await applyCrd(cluster.controlPlane);
    operator = startOperator(cluster.controlPlane, path.join(dir, 'operator.log'), [
      '--agent-entrypoint', AGENT_MAIN, '--node-binary', process.execPath, '--leader-elect', 'false',
    ]);
    for (const h of tb.nodes) await startEcho(tb, h, '::', [8080]);
    await kubectl(['create', 'namespace', NS]);
  });

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
    tb?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('30 of 30 long-lived IPv6 connections kept, passed on by the ip6 rules', async () => {
    await kubectl(['apply', '-f', '-'], farmYaml(FARM_D, NS, spec()));
    const buckets = (s: any, node?: string): number => (s.members ?? []).filter((m: any) => node === undefined || m.node === node).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
    await until('Ready 3/3', async () => {
      const s = await farmStatus();
      return s.readyNodes === 3 && buckets(s) === 64 ? s : undefined;
    }, 150_000);
    await new Promise((r) => setTimeout(r, 1000));
    const holder = Holder.start(tb, tb.clients[0], { vip: tb.vip6(0), port: 8080, count: 30, pingMs: 50 });
    expect((await holder.opened()).filter((c) => c.node === null)).toEqual([]);
    const before = passed6();
    await kubectl(['apply', '-f', '-'], farmYaml(FARM_D, NS, spec({ n1: 3 })));
    await until('n1 holds most buckets', async () => {
      const s = await farmStatus();
      return buckets(s, 'n1') > 32 && buckets(s) === 64 ? s : undefined;
    }, 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const summary = await holder.stop();
    const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2 || c.wrongNode > 0);
    const passed = passed6() - before;
    console.log(JSON.stringify({ event: 'e2e-directed-dual', kept: summary.length - broken.length, of: summary.length, passed }));
    expect(summary).toHaveLength(30);
    expect(broken).toEqual([]);
    expect(passed).toBeGreaterThan(0);
  });
});
