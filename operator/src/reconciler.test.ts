import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND, type FarmCluster } from '../../common/src/farmcluster-types.js';
import { createLogger } from '../../common/src/log.js';
import { DEFAULT_SETTINGS, FINALIZER, type KubeObject } from './desired-objects.js';
import type { EventRecorder } from './events.js';
import { KubeError, type ObjectRef } from './kube.js';
import { OperatorMetrics } from './metrics.js';
import { Reconciler, type Caches, type PodLike } from './reconciler.js';

const log = createLogger('test');
log.silent = true;

/** Records the calls a reconcile makes; holds one FarmCluster and a few objects. */
class FakeKube {
  farm: FarmCluster | undefined;
  objects = new Map<string, any>();
  pods: PodLike[] = [];
  calls: string[] = [];
  failApply: string | undefined;

  private key(r: ObjectRef): string {
    return `${r.kind}/${r.namespace}/${r.name}`;
  }
  async get<T>(r: ObjectRef): Promise<T | undefined> {
    this.calls.push(`get ${r.kind}`);
    if (r.kind === 'FarmCluster') return structuredClone(this.farm) as T;
    return this.objects.get(this.key(r)) as T;
  }
  async apply<T>(o: KubeObject, _fm: string, opts: { subresource?: string } = {}): Promise<T> {
    const id = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
    this.calls.push(`apply ${o.kind}${opts.subresource ? '/' + opts.subresource : ''}`);
    if (this.failApply === o.kind) throw new KubeError(503, 'ServiceUnavailable', 'etcd down', 'PATCH', id);
    if (opts.subresource === 'status') this.farm = { ...this.farm!, status: { ...this.farm!.status, ...(o.status as object) } };
    else this.objects.set(id, o);
    return o as T;
  }
  async jsonPatch<T>(_r: ObjectRef, ops: any[], subresource?: string): Promise<T> {
    this.calls.push(`jsonPatch${subresource ? '/' + subresource : ''}`);
    const m = this.farm!.metadata!;
    for (const op of ops) {
      const idx = Number(op.path.split('/').pop());
      if (op.op === 'test' && op.path === '/metadata/resourceVersion' && op.value !== m.resourceVersion) {
        throw new KubeError(422, 'Invalid', 'the server rejected our request due to an error in our request', 'PATCH', op.path);
      }
      if (op.op === 'add' && op.path === '/metadata/finalizers') m.finalizers = op.value;
      if (op.op === 'add' && op.path === '/metadata/finalizers/-') m.finalizers!.push(op.value);
      if (op.op === 'remove' && op.path.startsWith('/metadata/finalizers/')) m.finalizers!.splice(idx, 1);
      if (op.op === 'test' && op.path.startsWith('/status/members/') && this.farm!.status!.members![Number(op.path.split('/')[3])]?.node !== op.value) {
        throw new KubeError(422, 'Invalid', 'test failed', 'PATCH', op.path);
      }
      if (op.op === 'remove' && op.path.startsWith('/status/members/')) this.farm!.status!.members!.splice(idx, 1);
    }
    return this.farm as T;
  }
  async delete(r: ObjectRef): Promise<boolean> {
    this.calls.push(`delete ${r.kind}`);
    return this.objects.delete(this.key(r));
  }
  async list<T>(): Promise<{ metadata: object; items: T[] }> {
    this.calls.push('list');
    return { metadata: {}, items: this.pods as T[] };
  }
}

let clock = Date.parse('2026-11-25T12:00:00Z');

function setup(spec: Record<string, unknown> = {}, pods: PodLike[] = []): { kube: FakeKube; r: Reconciler; events: string[] } {
  const kube = new FakeKube();
  kube.farm = {
    apiVersion: FARMCLUSTER_API_VERSION,
    kind: FARMCLUSTER_KIND,
    metadata: { name: 'web', namespace: 'ns', uid: 'u1', generation: 1, resourceVersion: '5' },
    spec: { virtualIPs: ['10.99.0.100'], interface: 'eth0', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }], ...spec },
  };
  const events: string[] = [];
  const recorder: EventRecorder = { record: async (_fc, type, reason, message) => void events.push(`${type} ${reason}: ${message}`) };
  const caches: Caches = {
    daemonSet: (ns, name) => kube.objects.get(`DaemonSet/${ns}/${name}`),
    agentPods: () => pods,
  };
  clock = Date.parse('2026-11-25T12:00:00Z');
  const r = new Reconciler({
    kube, caches, settings: DEFAULT_SETTINGS, events: recorder, metrics: new OperatorMetrics(false), log,
    randomBytes: (n) => Buffer.alloc(n, 1), now: () => new Date(clock), memberGraceMs: 10_000,
  });
  return { kube, r, events };
}

