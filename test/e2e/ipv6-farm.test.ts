// End to end with an IPv6 VIP: the real control plane, the operator and real agents (run by
// the test kubelet in three network-namespace nodes of a dual-stack bed) — the FarmCluster
// with an IPv6 and an IPv4 virtual IP converges to Ready and serves both to a client.
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../../lab/cluster/cluster.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';
import { runClient, startEcho } from '../../lab/netns/procs.js';
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
