// Watches FarmClusters and what they own, and feeds the work queue. Informers keep local
// caches of the farm's DaemonSet and agent pods for status; the FarmCluster itself is read
// fresh in each reconcile so finalizer and resourceVersion checks never see a stale copy.
import { makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '../../common/src/log.js';
import { AGENT_APP, FARM_LABEL, FIELD_MANAGER } from './desired-objects.js';
import type { Kube, ObjectRef } from './kube.js';
import type { OperatorMetrics } from './metrics.js';
import type { Caches, DaemonSetLike, PodLike, Reconciler } from './reconciler.js';
import type { FarmCluster } from '../../common/src/farmcluster-types.js';
import type { EndpointSliceObject, ServiceObject, ServiceSync } from './service-sync.js';
import { WorkQueue, type Outcome } from './workqueue.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from '../../common/src/farmcluster-types.js';

type Cached<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

export interface ControllerOptions {
  namespace?: string;
  concurrency: number;
  /** every farm is reconciled at least this often (default 5 min) */
  resyncMs?: number;
  /** allocates LoadBalancer Service addresses from the farms' pools */
  services?: ServiceSync;
}

// The Service allocation is one computation over every farm and Service: one queue key.
const SERVICES_KEY = 'services';

/** Work-queue key of the farm that owns `o` (by its farm label), if any. */
export function ownerKey(o: KubernetesObject): string | undefined {
  const farm = o.metadata?.labels?.[FARM_LABEL];
  const ns = o.metadata?.namespace;
  return farm && ns ? `${ns}/${farm}` : undefined;
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly informers: Cached<KubernetesObject>[] = [];
  private readonly farms: Cached<KubernetesObject>;
  private readonly daemonSets: Cached<KubernetesObject>;
  private readonly pods: Cached<KubernetesObject>;
  private readonly services?: Cached<KubernetesObject>;
  private readonly slices?: Cached<KubernetesObject>;
  private readonly serviceQueue?: WorkQueue;
  private stopping = false;
  private synced = false;
  private resync: NodeJS.Timeout | undefined;

  constructor(
    kc: KubeConfig,
    private readonly kube: Kube,
    private readonly reconciler: Reconciler,
    private readonly opts: ControllerOptions,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
  ) {
    this.queue = new WorkQueue((key) => this.reconciler.reconcile(key), { baseDelayMs: 200, maxDelayMs: 60_000, concurrency: opts.concurrency });
    const ns = opts.namespace;
    this.farms = this.informer(kc, { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, namespace: ns });
    this.daemonSets = this.informer(kc, { apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: ns }, `app.kubernetes.io/managed-by=${FIELD_MANAGER}`);
    this.pods = this.informer(kc, { apiVersion: 'v1', kind: 'Pod', namespace: ns }, `app.kubernetes.io/name=${AGENT_APP}`);

    const enqueueFarm = (o: KubernetesObject): void => {
      if (o.metadata?.namespace && o.metadata.name) this.queue.add(`${o.metadata.namespace}/${o.metadata.name}`);
    };
    const enqueueOwner = (o: KubernetesObject): void => {
      const k = ownerKey(o);
      if (k) this.queue.add(k);
    };
    this.farms.on('add', enqueueFarm);
    this.farms.on('update', enqueueFarm);
    this.farms.on('delete', enqueueFarm);
    this.daemonSets.on('add', enqueueOwner);
    this.daemonSets.on('update', enqueueOwner);
    this.daemonSets.on('delete', (o) => {
      // Deleted behind our back: forget what we applied so the next reconcile re-creates it.
      this.reconciler.invalidate();
      enqueueOwner(o);
    });
    this.pods.on('change', enqueueOwner);

    const sync = opts.services;
    if (sync) {
      const services = this.informer(kc, { apiVersion: 'v1', kind: 'Service', namespace: ns });
      // externalTrafficPolicy Local: which nodes have a ready endpoint of each Service.
      const slices = this.informer(kc, { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: ns });
      const queue = new WorkQueue(
        () =>
          sync.sync(this.farms.list() as FarmCluster[], services.list() as ServiceObject[], slices.list() as EndpointSliceObject[], this.nodeAddresses()).then(
            (): Outcome => ({ kind: 'done' }),
            (err: Error): Outcome => {
              this.metrics.errors.inc({ kind: 'service_status' });
              this.log.warn('service sync failed', { event: 'service_sync_error', error: err.message });
              return { kind: 'retry', error: err };
            },
          ),
        { baseDelayMs: 200, maxDelayMs: 30_000, concurrency: 1 },
      );
      // Not before every cache holds its first list: with the farms not yet listed, every
      // Service would look like it had lost its farm and be released.
      const enqueue = (): void => {
        if (this.synced) queue.add(SERVICES_KEY);
      };
      services.on('add', enqueue);
      services.on('update', enqueue);
      services.on('delete', enqueue);
      for (const ev of ['add', 'update', 'delete'] as const) {
        this.farms.on(ev, enqueue);
        slices.on(ev, enqueue);
      }
      this.services = services;
      this.slices = slices;
      this.serviceQueue = queue;
    }
  }

  /** Syncs the Services again (kube-proxy's health on a node changed). */
  resyncServices(): void {
    if (this.synced) this.serviceQueue?.add(SERVICES_KEY);
  }

  /** node -> address, from the agent pods (host network: their hostIP is the node's) */
  private nodeAddresses(): Map<string, string> {
    const out = new Map<string, string>();
    for (const p of this.pods.list() as PodLike[]) {
      const node = p.spec?.nodeName;
      const ip = p.status?.hostIP;
      if (node && ip) out.set(node, ip);
    }
    return out;
  }

  caches(): Caches {
    return {
      daemonSet: (namespace, name) => this.daemonSets.get(name, namespace) as DaemonSetLike | undefined,
      agentPods: (namespace, farm) => this.pods.list(namespace).filter((p) => p.metadata?.labels?.[FARM_LABEL] === farm) as PodLike[],
    };
  }

  private informer(kc: KubeConfig, ref: ObjectRef, labelSelector?: string): Cached<KubernetesObject> {
    const path = this.kube.collectionPath(ref);
    const list = (): Promise<KubernetesListObject<KubernetesObject>> =>
      this.kube.list<KubernetesObject>(ref, { labelSelector }) as unknown as Promise<KubernetesListObject<KubernetesObject>>;
    const inf = makeInformer(kc, path, list, labelSelector) as Cached<KubernetesObject>;
    inf.on('error', (err: unknown) => {
      if (this.stopping) return;
      this.metrics.errors.inc({ kind: 'watch' });
      this.log.warn('watch failed, restarting', { event: 'watch_error', path, error: String((err as Error)?.message ?? err) });
      setTimeout(() => {
        if (!this.stopping) inf.start().catch(() => {});
      }, 2000).unref();
    });
    this.informers.push(inf);
    return inf;
  }

  /** Starts the watches; resolves once every cache holds its first list. */
  async start(): Promise<void> {
    // Owned objects first, so the first farm reconciles see their DaemonSets and pods.
    await Promise.all([this.daemonSets.start(), this.pods.start(), this.services?.start(), this.slices?.start()]);
    await this.farms.start();
    this.synced = true;
    this.serviceQueue?.add(SERVICES_KEY);
    this.log.info('caches synced', { event: 'caches_synced', farms: this.farms.list().length });
    // Periodic resync: what no watch reports (hand edits of Roles, Secrets...) is repaired too.
    this.resync = setInterval(() => {
      for (const f of this.farms.list()) if (f.metadata?.namespace && f.metadata.name) this.queue.add(`${f.metadata.namespace}/${f.metadata.name}`);
    }, this.opts.resyncMs ?? 300_000);
    this.resync.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.resync);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.queue.shutDown();
    await this.serviceQueue?.shutDown();
  }
}
