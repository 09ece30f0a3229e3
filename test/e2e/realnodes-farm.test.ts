// End to end on real nodes (lab/cluster/realnodes.ts): the project's image imported into
// three nodes' containerd, `helm install` of the chart (the operator in a pod on the pod
// network, reaching the API server through the kubernetes Service), a FarmCluster whose
// agent DaemonSet runs from the image with its real securityContext (NET_ADMIN + NET_RAW,
// read-only root, its host mounts) and real probes, serving a VIP to a test-bed client.
// The cluster is dual-stack (IPv4 primary): after the IPv4 farm's tests, two farms with an
// IPv6 and an IPv4 VIP (Flooding, and Directed on a switch that floods no unknown unicast).
// One cluster for the whole file (setup is most of its time): the tests run in order on the
// same farm, each leaving it whole (3/3, the spec it found) for the next.
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { defaultVirtualMAC } from '../../common/src/config/defaults.js';
import { backendDeployment, tallyGreetings } from '../../lab/cluster/backend.js';
import { findBinDir } from '../../lab/cluster/binaries.js';
import { installChart } from '../../lab/cluster/chart.js';
import { projectImage, retaggedImage, type ProjectImage } from '../../lab/cluster/project-image.js';
import { serviceOwnedBuckets, stagePackets } from '../../lab/cluster/real-helm.js';
import { startRealCluster, type RealCluster } from '../../lab/cluster/realnodes.js';
import { Holder, runClient, startEcho } from '../../lab/netns/procs.js';
import { farmYaml, until } from '../operator/helpers.js';

jest.setTimeout(300_000);
const execFileP = promisify(execFile);

const NS = 'lb';
const FARM = 'web';
const RELEASE_NS = 'vipfarm-system';

