// LoadBalancer Services end to end on real nodes: the chart's operator and the agents from
// the project's image on 3 nodes (real kubelet, containerd, runc, kube-proxy in nftables
// mode), a Deployment of ordinary pods on the CNI pod network behind a Service of our class.
// A client's connections to the Service IP are accepted by exactly one node's farm filter
// (before kube-proxy's DNAT), which kube-proxy then forwards to a pod.
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { backendDeployment, parseGreeting, tallyGreetings } from '../../lab/cluster/backend.js';
import { projectImage, type ProjectImage } from '../../lab/cluster/project-image.js';
import { startRealCluster, type RealCluster, type RealNode } from '../../lab/cluster/realnodes.js';
import { Holder, runClient } from '../../lab/netns/procs.js';
import { farmYaml, until } from '../operator/helpers.js';
import { agentPid, installChart, packetsOf, RELEASE_NS, serviceOwnedBuckets, stagePackets, takeoverGap } from '../../lab/cluster/real-helm.js';

jest.setTimeout(300_000);

const NS = 'shop';
const FARM = 'web';
const CLASS = 'vipfarm.io/farm';

let rc: RealCluster;
let image: ProjectImage;
let dir: string;
let sources: string[];
const kubectl = (args: string[], input?: string): Promise<string> => rc.controlPlane.kubectl(args, input);
const getJson = async (args: string[]): Promise<any> => JSON.parse(await kubectl([...args, '-o', 'json']));
const farmStatus = async (): Promise<any> => (await getJson(['get', 'farmcluster', FARM, '-n', NS])).status ?? {};
const allReady = async (): Promise<boolean> => {
  const s = await farmStatus();
  return s.readyNodes === 3 && (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0) === 64;
};
const podNames = async (app: string): Promise<Map<string, string>> =>
  new Map((await getJson(['get', 'pods', '-n', NS, '-l', `app=${app}`])).items.map((p: any) => [p.metadata.name, p.spec.nodeName]));
const externalIp = (name: string): Promise<string> => until(`${name} has an EXTERNAL-IP`, async () => {
  const s = await getJson(['get', 'svc', name, '-n', NS]);
  return s.status?.loadBalancer?.ingress?.[0]?.ip as string | undefined;
}, 30_000);
const service = (name: string, spec: Record<string, unknown>): string => JSON.stringify({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS },
  spec: { type: 'LoadBalancer', loadBalancerClass: CLASS, selector: { app: name }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...spec },
});
// SYNs each node's farm filter accepted as the owner of their bucket (nft rule counters)
const owned = async (ip: string): Promise<number[]> => Promise.all(rc.nodes.map((n) => stagePackets(rc, n, FARM, ip, 'owned')));
// vipfarm_packets_total{verdict="accept"} of each node's agent
const accepted = async (ip: string): Promise<number[]> => Promise.all(rc.nodes.map((n) => packetsOf(rc, n, ip, 'accept')));

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-e2e-svc-real-'));
  image = await projectImage();
  rc = await startRealCluster({ nodes: 3, clients: 1 });
  const imported = await rc.importImage(image.archive);
  sources = rc.testbed.addAddresses(rc.testbed.clients[0], 600);
  await installChart(rc, image, dir);
  await kubectl(['create', 'namespace', NS]);
  await kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, {
    virtualIPs: [rc.testbed.vip(0)], interface: 'eth0', rules: [{ port: 9090 }], bucketCount: 64,
    heartbeat: { intervalMs: 100, failureThresholdMs: 500 },
    addresses: [`${rc.testbed.vip(1)}-${rc.testbed.vip(4)}`],
  }));
  await kubectl(['apply', '-f', '-'], backendDeployment({ name: 'shop', namespace: NS, image: image.ref, replicas: 6 }));
  await until('3/3 agents ready', allReady, 180_000);
  await kubectl(['rollout', 'status', 'deployment/shop', '-n', NS, '--timeout=120s']);
  console.log(JSON.stringify({ event: 'e2e-svc-real-setup', imageBuildMs: image.buildMs, nodesReadyMs: rc.startupMs, importMs: imported.ms }));
}, 1_800_000);

