// Kubernetes mode's edge: the FarmCluster (watched by name), the peers (the farm's agent
// pods and their host IPs), the heartbeat key (the farm's Secret) and this node's
// status.members entry (server-side apply, this agent's own field manager).
// The data plane never waits on any of this: when the API server is away, the agent
// keeps its last config and catches up when the watches come back.
import * as k8s from '@kubernetes/client-node';
import { labelSelectorString, agentSelector, objectNames, HEARTBEAT_KEY_FIELD } from '../../../common/src/farm-objects.js';
import type { PeerSpec } from '../../../common/src/types.js';
import { canonicalIP, ipFamilyOf, type IPFamily } from '../../../common/src/config/syntax.js';
import type { Logger } from '../../../common/src/log.js';
import { memberStatusPatch, type MemberStatus } from '../core/member-status.js';
import { agentReporter, eventObject } from '../../../common/src/farm-events.js';
import { FARMCLUSTER_GROUP as GROUP, FARMCLUSTER_PLURAL as PLURAL, FARMCLUSTER_VERSION as VERSION, type FarmCluster } from '../../../common/src/farmcluster-types.js';
import type { ExitFacts, Placement } from '../core/exit-plan.js';

export interface FarmObject extends k8s.KubernetesObject {
  spec?: unknown;
  /** status.services: the Service IPs the operator rendered for this farm */
  status?: { services?: unknown };
}

export interface FarmSourceHandlers {
  onFarm(obj: FarmObject): void;
  onFarmDeleted(): void;
  onPeers(peers: PeerSpec[]): void;
}

/** In a pod: the service account's mounted files; elsewhere KUBECONFIG or ~/.kube/config. */
export function loadKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/**
 * Peers from the farm's agent pods: one per node, the pod's host IP of `family` (the
 * family of this node's own address: heartbeats go over one socket) from status.hostIPs
 * (a dual-stack node lists one of each; the agents use the host network, so these are
 * their pod IPs too), else status.hostIP; canonical text. Pure.
 */
export function peersFromPods(pods: readonly k8s.V1Pod[], family?: IPFamily): PeerSpec[] {
  const byNode = new Map<string, PeerSpec>();
  for (const p of pods) {
    const node = p.spec?.nodeName;
    const listed = [...(p.status?.hostIPs ?? []).map((h) => h.ip), p.status?.hostIP, ...(p.status?.podIPs ?? []).map((h) => h.ip)];
    const ip = listed.map((a) => (a ? canonicalIP(a) : undefined)).find((a) => a !== undefined && (family === undefined || ipFamilyOf(a) === family));
    if (!node || !ip || p.metadata?.deletionTimestamp) continue;
    // the node's own addresses of the other family (not pod IPs: a non-host-network pod's
    // would be no next hop to the node)
    const hostIPs = [...(p.status?.hostIPs ?? []).map((h) => h.ip), p.status?.hostIP].map((a) => (a ? canonicalIP(a) : undefined));
    const other = [...new Set(hostIPs.filter((a): a is string => a !== undefined && ipFamilyOf(a) !== ipFamilyOf(ip)))];
    byNode.set(node, { name: node, address: ip, ...(other.length > 0 ? { otherAddresses: other } : {}) });
  }
  return [...byNode].sort(([a], [b]) => a.localeCompare(b)).map(([, peer]) => peer);
}