let rc: RealCluster;
let image: ProjectImage;
/** helm install's output (NOTES.txt) */
let installed = '';
const kubectl = (args: string[], input?: string): Promise<string> => rc.controlPlane.kubectl(args, input);
const getJson = async (args: string[]): Promise<any> => JSON.parse(await kubectl([...args, '-o', 'json']));
const farmStatus = async (farm = FARM): Promise<any> => (await getJson(['get', 'farmcluster', farm, '-n', NS])).status ?? {};
const agentPods = async (farm = FARM): Promise<any[]> => (await getJson(['get', 'pods', '-n', NS, '-l', `vipfarm.io/farm=${farm}`])).items;
const spread = async (count = 200): Promise<Record<string, number>> => {
  const tb = rc.testbed;
  const r = await runClient(tb, tb.clients[0], { vip: tb.vip(0), port: 8080, protocol: 'tcp', count, concurrency: 8 });
  const by: Record<string, number> = {};
  for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
  return by;
};
/** The farm's spec (tests that edit it put it back). */
const spec = (): Record<string, unknown> => ({
  virtualIPs: [rc.testbed.vip(0)],
  interface: 'eth0',
  rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
  bucketCount: 64,
  // 2 s, not 500 ms: at a load of 30 on 2 cores agents were falsely declared dead (the
  // orphan sets then reset their connections); takeover speed is tested elsewhere.
  heartbeat: { intervalMs: 100, failureThresholdMs: 2000 },
  // the pool LoadBalancer Services of our class get their address from
  addresses: [`${rc.testbed.vip(1)}-${rc.testbed.vip(2)}`],
});
const applySpec = async (s: Record<string, unknown>): Promise<number> => {
  await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, s));
  return (await getJson(['get', 'farmcluster', FARM, '-n', NS])).metadata.generation;
};
const allReady = async (farm = FARM): Promise<boolean> => {
  const s = await farmStatus(farm);
  const buckets = (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
  return s.readyNodes === 3 && buckets === 64;
};

beforeAll(async () => {
  const t0 = Date.now();
  image = await projectImage();
  const tImage = Date.now();
  rc = await startRealCluster({ nodes: 3, clients: 1, families: ['ipv4', 'ipv6'] });
  const tCluster = Date.now();
  const imported = await rc.importImage(image.archive);
  console.log(JSON.stringify({ event: 'e2e-real-setup', imageBuildMs: image.buildMs, imageReadyMs: tImage - t0, clusterMs: tCluster - tImage, nodesReadyMs: rc.startupMs, importMs: imported.ms }));
  installed = await installChart(rc.controlPlane, { release: 'vf', namespace: RELEASE_NS, image: image.ref, values: { operator: { replicas: 1, logLevel: 'debug' } } });
  // '::' serves both families
  for (const h of rc.testbed.nodes) await startEcho(rc.testbed, h, '::', [8080, 8081]);
  await kubectl(['create', 'namespace', NS]);
}, 1_800_000);

afterAll(async () => {
  await rc?.stop();
}, 120_000);

test('the operator runs from the image on the pod network and reaches the API server through the kubernetes Service', async () => {
  const pods = (await getJson(['get', 'pods', '-n', RELEASE_NS])).items;
  expect(pods).toHaveLength(1);
  expect(pods[0].spec.hostNetwork).toBeFalsy();
  expect(pods[0].status.podIP).toMatch(/^10\.244\./);
  // the dual-stack pod network: an address of each family
  expect(pods[0].status.podIPs.map((p: any) => p.ip)).toEqual([expect.stringMatching(/^10\.244\./), expect.stringMatching(/^fd00:10:244:/)]);
  expect(pods[0].status.containerStatuses[0].image).toContain(image.ref.split('/').pop());
  // it holds its Lease: it talks to the API server
  const lease = await until('operator holds the Lease', async () => (await getJson(['get', 'lease', 'vf-vipfarm', '-n', RELEASE_NS]).catch(() => ({ spec: {} }))).spec.holderIdentity, 60_000);
  expect(lease).toMatch(/^vf-vipfarm-/);
  // its HTTP endpoint answers (from inside its container: the pod network is not the host's)
  const health = await kubectl(['exec', '-n', RELEASE_NS, pods[0].metadata.name, '--', 'node', '-e',
    `fetch('http://127.0.0.1:${pods[0].spec.containers[0].ports[0].containerPort}/healthz').then((r) => console.log(r.status))`]);
  expect(health.trim()).toBe('200');
  // NOTES.txt: the next steps, the image it runs and how to make one (no registry publishes it)
  expect(installed).toContain('kubectl get farmclusters');
  expect(installed).toContain('delete your FarmClusters');
  expect(installed).toContain(`Image: ${image.ref} (the operator and the agents)`);
  expect(installed).toContain('scripts/build-image.sh --push REGISTRY/REPO:TAG');
});

test('a FarmCluster: agents from the image on 3 nodes, Ready by their probes, traffic spread, logs and exec', async () => {
  await applySpec(spec());
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
  expect((await farmStatus()).members.map((m: any) => m.node).sort()).toEqual(['n1', 'n2', 'n3']);
  expect(await kubectl(['get', 'farmclusters', '-n', NS])).toMatch(new RegExp(`${FARM}\\s+${rc.testbed.vip(0).replace(/\./g, '\\.')}\\s+3/3`));
  const by = await spread();
  expect(by.failed).toBeUndefined();
  for (const n of ['n1', 'n2', 'n3']) expect(by[n]).toBeGreaterThan(20);
  // the agents' network self-test, through their status entries to the operator's condition:
  // the test bed's bridge floods the virtual MAC
  const judged = await until('every node judged the network', async () => {
    const st = await farmStatus();
    return (st.members ?? []).length === 3 && st.members.every((m: any) => m.networkFloods) ? st : undefined;
  }, 30_000);
  expect(judged.members.map((m: any) => m.networkFloods.floods)).toEqual([true, true, true]);
  const floods = await until('NetworkFloods condition for 3 nodes', async () => {
    const c = (await farmStatus()).conditions?.find((x: any) => x.type === 'NetworkFloods');
    return c && !/not judged/.test(c.message) ? c : undefined;
  }, 30_000);
  expect({ status: floods.status, reason: floods.reason }).toEqual({ status: 'True', reason: 'VirtualMACFlooded' });
  // kubectl logs: the agent's structured log; exec: the container's capabilities and read-only root
  const p0 = pods[0].metadata.name;
  // retried: at a load of 26 one read came back empty
  await until('kubectl logs shows the agent\'s log', async () => /"farm":"web"/.test(await kubectl(['logs', '-n', NS, p0, '--tail=200'])), 30_000);
  const status = await kubectl(['exec', '-n', NS, p0, '--', 'sh', '-c', 'grep CapEff /proc/self/status; touch /x 2>&1 || true']);
  // NET_ADMIN (bit 12) + NET_RAW (bit 13) only
  expect(status).toMatch(/CapEff:\s+0000000000003000/);
  expect(status).toMatch(/Read-only file system/);
});

// LoadBalancer Services of our class take the farm's pool addresses and every agent programs
// them like a virtual IP (traffic through kube-proxy to pods, Local policy and the takeover:
// services-realnodes.test.ts).
const ruleset = (netns: string): string => rc.testbed.exec(netns, ['nft', 'list', 'table', 'inet', `vipfarm_${FARM}`]);
const loAddrs = (netns: string): string => rc.testbed.exec(netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo']);

test('a LoadBalancer Service gets the pool\'s first address and every node programs it; deleting it removes its rules and address on every node', async () => {
  await kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'shop', namespace: NS },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'vipfarm.io/farm', selector: { app: 'shop' }, ports: [{ port: 8090, targetPort: 8090, protocol: 'TCP' }] },
  }));
  const ip = await until('shop has an address', async () => (await getJson(['get', 'svc', 'shop', '-n', NS])).status?.loadBalancer?.ingress?.[0]?.ip as string | undefined, 30_000);
  expect(ip).toBe(rc.testbed.vip(1));
  await until('every node programs the Service IP', () => rc.testbed.nodes.every((h) => ruleset(h.netns).includes(`ip daddr ${ip} tcp dport 8090`) && loAddrs(h.netns).includes(`${ip}/32`)), 30_000);
  expect((await farmStatus()).services).toEqual([{ ip, rules: [{ port: 8090, protocol: 'tcp', affinity: 'ClientIPAndPort' }], services: [`${NS}/shop`], externalTrafficPolicy: 'Cluster' }]);
  // the farm's own VIP still serves only its own port: the Service's port is not opened there
  expect(ruleset(rc.testbed.nodes[0].netns)).not.toContain(`ip daddr ${rc.testbed.vip(0)} tcp dport 8090`);

  await kubectl(['delete', 'svc', 'shop', '-n', NS]);
  await until('Service IP gone from every node', () => rc.testbed.nodes.every((h) => !ruleset(h.netns).includes(ip) && !loAddrs(h.netns).includes(`${ip}/32`)), 30_000);
  await until('status.services empty', async () => ((await farmStatus()).services ?? []).length === 0, 30_000);
  const by = await spread(150);
  expect(by.failed).toBeUndefined();
  expect(Object.keys(by).sort()).toEqual(['n1', 'n2', 'n3']);
  // the farm's own VIP is still on every node (removing the Service's undid nothing of it)
  for (const h of rc.testbed.nodes) expect(loAddrs(h.netns)).toContain(`${rc.testbed.vip(0)}/32`);
});