describe('Reconciler', () => {
  test('a farm edited between the read and the finalizer patch is read again, not reported as an error', async () => {
    const { kube, r } = setup();
    const realGet = kube.get.bind(kube);
    let edited = false;
    kube.get = async <T,>(ref: ObjectRef): Promise<T | undefined> => {
      const got = await realGet<T>(ref);
      if (ref.kind === 'FarmCluster' && !edited) {
        edited = true; // someone patches the spec right after our read
        kube.farm!.metadata!.resourceVersion = '6';
      }
      return got;
    };
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'requeueAfter', ms: 50 });
    expect(kube.farm!.metadata!.finalizers).toBeUndefined();
    expect(kube.calls.filter((c) => c.startsWith('apply'))).toEqual([]);
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'requeueAfter', ms: 30_000 });
    expect(kube.farm!.metadata!.finalizers).toEqual([FINALIZER]);
  });

  test('first reconcile adds the finalizer, applies five objects and the status', async () => {
    const { kube, r } = setup();
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'requeueAfter', ms: 30_000 });
    expect(kube.farm!.metadata!.finalizers).toEqual([FINALIZER]);
    expect(kube.calls.filter((c) => c.startsWith('apply'))).toEqual([
      'apply ServiceAccount', 'apply Role', 'apply RoleBinding', 'apply Secret', 'apply DaemonSet', 'apply FarmCluster/status',
    ]);
    expect(kube.farm!.status).toMatchObject({ ready: '0/0', observedGeneration: 1 });
  });

  test('an unchanged farm is not re-applied, and its status not rewritten', async () => {
    const { kube, r } = setup();
    await r.reconcile('ns/web');
    kube.calls = [];
    await r.reconcile('ns/web');
    expect(kube.calls.filter((c) => c.startsWith('apply'))).toEqual([]);
  });

  test('unchanged objects are applied again after ten minutes (undoes hand edits)', async () => {
    const { kube, r } = setup();
    await r.reconcile('ns/web');
    kube.objects.get('Role/ns/web-agent').rules = [];
    kube.calls = [];
    clock += 599_000;
    await r.reconcile('ns/web');
    expect(kube.calls.filter((c) => c === 'apply Role')).toEqual([]);
    clock += 2_000;
    await r.reconcile('ns/web');
    expect(kube.calls.filter((c) => c === 'apply Role')).toEqual(['apply Role']);
    expect(kube.objects.get('Role/ns/web-agent').rules.length).toBe(6);
  });

  test('a spec change re-applies only what changed; the heartbeat key is kept', async () => {
    const { kube, r } = setup();
    await r.reconcile('ns/web');
    const key = kube.objects.get('Secret/ns/web-heartbeat').data.key;
    kube.farm!.spec.weights = { n1: 3 };
    kube.farm!.metadata!.generation = 2;
    kube.calls = [];
    await r.reconcile('ns/web');
    expect(kube.calls.filter((c) => c.startsWith('apply'))).toEqual(['apply FarmCluster/status']);
    expect(kube.objects.get('Secret/ns/web-heartbeat').data.key).toBe(key);
  });

  test('an existing key survives an operator restart (new Reconciler)', async () => {
    const { kube } = setup();
    kube.objects.set('Secret/ns/web-heartbeat', { data: { key: 'ZXhpc3Rpbmc=' } });
    const r2 = setup().r;
    (r2 as any).d.kube = kube;
    await r2.reconcile('ns/web');
    expect(kube.objects.get('Secret/ns/web-heartbeat').data.key).toBe('ZXhpc3Rpbmc=');
  });

  test('invalid spec: Degraded, one Warning Event per generation naming the field, not retried, no objects', async () => {
    const { kube, r, events } = setup({ weights: { BAD_NODE: 1 } });
    const o = await r.reconcile('ns/web');
    expect(o.kind).toBe('noRetry');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/^Warning InvalidSpec: spec\.weights\.BAD_NODE: /);
    const degraded = kube.farm!.status!.conditions!.find((c) => c.type === 'Degraded')!;
    expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(kube.calls.filter((c) => c.startsWith('apply') && !c.includes('status'))).toEqual([]);
    await r.reconcile('ns/web');
    expect(events).toHaveLength(1);
    kube.farm!.metadata!.generation = 2;
    await r.reconcile('ns/web');
    expect(events).toHaveLength(2);
  });

  test('a universally administered virtual MAC is an invalid spec, not Ready with a warning (the agents could not program it)', async () => {
    const { kube, r, events } = setup({ virtualMAC: '00:16:3e:00:00:01' });
    expect((await r.reconcile('ns/web')).kind).toBe('noRetry');
    expect(events).toEqual([expect.stringMatching(/^Warning InvalidSpec: spec\.virtualMAC: must be a locally administered MAC/)]);
    expect(kube.farm!.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });
  });

  test('an API failure is retried and the failed object is applied again next time', async () => {
    const { kube, r } = setup();
    kube.failApply = 'Secret';
    const o = await r.reconcile('ns/web');
    expect(o.kind).toBe('retry');
    expect(o.kind === 'retry' && o.error.message).toContain('apply Secret ns/web-heartbeat');
    kube.failApply = undefined;
    kube.calls = [];
    await r.reconcile('ns/web');
    expect(kube.calls.filter((c) => c.startsWith('apply'))).toEqual(['apply Secret', 'apply DaemonSet', 'apply FarmCluster/status']);
  });

  test('deletion waits for the agent pods, then removes the finalizer', async () => {
    const { kube, r, events } = setup();
    await r.reconcile('ns/web');
    kube.farm!.metadata!.deletionTimestamp = '2026-11-25T11:59:59Z';
    kube.pods = [{ metadata: { name: 'web-agent-x' }, spec: { nodeName: 'n1' } }];
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'requeueAfter', ms: 1000 });
    expect(kube.calls).toContain('delete DaemonSet');
    expect(kube.farm!.metadata!.finalizers).toEqual([FINALIZER]);
    expect(events.some((e) => e.startsWith('Normal Deleting'))).toBe(true);
    kube.pods = [];
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'done' });
    expect(kube.farm!.metadata!.finalizers).toEqual([]);
  });

  test('deletion gives up after the timeout with a Warning', async () => {
    const { kube, r, events } = setup();
    await r.reconcile('ns/web');
    kube.farm!.metadata!.deletionTimestamp = '2026-11-25T11:00:00Z';
    kube.pods = [{ metadata: { name: 'web-agent-x' }, spec: { nodeName: 'n7' } }];
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'done' });
    expect(events.some((e) => e.startsWith('Warning CleanupTimeout') && e.includes('n7'))).toBe(true);
    expect(kube.farm!.metadata!.finalizers).toEqual([]);
  });

  test('the entry of a node without an agent pod is removed after the grace period', async () => {
    const pod = (node: string): PodLike => ({ metadata: { name: `web-agent-${node}` }, spec: { nodeName: node }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    const { kube, r, events } = setup({}, [pod('n1'), pod('n2')]);
    kube.farm!.status = { members: [{ node: 'n1', ready: true, buckets: 128 }, { node: 'gone', ready: true, buckets: 0 }, { node: 'n2', ready: true, buckets: 128 }] };
    const first = await r.reconcile('ns/web');
    expect(first).toEqual({ kind: 'requeueAfter', ms: 10_000 });
    expect(kube.farm!.status!.members!.map((m) => m.node)).toEqual(['n1', 'gone', 'n2']);
    clock += 10_000;
    await r.reconcile('ns/web');
    expect(kube.calls).toContain('jsonPatch/status');
    expect(kube.farm!.status!.members!.map((m) => m.node)).toEqual(['n1', 'n2']);
    expect(events.some((e) => e.startsWith('Normal MemberRemoved') && e.includes('gone'))).toBe(true);
  });

  test('a farm that is gone is done', async () => {
    const { kube, r } = setup();
    kube.farm = undefined;
    expect(await r.reconcile('ns/web')).toEqual({ kind: 'done' });
  });
});
