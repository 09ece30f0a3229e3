// What a FarmCluster should become in the cluster: the agents' DaemonSet and everything
// it needs. Pure: the same farm, key and settings always give the same objects, which the
// reconciler server-side applies in the order returned (identity and RBAC before the pods
// that use them).
import type { FarmCluster } from '../../common/src/farmcluster-types.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_GROUP, FARMCLUSTER_KIND, FARMCLUSTER_PLURAL } from '../../common/src/farmcluster-types.js';
import type { FarmConfig } from '../../common/src/types.js';

import { FIELD_MANAGER, HEARTBEAT_KEY_FIELD, agentSelector, farmLabels, objectNames } from '../../common/src/farm-objects.js';

export { AGENT_APP, FARM_LABEL, FIELD_MANAGER, HEARTBEAT_KEY_FIELD, agentSelector, farmLabels, labelSelectorString, objectNames } from '../../common/src/farm-objects.js';
export const FINALIZER = 'vipfarm.io/agents-cleanup';
/** native/ keeps its saved sysctls here (VIPFARM_RUN_DIR's default). */
export const RUN_DIR = '/run/vipfarm';
/** where the agent finds the host's /proc/sys/net (VIPFARM_SYSCTL_ROOT) */
export const SYSCTL_ROOT = '/host/proc/sys';

/** Any Kubernetes object as plain JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export interface OperatorSettings {
  /** Image of the agent when the farm does not name one. */
  agentImage: string;
  /** The agent's main.js inside the image (or on the host for the test kubelet). */
  agentEntrypoint: string;
  /** Executable that runs the entrypoint. */
  nodeBinary: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
}

export const DEFAULT_SETTINGS: OperatorSettings = {
  agentImage: 'ghcr.io/vipfarm/vipfarm:0.1.0',
  agentEntrypoint: '/app/dist/agent/src/main.js',
  nodeBinary: 'node',
  imagePullPolicy: 'IfNotPresent',
};

export function ownerReference(fc: FarmCluster): OwnerReference {
  const uid = fc.metadata?.uid;
  const name = fc.metadata?.name;
  if (!uid || !name) throw new Error('FarmCluster without metadata.name or metadata.uid cannot own objects');
  return { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, name, uid, controller: true, blockOwnerDeletion: true };
}

/** The heartbeat key: 32 random bytes, base64 as Secret data (the agent decodes data.key to bytes). */
export function newHeartbeatKey(randomBytes: (n: number) => Buffer): string {
  return randomBytes(32).toString('base64');
}

function meta(fc: FarmCluster, name: string): KubeObject['metadata'] {
  const farm = fc.metadata!.name!;
  const labels = farmLabels(farm);
  // The pods' selector labels are for pods only: other objects carry the farm label and
  // the managed-by label, not app.kubernetes.io/name=vipfarm-agent, so peers are found
  // by listing pods without ever matching a Secret or a Role.
  const { 'app.kubernetes.io/name': _app, ...rest } = labels;
  return { name, namespace: fc.metadata!.namespace, labels: { 'app.kubernetes.io/name': 'vipfarm', ...rest }, ownerReferences: [ownerReference(fc)] };
}