afterAll(async () => {
  await rc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

test('6 pods behind a Service of our class: an EXTERNAL-IP, 600 connections from 600 addresses spread over the 3 nodes, every one answered by a pod', async () => {
  const pods = await podNames('shop');
  expect(pods.size).toBe(6);
  expect([...pods.values()].sort()).toEqual(['n1', 'n1', 'n2', 'n2', 'n3', 'n3']);
  const t0 = Date.now();
  await kubectl(['apply', '-f', '-'], service('shop', {}));
  const ip = await externalIp('shop');
  expect(await kubectl(['get', 'svc', 'shop', '-n', NS])).toMatch(new RegExp(`shop\\s+LoadBalancer\\s+\\S+\\s+${ip.replace(/\./g, '\\.')}\\s+80:`));
  // served once a connection gets through (every node has programmed it by then or soon)
  await until('the Service IP answers', async () => {
    const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 6, concurrency: 6, sources: sources.slice(0, 6), timeoutMs: 500 });
    return r.results.every((a) => a.node !== null);
  }, 60_000);
  const servedMs = Date.now() - t0;

  const before = await owned(ip);
  const acceptedBefore = await accepted(ip);
  const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 600, concurrency: 20, sources });
  const after = await owned(ip);
  const perNode = after.map((v, i) => v - before[i]!);
  const acceptedPerNode = (await accepted(ip)).map((v, i) => v - acceptedBefore[i]!);
  const t = tallyGreetings(r.results);
  console.log(JSON.stringify({ event: 'service-spread', servedMs, ownedSynsPerNode: perNode, acceptedPacketsPerNode: acceptedPerNode, perPod: Object.fromEntries(t.pods), failed: t.failed.length }));
  // the agents' metric shows the same spread (every packet of the connections: a few per SYN)
  for (let i = 0; i < 3; i++) expect(acceptedPerNode[i]).toBeGreaterThanOrEqual(perNode[i]! * 3);
  expect(t.failed).toEqual([]);
  // every answer came from one of the Deployment's pods, and each of them answered some
  expect([...t.pods.keys()].sort()).toEqual([...pods.keys()].sort());
  // each SYN was accepted by exactly one node's owned rule (a retransmitted one counts again)
  const total = perNode.reduce((a, b) => a + b, 0);
  expect(total).toBeGreaterThanOrEqual(600);
  expect(total).toBeLessThan(612);
  for (const n of perNode) expect(n).toBeGreaterThan(100);
});

test('our filter runs before kube-proxy\'s DNAT: the Service IP is matched before it is rewritten', async () => {
  // Hook priorities: the farm's filter at prerouting -150, kube-proxy's nat at dstnat (-100).
  const chains = JSON.parse(await rc.nsExec(rc.nodes[0], ['nft', '-j', 'list', 'chains'])).nftables.filter((o: any) => o.chain?.hook === 'prerouting').map((o: any) => o.chain);
  const ours = chains.find((c: any) => c.table === `vipfarm_${FARM}`);
  const kubeProxy = chains.filter((c: any) => c.table === 'kube-proxy' && c.type === 'nat');
  expect(ours).toMatchObject({ type: 'filter', prio: -150 });
  expect(kubeProxy.length).toBeGreaterThan(0);
  for (const c of kubeProxy) expect(c.prio).toBeGreaterThan(ours.prio);
  // And in the packets: the owned counters of the previous test matched `ip daddr <Service IP>`,
  // which a packet no longer carries after kube-proxy's DNAT to a pod address.
  const ip = await externalIp('shop');
  expect((await owned(ip)).every((n) => n > 0)).toBe(true);
});

test('sessionAffinity ClientIP becomes the farm\'s ClientIP affinity: one client address, one node, one pod', async () => {
  await kubectl(['patch', 'svc', 'shop', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { sessionAffinity: 'ClientIP' } })]);
  const ip = await externalIp('shop');
  await until('status.services says ClientIP', async () => (await farmStatus()).services?.find((s: any) => s.ip === ip)?.rules?.[0]?.affinity === 'ClientIP', 30_000);
  await until('every node hashes the client address only', async () => {
    for (const n of rc.nodes) {
      const text = await rc.nsExec(n, ['nft', 'list', 'table', 'inet', `vipfarm_${FARM}`]);
      const owning = text.split('\n').find((l) => l.includes(`ip daddr ${ip} tcp dport 80`) && l.includes('@owned'));
      if (!owning || owning.includes('sport')) return false;
    }
    return true;
  }, 30_000);
  for (const src of sources.slice(0, 5)) {
    const before = await owned(ip);
    const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 12, concurrency: 4, sources: [src] });
    const after = await owned(ip);
    const t = tallyGreetings(r.results);
    expect(t.failed).toEqual([]);
    expect(t.pods.size).toBe(1);
    expect(after.map((v, i) => v - before[i]!).filter((d) => d > 0)).toHaveLength(1);
  }
  await kubectl(['patch', 'svc', 'shop', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { sessionAffinity: 'None' } })]);
});

// externalTrafficPolicy Local: only nodes with a ready endpoint own the IP's buckets.
const ownedSet = (node: RealNode, ip: string): Promise<number[]> => serviceOwnedBuckets(rc, node, FARM, ip);
const localNodes = async (ip: string): Promise<string[] | undefined> => (await farmStatus()).services?.find((s: any) => s.ip === ip)?.nodes;

