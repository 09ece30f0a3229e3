// End to end on real nodes (lab/cluster/realnodes.ts): the project's image imported into
// three nodes' containerd, `helm install` of the chart (the operator in a pod on the pod
// network, reaching the API server through the kubernetes Service), a FarmCluster whose
// agent DaemonSet runs from the image with its real securityContext (NET_ADMIN + NET_RAW,
// read-only root, its host mounts) and real probes, serving a VIP to a test-bed client.
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { findBinDir } from '../../lab/cluster/binaries.js';
import { projectImage, retaggedImage, type ProjectImage } from '../../lab/cluster/project-image.js';
import { startRealCluster, type RealCluster } from '../../lab/cluster/realnodes.js';
import { Holder, runClient, startEcho } from '../../lab/netns/procs.js';
import { farmYaml, root, until } from '../operator/helpers.js';

jest.setTimeout(300_000);
const execFileP = promisify(execFile);

const NS = 'lb';
const FARM = 'web';
const RELEASE_NS = 'vipfarm-system';

let rc: RealCluster;
let image: ProjectImage;
let dir: string;
const kubectl = (args: string[], input?: string): Promise<string> => rc.controlPlane.kubectl(args, input);
const getJson = async (args: string[]): Promise<any> => JSON.parse(await kubectl([...args, '-o', 'json']));
const farmStatus = async (): Promise<any> => (await getJson(['get', 'farmcluster', FARM, '-n', NS])).status ?? {};
const agentPods = async (): Promise<any[]> => (await getJson(['get', 'pods', '-n', NS, '-l', `vipfarm.io/farm=${FARM}`])).items;
const spread = async (count = 200): Promise<Record<string, number>> => {
  const tb = rc.testbed;
  const r = await runClient(tb, tb.clients[0], { vip: tb.vip(0), port: 8080, protocol: 'tcp', count, concurrency: 8 });
  const by: Record<string, number> = {};
  for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
  return by;
};
const allReady = async (): Promise<boolean> => {
  const s = await farmStatus();
  const buckets = (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
  return s.readyNodes === 3 && buckets === 64;
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-e2e-real-'));
  const t0 = Date.now();
  image = await projectImage();
  const tImage = Date.now();
  rc = await startRealCluster({ nodes: 3, clients: 1 });
  const tCluster = Date.now();
  const imported = await rc.importImage(image.archive);
  console.log(JSON.stringify({ event: 'e2e-real-setup', imageBuildMs: image.buildMs, imageReadyMs: tImage - t0, clusterMs: tCluster - tImage, nodesReadyMs: rc.startupMs, importMs: imported.ms }));
  const [repository, tag] = image.ref.split(/:(?=[^:]+$)/);
  const values = {
    image: { repository, tag, pullPolicy: 'Never' },
    operator: { replicas: 1, logLevel: 'debug' },
  };
  writeFileSync(path.join(dir, 'values.yaml'), yaml.dump(values));
  await execFileP(path.join(findBinDir(), 'helm'), ['install', 'vf', path.join(root, 'helm/vipfarm'), '-n', RELEASE_NS, '--create-namespace',
    '-f', path.join(dir, 'values.yaml'), '--wait', '--timeout', '180s', '--kubeconfig', rc.controlPlane.kubeconfigPath], { encoding: 'utf8' })
    .catch(async (err) => {
      const pods = await kubectl(['get', 'pods', '-A', '-o', 'wide']).catch(() => '');
      const logs = await kubectl(['logs', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/name=vipfarm', '--tail=30']).catch((e: Error) => e.message);
      throw new Error(`helm install: ${(err as { stderr?: string }).stderr}\n${pods}\n${logs}`, { cause: err });
    });
  for (const h of rc.testbed.nodes) await startEcho(rc.testbed, h, '0.0.0.0', [8080]);
  await kubectl(['create', 'namespace', NS]);
}, 1_800_000);

afterAll(async () => {
  await rc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

test('the operator runs from the image on the pod network and reaches the API server through the kubernetes Service', async () => {
  const pods = (await getJson(['get', 'pods', '-n', RELEASE_NS])).items;
  expect(pods).toHaveLength(1);
  expect(pods[0].spec.hostNetwork).toBeFalsy();
  expect(pods[0].status.podIP).toMatch(/^10\.244\./);
  expect(pods[0].status.containerStatuses[0].image).toContain(image.ref.split('/').pop());
  // it holds its Lease: it talks to the API server
  const lease = await until('operator holds the Lease', async () => (await getJson(['get', 'lease', 'vf-vipfarm', '-n', RELEASE_NS]).catch(() => ({ spec: {} }))).spec.holderIdentity, 60_000);
  expect(lease).toMatch(/^vf-vipfarm-/);
});

test('a FarmCluster: agents from the image on 3 nodes, Ready by their probes, traffic spread, logs and exec', async () => {
  await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, {
    virtualIPs: [rc.testbed.vip(0)],
    interface: 'eth0',
    rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
    bucketCount: 64,
    heartbeat: { intervalMs: 100, failureThresholdMs: 500 },
  }));
  await until('3/3 ready', allReady, 180_000).catch(async (err) => {
    const pods = await kubectl(['get', 'pods', '-n', NS, '-o', 'wide']).catch(() => '');
    const logs = await kubectl(['logs', '-n', NS, '-l', `vipfarm.io/farm=${FARM}`, '--tail=20']).catch((e: Error) => e.message);
    throw new Error(`${(err as Error).message}\n${pods}\n${logs}`);
  });
  const pods = await agentPods();
  expect(pods.map((p) => p.spec.nodeName).sort()).toEqual(['n1', 'n2', 'n3']);
  for (const p of pods) {
    const c = p.spec.containers[0];
    expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(p.status.containerStatuses[0].ready).toBe(true);
    expect(p.status.containerStatuses[0].restartCount).toBe(0);
  }
  const by = await spread();
  expect(by.failed).toBeUndefined();
  for (const n of ['n1', 'n2', 'n3']) expect(by[n]).toBeGreaterThan(20);
  // kubectl logs: the agent's structured log; exec: the container's capabilities and read-only root
  const p0 = pods[0].metadata.name;
  expect(await kubectl(['logs', '-n', NS, p0, '--tail=200'])).toMatch(/"farm":"web"/);
  const status = await kubectl(['exec', '-n', NS, p0, '--', 'sh', '-c', 'grep CapEff /proc/self/status; touch /x 2>&1 || true']);
  // NET_ADMIN (bit 12) + NET_RAW (bit 13) only
  expect(status).toMatch(/CapEff:\s+0000000000003000/);
  expect(status).toMatch(/Read-only file system/);
});

// Measures what a rollout costs: the established connections a replaced agent's node held
// are counted (issue 11's goal is 0; the first runs broke about half, see the issue note),
// new connections must all succeed once the rollout is done.
test('rolling update to a new image tag: every agent replaced, the farm whole again, broken connections counted', async () => {
  const next = await retaggedImage(image, `${image.ref}-next`);
  await rc.importImage(next.archive);
  const holder = Holder.start(rc.testbed, rc.testbed.clients[0], { vip: rc.testbed.vip(0), port: 8080, count: 24, pingMs: 100 });
  await holder.opened();
  const before = await agentPods();
  await kubectl(['patch', 'farmcluster', FARM, '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { agent: { image: next.ref } } })]);
  const t = Date.now();
  await until('every agent on the new image and ready', async () => {
    const pods = await agentPods();
    return pods.length === 3 && pods.every((p) => p.spec.containers[0].image === next.ref && p.status.containerStatuses?.[0]?.ready)
      && !pods.some((p) => before.some((b) => b.metadata.uid === p.metadata.uid)) && (await allReady());
  }, 240_000);
  const rolloutMs = Date.now() - t;
  const summary = await holder.stop();
  const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2);
  const after = await spread(150);
  console.log(JSON.stringify({ event: 'rolling-update', rolloutMs, established: summary.length, broken: broken.length, newConnectionsFailedAfter: after.failed ?? 0 }));
  expect(summary).toHaveLength(24);
  expect(after.failed).toBeUndefined();
  expect(Object.keys(after).sort()).toEqual(['n1', 'n2', 'n3']);
});

const nodeReady = async (name: string): Promise<string> =>
  (await getJson(['get', 'node', name])).status.conditions.find((c: any) => c.type === 'Ready').status;

test('a node\'s kubelet stopped: the node goes NotReady, its agent keeps serving its share', async () => {
  const n3 = rc.nodes[2];
  await n3.stopKubelet();
  try {
    await until('n3 NotReady', async () => (await nodeReady('n3')) !== 'True', 60_000);
    const by = await spread(150);
    expect(by.failed).toBeUndefined();
    expect(by.n3).toBeGreaterThan(10);
  } finally {
    await n3.startKubelet();
  }
  await until('n3 Ready again', async () => (await nodeReady('n3')) === 'True', 60_000);
  await until('3/3 again', allReady, 60_000);
});

test('a node\'s network cut: its buckets move to the others, it comes back when the cable does', async () => {
  const n3 = rc.nodes[2];
  rc.testbed.setLink(n3.host, false);
  try {
    // n1 and n2 miss n3's heartbeats and take its buckets: every new connection is answered by them.
    const by = await until('n3\'s buckets served by n1 and n2', async () => {
      const b = await spread(100);
      return b.n3 === undefined && b.failed === undefined ? b : undefined;
    }, 60_000);
    expect(Object.keys(by).sort()).toEqual(['n1', 'n2']);
    await until('n3 NotReady', async () => (await nodeReady('n3')) !== 'True', 60_000);
  } finally {
    rc.testbed.setLink(n3.host, true);
  }
  await until('n3 Ready again', async () => (await nodeReady('n3')) === 'True', 90_000);
  await until('3/3 again', allReady, 90_000);
  expect((await spread(150)).failed).toBeUndefined();
});

test('deleting the FarmCluster removes the agents and their kernel state', async () => {
  await kubectl(['delete', 'farmcluster', FARM, '-n', NS, '--wait=true', '--timeout=120s']);
  await until('agent pods gone', async () => (await agentPods()).length === 0, 90_000);
  for (const h of rc.testbed.nodes) {
    expect(rc.testbed.exec(h.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
    expect(rc.testbed.exec(h.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).not.toContain(rc.testbed.vip(0));
  }
});