const member = async (node: string): Promise<any> => ((await farmStatus()).members ?? []).find((m: any) => m.node === node);
const withPort8081 = (weights: Record<string, number>): Record<string, unknown> => {
  const base = spec();
  return { ...base, rules: [...(base.rules as object[]), { port: 8081, protocol: 'tcp', affinity: 'ClientIP' }], weights };
};

test('spec edits (a new port rule, a weight) re-program the agents; established connections survive', async () => {
  await until('3/3 before', allReady, 60_000);
  const holder = Holder.start(rc.testbed, rc.testbed.clients[0], { vip: rc.testbed.vip(0), port: 8080, count: 30, pingMs: 100 });
  await holder.opened();
  await applySpec(withPort8081({ n1: 2 }));
  await until('n1 weighted 2', async () => {
    const n1 = await member('n1');
    return n1?.weight === 2 && n1.buckets >= 31;
  }, 60_000);
  const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: rc.testbed.vip(0), port: 8081, protocol: 'tcp', count: 30 });
  expect(r.results.filter((a) => a.node === null)).toEqual([]);
  const summary = await holder.stop();
  expect(summary).toHaveLength(30);
  expect(summary.filter((c) => c.error !== null || c.echoed < c.sent - 2)).toEqual([]);
});

test('a spec the kernel refuses (no such interface): every node keeps serving, its status entry and describe say why; the corrected spec is applied', async () => {
  const weights = Object.fromEntries(((await farmStatus()).members ?? []).map((m: any) => [m.node, m.weight]));
  const bad = await applySpec({ ...spec(), interface: 'nosuch0', weights: { n2: 2 } });
  const refused = await until('every node refused', async () => {
    const s = await farmStatus();
    return (s.members ?? []).filter((m: any) => m.configRefused?.generation === bad).length === 3 ? s : undefined;
  }, 60_000);
  for (const m of refused.members) {
    expect(m.configRefused).toMatchObject({ reason: 'KernelRefused', message: expect.stringMatching(/interface nosuch0/) });
    expect(m.appliedGeneration).toBeLessThan(bad);
    expect(m.weight).toBe(weights[m.node]); // still the running spec's weights
  }
  // the running config serves on, on every node, and the agents were not restarted for it
  const by = await spread(150);
  expect(by.failed).toBeUndefined();
  expect(Object.keys(by).sort()).toEqual(['n1', 'n2', 'n3']);
  const described = await until('refusal in describe', async () => {
    const d = await kubectl(['describe', 'farmcluster', FARM, '-n', NS]);
    return /ConfigRefused/.test(d) && /n2 refused generation/.test(d) ? d : undefined;
  }, 30_000);
  expect(described).toMatch(/Config Refused:[\s\S]*Reason:\s+KernelRefused/);

  const good = await applySpec({ ...spec(), weights: { n2: 2 } });
  await until('corrected spec applied everywhere', async () => {
    const ms = (await farmStatus()).members ?? [];
    return ms.length === 3 && ms.every((m: any) => m.configRefused === undefined && m.appliedGeneration === good) &&
      ms.find((m: any) => m.node === 'n2')?.weight === 2;
  }, 60_000);
  await until('Ready again', async () => (await farmStatus()).conditions?.find((c: any) => c.type === 'Ready')?.status === 'True', 30_000);
});

test('with the API server away the farm keeps serving, and catches up when it returns', async () => {
  const apiserver = rc.controlPlane.pids['kube-apiserver'];
  expect(apiserver).toBeGreaterThan(0);
  process.kill(apiserver, 'SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const by = await spread(200);
    expect(by.failed).toBeUndefined();
    expect(Object.keys(by).sort()).toEqual(['n1', 'n2', 'n3']);
  } finally {
    process.kill(apiserver, 'SIGCONT');
  }
  // a change made after it returns reaches the agents
  await until('API server back', async () => (await kubectl(['get', '--raw', '/readyz'])).includes('ok'), 30_000);
  await applySpec(withPort8081({ n3: 3 }));
  await until('n3 weighted 3', async () => {
    const n3 = await member('n3');
    return n3?.weight === 3 && n3.buckets >= 37;
  }, 60_000);
  // the next tests start from the plain spec: equal weights, one rule
  await applySpec(spec());
  await until('equal weights, 3/3', async () => ((await farmStatus()).members ?? []).every((m: any) => (m.weight ?? 1) === 1) && allReady(), 60_000);
});