export function agentRole(fc: FarmCluster): KubeObject {
  const farm = fc.metadata!.name!;
  const names = objectNames(farm);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(fc, names.role),
    // Least privilege: its own farm only (resourceNames), its own Secret only. list and
    // watch on one name need fieldSelector=metadata.name=<farm> in the agent's request.
    rules: [
      { apiGroups: [FARMCLUSTER_GROUP], resources: [FARMCLUSTER_PLURAL], resourceNames: [farm], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [FARMCLUSTER_GROUP], resources: [`${FARMCLUSTER_PLURAL}/status`], resourceNames: [farm], verbs: ['get', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
      // on SIGTERM: is this a rollout (keep the kernel state for the next agent)?
      { apiGroups: ['apps'], resources: ['daemonsets'], resourceNames: [names.daemonSet], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: [names.secret], verbs: ['get'] },
      { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create'] },
    ],
  };
}

export function agentDaemonSet(fc: FarmCluster, config: FarmConfig, settings: OperatorSettings): KubeObject {
  const farm = fc.metadata!.name!;
  const names = objectNames(farm);
  const spec = fc.spec;
  const port = config.metricsPort;
  const fieldEnv = (name: string, fieldPath: string): object => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });
  // Only what needs a new process goes into the pod template: a spec change the agents can
  // apply live (rules, weights, VIPs, checkers...) must not roll the pods, or it would drop
  // established connections that a live re-program keeps.
  const container: Record<string, unknown> = {
    name: 'agent',
    image: spec.agent?.image ?? settings.agentImage,
    imagePullPolicy: settings.imagePullPolicy,
    command: [settings.nodeBinary, settings.agentEntrypoint, '--kubernetes', '--farm', farm],
    env: [
      fieldEnv('NODE_NAME', 'spec.nodeName'),
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('HOST_IP', 'status.hostIP'),
      { name: 'VIPFARM_SYSCTL_ROOT', value: SYSCTL_ROOT },
    ],
    ports: [{ name: 'metrics', containerPort: port, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/readyz', port }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    securityContext: {
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    },
    // The agent saves the host's original sysctl values here before changing them; on the
    // host, so that a restarted or replaced agent still restores them.
    // Runtimes mount /proc/sys read-only in unprivileged containers: the host's net sysctls
    // come in through their own mount (writes apply to the host network namespace we share).
    volumeMounts: [{ name: 'run', mountPath: RUN_DIR }, { name: 'sysctl-net', mountPath: `${SYSCTL_ROOT}/net` }],
  };
  if (spec.agent?.resources) container.resources = spec.agent.resources;
  const podSpec: Record<string, unknown> = {
    serviceAccountName: names.serviceAccount,
    hostNetwork: true,
    dnsPolicy: 'ClusterFirstWithHostNet',
    // SIGTERM makes the agent hand off its buckets; it removes its kernel state unless the
    // pod is replaced by a rollout (then the next agent adopts it, docs/operations.md).
    terminationGracePeriodSeconds: 30,
    containers: [container],
    volumes: [
      { name: 'run', hostPath: { path: RUN_DIR, type: 'DirectoryOrCreate' } },
      { name: 'sysctl-net', hostPath: { path: '/proc/sys/net', type: 'Directory' } },
    ],
  };
  if (spec.nodeSelector && Object.keys(spec.nodeSelector).length > 0) podSpec.nodeSelector = spec.nodeSelector;
  if (spec.tolerations && spec.tolerations.length > 0) podSpec.tolerations = spec.tolerations;
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { ...meta(fc, names.daemonSet), labels: farmLabels(farm) },
    spec: {
      selector: { matchLabels: agentSelector(farm) },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: {
          labels: farmLabels(farm),
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' },
        },
        spec: podSpec,
      },
    },
  };
}

/**
 * Every object of a farm, in apply order. `heartbeatKey` is the existing Secret's key
 * (kept on updates) or a new one; it is never logged, callers log object names only.
 */
export function desiredObjects(fc: FarmCluster, config: FarmConfig, heartbeatKey: string, settings: OperatorSettings): KubeObject[] {
  const farm = fc.metadata!.name!;
  const names = objectNames(farm);
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(fc, names.serviceAccount) },
    agentRole(fc),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(fc, names.roleBinding),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.role },
      subjects: [{ kind: 'ServiceAccount', name: names.serviceAccount, namespace: fc.metadata!.namespace }],
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta(fc, names.secret), type: 'Opaque', data: { [HEARTBEAT_KEY_FIELD]: heartbeatKey } },
    agentDaemonSet(fc, config, settings),
  ];
}

/** For logs: identifies an object without its content (Secrets carry the key). */
export function describeObject(o: KubeObject): string {
  return `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}
