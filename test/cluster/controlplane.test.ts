// The real control plane (build.sh's binaries), Node objects for two network-namespace
// hosts, and the test kubelet running a DaemonSet's processes inside those namespaces.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../lab/cluster/controlplane.js';
import { startKubelet, type Kubelet, type KubeletNode } from '../../lab/cluster/kubelet.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

const K8S_VERSION = 'v1.36.3';
const farm = { 'vipfarm.io/test-role': 'farm' };
// Two hosts of the data-plane test bed (namespaces on a bridge), made in beforeAll.
let tb: Testbed | undefined;
let nsNodes: KubeletNode[] = [];
// The operator's Deployment runs on a node in the host namespace.
const hostNode: KubeletNode = { name: 'host', ip: '127.0.0.1', netns: null, labels: { 'vipfarm.io/test-role': 'control' } };
let nodes: KubeletNode[] = [];
const NS = 'vf-test';

let cp: ControlPlane | undefined;
let kubelet: Kubelet | undefined;
const out = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-cp-test-'));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

/** Running, not a zombie: a killed orphan may wait for its reaper a while. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function netnsPids(ns: string): number[] {
  return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
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

async function cleanup(): Promise<void> {
  await kubelet?.stop();
  await cp?.stop();
  tb?.destroy();
  rmSync(out, { recursive: true, force: true });
}

beforeAll(async () => {
  try {
    tb = createTestbed({ nodes: 2, clients: 0 });
    nsNodes = tb.nodes.map((h) => ({ name: h.name, ip: h.ip, netns: h.netns, labels: farm }));
    nodes = [...nsNodes, hostNode];
    cp = await startControlPlane({ nodes });
    kubelet = await startKubelet({ controlPlane: cp, nodes });
    await cp.kubectl(['create', 'namespace', NS]);
    await until('default ServiceAccount in the test namespace', () =>
      cp!.kubectl(['get', 'serviceaccount', 'default', '-n', NS, '-o', 'name']).then((s) => s.trim() || undefined),
    );
  } catch (err) {
    await cleanup();
    throw err;
  }
}, 240_000);

afterAll(cleanup, 60_000);

test('kubectl version shows the pinned release on client and server', async () => {
  const v = JSON.parse(await cp!.kubectl(['version', '-o', 'json'])) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string; minor: string } };
  expect(v.clientVersion.gitVersion).toBe(K8S_VERSION);
  expect(v.serverVersion.gitVersion).toBe(K8S_VERSION);
  expect(v.serverVersion.minor).toBe('36');
});

test('kubectl get nodes shows the test nodes Ready with their InternalIP', async () => {
  const lines = (await cp!.kubectl(['get', 'nodes', '--no-headers', '-o', 'wide'])).trim().split('\n');
  const rows = lines.map((l) => l.split(/\s+/));
  const want = [...nodes].sort((a, b) => a.name.localeCompare(b.name)).map((n) => [n.name, 'Ready', n.ip]);
  expect(rows.map((r) => [r[0], r[1], r[5]])).toEqual(want);
});

test('a DaemonSet gets one pod per node, each process in its node namespace with the downward API env', async () => {
  const ds = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'probe-ns', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'probe-ns' } },
      template: {
        metadata: { labels: { app: 'probe-ns' } },
        spec: {
          hostNetwork: true,
          nodeSelector: farm,
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'main',
              image: 'not-run',
              command: ['sh', '-c'],
              args: [`readlink /proc/self/ns/net > ${out}/$(NODE_NAME).netns; echo "$NODE_NAME $POD_NAME $POD_NAMESPACE $HOST_IP" > ${out}/$(NODE_NAME).env; echo "started on $NODE_NAME"; echo "line 2"; exec sleep 1000`],
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
              ],
            },
          ],
        },
      },
    },
  };
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(ds));
  const apps = cp!.kubeConfig.makeApiClient(k8s.AppsV1Api);
  await until('DaemonSet numberReady 2', async () => {
    const s = (await apps.readNamespacedDaemonSet({ name: 'probe-ns', namespace: NS })).status;
    return s?.desiredNumberScheduled === 2 && s.numberReady === 2 ? s : undefined;
  }, 90_000);

  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=probe-ns' })).items;
  expect(pods.map((p) => p.spec!.nodeName).sort()).toEqual(['n1', 'n2']);
  for (const p of pods) {
    expect(p.status?.phase).toBe('Running');
    expect(p.status?.hostIP).toBe(nodes.find((n) => n.name === p.spec!.nodeName)!.ip);
  }

  const running = kubelet!.running().filter((r) => r.namespace === NS && r.pod.startsWith('probe-ns-'));
  expect(running.map((r) => r.node).sort()).toEqual(['n1', 'n2']);
  for (const n of nsNodes) {
    const r = running.find((x) => x.node === n.name)!;
    const other = nsNodes.find((x) => x !== n)!;
    // Seen from the namespaces themselves: the process is a member of its node's one only.
    expect(netnsPids(n.netns!)).toContain(r.pid);
    expect(netnsPids(other.netns!)).not.toContain(r.pid);
    const inside = execFileSync('ip', ['netns', 'exec', n.netns!, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).trim();
    const recorded = await until(`${n.name} netns file`, () => (existsSync(`${out}/${n.name}.netns`) ? readFileSync(`${out}/${n.name}.netns`, 'utf8').trim() : undefined));
    expect(recorded).toBe(inside);
    expect(recorded).not.toBe(readlinkSync('/proc/self/ns/net'));
    const pod = pods.find((p) => p.spec!.nodeName === n.name)!;
    expect(readFileSync(`${out}/${n.name}.env`, 'utf8').trim()).toBe(`${n.name} ${pod.metadata!.name} ${NS} ${n.ip}`);
    // kubectl logs, through the apiserver to the test kubelet's log endpoint
    await until(`${n.name} log`, async () => ((await cp!.kubectl(['logs', pod.metadata!.name!, '-n', NS])) === `started on ${n.name}\nline 2\n` ? true : undefined), 10_000);
    expect(await cp!.kubectl(['logs', pod.metadata!.name!, '-n', NS, '--tail=1'])).toBe('line 2\n');
  }
}, 120_000);

test('deleting the DaemonSet stops the processes and removes the pods', async () => {
  const before = kubelet!.running().filter((r) => r.pod.startsWith('probe-ns-'));
  expect(before).toHaveLength(2);
  await cp!.kubectl(['delete', 'daemonset', 'probe-ns', '-n', NS, '--wait=false']);
  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  await until('pods gone', async () => ((await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=probe-ns' })).items.length === 0 ? true : undefined), 60_000);
  for (const r of before) expect(alive(r.pid)).toBe(false);
  expect(kubelet!.running().filter((r) => r.pod.startsWith('probe-ns-'))).toHaveLength(0);
  for (const n of nsNodes) expect(netnsPids(n.netns!)).not.toEqual(expect.arrayContaining(before.map((r) => r.pid)));
}, 90_000);

test('a Deployment on the host-namespace node runs its process in the host namespace', async () => {
  const dep = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'operator-like', namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'operator-like' } },
      template: {
        metadata: { labels: { app: 'operator-like' } },
        spec: {
          nodeSelector: { 'vipfarm.io/test-role': 'control' },
          terminationGracePeriodSeconds: 2,
          containers: [{ name: 'main', image: 'not-run', command: ['sh', '-c', `readlink /proc/self/ns/net > ${out}/host.netns; exec sleep 1000`] }],
        },
      },
    },
  };
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(dep));
  await cp!.kubectl(['rollout', 'status', 'deployment/operator-like', '-n', NS, '--timeout=60s']);
  const r = kubelet!.running().find((x) => x.pod.startsWith('operator-like-'));
  expect(r?.node).toBe('host');
  expect(r?.netns).toBeNull();
  const recorded = await until('host netns file', () => (existsSync(`${out}/host.netns`) ? readFileSync(`${out}/host.netns`, 'utf8').trim() : undefined));
  expect(recorded).toBe(readlinkSync('/proc/self/ns/net'));
  await cp!.kubectl(['delete', 'deployment', 'operator-like', '-n', NS, '--wait=false']);
  await until('operator-like process gone', () => (alive(r!.pid) ? undefined : true), 30_000);
}, 90_000);

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

test('a pod reaches the API from its namespace with its own token, and RBAC applies to it', async () => {
  const result = `${out}/whoami.json`;
  // client-node's in-cluster config, rooted where the test kubelet put the token.
  const script = `
    import * as k8s from '@kubernetes/client-node';
    import { writeFileSync } from 'node:fs';
    const kc = new k8s.KubeConfig();
    kc.loadFromCluster(process.env.VIPFARM_SA_ROOT);
    const auth = kc.makeApiClient(k8s.AuthenticationV1Api);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const who = await auth.createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    const pods = await core.listNamespacedPod({ namespace: process.env.POD_NAMESPACE });
    let secrets;
    try { await core.listNamespacedSecret({ namespace: process.env.POD_NAMESPACE }); secrets = 200; } catch (e) { secrets = e.code; }
    writeFileSync(process.env.RESULT, JSON.stringify({ user: who.status.userInfo.username, pods: pods.items.length, secrets, server: kc.getCurrentCluster().server }));
  `;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'whoami', namespace: NS },
    spec: {
      nodeName: 'n2',
      serviceAccountName: 'limited',
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'not-run',
          command: [process.execPath, '--input-type=module', '-e', script],
          env: [
            { name: 'RESULT', value: result },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          ],
        },
      ],
    },
  };
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(pod));
  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const phase = await until('whoami pod finished', async () => {
    const p = await core.readNamespacedPod({ name: 'whoami', namespace: NS });
    return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p.status.phase : undefined;
  }, 60_000);
  const log = kubelet!.logPath(NS, 'whoami', 'main');
  expect({ phase, log: phase === 'Succeeded' ? '' : log && readFileSync(log, 'utf8') }).toEqual({ phase: 'Succeeded', log: '' });
  const got = JSON.parse(readFileSync(result, 'utf8')) as { user: string; pods: number; secrets: number; server: string };
  expect(got.user).toBe(`system:serviceaccount:${NS}:limited`);
  expect(got.pods).toBeGreaterThanOrEqual(1);
  expect(got.secrets).toBe(403);
  expect(got.server).toBe(`https://127.0.0.1:${cp!.port}`);
  await cp!.kubectl(['delete', 'pod', 'whoami', '-n', NS, '--wait=false']);
}, 90_000);

test('readiness follows an httpGet probe run inside the node namespace', async () => {
  const server = `require('http').createServer((q, s) => { s.writeHead(q.url === '/healthz' ? 200 : 500); s.end(); }).listen(18080, process.env.HOST_IP)`;
  const mk = (name: string, port: number): object => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      nodeName: 'n1',
      terminationGracePeriodSeconds: 2,
      containers: [
        {
          name: 'web',
          image: 'not-run',
          command: [process.execPath, '-e', server],
          env: [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }],
          readinessProbe: { httpGet: { path: '/healthz', port }, periodSeconds: 1, failureThreshold: 1 },
        },
      ],
    },
  });
  // Same server, but the second pod's probe targets a port nothing listens on.
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(mk('web-ok', 18080)));
  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const ready = (p: k8s.V1Pod): string | undefined => p.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  await until('web-ok Ready', async () => (ready(await core.readNamespacedPod({ name: 'web-ok', namespace: NS })) === 'True' ? true : undefined), 30_000);
  await cp!.kubectl(['delete', 'pod', 'web-ok', '-n', NS, '--wait=true', '--timeout=30s']);
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(mk('web-bad', 18081)));
  await until('web-bad Running', async () => ((await core.readNamespacedPod({ name: 'web-bad', namespace: NS })).status?.phase === 'Running' ? true : undefined), 30_000);
  await sleep(4000);
  const bad = await core.readNamespacedPod({ name: 'web-bad', namespace: NS });
  expect(bad.status?.phase).toBe('Running');
  expect(ready(bad)).toBe('False');
  await cp!.kubectl(['delete', 'pod', 'web-bad', '-n', NS, '--wait=true', '--timeout=30s']);
}, 90_000);

test('kubectl logs -f follows a running container', async () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'ticker', namespace: NS },
    spec: {
      nodeName: 'n1',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: 'not-run', command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done'] }],
    },
  };
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(pod));
  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  await until('ticker Running', async () => ((await core.readNamespacedPod({ name: 'ticker', namespace: NS })).status?.phase === 'Running' ? true : undefined), 30_000);
  const f = spawn(path.join(cp!.binDir, 'kubectl'), [`--kubeconfig=${cp!.kubeconfigPath}`, 'logs', '-f', 'ticker', '-n', NS], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  f.stdout.on('data', (d: Buffer) => (text += d.toString()));
  try {
    // Lines written after kubectl connected arrive too: the stream is live, not a snapshot.
    const first = await until('a first tick', () => /tick (\d+)/.exec(text)?.[1]);
    await until('ticks after it', () => (text.includes(`tick ${Number(first) + 5}\n`) ? true : undefined), 15_000);
  } finally {
    f.kill();
  }
  expect(text).toMatch(/^tick 1\ntick 2\n/);
  await cp!.kubectl(['delete', 'pod', 'ticker', '-n', NS, '--wait=true', '--timeout=30s']);
}, 60_000);

test('secret and configMap reach the process (env and files); a missing secret is waited for', async () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'cfg', namespace: NS },
    spec: {
      nodeName: 'n1',
      terminationGracePeriodSeconds: 1,
      volumes: [
        { name: 'hb', secret: { secretName: 'hb-key' } },
        { name: 'conf', configMap: { name: 'farm-conf' } },
      ],
      containers: [
        {
          name: 'main',
          image: 'not-run',
          command: ['sh', '-c', `echo "$KEY|$MODE" > ${out}/cfg.env; echo "$VIPFARM_MOUNTS" > ${out}/cfg.mounts; exec sleep 1000`],
          env: [
            { name: 'KEY', valueFrom: { secretKeyRef: { name: 'hb-key', key: 'key' } } },
            { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'farm-conf', key: 'mode' } } },
          ],
          volumeMounts: [
            { name: 'hb', mountPath: '/etc/vipfarm/hb', readOnly: true },
            { name: 'conf', mountPath: '/etc/vipfarm/farm.yaml', subPath: 'farm.yaml' },
          ],
        },
      ],
    },
  };
  await cp!.kubectl(['create', 'configmap', 'farm-conf', '-n', NS, '--from-literal=mode=fast', '--from-literal=farm.yaml=vip: 10.99.0.100']);
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify(pod));
  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const waiting = await until('CreateContainerConfigError', async () => {
    const st = (await core.readNamespacedPod({ name: 'cfg', namespace: NS })).status?.containerStatuses?.[0]?.state?.waiting;
    return st?.reason === 'CreateContainerConfigError' ? st : undefined;
  }, 30_000);
  expect(waiting.message).toMatch(/secret "hb-key" not found/);
  await cp!.kubectl(['create', 'secret', 'generic', 'hb-key', '-n', NS, '--from-literal=key=s3cret']);
  await until('cfg Running', async () => ((await core.readNamespacedPod({ name: 'cfg', namespace: NS })).status?.phase === 'Running' ? true : undefined), 30_000);
  const envLine = await until('cfg env file', () => (existsSync(`${out}/cfg.env`) ? readFileSync(`${out}/cfg.env`, 'utf8').trim() : undefined));
  expect(envLine).toBe('s3cret|fast');
  const mounts = JSON.parse(readFileSync(`${out}/cfg.mounts`, 'utf8')) as Record<string, string>;
  expect(readFileSync(path.join(mounts['/etc/vipfarm/hb'], 'key'), 'utf8')).toBe('s3cret');
  expect(readFileSync(mounts['/etc/vipfarm/farm.yaml'], 'utf8')).toBe('vip: 10.99.0.100');
  await cp!.kubectl(['delete', 'pod', 'cfg', '-n', NS, '--wait=true', '--timeout=30s']);
  expect(existsSync(mounts['/etc/vipfarm/hb'])).toBe(false);
}, 90_000);

test('restartPolicy: Always restarts a failing container, Never leaves the pod Failed', async () => {
  const mk = (name: string, restartPolicy: string): object => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: { nodeName: 'n2', restartPolicy, containers: [{ name: 'main', image: 'not-run', command: ['sh', '-c', 'exit 3'] }] },
  });
  await cp!.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [mk('crash-always', 'Always'), mk('crash-never', 'Never')] }));
  const core = cp!.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const always = await until('crash-always restarted twice', async () => {
    const cs = (await core.readNamespacedPod({ name: 'crash-always', namespace: NS })).status?.containerStatuses?.[0];
    return (cs?.restartCount ?? 0) >= 2 ? cs : undefined;
  }, 30_000);
  expect(always!.lastState?.terminated?.exitCode).toBe(3);
  // One state at a time, as a kubelet reports it.
  expect(Object.keys(always!.state ?? {}).filter((k) => (always!.state as Record<string, unknown>)[k])).toHaveLength(1);
  const never = await until('crash-never Failed', async () => {
    const st = (await core.readNamespacedPod({ name: 'crash-never', namespace: NS })).status;
    return st?.phase === 'Failed' ? st : undefined;
  }, 30_000);
  expect(never.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
  expect(never.containerStatuses?.[0]?.restartCount).toBe(0);
  await cp!.kubectl(['delete', 'pod', 'crash-always', 'crash-never', '-n', NS, '--wait=true', '--timeout=30s']);
}, 90_000);

test('helm (built alongside) reports its pinned version and talks to the cluster', async () => {
  const helm = path.join(cp!.binDir, 'helm');
  expect(execFileSync(helm, ['version', '--short'], { encoding: 'utf8' })).toMatch(/^v3\.22\.0/);
  const list = execFileSync(helm, ['list', '-A', '-o', 'json', '--kubeconfig', cp!.kubeconfigPath], { encoding: 'utf8' });
  expect(JSON.parse(list)).toEqual([]);
});

test('teardown leaves no processes, namespaces or data folders', async () => {
  const pids = [...Object.values(cp!.pids), ...kubelet!.running().map((r) => r.pid)];
  expect(pids.length).toBeGreaterThanOrEqual(4);
  const dirs = [cp!.dir, kubelet!.dir];
  for (const d of dirs) expect(existsSync(d)).toBe(true);
  await kubelet!.stop();
  await cp!.stop();
  // Nothing of ours (pods, namespace helpers) is left inside the node namespaces.
  for (const n of nsNodes) expect(netnsPids(n.netns!)).toEqual([]);
  await cleanup();
  for (const pid of pids) expect(alive(pid)).toBe(false);
  for (const d of dirs) expect(existsSync(d)).toBe(false);
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const n of nsNodes) expect(left).not.toContain(n.netns!);
  expect(existsSync(out)).toBe(false);
}, 60_000);