// A rollout keeps every established connection: each replaced agent hands its buckets to
// its peers (SYN-gated: established connections stay on its node's kernel) and leaves its
// tables and VIP to the next agent, which adopts them (agent/src/core/exit-plan.ts).
test('rolling update to a new image tag: every agent replaced node by node, no established connection broken', async () => {
  const next = await retaggedImage(image, `${image.ref}-next`);
  await rc.importImage(next.archive);
  await until('3/3 before', allReady, 60_000);
  const holder = Holder.start(rc.testbed, rc.testbed.clients[0], { vip: rc.testbed.vip(0), port: 8080, count: 24, pingMs: 100 });
  const opened = await holder.opened();
  const before = await agentPods();
  await kubectl(['patch', 'farmcluster', FARM, '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { agent: { image: next.ref } } })]);
  const t = Date.now();
  await until('every agent on the new image and ready', async () => {
    const pods = await agentPods();
    return pods.length === 3 && pods.every((p) => p.spec.containers[0].image === next.ref && p.status.containerStatuses?.[0]?.ready)
      && !pods.some((p) => before.some((b) => b.metadata.uid === p.metadata.uid)) && (await allReady());
  }, 240_000);
  const rolloutMs = Date.now() - t;
  // a second of traffic on the new agents before counting
  await new Promise((r) => setTimeout(r, 1000));
  const summary = await holder.stop();
  const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2);
  const after = await spread(150);
  const perNode: Record<string, number> = {};
  for (const c of opened) perNode[c.node ?? 'none'] = (perNode[c.node ?? 'none'] ?? 0) + 1;
  console.log(JSON.stringify({ event: 'rolling-update', rolloutMs, established: summary.length, perNode, broken: broken.length, newConnectionsFailedAfter: after.failed ?? 0 }));
  expect(summary).toHaveLength(24);
  // every node held some of them, so every replacement was put to the test
  expect(Object.keys(perNode).sort()).toEqual(['n1', 'n2', 'n3']);
  expect(broken).toEqual([]);
  expect(after.failed).toBeUndefined();
  expect(Object.keys(after).sort()).toEqual(['n1', 'n2', 'n3']);
  // Which new agents logged "adopted" is reported, not asserted: at a load of 20-26 `kubectl
  // logs` twice came back without a new agent's first lines (cause not found, see the issue
  // note); the 0 broken connections above are what adoption is for.
  const adopted: string[] = [];
  for (const p of await agentPods()) {
    if (/"event":"adopted"/.test(await kubectl(['logs', '-n', NS, p.metadata.name]).catch(() => ''))) adopted.push(p.spec.nodeName);
  }
  console.log(JSON.stringify({ event: 'rolling-update-adopted', adopted }));
});

const podOn = async (node: string): Promise<any> => (await agentPods()).find((p) => p.spec.nodeName === node);
const brokenOf = (summary: { node: string | null; error: string | null; echoed: number; sent: number }[], nodes: string[]): number =>
  summary.filter((c) => nodes.includes(c.node ?? '') && (c.error !== null || c.echoed < c.sent - 2)).length;

// An eviction is not a rollout: nothing promises a successor, so the agent leaves (removes its
// kernel state). The DaemonSet recreates the pod, the farm converges, the other nodes'
// connections are untouched.
test('an agent pod evicted: the DaemonSet recreates it, the farm converges, other nodes\' connections untouched', async () => {
  await until('3/3 before', allReady, 60_000);
  const holder = Holder.start(rc.testbed, rc.testbed.clients[0], { vip: rc.testbed.vip(0), port: 8080, count: 24, pingMs: 100 });
  await holder.opened();
  const old = await podOn('n2');
  const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: old.metadata.name, namespace: NS } };
  await kubectl(['create', '--raw', `/api/v1/namespaces/${NS}/pods/${old.metadata.name}/eviction`, '-f', '-'], JSON.stringify(eviction));
  await until('a new agent on n2, the farm whole', async () => {
    const p = await podOn('n2');
    return p && p.metadata.uid !== old.metadata.uid && p.status.containerStatuses?.[0]?.ready && (await allReady());
  }, 120_000);
  const summary = await holder.stop();
  const others = brokenOf(summary, ['n1', 'n3']);
  console.log(JSON.stringify({ event: 'eviction', established: summary.length, brokenOnOthers: others, brokenOnEvicted: brokenOf(summary, ['n2']) }));
  expect(summary.filter((c) => c.node === 'n1' || c.node === 'n3').length).toBeGreaterThan(0);
  expect(others).toBe(0);
  const by = await spread(150);
  expect(by.failed).toBeUndefined();
  expect(Object.keys(by).sort()).toEqual(['n1', 'n2', 'n3']);
});

