import { parseFarmSpec } from '../../common/src/config/index.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_GROUP, FARMCLUSTER_KIND, FARMCLUSTER_PLURAL, type FarmCluster } from '../../common/src/farmcluster-types.js';
import type { FarmConfig } from '../../common/src/types.js';
import {
  DEFAULT_SETTINGS,
  agentDaemonSet,
  agentRole,
  describeObject,
  desiredObjects,
  newHeartbeatKey,
  objectNames,
  type KubeObject,
} from './desired-objects.js';

function farm(spec: Partial<FarmCluster['spec']> = {}, name = 'web'): { fc: FarmCluster; config: FarmConfig } {
  const fc: FarmCluster = {
    apiVersion: FARMCLUSTER_API_VERSION,
    kind: FARMCLUSTER_KIND,
    metadata: { name, namespace: 'prod', uid: 'uid-1', generation: 3 },
    spec: { virtualIPs: ['10.99.0.100'], interface: 'eth0', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }], ...spec },
  };
  const r = parseFarmSpec(fc.spec, { name });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return { fc, config: r.value };
}

const podSpec = (ds: KubeObject): any => (ds.spec as any).template.spec;
const container = (ds: KubeObject): any => podSpec(ds).containers[0];

describe('desiredObjects', () => {
  test('makes SA, Role, RoleBinding, Secret, DaemonSet in that order (no ConfigMap: the agents read the FarmCluster), all owned by the farm', () => {
    const { fc, config } = farm();
    const objs = desiredObjects(fc, config, 'a2V5', DEFAULT_SETTINGS);
    expect(objs.map((o) => o.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding', 'Secret', 'DaemonSet']);
    for (const o of objs) {
      expect(o.metadata.namespace).toBe('prod');
      expect(o.metadata.ownerReferences).toEqual([
        { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, name: 'web', uid: 'uid-1', controller: true, blockOwnerDeletion: true },
      ]);
      expect(o.metadata.labels?.['vipfarm.io/farm']).toBe('web');
    }
    expect(objs.map((o) => o.metadata.name)).toEqual(['web-agent', 'web-agent', 'web-agent', 'web-heartbeat', 'web-agent']);
  });

  test('only the agent pods carry the peer-discovery labels', () => {
    const { fc, config } = farm();
    const objs = desiredObjects(fc, config, 'a2V5', DEFAULT_SETTINGS);
    const withAgentLabel = objs.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === 'vipfarm-agent').map((o) => o.kind);
    expect(withAgentLabel).toEqual(['DaemonSet']);
    const ds = objs[4];
    expect((ds.spec as any).selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'vipfarm-agent', 'vipfarm.io/farm': 'web' });
    expect((ds.spec as any).template.metadata.labels).toMatchObject((ds.spec as any).selector.matchLabels);
  });

  test('the Secret carries the given key', () => {
    const { fc, config } = farm();
    const objs = desiredObjects(fc, config, 'c2VjcmV0', DEFAULT_SETTINGS);
    expect(objs[3].data).toEqual({ key: 'c2VjcmV0' });
  });

  test('describeObject never shows the content', () => {
    const { fc, config } = farm();
    const secret = desiredObjects(fc, config, 'c2VjcmV0', DEFAULT_SETTINGS)[3];
    expect(describeObject(secret)).toBe('Secret prod/web-heartbeat');
  });

  test('newHeartbeatKey is 32 random bytes in base64', () => {
    const key = newHeartbeatKey((n) => Buffer.alloc(n, 7));
    expect(Buffer.from(key, 'base64')).toEqual(Buffer.alloc(32, 7));
  });

  test('objectNames are derived from the farm name', () => {
    expect(objectNames('db')).toEqual({
      serviceAccount: 'db-agent', role: 'db-agent', roleBinding: 'db-agent', daemonSet: 'db-agent', secret: 'db-heartbeat',
    });
  });
});

