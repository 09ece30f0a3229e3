// End to end: the real control plane, the operator, and real agents (run by the test
// kubelet in three network-namespace nodes) serving a VIP to a client.
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../../lab/cluster/cluster.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';
import { Holder, runClient, startEcho } from '../../lab/netns/procs.js';
import { applyCrd, farmYaml, startOperator, until, type OperatorProc } from '../operator/helpers.js';
import { AGENT_MAIN } from '../../lab/agent/farm.js';

jest.setTimeout(240_000);

const NS = 'lb';
const FARM = 'web';

describe('FarmCluster end to end', () => {
  let tb: Testbed;
  let cluster: Cluster;
  let operator: OperatorProc;
  let dir: string;
  let spec: Record<string, unknown>;

  const kubectl = (args: string[], input?: string): Promise<string> => cluster.controlPlane.kubectl(args, input);
  const farmStatus = async (): Promise<any> => JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status ?? {};
  const agentPids = (netns: string): number[] =>
    execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
      .filter((pid) => {
        try {
          return execFileSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).includes('agent/src/main.js');
        } catch {
          return false;
        }
      });
  const spread = async (count = 300): Promise<Record<string, number>> => {
    const r = await runClient(tb, tb.clients[0], { vip: tb.vip(0), port: 8080, protocol: 'tcp', count, concurrency: 16 });
    const by: Record<string, number> = {};
    for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
    return by;
  };

  beforeAll(async () => {
    tb = createTestbed({ nodes: 3, clients: 1 });
    dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-e2e-'));
    cluster = await startCluster({ nodes: tb.nodes.map((h) => ({ name: h.name, ip: h.ip, netns: h.netns })), env: { VIPFARM_RUN_DIR: tb.runDir } });
    await applyCrd(cluster.controlPlane);
    operator = startOperator(cluster.controlPlane, path.join(dir, 'operator.log'), [
      '--agent-entrypoint', AGENT_MAIN, '--node-binary', process.execPath, '--leader-elect', 'false',
    ]);
    for (const h of tb.nodes) await startEcho(tb, h, '0.0.0.0', [8080, 8081]);
    await kubectl(['create', 'namespace', NS]);
    spec = {
      virtualIPs: [tb.vip(0)],
      interface: 'eth0',
      rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
      bucketCount: 64,
      heartbeat: { intervalMs: 100, failureThresholdMs: 500 },
    };
  });

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
    tb?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl apply: agents on 3 nodes, traffic spread over them, status 3/3 with every bucket owned', async () => {
    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, spec));
    const st = await until('3/3 ready', async () => {
      const s = await farmStatus();
      const buckets = (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
      return s.readyNodes === 3 && buckets === 64 ? s : undefined;
    }, 120_000);
    expect(st.members.map((m: any) => m.node).sort()).toEqual(['n1', 'n2', 'n3']);
    const table = await kubectl(['get', 'farmclusters', '-n', NS]);
    expect(table).toMatch(new RegExp(`${FARM}\\s+${tb.vip(0).replace(/\./g, '\\.')}\\s+3/3`));
    const by = await spread();
    expect(by.failed).toBeUndefined();
    for (const n of ['n1', 'n2', 'n3']) expect(by[n]).toBeGreaterThan(50);
  });

  test('a killed agent shows not ready, traffic keeps flowing, and it rejoins', async () => {
    const [pid] = agentPids(tb.nodes[1].netns);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await until('n2 not ready', async () => (await farmStatus()).readyNodes < 3, 30_000);
    const during = await spread(150);
    expect(during.failed ?? 0).toBeLessThanOrEqual(15); // SYNs of n2's buckets before the takeover
    await until('3/3 again', async () => {
      const s = await farmStatus();
      const buckets = (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
      return s.readyNodes === 3 && buckets === 64;
    }, 90_000);
    const after = await spread();
    expect(after.failed).toBeUndefined();
    expect(after.n2).toBeGreaterThan(50);
    // what happened is told in `kubectl describe farmcluster`
    const described = await until('failover event', async () => {
      const d = await kubectl(['describe', 'farmcluster', FARM, '-n', NS]);
      return /Failover\s.*took over \d+ buckets of n2/.test(d) ? d : undefined;
    }, 30_000);
    expect(described).toMatch(/MemberReady\s.*n2 is ready/);
  });

  test('spec edits (a new port rule, a weight) re-program the agents; established connections survive', async () => {
    const holder = Holder.start(tb, tb.clients[0], { vip: tb.vip(0), port: 8080, count: 30, pingMs: 100 });
    await holder.opened();
    const edited = { ...spec, rules: [...(spec.rules as object[]), { port: 8081, protocol: 'tcp', affinity: 'ClientIP' }], weights: { n1: 2 } };
    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, edited));
    await until('n1 weighted 2', async () => {
      const s = await farmStatus();
      const n1 = (s.members ?? []).find((m: any) => m.node === 'n1');
      return n1?.weight === 2 && n1.buckets >= 31 ? s : undefined;
    }, 60_000);
    const r = await runClient(tb, tb.clients[0], { vip: tb.vip(0), port: 8081, protocol: 'tcp', count: 30 });
    expect(r.results.filter((a) => a.node === null)).toEqual([]);
    const summary = await holder.stop();
    expect(summary.filter((c) => c.error !== null || c.echoed < c.sent - 2)).toEqual([]);
  });

  test('a spec the kernel refuses (no such interface): every node keeps serving, its status entry and describe say why; the corrected spec is applied', async () => {
    const generation = async (): Promise<number> => JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).metadata.generation;
    const weights = Object.fromEntries(((await farmStatus()).members ?? []).map((m: any) => [m.node, m.weight]));
    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, { ...spec, interface: 'nosuch0', weights: { n2: 2 } }));
    const bad = await generation();
    const refused = await until('every node refused', async () => {
      const s = await farmStatus();
      const ms = (s.members ?? []).filter((m: any) => m.configRefused?.generation === bad);
      return ms.length === 3 ? s : undefined;
    }, 60_000);
    for (const m of refused.members) {
      expect(m.configRefused).toMatchObject({ reason: 'KernelRefused', message: expect.stringMatching(/interface nosuch0/) });
      expect(m.appliedGeneration).toBeLessThan(bad);
      expect(m.weight).toBe(weights[m.node]); // still the running spec's weights
    }
    // the running config serves on, on every node
    const by = await spread(150);
    expect(by.failed).toBeUndefined();
    expect(Object.keys(by).sort()).toEqual(['n1', 'n2', 'n3']);
    const described = await until('refusal in describe', async () => {
      const d = await kubectl(['describe', 'farmcluster', FARM, '-n', NS]);
      return /ConfigRefused/.test(d) && /n2 refused generation/.test(d) ? d : undefined;
    }, 30_000);
    expect(described).toMatch(/Config Refused:[\s\S]*Reason:\s+KernelRefused/);

    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, { ...spec, weights: { n2: 2 } }));
    const good = await generation();
    await until('corrected spec applied everywhere', async () => {
      const ms = (await farmStatus()).members ?? [];
      return ms.length === 3 && ms.every((m: any) => m.configRefused === undefined && m.appliedGeneration === good) &&
        ms.find((m: any) => m.node === 'n2')?.weight === 2;
    }, 60_000);
    await until('Ready again', async () => (await farmStatus()).conditions?.find((c: any) => c.type === 'Ready')?.status === 'True', 30_000);
  });

  test('with the API server away the farm keeps serving, and catches up when it returns', async () => {
    const apiserver = cluster.controlPlane.pids['kube-apiserver'];
    expect(apiserver).toBeGreaterThan(0);
    process.kill(apiserver, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 3000));
      const by = await spread(200);
      expect(by.failed).toBeUndefined();
      expect(Object.keys(by).sort()).toEqual(['n1', 'n2', 'n3']);
    } finally {
      process.kill(apiserver, 'SIGCONT');
    }
    // a change made after it returns reaches the agents
    const edited = { ...spec, rules: [...(spec.rules as object[]), { port: 8081, protocol: 'tcp', affinity: 'ClientIP' }], weights: { n3: 3 } };
    await until('API server back', async () => (await kubectl(['get', '--raw', '/readyz'])).includes('ok'), 30_000);
    await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, edited));
    await until('n3 weighted 3', async () => {
      const n3 = ((await farmStatus()).members ?? []).find((m: any) => m.node === 'n3');
      return n3?.weight === 3 && n3.buckets >= 37;
    }, 60_000);
  });

  test('deleting the FarmCluster removes the agents and every trace in the kernel', async () => {
    await kubectl(['delete', 'farmcluster', FARM, '-n', NS, '--wait=true', '--timeout=120s']);
    await until('agents gone', () => tb.nodes.every((h) => agentPids(h.netns).length === 0), 60_000);
    for (const h of tb.nodes) {
      expect(tb.exec(h.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
      expect(tb.exec(h.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).not.toContain(tb.vip(0));
      expect(tb.exec(h.netns, ['sysctl', '-n', 'net.ipv4.conf.eth0.arp_ignore']).trim()).toBe('0');
    }
    // owned objects go with their owner (the garbage collector deletes them shortly after)
    await until('owned objects collected', async () =>
      (await kubectl(['get', 'daemonsets,secrets,roles,rolebindings,serviceaccounts,configmaps', '-n', NS, '-l', 'vipfarm.io/farm=web', '-o', 'name'])).trim() === '', 60_000);
  });
});
