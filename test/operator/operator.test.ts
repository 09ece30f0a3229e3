// The operator against a real control plane and three real nodes (lab/cluster/realnodes.ts:
// kubelet + containerd + runc per network-namespace node): the DaemonSet's pods run the
// project's image with a stand-in agent (fake-agent.mjs, put on the host under the agent's
// /run/vipfarm mount) and the agent's real ServiceAccount, RBAC, securityContext and probes.
// The operator itself runs on the host (several replicas, restarts, leader election).
// Covers reconcile, status aggregation, live spec updates, invalid specs, agent RBAC, restart
// mid-reconcile, leader election, the finalizer.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectImage } from '../../lab/cluster/project-image.js';
import { startRealCluster, type RealCluster } from '../../lab/cluster/realnodes.js';
import { RUN_DIR } from '../../operator/src/desired-objects.js';
import { applyCrd, farmYaml, kubectlResult, root, sleep, startOperator, until, type OperatorProc } from './helpers.js';

const nodes = [
  { name: 'n1', zone: 'a' },
  { name: 'n2', zone: 'a' },
  { name: 'n3', zone: 'b' },
];
const NS = 'farms';
const out = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-op-test-'));
// On the host under the agent pods' hostPath mount: the pods run the script from here and
// leave their markers next to it (<farm uid>.<node>.key / .cleaned).
const agentDir = path.join(RUN_DIR, `optest-${process.pid}-${Date.now()}`);
const FAKE_AGENT = path.join(agentDir, 'fake-agent.mjs');
const marker = async (farm: string, node: string, what: 'key' | 'cleaned'): Promise<string> =>
  path.join(agentDir, `${(await fc(farm)).metadata.uid}.${node}.${what}`);

let rc: RealCluster | undefined;
let cp: RealCluster['controlPlane'] | undefined;
let agentImage = '';
const operators: OperatorProc[] = [];

function operator(name: string, extra: string[] = [], env: Record<string, string> = {}): OperatorProc {
  const op = startOperator(cp!, path.join(out, `${name}.log`), [
    '--identity', name,
    '--leader-election-namespace', NS,
    '--agent-image', agentImage,
    '--image-pull-policy', 'Never',
    '--agent-entrypoint', FAKE_AGENT,
    '--finalizer-timeout', '60',
    '--member-grace', '2',
    ...extra,
  ], env);
  operators.push(op);
  return op;
}

const spec = (port: number, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  virtualIPs: ['10.252.0.100'],
  interface: 'eth0',
  rules: [{ port: 80 }],
  agent: { metricsPort: port },
  ...over,
});

async function getJson(args: string[]): Promise<any> {
  return JSON.parse(await cp!.kubectl([...args, '-o', 'json']));
}

const fc = (name: string): Promise<any> => getJson(['get', 'fc', name, '-n', NS]);
const cond = (f: any, type: string): any => (f.status?.conditions ?? []).find((c: any) => c.type === type);

async function waitReady(name: string, generation?: number, timeoutMs = 90_000): Promise<any> {
  return until(`${name} Ready`, async () => {
    const f = await fc(name);
    const ready = cond(f, 'Ready');
    const genOk = generation === undefined || (f.status?.observedGeneration ?? 0) >= generation;
    return ready?.status === 'True' && genOk ? f : undefined;
  }, timeoutMs);
}

async function itemsByLabel(kind: string, selector: string): Promise<any[]> {
  return (await getJson(['get', kind, '-n', NS, '-l', selector])).items;
}

beforeAll(async () => {
  const image = await projectImage();
  agentImage = image.ref;
  mkdirSync(agentDir, { recursive: true });
  copyFileSync(path.join(root, 'test/operator/fake-agent.mjs'), FAKE_AGENT);
  rc = await startRealCluster({ nodes: 3 });
  cp = rc.controlPlane;
  const imported = await rc.importImage(image.archive);
  for (const n of nodes) await cp.kubectl(['label', 'node', n.name, `vipfarm.io/zone=${n.zone}`]);
  await applyCrd(cp);
  await cp.kubectl(['create', 'namespace', NS]);
  console.log(JSON.stringify({ event: 'operator-test-setup', imageBuildMs: image.buildMs, nodesReadyMs: rc.startupMs, importMs: imported.ms }));
}, 1_800_000);

afterAll(async () => {
  for (const op of operators) await op.stop('SIGKILL').catch(() => {});
  await rc?.stop().catch(() => {});
  rmSync(agentDir, { recursive: true, force: true });
  if (!process.env.VIPFARM_KEEP_LOGS) rmSync(out, { recursive: true, force: true });
}, 120_000);