/** The agent's PID on a node: the process in that node's network namespace running the farm. */
function agentPid(netns: string): number {
  const want = statSync(`/run/netns/${netns}`).ino;
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (statSync(`/proc/${d}/ns/net`).ino !== want) continue;
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.includes('--kubernetes') && argv.includes(FARM)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no agent process in ${netns}`);
}

// Liveness is "the agent's loop ran within max(5 s, 20 heartbeat intervals)" (/healthz): a
// frozen or blocked agent cannot answer. The kubelet's probe fails, it kills the container
// and starts it again; the new one adopts the kernel state and the farm converges.
test('a hung agent fails its liveness probe: the kubelet restarts the container, the farm converges', async () => {
  await until('3/3 before', allReady, 60_000);
  const n3 = rc.nodes[2];
  const before = await podOn('n3');
  const restarts = before.status.containerStatuses[0].restartCount;
  const pid = agentPid(n3.netns);
  process.kill(pid, 'SIGSTOP');
  try {
    // n3's buckets move to n1 and n2 (its heartbeats stopped), while its pod still exists
    await until('n3\'s buckets served by n1 and n2', async () => {
      const b = await spread(60);
      return b.n3 === undefined && b.failed === undefined ? b : undefined;
    }, 60_000);
    await until('the kubelet restarted the agent', async () =>
      ((await podOn('n3'))?.status.containerStatuses?.[0]?.restartCount ?? 0) > restarts, 150_000);
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // killed by the kubelet, as it should be
    }
  }
  const after = await podOn('n3');
  expect(after.metadata.uid).toBe(before.metadata.uid);
  expect(after.status.containerStatuses[0].lastState.terminated).toBeDefined();
  const events = await kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${before.metadata.name}`]);
  expect(events).toMatch(/Liveness probe failed/);
  await until('3/3 again', allReady, 90_000);
  // the agents tell what happened as Events of the FarmCluster (`kubectl describe`)
  const described = await until('Failover and MemberReady events', async () => {
    const d = await kubectl(['describe', 'farmcluster', FARM, '-n', NS]);
    return /Failover\s.*took over \d+ buckets of n3/.test(d) && /MemberReady\s.*n3 is ready/.test(d) ? d : undefined;
  }, 30_000);
  expect(described).toMatch(/n[12] took over \d+ buckets of n3/);
  // (Whether it logged "adopted" is not checked here: `kubectl logs` of a container the
  // kubelet restarted fails on these nodes, lab/cluster/README.md.)
  expect((await spread(150)).failed).toBeUndefined();
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
    expect(rc.testbed.exec(h.netns, ['sysctl', '-n', 'net.ipv4.conf.eth0.arp_ignore']).trim()).toBe('0');
  }
  // owned objects go with their owner (the garbage collector deletes them shortly after)
  await until('owned objects collected', async () =>
    (await kubectl(['get', 'daemonsets,secrets,roles,rolebindings,serviceaccounts,configmaps', '-n', NS, '-l', `vipfarm.io/farm=${FARM}`, '-o', 'name'])).trim() === '', 60_000);
});

// IPv6 (issue 13) on the same dual-stack cluster. The agents heartbeat over IPv4 (the
// cluster's primary family, their pods' status.hostIP); the kubelets list each node's IPv6
// address in status.hostIPs too, which Directed mode's IPv6 second chance needs.
const farm6Spec = (flooding: boolean, vips: [string, string], weights?: Record<string, number>): Record<string, unknown> => ({
  virtualIPs: vips,
  interface: 'eth0',
  ...(flooding ? {} : { mode: 'Directed' }),
  rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }],
  bucketCount: 64,
  heartbeat: { intervalMs: 100, failureThresholdMs: 2000 },
  ...(weights ? { weights } : {}),
});
/**
 * The setup of both IPv6 farms: the switch's flooding (Directed mode is for switches that do
 * not flood), the farm with its IPv6 and IPv4 VIP, Ready 3/3 with every bucket. Each farm has
 * VIPs of its own: the client's neighbour cache still maps the Flooding farm's VIPs to the
 * virtual MAC, which a switch that does not flood delivers nowhere.
 */
async function dualStackFarm(farm: string, flooding: boolean, vips: [string, string]): Promise<any> {
  rc.testbed.setFlooding(flooding);
  await kubectl(['apply', '-f', '-'], farmYaml(farm, NS, farm6Spec(flooding, vips)));
  return until(`${farm} Ready 3/3`, async () => {
    const s = await farmStatus(farm);
    const ready = s.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
    return (await allReady(farm)) && ready ? s : undefined;
  }, 180_000);
}
/** Deletes the farm (its agents gone: the next farm's take the same ports) and floods again. */
async function removeFarm(farm: string): Promise<void> {
  rc.testbed.setFlooding(true);
  await kubectl(['delete', 'farmcluster', farm, '-n', NS, '--ignore-not-found', '--wait=true', '--timeout=120s']);
  await until(`${farm}'s agents gone`, async () => (await agentPods(farm)).length === 0, 90_000);
}