test('externalTrafficPolicy Local with pods on n1 and n2: n3 owns none of the IP\'s buckets, no connection fails, the pods see the client\'s address', async () => {
  await kubectl(['apply', '-f', '-'], backendDeployment({ name: 'local', namespace: NS, image: image.ref, replicas: 2, nodes: ['n1', 'n2'] }));
  await kubectl(['rollout', 'status', 'deployment/local', '-n', NS, '--timeout=120s']);
  await kubectl(['apply', '-f', '-'], service('local', { externalTrafficPolicy: 'Local' }));
  const ip = await externalIp('local');
  await until('status.services lists n1 and n2 for the Local IP', async () => JSON.stringify(await localNodes(ip)) === '["n1","n2"]', 30_000);
  const sets = await until('n1 and n2 share every bucket of the IP', async () => {
    const s = await Promise.all(rc.nodes.map((n) => ownedSet(n, ip)));
    return s[0]!.length + s[1]!.length === 64 && s[0]!.length > 0 && s[1]!.length > 0 ? s : undefined;
  }, 30_000);
  expect(sets[2]).toEqual([]);
  // No wait for kube-proxy here on purpose: the operator lists a node only once kube-proxy
  // there answers on the Service's healthCheckNodePort (without that, CI once saw 292 of 300
  // refused: the farm owned the buckets before kube-proxy had the local endpoint).
  // ... and it did ask kube-proxy on n1 and n2 (the operator logs each answer that changed)
  const operatorLog = await kubectl(['logs', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/name=vipfarm-operator', '--tail=-1']);
  const asked = operatorLog.split('\n').filter((l) => l.includes('"kube_proxy_health"') && l.includes(`"${NS}/local"`) && l.includes('"ready":true'));
  expect(asked.some((l) => l.includes('"node":"n1"'))).toBe(true);
  expect(asked.some((l) => l.includes('"node":"n2"'))).toBe(true);
  const before = await owned(ip);
  const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 300, concurrency: 20, sources });
  const perNode = (await owned(ip)).map((v, i) => v - before[i]!);
  const t = tallyGreetings(r.results);
  const pods = await podNames('local');
  console.log(JSON.stringify({ event: 'service-local', bucketsPerNode: sets.map((s) => s.length), ownedSynsPerNode: perNode, perPod: Object.fromEntries(t.pods), failed: t.failed.length, wrongClient: t.wrongClient }));
  expect(t.failed).toEqual([]);
  expect([...t.pods.keys()].sort()).toEqual([...pods.keys()].sort());
  // no SNAT: each pod saw the client's own source address
  expect(t.wrongClient).toBe(0);
  expect(t.clients.size).toBe(300);
  expect(perNode[2]).toBe(0);
  expect(perNode[0]! + perNode[1]!).toBeGreaterThanOrEqual(300);
});

test('externalTrafficPolicy Local: a pod lands on n3, n3 takes its share; 0 of the long-lived connections break', async () => {
  const ip = await externalIp('local');
  const holder = Holder.start(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, count: 30, pingMs: 100, sources: sources.slice(300, 330) });
  const opened = await holder.opened();
  expect(opened.filter((c) => c.error !== null || c.node === null)).toEqual([]);
  // one more pod of the Service, on n3 only (a Deployment of its own: no existing pod is touched)
  await kubectl(['apply', '-f', '-'], backendDeployment({ name: 'local', namespace: NS, image: image.ref, replicas: 1, nodes: ['n3'], drainSeconds: 3 }).replace('"name":"local","namespace"', '"name":"local-n3","namespace"'));
  const t0 = Date.now();
  await until('status.services lists n1, n2 and n3', async () => JSON.stringify(await localNodes(ip)) === '["n1","n2","n3"]', 60_000);
  const listedMs = Date.now() - t0;
  const sets = await until('n3 owns its share, every bucket once', async () => {
    const s = await Promise.all(rc.nodes.map((n) => ownedSet(n, ip)));
    const all = s.flat().sort((a, b) => a - b);
    return s[2]!.length > 10 && all.length === 64 && new Set(all).size === 64 ? s : undefined;
  }, 30_000);
  const ownedMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 2000));
  const summary = await holder.stop();
  const broken = summary.filter((c) => c.error !== null || c.wrongNode > 0 || c.echoed < c.sent - 2);
  const before = await owned(ip);
  const r = await runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 300, concurrency: 20, sources });
  const perNode = (await owned(ip)).map((v, i) => v - before[i]!);
  const t = tallyGreetings(r.results);
  console.log(JSON.stringify({ event: 'service-local-rebalance', listedMs, ownedMs, bucketsPerNode: sets.map((s) => s.length), established: summary.length, broken: broken.length, ownedSynsPerNode: perNode, failed: t.failed.length }));
  expect(summary).toHaveLength(30);
  expect(broken).toEqual([]);
  expect(t.failed).toEqual([]);
  expect(t.wrongClient).toBe(0);
  expect(perNode[2]).toBeGreaterThan(30);
});