describe('operator', () => {
  let a: OperatorProc;

  test('reconciles a FarmCluster into owned agent objects and reports 3/3 ready', async () => {
    a = operator('op-a');
    await cp!.kubectl(['apply', '-f', '-'], farmYaml('web', NS, spec(19477)));
    const f = await waitReady('web');
    expect(f.status).toMatchObject({ readyNodes: 3, totalNodes: 3, ready: '3/3', observedGeneration: f.metadata.generation });
    expect(f.metadata.finalizers).toContain('vipfarm.io/agents-cleanup');
    const members = f.status.members as any[];
    expect(members.map((m) => m.node).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(members.reduce((s, m) => s + m.buckets, 0)).toBe(256);

    const table = await cp!.kubectl(['get', 'farmclusters', 'web', '-n', NS]);
    expect(table.trim().split('\n')[1].split(/\s+/).slice(0, 4)).toEqual(['web', '10.252.0.100', '3/3', '3']);

    // One of each object, owned by the farm.
    const owner = { kind: 'FarmCluster', name: 'web', uid: f.metadata.uid, controller: true };
    for (const [kind, name] of [['serviceaccount', 'web-agent'], ['role', 'web-agent'], ['rolebinding', 'web-agent'], ['secret', 'web-heartbeat'], ['daemonset', 'web-agent']]) {
      const o = await getJson(['get', kind, name, '-n', NS]);
      expect(o.metadata.ownerReferences).toEqual([expect.objectContaining(owner)]);
    }
    const ds = await getJson(['get', 'daemonset', 'web-agent', '-n', NS, '--show-managed-fields']);
    expect(ds.metadata.managedFields.some((m: any) => m.manager === 'vipfarm-operator' && m.operation === 'Apply')).toBe(true);
    expect(ds.spec.template.spec.hostNetwork).toBe(true);
    expect(ds.spec.template.spec.containers[0].command).toEqual(['node', FAKE_AGENT, '--kubernetes', '--farm', 'web']);
    expect(ds.spec.template.spec.containers[0].image).toBe(agentImage);

    // Every agent got the same key, the one in the Secret.
    const secret = await getJson(['get', 'secret', 'web-heartbeat', '-n', NS]);
    expect(Buffer.from(secret.data.key, 'base64')).toHaveLength(32);
    for (const n of nodes) expect(readFileSync(await marker('web', n.name, 'key'), 'utf8')).toBe(secret.data.key);
    // ... and the operator never logged it.
    expect(a.log()).not.toContain(secret.data.key);

    const events = await getJson(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=web']);
    expect(events.items.map((e: any) => e.reason)).toContain('Ready');
  }, 150_000);

  test('/healthz and /metrics', async () => {
    const port = await until('http port', () => a.events('started')[0]?.httpPort as number | undefined);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/vipfarm_operator_reconciles_total\{result="done"\} [1-9]/);
    expect(metrics).toContain('vipfarm_operator_reconcile_duration_seconds_bucket');
    expect(metrics).toContain('vipfarm_operator_errors_total');
    expect(metrics).toMatch(/vipfarm_operator_leader 1/);
  });

  test('a live spec change updates the config without rolling the agent pods or the key', async () => {
    const podsBefore = (await itemsByLabel('pods', 'vipfarm.io/farm=web')).map((p) => p.metadata.uid).sort();
    const keyBefore = (await getJson(['get', 'secret', 'web-heartbeat', '-n', NS])).data.key;
    await cp!.kubectl(['patch', 'fc', 'web', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { rules: [{ port: 80 }, { port: 443 }], weights: { n1: 2 } } })]);
    const gen = (await fc('web')).metadata.generation;
    await waitReady('web', gen);
    // The agents read the FarmCluster itself: the operator renders no config object for them.
    expect((await cp!.kubectl(['get', 'configmaps', '-n', NS, '-l', 'vipfarm.io/farm=web', '-o', 'name'])).trim()).toBe('');
    expect((await itemsByLabel('pods', 'vipfarm.io/farm=web')).map((p) => p.metadata.uid).sort()).toEqual(podsBefore);
    expect((await getJson(['get', 'secret', 'web-heartbeat', '-n', NS])).data.key).toBe(keyBefore);
  }, 120_000);

  test('an invalid spec the API accepts becomes Degraded with an Event naming the field, and is not retried', async () => {
    // Weight keys are node names; the CRD cannot check map keys, the shared parser does.
    await cp!.kubectl(['patch', 'fc', 'web', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { weights: { NODE_1: 2 } } })]);
    const f = await until('Degraded', async () => {
      const x = await fc('web');
      return cond(x, 'Degraded')?.reason === 'InvalidSpec' ? x : undefined;
    });
    expect(cond(f, 'Degraded').status).toBe('True');
    expect(cond(f, 'Degraded').message).toContain('spec.weights.NODE_1');
    expect(cond(f, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    const ev = await until('InvalidSpec event', async () => {
      const list = await getJson(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=web,reason=InvalidSpec']);
      return list.items[0];
    });
    expect(ev.type).toBe('Warning');
    expect(ev.message).toContain('spec.weights.NODE_1');
    // The agents keep running their last valid configuration.
    expect((await getJson(['get', 'daemonset', 'web-agent', '-n', NS])).metadata.name).toBe('web-agent');
    const invalidRuns = a.events('reconcile_invalid').length;
    await sleep(3000);
    expect(a.events('reconcile_invalid').length).toBeLessThanOrEqual(invalidRuns + 1);
    expect(a.events('reconcile_error')).toEqual([]);

    await cp!.kubectl(['patch', 'fc', 'web', '-n', NS, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/weights', value: { n1: 2 } }])]);
    const fixed = await waitReady('web', (await fc('web')).metadata.generation);
    expect(cond(fixed, 'Degraded').status).toBe('False');
  }, 120_000);

  test('agent RBAC: its own farm and Secret only', async () => {
    await cp!.kubectl(['apply', '-f', '-'], farmYaml('other', NS, spec(19479, { nodeSelector: { 'vipfarm.io/none': 'true' } })));
    await until('other reconciled', async () => (await fc('other')).status?.conditions ? true : undefined);
    const as = `--as=system:serviceaccount:${NS}:web-agent`;
    const can = async (...args: string[]): Promise<string> => {
      const r = await kubectlResult(cp!, ['auth', 'can-i', ...args, as, '-n', NS]);
      return r.ok ? r.out.trim() : /(no)\b/.exec(r.out)?.[1] ?? r.out;
    };
    expect(await can('patch', 'farmclusters.vipfarm.io/web', '--subresource=status')).toBe('yes');
    expect(await can('patch', 'farmclusters.vipfarm.io/other', '--subresource=status')).toBe('no');
    expect(await can('get', 'farmclusters.vipfarm.io/web')).toBe('yes');
    expect(await can('update', 'farmclusters.vipfarm.io/web')).toBe('no');
    expect(await can('patch', 'farmclusters.vipfarm.io/web')).toBe('no');
    expect(await can('get', 'secrets/web-heartbeat')).toBe('yes');
    expect(await can('get', 'secrets/other-heartbeat')).toBe('no');
    expect(await can('list', 'secrets')).toBe('no');
    expect(await can('list', 'pods')).toBe('yes');
    expect(await can('delete', 'pods')).toBe('no');
    expect(await can('create', 'events')).toBe('yes');
    // And a real write is refused, not just predicted.
    const write = await kubectlResult(cp!, ['patch', 'fc', 'other', '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":{"readyNodes":9}}', as]);
    expect(write.ok).toBe(false);
    expect(write.out).toMatch(/forbidden/i);
  }, 60_000);

  test('a restart in the middle of a reconcile converges without duplicates and keeps the key', async () => {
    // A second replica whose applies are slowed down, so that it can be killed between two
    // applies of one reconcile: a takes the db farm's first objects, then dies.
    await a.stop('SIGTERM');
    const slow = operator('op-slow', [], { VIPFARM_TEST_APPLY_DELAY_MS: '700' });
    await until('op-slow leads', () => slow.events('caches_synced').length > 0 || undefined, 30_000);
    await cp!.kubectl(['apply', '-f', '-'], farmYaml('db', NS, spec(19478, { virtualIPs: ['10.252.0.101'] })));
    await until('db Secret applied', () => slow.events('applied').some((e) => e.object === 'Secret farms/db-heartbeat') || undefined, 30_000);
    await slow.stop('SIGKILL');
    const halfway = slow.events('applied').filter((e) => e.farm === 'db').map((e) => e.object);
    expect(halfway).not.toContain('DaemonSet farms/db-agent');
    const key = (await getJson(['get', 'secret', 'db-heartbeat', '-n', NS])).data.key;
    const b = operator('op-b');
    await waitReady('db');
    for (const kind of ['serviceaccounts', 'roles', 'rolebindings', 'secrets', 'daemonsets']) {
      expect([kind, (await itemsByLabel(kind, 'vipfarm.io/farm=db')).length]).toEqual([kind, 1]);
    }
    expect((await itemsByLabel('pods', 'vipfarm.io/farm=db')).length).toBe(3);
    expect((await getJson(['get', 'secret', 'db-heartbeat', '-n', NS])).data.key).toBe(key);
    expect(readFileSync(await marker('db', 'n1', 'key'), 'utf8')).toBe(key);
    // b took over the Lease that op-slow (killed, never released) held.
    expect(b.events('leader_acquired')).toHaveLength(1);
  }, 150_000);

  test('with two replicas only the Lease holder reconciles; SIGTERM hands over at once', async () => {
    const b = operators.find((o) => o.logPath.endsWith('op-b.log'))!;
    const c = operator('op-c');
    await until('c observes b as leader', () => c.events('leader_observed').some((e) => e.leader === 'op-b') || undefined, 30_000);
    const lease = await getJson(['get', 'lease', 'vipfarm-operator', '-n', NS]);
    expect(lease.spec.holderIdentity).toBe('op-b');
    await cp!.kubectl(['patch', 'fc', 'db', '-n', NS, '--type=merge', '-p', '{"spec":{"rules":[{"port":5432}]}}']);
    // Only the status changes (rules live in the FarmCluster the agents read): the new
    // generation observed while c is not leading means b reconciled it.
    await waitReady('db', (await fc('db')).metadata.generation);
    await sleep(1000);
    expect(c.events('applied')).toEqual([]);
    expect(c.events('leader_acquired')).toEqual([]);

    const t0 = Date.now();
    expect(await b.stop('SIGTERM')).toBe(0);
    expect(b.events('stopped')).toHaveLength(1);
    await until('c leads', () => c.events('leader_acquired').length > 0 || undefined, 15_000);
    // Released, not expired: well under the 15 s lease duration.
    expect(Date.now() - t0).toBeLessThan(10_000);
    await cp!.kubectl(['patch', 'fc', 'db', '-n', NS, '--type=merge', '-p', '{"spec":{"rules":[{"port":5433}]}}']);
    await waitReady('db', (await fc('db')).metadata.generation);
  }, 120_000);

  test('a node that leaves the farm loses its agent and, after the grace period, its status entry', async () => {
    await cp!.kubectl(['patch', 'fc', 'db', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { nodeSelector: { 'vipfarm.io/zone': 'a' } } })]);
    const f = await until('db on n1, n2 only', async () => {
      const x = await fc('db');
      const nodesNow = (x.status?.members ?? []).map((m: any) => m.node).sort().join(',');
      return nodesNow === 'n1,n2' && x.status.ready === '2/2' && cond(x, 'Ready')?.status === 'True' ? x : undefined;
    }, 60_000);
    expect(f.status.members.reduce((s: number, m: any) => s + m.buckets, 0)).toBe(256);
    const ev = await getJson(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=db,reason=MemberRemoved']);
    expect(ev.items[0].message).toContain('n3');
    expect(existsSync(await marker('db', 'n3', 'cleaned'))).toBe(true);
  }, 90_000);

  test('deleting a FarmCluster removes the agents (each cleans up first), then everything it owned', async () => {
    const dbPods = (await itemsByLabel('pods', 'vipfarm.io/farm=db')).map((p) => p.metadata.uid).sort();
    const cleanedOf = await Promise.all(nodes.map((n) => marker('web', n.name, 'cleaned')));
    expect(dbPods.length).toBeGreaterThan(0);
    await cp!.kubectl(['delete', 'fc', 'web', '-n', NS, '--wait=false']);
    await until('web gone', async () => {
      const r = await kubectlResult(cp!, ['get', 'fc', 'web', '-n', NS, '-o', 'name']);
      return !r.ok && r.out.includes('NotFound') ? true : undefined;
    }, 90_000);
    expect(await itemsByLabel('pods', 'vipfarm.io/farm=web')).toEqual([]);
    // The operator held the FarmCluster until every agent had cleaned up and exited.
    const events = (name: string): Record<string, unknown>[] => operators.flatMap((o) => o.events(name)).filter((e) => e.farm === 'web');
    const finalized = events('finalized');
    expect(finalized).toHaveLength(1);
    expect(events('finalize_wait').some((e) => (e.pods as number) > 0)).toBe(true);
    for (const file of cleanedOf) {
      const cleaned = Date.parse(readFileSync(file, 'utf8'));
      expect(cleaned).toBeLessThanOrEqual(Date.parse(finalized[0].timestamp as string));
    }
    await until('owned objects collected', async () => {
      for (const kind of ['serviceaccounts', 'roles', 'rolebindings', 'secrets', 'daemonsets']) {
        if ((await itemsByLabel(kind, 'vipfarm.io/farm=web')).length > 0) return undefined;
      }
      return true;
    }, 60_000);
    // The other farm is untouched.
    expect((await itemsByLabel('pods', 'vipfarm.io/farm=db')).map((p) => p.metadata.uid).sort()).toEqual(dbPods);
  }, 150_000);
});