test('dual-stack: a FarmCluster with an IPv6 VIP (written non-canonically) and an IPv4 VIP converges and serves both from every node', async () => {
  const tb = rc.testbed;
  try {
    // a non-canonical text on purpose: the farm serves the address, whatever its text
    const st = await dualStackFarm('web6', true, [tb.vip6(0).replace('::', ':0:0::').toUpperCase(), tb.vip(0)]);
    expect(st.members.map((m: any) => m.node).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const h of tb.nodes) expect(tb.exec(h.netns, ['ip', '-6', 'addr', 'show', 'dev', 'lo'])).toContain(`${tb.vip6(0)}/128`);
    for (const vip of [tb.vip6(0), tb.vip(0)]) {
      const r = await runClient(tb, tb.clients[0], { vip, port: 8080, protocol: 'tcp', count: 300, concurrency: 16 });
      const by: Record<string, number> = {};
      for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
      console.log(JSON.stringify({ event: 'e2e-dual-stack-spread', vip, by }));
      expect(by.failed).toBeUndefined();
      for (const n of ['n1', 'n2', 'n3']) expect(by[n]).toBeGreaterThan(50);
    }
  } finally {
    await removeFarm('web6');
  }
});

test('Directed dual-stack on a switch that floods no unknown unicast: 30 of 30 long-lived IPv6 connections kept through a weight change, passed on by the ip6 rules', async () => {
  const tb = rc.testbed;
  const farm = 'web6d';
  const vips: [string, string] = [tb.vip6(5), tb.vip(5)];
  /** packets the ip6 second-chance rules of every node passed on */
  const passed6 = (): number => tb.nodes.reduce((sum, h) => {
    let text = '';
    try {
      text = tb.exec(h.netns, ['nft', 'list', 'table', 'ip6', `vipfarm_${farm}_prev`]);
    } catch {
      // not there (yet)
    }
    return sum + [...text.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  }, 0);
  const bucketsOf = (s: any, node: string): number => (s.members ?? []).filter((m: any) => m.node === node).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0);
  try {
    await dualStackFarm(farm, false, vips);
    // the agents know each peer's IPv6 address from its pod (the kubelet's status.hostIPs)
    for (const p of await agentPods(farm)) expect(p.status.hostIPs.map((h: any) => h.ip)).toEqual(rc.nodes.find((n) => n.name === p.spec.nodeName)!.ips);
    const holder = Holder.start(tb, tb.clients[0], { vip: vips[0], port: 8080, count: 30, pingMs: 50 });
    expect((await holder.opened()).filter((c) => c.node === null)).toEqual([]);
    const before = passed6();
    await kubectl(['apply', '-f', '-'], farmYaml(farm, NS, farm6Spec(false, vips, { n1: 3 })));
    await until('n1 holds most buckets', async () => {
      const s = await farmStatus(farm);
      return bucketsOf(s, 'n1') > 32 && (await allReady(farm)) ? s : undefined;
    }, 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const summary = await holder.stop();
    const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2 || c.wrongNode > 0);
    const passed = passed6() - before;
    console.log(JSON.stringify({ event: 'e2e-directed-dual', kept: summary.length - broken.length, of: summary.length, passed }));
    expect(summary).toHaveLength(30);
    expect(broken).toEqual([]);
    expect(passed).toBeGreaterThan(0);
  } finally {
    await removeFarm(farm);
  }
});

// LoadBalancer Services with an IPv6 address (issue 13) through kube-proxy to pods on the
// pod network: a farm whose pool has both families, a RequireDualStack Service of our class.
// Its own farm (the IPv4 one above is deleted by now) with an IPv6 VIP; the Services take the
// pool's addresses. One farm for both tests: the first makes it, the second removes it.
const SVC_FARM = 'web6s';
const svcPool = (): string[] => [`${rc.testbed.vip(10)}-${rc.testbed.vip(11)}`, `${rc.testbed.vip6(10)}-${rc.testbed.vip6(11)}`];
const dualService = (name: string, extra: Record<string, unknown> = {}): string => JSON.stringify({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS },
  spec: {
    type: 'LoadBalancer', loadBalancerClass: 'vipfarm.io/farm', ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'],
    selector: { app: name }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...extra,
  },
});
/** status.loadBalancer.ingress once it has an address of each family */
const dualIngress = (name: string): Promise<{ ip: string; ipMode?: string }[]> => until(`${name} has an address of each family`, async () => {
  const ingress = (await getJson(['get', 'svc', name, '-n', NS])).status?.loadBalancer?.ingress as { ip: string; ipMode?: string }[] | undefined;
  return ingress?.length === 2 ? ingress : undefined;
}, 60_000);
/** SYNs each node's filter accepted as the owner of their bucket, for one address */
const ownedSyns = (ip: string): Promise<number[]> => Promise.all(rc.nodes.map((n) => stagePackets(rc, n, SVC_FARM, ip, 'owned')));
const svcRuleset = (netns: string): string => rc.testbed.exec(netns, ['nft', 'list', 'table', 'inet', `vipfarm_${SVC_FARM}`]);
const lo6 = (netns: string): string => rc.testbed.exec(netns, ['ip', '-6', 'addr', 'show', 'dev', 'lo']);
/** count connections from `sources` to ip:80: who answered, and each node's owned SYNs */
async function serviceRun(ip: string, sources: string[], count: number): Promise<{ t: ReturnType<typeof tallyGreetings>; perNode: number[] }> {
  const before = await ownedSyns(ip);
  const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count, concurrency: 16, sources });
  const perNode = (await ownedSyns(ip)).map((v, i) => v - before[i]!);
  return { t: tallyGreetings(r.results), perNode };
}
/** the pods of the Local Service: on n1 and n2 only */
const localDeployment = (): string => backendDeployment({ name: 'local6', namespace: NS, image: image.ref, replicas: 2, nodes: ['n1', 'n2'] });
let sources6: string[] = [];
let sources4: string[] = [];

