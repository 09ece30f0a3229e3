// `helm install` into the real control plane: the chart's operator runs as a pod (through
// the test kubelet, on a host-namespace node) with only the chart's RBAC, a FarmCluster
// converges on two namespace nodes, then `helm uninstall` leaves nothing but the CRD.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { findBinDir } from '../../lab/cluster/binaries.js';
import { startControlPlane, type ControlPlane } from '../../lab/cluster/controlplane.js';
import { startKubelet, type Kubelet, type KubeletNode } from '../../lab/cluster/kubelet.js';
import { freePorts } from '../../lab/cluster/ports.js';
import { farmYaml, kubectlResult, root, until } from './helpers.js';

const prefix = `vf${process.pid % 10000}-hi`;
const ROLE = 'vipfarm.io/test-role';
const nodes: KubeletNode[] = [
  { name: 'ctl', ip: '127.0.0.1', netns: null, labels: { [ROLE]: 'control' } },
  { name: 'f1', ip: '10.253.0.1', netns: `${prefix}-f1`, labels: { [ROLE]: 'farm' } },
  { name: 'f2', ip: '10.253.0.2', netns: `${prefix}-f2`, labels: { [ROLE]: 'farm' } },
];
const RELEASE_NS = 'vipfarm-system';
const NS = 'farms';
const out = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-helm-test-'));

let cp: ControlPlane | undefined;
let kubelet: Kubelet | undefined;
const madeNetns: string[] = [];

const execFileP = promisify(execFile);

// Async: the test kubelet runs in this process, a blocking helm --wait would starve it.
async function helm(args: string[]): Promise<string> {
  const r = await execFileP(path.join(findBinDir(), 'helm'), [...args, '--kubeconfig', cp!.kubeconfigPath], { encoding: 'utf8', timeout: 180_000 });
  return r.stdout;
}

async function getJson(args: string[]): Promise<any> {
  return JSON.parse(await cp!.kubectl([...args, '-o', 'json']));
}

/** The operator pods' status and log, for a failure message. */
async function operatorDiagnostics(): Promise<string> {
  const pods = (await getJson(['get', 'pods', '-n', RELEASE_NS])).items as any[];
  return pods
    .map((p) => {
      const logPath = kubelet!.logPath(RELEASE_NS, p.metadata.name, 'operator');
      const log = logPath ? execFileSync('tail', ['-n', '30', logPath], { encoding: 'utf8' }) : '(no log)';
      return `pod ${p.metadata.name} on ${p.spec.nodeName}: ${JSON.stringify(p.status?.conditions)}\n${log}`;
    })
    .concat([`kubelet: ${execFileSync('tail', ['-n', '15', path.join(kubelet!.dir, 'kubelet.log')], { encoding: 'utf8' })}`])
    .join('\n');
}