describe('agentDaemonSet', () => {
  test('host network, NET_ADMIN and NET_RAW only, probes on the metrics port', () => {
    const { fc, config } = farm({ agent: { metricsPort: 9500 } });
    const ds = agentDaemonSet(fc, config, DEFAULT_SETTINGS);
    expect(podSpec(ds).hostNetwork).toBe(true);
    expect(podSpec(ds).dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(podSpec(ds).serviceAccountName).toBe('web-agent');
    const c = container(ds);
    expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.privileged).toBeUndefined();
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 9500 });
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 9500, protocol: 'TCP' }]);
    expect((ds.spec as any).template.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9500', 'prometheus.io/path': '/metrics' });
  });

  test('saved sysctls live on the host (read-only root file system, restarts)', () => {
    const { fc, config } = farm();
    const ds = agentDaemonSet(fc, config, DEFAULT_SETTINGS);
    expect(container(ds).securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container(ds).volumeMounts).toContainEqual({ name: 'run', mountPath: '/run/vipfarm' });
    expect(podSpec(ds).volumes).toContainEqual({ name: 'run', hostPath: { path: '/run/vipfarm', type: 'DirectoryOrCreate' } });
  });

  test('the host\'s net sysctls come in through their own mount, named by VIPFARM_SYSCTL_ROOT', () => {
    const { fc, config } = farm();
    const c = container(agentDaemonSet(fc, config, DEFAULT_SETTINGS));
    expect(c.volumeMounts).toContainEqual({ name: 'sysctl-net', mountPath: '/host/proc/sys/net' });
    expect(podSpec(agentDaemonSet(fc, config, DEFAULT_SETTINGS)).volumes).toContainEqual({ name: 'sysctl-net', hostPath: { path: '/proc/sys/net', type: 'Directory' } });
    expect(c.env).toContainEqual({ name: 'VIPFARM_SYSCTL_ROOT', value: '/host/proc/sys' });
  });

  test('command runs the configured entrypoint in Kubernetes mode for this farm', () => {
    const { fc, config } = farm({}, 'db');
    const ds = agentDaemonSet(fc, config, { ...DEFAULT_SETTINGS, nodeBinary: '/usr/bin/node', agentEntrypoint: '/repo/dist/agent/src/main.js' });
    expect(container(ds).command).toEqual(['/usr/bin/node', '/repo/dist/agent/src/main.js', '--kubernetes', '--farm', 'db']);
  });

  test('downward API env', () => {
    const { fc, config } = farm();
    const env = container(agentDaemonSet(fc, config, DEFAULT_SETTINGS)).env;
    expect(Object.fromEntries(env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.fieldRef.fieldPath]))).toEqual({
      NODE_NAME: 'spec.nodeName', POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace', HOST_IP: 'status.hostIP',
    });
  });

  test('image: the farm wins over the operator default', () => {
    const a = farm();
    expect(container(agentDaemonSet(a.fc, a.config, DEFAULT_SETTINGS)).image).toBe(DEFAULT_SETTINGS.agentImage);
    const b = farm({ agent: { image: 'registry.local/vipfarm:dev' } });
    expect(container(agentDaemonSet(b.fc, b.config, DEFAULT_SETTINGS)).image).toBe('registry.local/vipfarm:dev');
  });

  test('node selector, tolerations and resources are passed through; absent ones are omitted', () => {
    const { fc, config } = farm({
      nodeSelector: { 'vipfarm.io/web': 'true' },
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
      agent: { resources: { requests: { cpu: '50m' } } },
    });
    const ds = agentDaemonSet(fc, config, DEFAULT_SETTINGS);
    expect(podSpec(ds).nodeSelector).toEqual({ 'vipfarm.io/web': 'true' });
    expect(podSpec(ds).tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(container(ds).resources).toEqual({ requests: { cpu: '50m' } });
    const plain = farm();
    const ds2 = agentDaemonSet(plain.fc, plain.config, DEFAULT_SETTINGS);
    expect('nodeSelector' in podSpec(ds2)).toBe(false);
    expect('tolerations' in podSpec(ds2)).toBe(false);
    expect('resources' in container(ds2)).toBe(false);
  });

  test('live-applicable spec changes do not change the pod template (no pod roll)', () => {
    const a = farm();
    const b = farm({
      virtualIPs: ['10.99.0.100', '10.99.0.101'],
      rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }, { port: 53, protocol: 'udp', affinity: 'ClientIPAndPort' }],
      weights: { n1: 3 },
      bucketCount: 1024,
      heartbeat: { intervalMs: 200, failureThresholdMs: 1000 },
    });
    const t = (x: { fc: FarmCluster; config: FarmConfig }): unknown => (agentDaemonSet(x.fc, x.config, DEFAULT_SETTINGS).spec as any).template;
    expect(t(b)).toEqual(t(a));
    const c = farm({ agent: { metricsPort: 9600 } });
    expect(t(c)).not.toEqual(t(a));
  });
});

describe('agentRole', () => {
  test('least privilege, scoped to its own farm and Secret', () => {
    const { fc } = farm({}, 'db');
    const rules = (agentRole(fc) as any).rules;
    expect(rules).toEqual([
      { apiGroups: [FARMCLUSTER_GROUP], resources: [FARMCLUSTER_PLURAL], resourceNames: ['db'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [FARMCLUSTER_GROUP], resources: [`${FARMCLUSTER_PLURAL}/status`], resourceNames: ['db'], verbs: ['get', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
      { apiGroups: ['apps'], resources: ['daemonsets'], resourceNames: ['db-agent'], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['db-heartbeat'], verbs: ['get'] },
      { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create'] },
    ]);
    const verbs = rules.flatMap((r: any) => r.verbs);
    for (const forbidden of ['update', 'delete', 'deletecollection', '*', 'escalate', 'bind']) expect(verbs).not.toContain(forbidden);
  });
});