test('dual-stack LoadBalancer Service (RequireDualStack): an address of each family, IPv6 and IPv4 connections from 300 client addresses each answered by the pods through kube-proxy, spread over the nodes; deleting it takes its IPv6 address off lo and out of the rules', async () => {
  const tb = rc.testbed;
  if (sources6.length === 0) {
    sources6 = tb.addAddresses(tb.clients[0], 300, 'ipv6');
    sources4 = tb.addAddresses(tb.clients[0], 300, 'ipv4');
  }
  const t0 = Date.now();
  await kubectl(['apply', '-f', '-'], farmYaml(SVC_FARM, NS, { ...farm6Spec(true, [tb.vip6(6), tb.vip(6)]), addresses: svcPool() }));
  // pods on the pod network, one per node (the Deployment spreads them), meanwhile; and the
  // next test's, which start in the same time
  await kubectl(['apply', '-f', '-'], backendDeployment({ name: 'shop6', namespace: NS, image: image.ref, replicas: 3 }));
  await kubectl(['apply', '-f', '-'], localDeployment());
  await until(`${SVC_FARM} 3/3`, () => allReady(SVC_FARM), 180_000);
  await kubectl(['rollout', 'status', 'deployment/shop6', '-n', NS, '--timeout=120s']);
  const pods = new Map<string, string>((await getJson(['get', 'pods', '-n', NS, '-l', 'app=shop6'])).items.map((p: any) => [p.metadata.name, p.spec.nodeName]));
  expect([...pods.values()].sort()).toEqual(['n1', 'n2', 'n3']);
  for (const p of (await getJson(['get', 'pods', '-n', NS, '-l', 'app=shop6'])).items) expect(p.status.podIPs.map((x: any) => x.ip)).toEqual([expect.stringMatching(/^10\.244\./), expect.stringMatching(/^fd00:10:244:/)]);

  await kubectl(['apply', '-f', '-'], dualService('shop6'));
  const ingress = await dualIngress('shop6');
  // the pool's first address of each family, in the order of spec.ipFamilies
  expect(ingress).toEqual([{ ip: tb.vip(10), ipMode: 'VIP' }, { ip: tb.vip6(10), ipMode: 'VIP' }]);
  const [ip4, ip6] = [tb.vip(10), tb.vip6(10)];
  await until('every node has the IPv6 Service IP on lo and in its rules', () => tb.nodes.every((h) => lo6(h.netns).includes(`${ip6}/128`) && svcRuleset(h.netns).includes(`ip6 daddr ${ip6} tcp dport 80`)), 30_000);
  await until('both Service IPs answer', async () => {
    for (const [ip, src] of [[ip6, sources6], [ip4, sources4]] as const) {
      const r = await runClient(tb, tb.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 6, concurrency: 6, sources: src.slice(0, 6), timeoutMs: 500 });
      if (r.results.some((a) => a.node === null)) return false;
    }
    return true;
  }, 60_000);
  const servedMs = Date.now() - t0;

  for (const [ip, src] of [[ip6, sources6], [ip4, sources4]] as const) {
    const { t, perNode } = await serviceRun(ip, src, 300);
    console.log(JSON.stringify({ event: 'e2e-dual-stack-service', ip, servedMs, ownedSynsPerNode: perNode, perPod: Object.fromEntries(t.pods), failed: t.failed.length, clients: t.clients.size }));
    expect(t.failed).toEqual([]);
    // every answer came from a pod of the Service (so kube-proxy's DNAT ran after our
    // filter: the owned counters below matched the Service IP itself), each pod answered some
    expect([...t.pods.keys()].sort()).toEqual([...pods.keys()].sort());
    // each SYN accepted by exactly one node's owned rule (a retransmitted one counts again)
    const total = perNode.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(300);
    expect(total).toBeLessThan(312);
    for (const n of perNode) expect(n).toBeGreaterThan(40);
  }
  // the client found the IPv6 Service IP by neighbour discovery: the virtual MAC answered
  expect(tb.exec(tb.clients[0].netns, ['ip', '-6', 'neigh', 'show', ip6, 'dev', 'eth0'])).toContain(`lladdr ${defaultVirtualMAC(SVC_FARM)}`);

  await kubectl(['delete', 'svc', 'shop6', '-n', NS]);
  await until('the Service IPs gone from every node', () => tb.nodes.every((h) => {
    const rules = svcRuleset(h.netns);
    return !rules.includes(ip6) && !rules.includes(ip4) && !lo6(h.netns).includes(ip6) && !loAddrs(h.netns).includes(`${ip4}/32`);
  }), 30_000);
  // the farm's own IPv6 VIP stays
  for (const h of tb.nodes) expect(lo6(h.netns)).toContain(`${tb.vip6(6)}/128`);
  await kubectl(['delete', 'deployment', 'shop6', '-n', NS, '--wait=false']);
});