beforeAll(async () => {
  for (const n of nodes.filter((x) => x.netns)) {
    execFileSync('ip', ['netns', 'add', n.netns!]);
    madeNetns.push(n.netns!);
    execFileSync('ip', ['-n', n.netns!, 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['-n', n.netns!, 'addr', 'add', `${n.ip}/32`, 'dev', 'lo']);
  }
  cp = await startControlPlane({ nodes: nodes.map(({ name, ip, labels }) => ({ name, ip, labels })) });
  execFileSync('mkdir', ['-p', path.join(out, 'agents')]);
  kubelet = await startKubelet({ controlPlane: cp, nodes, env: { FAKE_AGENT_DIR: path.join(out, 'agents') } });
}, 240_000);

afterAll(async () => {
  await kubelet?.stop().catch(() => {});
  await cp?.stop().catch(() => {});
  for (const ns of madeNetns) {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
  rmSync(out, { recursive: true, force: true });
}, 60_000);

test('helm install, a FarmCluster converges, helm uninstall leaves nothing but the CRD', async () => {
  const [httpPort] = await freePorts(1);
  const values = {
    operator: {
      replicas: 1,
      httpPort,
      nodeBinary: process.execPath,
      entrypoint: path.join(root, 'dist/operator/src/main.js'),
      nodeSelector: { [ROLE]: 'control' },
      logLevel: 'debug',
    },
    agent: { nodeBinary: process.execPath, entrypoint: path.join(root, 'test/operator/fake-agent.mjs') },
  };
  const valuesFile = path.join(out, 'values.yaml');
  writeFileSync(valuesFile, yaml.dump(values));
  let installed: string;
  try {
    installed = await helm(['install', 'vf', path.join(root, 'helm/vipfarm'), '-n', RELEASE_NS, '--create-namespace', '-f', valuesFile, '--wait', '--timeout', '120s']);
  } catch (err) {
    throw new Error(`helm install failed: ${(err as { stderr?: string }).stderr}\n${await operatorDiagnostics()}`, { cause: err });
  }
  // NOTES.txt: the next steps.
  expect(installed).toContain('kubectl get farmclusters');
  expect(installed).toContain(`vf-vipfarm-metrics:${httpPort}/metrics`);
  expect(installed).toContain('delete your FarmClusters');
  // Which image it runs, and how to make one (no registry publishes it).
  expect(installed).toContain('Image: ghcr.io/vipfarm/vipfarm:0.1.0 (the operator and the agents)');
  expect(installed).toContain('scripts/build-image.sh --push REGISTRY/REPO:TAG');

  const lease = await until('operator holds the Lease', async () => (await getJson(['get', 'lease', 'vf-vipfarm', '-n', RELEASE_NS])).spec.holderIdentity);
  expect(lease).toMatch(/^vf-vipfarm-/);
  const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
  expect(health.status).toBe(200);

  await cp!.kubectl(['create', 'namespace', NS]);
  await cp!.kubectl(['apply', '-f', '-'], farmYaml('web', NS, {
    virtualIPs: ['10.253.0.100'], interface: 'eth0', rules: [{ port: 80 }], nodeSelector: { [ROLE]: 'farm' }, agent: { metricsPort: 19577 },
  }));
  const fc = await until('web Ready', async () => {
    const f = await getJson(['get', 'fc', 'web', '-n', NS]);
    return f.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True' ? f : undefined;
  }, 120_000);
  expect(fc.status.ready).toBe('2/2');
  expect(fc.status.members.map((m: any) => m.node).sort()).toEqual(['f1', 'f2']);

  // Farms first, while the operator runs (its finalizer waits for the agents' cleanup).
  await cp!.kubectl(['delete', 'fc', 'web', '-n', NS, '--timeout=90s']);
  expect((await getJson(['get', 'pods', '-n', NS])).items).toEqual([]);

  await helm(['uninstall', 'vf', '-n', RELEASE_NS, '--wait', '--timeout', '120s']);
  await until('release objects gone', async () => {
    const left = await kubectlResult(cp!, ['get', 'deployment,serviceaccount,service,role,rolebinding,lease', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/instance=vf', '-o', 'name']);
    const cluster = await kubectlResult(cp!, ['get', 'clusterrole,clusterrolebinding', '-l', 'app.kubernetes.io/instance=vf', '-o', 'name']);
    return left.ok && cluster.ok && left.out.trim() === '' && cluster.out.trim() === '' ? true : undefined;
  }, 60_000);
  await until('operator process stopped', () => kubelet!.running().every((c) => c.namespace !== RELEASE_NS) || undefined, 60_000);
  expect((await getJson(['get', 'pods', '-n', RELEASE_NS])).items).toEqual([]);
  // Helm never deletes CRDs (they would take every FarmCluster with them); NOTES.txt says so.
  expect((await kubectlResult(cp!, ['get', 'crd', 'farmclusters.vipfarm.io', '-o', 'name'])).out.trim()).toBe('customresourcedefinition.apiextensions.k8s.io/farmclusters.vipfarm.io');
}, 400_000);