export class KubernetesFarmSource {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly apps: k8s.AppsV1Api;
  private farmInformer?: k8s.Informer<FarmObject> & k8s.ObjectCache<FarmObject>;
  private podInformer?: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private stopped = false;
  private farmObject?: FarmObject;
  private readonly restartTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly namespace: string,
    private readonly farm: string,
    private readonly node: string,
    private readonly log: Logger,
    /** the family of this node's address, when known: peers of that family only */
    private readonly family?: IPFamily,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
  }

  async readKey(): Promise<Buffer> {
    const name = objectNames(this.farm).secret;
    const s = await this.core.readNamespacedSecret({ name, namespace: this.namespace });
    const data = s.data?.[HEARTBEAT_KEY_FIELD];
    if (!data) throw new Error(`Secret ${this.namespace}/${name} has no data.${HEARTBEAT_KEY_FIELD}`);
    const key = Buffer.from(data, 'base64');
    if (key.length < 16) throw new Error(`Secret ${this.namespace}/${name}: heartbeat key shorter than 16 bytes`);
    return key;
  }

  async start(h: FarmSourceHandlers): Promise<void> {
    const watch = new k8s.Watch(this.kc);
    const { namespace, farm } = this;
    // The agent's Role names its farm (resourceNames): list and watch must select it by name.
    const farmInformer = new k8s.ListWatch<FarmObject>(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
      watch,
      () => this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, fieldSelector: `metadata.name=${farm}` }),
      false,
      undefined,
      `metadata.name=${farm}`,
    );
    const seen = (o: FarmObject): void => {
      this.farmObject = o;
      h.onFarm(o);
    };
    farmInformer.on('add', seen);
    farmInformer.on('update', seen);
    farmInformer.on('delete', () => h.onFarmDeleted());
    const selector = labelSelectorString(agentSelector(farm));
    const podInformer = k8s.makeInformer(
      this.kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => this.core.listNamespacedPod({ namespace, labelSelector: selector }),
      selector,
    );
    const pushPeers = (): void => h.onPeers(peersFromPods(podInformer.list(namespace), this.family));
    for (const ev of ['add', 'update', 'delete'] as const) podInformer.on(ev, pushPeers);
    this.farmInformer = farmInformer;
    this.podInformer = podInformer;
    this.restartOnError('farmcluster', farmInformer);
    this.restartOnError('pods', podInformer);
    await farmInformer.start();
    await podInformer.start();
    pushPeers();
  }

  async writeStatus(entry: MemberStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP, version: VERSION, namespace: this.namespace, plural: PLURAL, name: this.farm,
        body: memberStatusPatch(this.farm, this.namespace, entry),
        fieldManager: `vipfarm-agent-${this.node}`,
        force: true,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
    );
  }

  /** A Kubernetes Event on the FarmCluster (kubectl describe); best effort. */
  async recordEvent(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const fc = this.farmObject;
    if (!fc) return;
    const body = eventObject(fc as FarmCluster, type, reason, message, new Date(), this.node, agentReporter(this.node));
    delete body.metadata.name;
    try {
      await this.core.createNamespacedEvent({ namespace: this.namespace, body: body as unknown as k8s.CoreV1Event });
    } catch (err) {
      this.log.warn('could not record event', { event: 'k8s_event_error', reason, error: (err as Error).message });
    }
  }

  /**
   * What decides whether a stopping agent keeps its kernel state for the next one
   * (core/exit-plan.ts), read from the API server now: the farm and the DaemonSet as they
   * are (404 = gone), this agent's pod (`podName`, from the downward API) from the watch.
   */
  async exitFacts(podName: string | undefined): Promise<ExitFacts> {
    const { namespace, farm } = this;
    const gone = (err: unknown): undefined => {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    };
    const fc = await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name: farm })
      .then((o) => o as FarmObject, gone);
    const ds = await this.apps.readNamespacedDaemonSet({ name: objectNames(farm).daemonSet, namespace }).catch(gone);
    const pod = podName ? this.podInformer?.get(podName, namespace) : undefined;
    const placement = (spec: k8s.V1PodSpec | undefined): Placement => ({
      ...(spec?.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
      ...(spec?.tolerations ? { tolerations: spec.tolerations } : {}),
    });
    const generation = Number(pod?.metadata?.labels?.['pod-template-generation']);
    return {
      ...(fc ? { farm: { deleting: fc.metadata?.deletionTimestamp !== undefined } } : {}),
      ...(ds ? { daemonSet: { deleting: ds.metadata?.deletionTimestamp !== undefined, generation: ds.metadata?.generation ?? 0, template: placement(ds.spec?.template.spec) } } : {}),
      ...(pod ? { pod: { ...(Number.isInteger(generation) ? { templateGeneration: generation } : {}), placement: placement(pod.spec) } } : {}),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.restartTimers) clearTimeout(t);
    await this.farmInformer?.stop();
    await this.podInformer?.stop();
  }

  private restartOnError(what: string, informer: k8s.Informer<k8s.KubernetesObject>): void {
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.log.warn('watch failed, retrying', { event: 'watch_error', watch: what, error: String((err as Error)?.message ?? err) });
      const t = setTimeout(() => {
        this.restartTimers.delete(t);
        if (!this.stopped) informer.start().catch(() => {});
      }, 2000);
      this.restartTimers.add(t);
    });
  }
}