test('externalTrafficPolicy Local: the pod leaves n3, n3 gives its share back; no new connection fails, the others\' established ones live on', async () => {
  const ip = await externalIp('local');
  const pods = await podNames('local');
  const holder = Holder.start(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, count: 30, pingMs: 100, sources: sources.slice(330, 360) });
  const opened = await holder.opened();
  expect(opened.filter((c) => c.error !== null || c.node === null)).toEqual([]);
  // new connections at a steady rate across the move, each with 5 s to get an answer
  const run = runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 400, intervalMs: 10, sources, timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  // The pod drains for 3 s (preStop): its endpoint turns not-ready at once, the farm moves
  // n3's buckets to n1 and n2 while kube-proxy on n3 still reaches the draining pod.
  await kubectl(['delete', 'deployment', 'local-n3', '-n', NS, '--wait=false']);
  await until('status.services lists n1 and n2 only', async () => JSON.stringify(await localNodes(ip)) === '["n1","n2"]', 30_000);
  const listedMs = Date.now() - t0;
  const sets = await until('n3 owns none of the IP\'s buckets, n1 and n2 all of them', async () => {
    const s = await Promise.all(rc.nodes.map((n) => ownedSet(n, ip)));
    return s[2]!.length === 0 && s[0]!.length + s[1]!.length === 64 ? s : undefined;
  }, 30_000);
  const releasedMs = Date.now() - t0;
  const t = tallyGreetings((await run).results);
  const summary = await holder.stop();
  // connections whose pod ran on n3 end with it; every other one must live on
  const n3Pods = new Set([...pods].filter(([, node]) => node === 'n3').map(([name]) => name));
  const others = summary.filter((c) => !n3Pods.has(parseGreeting(c.node)?.pod ?? ''));
  const broken = others.filter((c) => c.error !== null || c.wrongNode > 0 || c.echoed < c.sent - 2);
  console.log(JSON.stringify({ event: 'service-local-leave', listedMs, releasedMs, bucketsPerNode: sets.map((s) => s.length), failed: t.failed.length, held: summary.length, heldElsewhere: others.length, broken: broken.length }));
  expect(t.failed).toEqual([]);
  expect(t.wrongClient).toBe(0);
  expect(others.length).toBeGreaterThan(0);
  expect(broken).toEqual([]);
});

// Last, with the Local Services of the tests above still present. This test once lost 88-120
// of 400 connections for ~3.1 s: not the farm (the survivors owned every bucket 0.5 s after the
// kill) but the bed — the kernel's ARP table is shared by all namespaces, three nodes learning
// 600 client addresses each overflowed its 1024-entry limit, and a node that could not resolve
// a client dropped its SYN-ACKs. createTestbed now raises the limit (ensureNeighbourTables).
test('an agent killed: the Service IP keeps serving through the takeover and keeps its address', async () => {
  const ip = await externalIp('shop');
  const victim = rc.nodes[1]!;
  const pid = agentPid(victim);
  // A steady rate from many addresses across the kill: attempts in the dead agent's buckets
  // lose their SYN until the others own them (then the kernel's retransmission gets in).
  const run = runClient(rc.testbed, rc.testbed.clients[0], { vip: ip, port: 80, protocol: 'tcp', count: 400, intervalMs: 10, sources, timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 1000));
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const res = await run;
  const kill = killedAt - res.startedAt;
  const t = tallyGreetings(res.results);
  const gap = takeoverGap(res.results, kill);
  console.log(JSON.stringify({ event: 'service-agent-killed', failed: t.failed.length, ...gap }));
  expect(t.failed).toEqual([]);
  expect(gap.inGap).toBeGreaterThan(0);
  // A sanity bound, not the figure (which is logged, and measured by `bench services`): the
  // farm's threshold is 500 ms; measured 0.45-0.55 s (the 3.1 s of the neighbour-table
  // overflow would fail it).
  expect(gap.servedAgainMs).toBeLessThan(2000);
  expect((await getJson(['get', 'svc', 'shop', '-n', NS])).status.loadBalancer.ingress).toEqual([{ ip, ipMode: 'VIP' }]);
  // the kubelet restarts the agent; the farm is whole again
  await until('3/3 again', allReady, 120_000);
});
