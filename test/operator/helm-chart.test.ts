// The Helm chart without a cluster: lint, rendered objects, the values schema, the CRD copy,
// and the dashboard's queries against the metrics the agent and operator really export.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { AgentMetrics } from '../../agent/src/edges/metrics.js';
import { agentRole } from '../../operator/src/desired-objects.js';
import { OperatorMetrics } from '../../operator/src/metrics.js';
import { findBinDir } from '../../lab/cluster/binaries.js';
import { root } from './helpers.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from '../../common/src/farmcluster-types.js';

const CHART = path.join(root, 'helm/vipfarm');
const helm = (args: string[]): string => execFileSync(path.join(findBinDir(), 'helm'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function helmFails(args: string[]): string {
  try {
    helm(args);
  } catch (err) {
    return String((err as { stderr?: string }).stderr);
  }
  throw new Error(`helm ${args.join(' ')} succeeded`);
}

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: any };

function render(...set: string[]): Obj[] {
  const out = helm(['template', 'vf', CHART, '--namespace', 'vipfarm-system', '--kube-version', '1.36.0', ...set.flatMap((s) => ['--set', s])]);
  return (yaml.loadAll(out) as (Obj | null)[]).filter((o): o is Obj => o !== null);
}

const find = (objs: Obj[], kind: string, name?: string): Obj | undefined => objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

describe('helm chart', () => {
  test('helm template renders without --kube-version (GitOps tools render charts this way)', () => {
    const out = helm(['template', 'vf', CHART, '--namespace', 'vipfarm-system']);
    const kinds = yaml.loadAll(out).filter(Boolean).map((d) => (d as { kind: string }).kind);
    expect(kinds).toContain('Deployment');
  });

  test('helm lint passes', () => {
    expect(helm(['lint', CHART, '--kube-version', '1.36.0'])).toContain('0 chart(s) failed');
  });

  test('default render: operator Deployment with leader election, SA, least-privilege RBAC, metrics Service', () => {
    const objs = render();
    expect(objs.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
    const d = find(objs, 'Deployment')!;
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec;
    expect(pod.serviceAccountName).toBe('vf-vipfarm');
    const c = pod.containers[0];
    expect(c.image).toBe('ghcr.io/vipfarm/vipfarm:0.1.0');
    expect(c.command).toEqual(expect.arrayContaining(['node', '/app/dist/operator/src/main.js', '--leader-elect=true', '--agent-entrypoint=/app/dist/agent/src/main.js', '--agent-image=ghcr.io/vipfarm/vipfarm:0.1.0', '--member-grace=60']));
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.env.map((e: any) => e.name)).toEqual(['POD_NAME', 'POD_NAMESPACE']);
    const leases = find(objs, 'Role')!;
    expect(leases.metadata.namespace).toBe('vipfarm-system');
    expect(leases.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
    expect(find(objs, 'ClusterRole')!.rules.flatMap((r: any) => r.verbs)).not.toContain('*');
    const secretVerbs = find(objs, 'ClusterRole')!.rules.filter((r: any) => r.resources.includes('secrets')).flatMap((r: any) => r.verbs);
    expect(secretVerbs).not.toContain('list');
    expect(secretVerbs).not.toContain('watch');
  });

  test('the operator holds every permission it grants an agent (RBAC forbids granting more)', () => {
    const cr = find(render(), 'ClusterRole')!;
    const fc = { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name: 'web', namespace: 'x', uid: 'u' }, spec: { virtualIPs: [], interface: 'eth0', rules: [] } };
    const needed = (agentRole(fc as any).rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]).flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))),
    );
    const held = new Set((cr.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]).flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))),
    ));
    expect(needed.filter((n) => !held.has(n))).toEqual([]);
  });

  test('watchNamespace makes the RBAC namespaced; values reach the flags', () => {
    const objs = render('operator.watchNamespace=farms', 'operator.replicas=1', 'operator.leaderElection=false', 'agent.image=reg/agent:1', 'image.tag=dev');
    expect(find(objs, 'ClusterRole')).toBeUndefined();
    expect(objs.filter((o) => o.kind === 'Role').map((o) => o.metadata.namespace)).toEqual(['farms']);
    const c = find(objs, 'Deployment')!.spec.template.spec.containers[0];
    expect(c.image).toBe('ghcr.io/vipfarm/vipfarm:dev');
    expect(c.command).toEqual(expect.arrayContaining(['--namespace=farms', '--leader-elect=false', '--agent-image=reg/agent:1']));
  });

  test('monitors and the dashboard are opt-in', () => {
    const objs = render('serviceMonitor.enabled=true', 'podMonitor.enabled=true', 'dashboards.enabled=true');
    expect(find(objs, 'ServiceMonitor')!.spec.endpoints[0].port).toBe('http');
    const pm = find(objs, 'PodMonitor')!;
    expect(pm.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'vipfarm-agent' });
    expect(pm.spec.podMetricsEndpoints[0].port).toBe('metrics');
    const cm = find(objs, 'ConfigMap', 'vf-vipfarm-dashboard')!;
    expect(cm.metadata).toMatchObject({ labels: { grafana_dashboard: '1' } });
    expect(JSON.parse(cm.data['vipfarm.json']).uid).toBe('vipfarm');
  });

  test.each([
    ['operator.replicas=0', "at '/operator/replicas': minimum: got 0, want 1"],
    ['image.pullPolicy=Sometimes', "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"],
    ['operator.logLevel=loud', "at '/operator/logLevel'"],
    ['operator.httpPort=70000', "at '/operator/httpPort'"],
    ['operator.memberGraceSeconds=-5', "at '/operator/memberGraceSeconds'"],
    ['operator.leaderElection=false', "at '/operator/replicas': value must be 1"],
    ['serviceMonitor.interval=often', "at '/serviceMonitor/interval'"],
    ['operator.replica=2', "additional properties 'replica' not allowed"],
  ])('values schema refuses %s', (set, message) => {
    expect(helmFails(['template', 'vf', CHART, '--kube-version', '1.36.0', '--set', set])).toContain(message);
  });

  test("the chart's CRD is the repository's CRD", () => {
    expect(readFileSync(path.join(CHART, 'crds/farmcluster.yaml'), 'utf8')).toBe(readFileSync(path.join(root, 'crds/farmcluster.yaml'), 'utf8'));
  });

  test('every metric the dashboard queries is exported by the agent or the operator', async () => {
    const dashboard = JSON.parse(readFileSync(path.join(CHART, 'dashboards/vipfarm.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr));
    exprs.push(...dashboard.templating.list.filter((v: any) => v.query && typeof v.query === 'string').map((v: any) => v.query));
    const queried = new Set(exprs.flatMap((e) => e.match(/\bvipfarm_[a-z_]+/g) ?? []));
    expect(queried.size).toBeGreaterThan(10);
    const exported = new Set<string>();
    for (const registry of [new AgentMetrics('web', 'n1').registry, new OperatorMetrics(false).registry]) {
      for (const m of await registry.getMetricsAsJSON()) {
        exported.add(m.name);
        if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
      }
    }
    expect([...queried].filter((q) => !exported.has(q))).toEqual([]);
    // The panels the issue asks for.
    const titles = dashboard.panels.map((p: any) => p.title.toLowerCase()).join('|');
    for (const t of ['members by state', 'bucket ownership', 'failovers', 'failover duration', 'packets', 'heartbeat rejections', 'reconcile']) expect(titles).toContain(t);
  });
});
