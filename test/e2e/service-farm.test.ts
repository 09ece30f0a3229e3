// LoadBalancer Services served by real agents: the control plane, the operator and the
// agents (test kubelet, three network-namespace nodes). The operator allocates the
// Service's IP and renders it into the FarmCluster's status.services; every agent programs
// it like a virtualIP (same buckets, same SYN gating) and a client's connections spread
// over the three nodes. Deleting the Service removes its kernel rules and address on every
// node. (The backends here are host-network listeners: kube-proxy forwarding to pods is
// the next step, see docs/architecture.md.)
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../../lab/cluster/cluster.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';
import { runClient, startEcho } from '../../lab/netns/procs.js';
import { applyCrd, farmYaml, startOperator, until, type OperatorProc } from '../operator/helpers.js';
import { AGENT_MAIN } from '../../lab/agent/farm.js';

jest.setTimeout(240_000);

const NS = 'lb';
const FARM = 'web';

describe('LoadBalancer Services served by the farm', () => {
  let tb: Testbed;
  let cluster: Cluster;
  let operator: OperatorProc;
  let dir: string;

  const kubectl = (args: string[], input?: string): Promise<string> => cluster.controlPlane.kubectl(args, input);
  const ruleset = (netns: string): string => execFileSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'table', 'inet', `vipfarm_${FARM}`], { encoding: 'utf8' });
  const loAddrs = (netns: string): string => execFileSync('ip', ['-n', netns, '-4', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  const service = (name: string, port: number): string => JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'vipfarm.io/farm', selector: { app: name }, ports: [{ port, targetPort: port, protocol: 'TCP' }] },
  });

  beforeAll(async () => {
    tb = createTestbed({ nodes: 3, clients: 1 });
    dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-svc-e2e-'));
    cluster = await startCluster({ nodes: tb.nodes.map((h) => ({ name: h.name, ip: h.ip, netns: h.netns })), env: { VIPFARM_RUN_DIR: tb.runDir } });
    await applyCrd(cluster.controlPlane);
    operator = startOperator(cluster.controlPlane, path.join(dir, 'operator.log'), [
      '--agent-entrypoint', AGENT_MAIN, '--node-binary', process.execPath, '--leader-elect', 'false',
    ]);
    for (const h of tb.nodes) await startEcho(tb, h, '0.0.0.0', [8080, 9090]);
    await kubectl(['create', 'namespace', NS]);
    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, {
      virtualIPs: [tb.vip(0)], interface: 'eth0', rules: [{ port: 9090 }], bucketCount: 64,
      heartbeat: { intervalMs: 100, failureThresholdMs: 500 },
      addresses: [`${tb.vip(1)}-${tb.vip(2)}`],
    }));
    await until('3/3 ready', async () => {
      const s = JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status ?? {};
      return s.readyNodes === 3;
    }, 120_000);
  });

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
    tb?.destroy();
    if (!process.env.VIPFARM_KEEP_LOGS && dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a Service gets a pool IP; every agent serves it and 300 connections spread over the 3 nodes', async () => {
    const t0 = Date.now();
    await kubectl(['apply', '-f', '-'], service('shop', 8080));
    const ip = await until('shop has an address', async () => {
      const s = JSON.parse(await kubectl(['get', 'svc', 'shop', '-n', NS, '-o', 'json']));
      return s.status?.loadBalancer?.ingress?.[0]?.ip as string | undefined;
    }, 30_000);
    expect(ip).toBe(tb.vip(1));
    await until('every node programs the Service IP', () => tb.nodes.every((h) => ruleset(h.netns).includes(`ip daddr ${ip} tcp dport 8080`)), 30_000);
    const servedAfter = Date.now() - t0;
    const fc = JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json']));
    expect(fc.status.services).toEqual([{ ip, rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }], services: [`${NS}/shop`], externalTrafficPolicy: 'Cluster' }]);
    process.stdout.write(`Service created -> IP served by every node: ${servedAfter} ms\n`);

    const r = await runClient(tb, tb.clients[0], { vip: ip, port: 8080, protocol: 'tcp', count: 300, concurrency: 16 });
    const by: Record<string, number> = {};
    for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
    process.stdout.write(`spread over nodes: ${JSON.stringify(by)}\n`);
    expect(by.failed).toBeUndefined();
    for (const n of ['n1', 'n2', 'n3']) expect(by[n]).toBeGreaterThan(50);
    // The farm's own VIP still only serves its own port: the Service's port is not opened there.
    expect(ruleset(tb.nodes[0].netns)).not.toContain(`ip daddr ${tb.vip(0)} tcp dport 8080`);
  });

  test('an agent killed: the Service IP is served in full again after the takeover, and keeps its address', async () => {
    const ip = tb.vip(1);
    const pids = execFileSync('ip', ['netns', 'pids', tb.nodes[1].netns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
      .filter((pid) => {
        try {
          return execFileSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).includes('agent/src/main.js');
        } catch {
          return false;
        }
      });
    expect(pids.length).toBe(1);
    const killedAt = Date.now();
    process.kill(pids[0]!, 'SIGKILL');
    // Batches of 40 connections until one has no failure: an upper bound of the takeover
    // (each batch takes its own time), not a precise measurement.
    let servedAt = 0;
    let failedTotal = 0;
    while (!servedAt && Date.now() - killedAt < 20_000) {
      const r = await runClient(tb, tb.clients[0], { vip: ip, port: 8080, protocol: 'tcp', count: 40, concurrency: 8, timeoutMs: 300 });
      const failed = r.results.filter((a) => a.node === null).length;
      failedTotal += failed;
      if (failed === 0) servedAt = Date.now();
    }
    process.stdout.write(`agent of n2 killed: Service IP served in full by n1+n3 after <= ${servedAt - killedAt} ms (${failedTotal} connections failed meanwhile)\n`);
    expect(servedAt).toBeGreaterThan(0);
    const s = JSON.parse(await kubectl(['get', 'svc', 'shop', '-n', NS, '-o', 'json']));
    expect(s.status.loadBalancer.ingress).toEqual([{ ip, ipMode: 'VIP' }]);
    await until('n2 back, 3/3', async () => (JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status ?? {}).readyNodes === 3, 90_000);
  });

  test('deleting the Service removes its rules and its address on every node; the farm VIP keeps serving', async () => {
    const ip = tb.vip(1);
    await kubectl(['delete', 'svc', 'shop', '-n', NS]);
    await until('Service IP gone from every node', () => tb.nodes.every((h) => !ruleset(h.netns).includes(ip) && !loAddrs(h.netns).includes(`${ip}/32`)), 30_000);
    const r = await runClient(tb, tb.clients[0], { vip: tb.vip(0), port: 9090, protocol: 'tcp', count: 60, concurrency: 8 });
    expect(r.results.filter((a) => a.node === null)).toEqual([]);
    // still on lo of every node: the farm's own VIP (its ARP settings were not undone)
    for (const h of tb.nodes) expect(loAddrs(h.netns)).toContain(`${tb.vip(0)}/32`);
  });
});