test('dual-stack Service with externalTrafficPolicy Local, pods on n1 and n2: n3 owns none of either address\'s buckets, every IPv6 and IPv4 connection answered with the client\'s own address', async () => {
  const tb = rc.testbed;
  try {
    if (sources6.length === 0) {
      sources6 = tb.addAddresses(tb.clients[0], 300, 'ipv6');
      sources4 = tb.addAddresses(tb.clients[0], 300, 'ipv4');
    }
    await kubectl(['apply', '-f', '-'], farmYaml(SVC_FARM, NS, { ...farm6Spec(true, [tb.vip6(6), tb.vip(6)]), addresses: svcPool() }));
    await kubectl(['apply', '-f', '-'], localDeployment());
    await until(`${SVC_FARM} 3/3`, () => allReady(SVC_FARM), 180_000);
    await kubectl(['rollout', 'status', 'deployment/local6', '-n', NS, '--timeout=120s']);
    await kubectl(['apply', '-f', '-'], dualService('local6', { externalTrafficPolicy: 'Local' }));
    const ips = (await dualIngress('local6')).map((x) => x.ip);
    const ip6 = ips.find((ip) => ip.includes(':'))!;
    const ip4 = ips.find((ip) => !ip.includes(':'))!;
    expect(ips).toHaveLength(2);
    await until('status.services lists n1 and n2 for both addresses', async () => {
      const listed = ((await farmStatus(SVC_FARM)).services ?? []).filter((s: any) => ips.includes(s.ip));
      return listed.length === 2 && listed.every((s: any) => JSON.stringify(s.nodes) === '["n1","n2"]');
    }, 30_000);
    const sets = await until('n1 and n2 share every bucket of each address', async () => {
      const per = await Promise.all(ips.map((ip) => Promise.all(rc.nodes.map((n) => serviceOwnedBuckets(rc, n, SVC_FARM, ip)))));
      return per.every((s) => s[0]!.length + s[1]!.length === 64 && s[0]!.length > 0 && s[1]!.length > 0) ? per : undefined;
    }, 30_000);
    for (const s of sets) expect(s[2]).toEqual([]);
    const pods = (await getJson(['get', 'pods', '-n', NS, '-l', 'app=local6'])).items.map((p: any) => p.metadata.name).sort();
    const { t, perNode } = await serviceRun(ip6, sources6, 300);
    console.log(JSON.stringify({ event: 'e2e-dual-stack-service-local', ip: ip6, bucketsPerNode: sets.map((s) => s.map((b) => b.length)), ownedSynsPerNode: perNode, perPod: Object.fromEntries(t.pods), failed: t.failed.length, wrongClient: t.wrongClient }));
    expect(t.failed).toEqual([]);
    expect([...t.pods.keys()].sort()).toEqual(pods);
    // no SNAT: each pod saw the client's own IPv6 address
    expect(t.wrongClient).toBe(0);
    expect(t.clients.size).toBe(300);
    expect(perNode[2]).toBe(0);
    expect(perNode[0]! + perNode[1]!).toBeGreaterThanOrEqual(300);
    // and the IPv4 address of the same Service, fewer (services-realnodes.test.ts has more)
    const v4 = await serviceRun(ip4, sources4.slice(0, 100), 100);
    console.log(JSON.stringify({ event: 'e2e-dual-stack-service-local', ip: ip4, ownedSynsPerNode: v4.perNode, failed: v4.t.failed.length, wrongClient: v4.t.wrongClient }));
    expect(v4.t.failed).toEqual([]);
    expect(v4.t.wrongClient).toBe(0);
    expect(v4.perNode[2]).toBe(0);
  } finally {
    await kubectl(['delete', 'svc', 'local6', 'shop6', '-n', NS, '--ignore-not-found']);
    await kubectl(['delete', 'deployment', 'local6', 'shop6', '-n', NS, '--ignore-not-found', '--wait=false']);
    await removeFarm(SVC_FARM);
  }
});

test('helm uninstall leaves nothing but the CRD', async () => {
  await execFileP(path.join(findBinDir(), 'helm'), ['uninstall', 'vf', '-n', RELEASE_NS, '--wait', '--timeout', '120s', '--kubeconfig', rc.controlPlane.kubeconfigPath]);
  await until('release objects gone', async () => {
    const left = await kubectl(['get', 'deployment,serviceaccount,service,role,rolebinding,lease', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/instance=vf', '-o', 'name']);
    const cluster = await kubectl(['get', 'clusterrole,clusterrolebinding', '-l', 'app.kubernetes.io/instance=vf', '-o', 'name']);
    return left.trim() === '' && cluster.trim() === '';
  }, 60_000);
  await until('operator pod gone', async () => (await getJson(['get', 'pods', '-n', RELEASE_NS])).items.length === 0, 90_000);
  // Helm never deletes CRDs (they would take every FarmCluster with them); NOTES.txt says so.
  expect((await kubectl(['get', 'crd', 'farmclusters.vipfarm.io', '-o', 'name'])).trim()).toBe('customresourcedefinition.apiextensions.k8s.io/farmclusters.vipfarm.io');
});
