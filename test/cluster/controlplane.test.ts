// The real control plane (build.sh's binaries) on its own: the pinned versions, RBAC for
// service accounts (kubectl's impersonation and a real bound token), helm, and a teardown
// that leaves nothing. Nodes, pods and kubelets are real-node tests (realnodes.test.ts and
// the e2e files on lab/cluster/realnodes.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../lab/cluster/controlplane.js';

const K8S_VERSION = 'v1.36.3';
const NS = 'vf-test';

let cp: ControlPlane | undefined;

/** Running, not a zombie: a killed orphan may wait for its reaper a while. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function canI(sa: string, ...args: string[]): Promise<string> {
  // `auth can-i` exits 1 for "no": read the answer, not the exit code.
  try {
    return (await cp!.kubectl(['auth', 'can-i', ...args, `--as=system:serviceaccount:${NS}:${sa}`, '-n', NS])).trim();
  } catch (err) {
    const m = /\): (no.*)$/s.exec((err as Error).message);
    if (m) return m[1].trim();
    throw err;
  }
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.kubectl(['create', 'namespace', NS]);
}, 240_000);

afterAll(async () => {
  await cp?.stop();
}, 60_000);

test('kubectl version shows the pinned release on client and server', async () => {
  const v = JSON.parse(await cp!.kubectl(['version', '-o', 'json'])) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string; minor: string } };
  expect(v.clientVersion.gitVersion).toBe(K8S_VERSION);
  expect(v.serverVersion.gitVersion).toBe(K8S_VERSION);
  expect(v.serverVersion.minor).toBe('36');
});

test('RBAC denies a service account what it was not granted', async () => {
  await cp!.kubectl(['create', 'serviceaccount', 'limited', '-n', NS]);
  await cp!.kubectl(['create', 'role', 'pod-reader', '--verb=get,list,watch', '--resource=pods', '-n', NS]);
  await cp!.kubectl(['create', 'rolebinding', 'limited-pod-reader', '--role=pod-reader', `--serviceaccount=${NS}:limited`, '-n', NS]);
  expect(await canI('limited', 'list', 'pods')).toBe('yes');
  expect(await canI('limited', 'list', 'secrets')).toBe('no');
  expect(await canI('limited', 'create', 'daemonsets.apps')).toBe('no');
  expect(await canI('limited', 'delete', 'pods')).toBe('no');
  expect(await canI('default', 'list', 'pods')).toBe('no');
});

test('a bound service-account token (TokenRequest) authenticates as that account, and RBAC applies to it', async () => {
  const token = (await cp!.kubectl(['create', 'token', 'limited', '-n', NS, '--duration=10m'])).trim();
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'c', server: cp!.server, caFile: cp!.pki.caCert, skipTLSVerify: false }, { name: 'limited', token });
  const who = await kc.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
  expect(who.status?.userInfo?.username).toBe(`system:serviceaccount:${NS}:limited`);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  expect((await core.listNamespacedPod({ namespace: NS })).items).toEqual([]);
  const refused = await core.listNamespacedSecret({ namespace: NS }).then(() => 200, (e: { code?: number }) => e.code);
  expect(refused).toBe(403);
});

test('helm (built alongside) reports its pinned version and talks to the cluster', async () => {
  const helm = path.join(cp!.binDir, 'helm');
  expect(execFileSync(helm, ['version', '--short'], { encoding: 'utf8' })).toMatch(/^v3\.22\.0/);
  const list = execFileSync(helm, ['list', '-A', '-o', 'json', '--kubeconfig', cp!.kubeconfigPath], { encoding: 'utf8' });
  expect(JSON.parse(list)).toEqual([]);
});

test('teardown leaves no processes or data folder', async () => {
  const pids = Object.values(cp!.pids);
  expect(pids.length).toBe(4);
  expect(existsSync(cp!.dir)).toBe(true);
  await cp!.stop();
  for (const pid of pids) expect(alive(pid)).toBe(false);
  expect(existsSync(cp!.dir)).toBe(false);
}, 60_000);
