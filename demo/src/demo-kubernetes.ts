// `bash scripts/demo.sh --kubernetes`: the same farm, run the Kubernetes way. A real control
// plane (built from Go modules), three real nodes (containerd, kubelet, kube-proxy in network
// namespaces, lab/cluster/realnodes.ts) running the project's image, `helm install` of the
// chart, and a FarmCluster; the client's traffic flows while the user runs kubectl.
// Ctrl-C (or --duration SEC) stops and removes everything.
import { installChart } from '../../lab/cluster/chart.js';
import { projectImage } from '../../lab/cluster/project-image.js';
import { startRealCluster, type RealCluster } from '../../lab/cluster/realnodes.js';
import { startEcho } from '../../lab/netns/procs.js';
import { farmYaml, until } from '../../test/operator/helpers.js';
import { APP_PORT } from '../../lab/agent/farm.js';
import { bar, bold, say, sleep, Traffic } from './story.js';

const NS = 'demo';
const FARM = 'web';

function parseDuration(argv: string[]): number {
  const i = argv.indexOf('--duration');
  if (i < 0) return Number.POSITIVE_INFINITY;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--duration: want seconds > 0, got "${argv[i + 1]}"`);
  return v;
}

async function main(): Promise<void> {
  const duration = parseDuration(process.argv.slice(2));
  let rc: RealCluster | undefined;
  let traffic: Traffic | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    traffic?.stop();
    // the nodes' kubelets and containerd, the agents (SIGTERM), the control plane, the namespaces
    await rc?.stop();
  };
  let interrupted: () => void = () => {};
  const interrupt = new Promise<void>((r) => (interrupted = r));
  process.on('SIGINT', () => interrupted());
  process.on('SIGTERM', () => interrupted());
  try {
    say(bold('vipfarm on Kubernetes: a real control plane, real nodes, the chart, a FarmCluster'));
    say('1. The project\'s image (Dockerfile, buildah; cached per source tree, the first build takes minutes)...');
    const image = await projectImage();
    say(`   ${image.ref} ${image.buildMs > 0 ? `built in ${(image.buildMs / 1000).toFixed(0)} s` : 'cached'}`);
    say('2. Starting etcd, kube-apiserver, controller-manager, scheduler and nodes n1, n2, n3 (containerd, kubelet, kube-proxy)...');
    const t1 = Date.now();
    rc = await startRealCluster({ nodes: 3, clients: 1 });
    const cp = rc.controlPlane;
    const tb = rc.testbed;
    const imported = await rc.importImage(image.archive);
    say(`   up in ${((Date.now() - t1) / 1000).toFixed(1)} s (image imported into every node in ${(imported.ms / 1000).toFixed(1)} s)`);
    say('3. helm install vf ./helm/vipfarm -n vipfarm-system   (the operator runs as a pod on the pod network)');
    await installChart(cp, { release: 'vf', namespace: 'vipfarm-system', image: image.ref });
    for (const h of tb.nodes) await startEcho(tb, h, '0.0.0.0', [APP_PORT]);
    await cp.kubectl(['create', 'namespace', NS]);
    const spec = { virtualIPs: [tb.vip(0)], interface: 'eth0', rules: [{ port: APP_PORT, protocol: 'tcp', affinity: 'ClientIPAndPort' }], bucketCount: 64 };
    say(`4. kubectl apply -f farm.yaml   (VIP ${tb.vip(0)}:${APP_PORT}, 64 buckets)`);
    await cp.kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, spec));
    const t2 = Date.now();
    await until('3/3 ready', async () => (JSON.parse(await cp.kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status?.readyNodes === 3), 120_000);
    say(`   the DaemonSet's agents reported ready on all 3 nodes after ${((Date.now() - t2) / 1000).toFixed(1)} s:`);
    say((await cp.kubectl(['get', 'farmclusters', '-n', NS])).trimEnd().replace(/^/gm, '     '));
    say();
    say(bold('Try it yourself in another terminal:'));
    say(`   export KUBECONFIG=${cp.kubeconfigPath}`);
    say(`   export PATH=${cp.binDir}:$PATH`);
    say(`   kubectl get farmclusters -n ${NS} -w`);
    say(`   kubectl get farmcluster ${FARM} -n ${NS} -o jsonpath='{.status.members}'`);
    say(`   kubectl edit farmcluster ${FARM} -n ${NS}     # weights, rules: agents re-program live`);
    say(`   kubectl get pods -n ${NS} -o wide; kubectl logs -n ${NS} <agent pod>`);
    say(`   kubectl rollout restart daemonset/${FARM}-agent -n ${NS}   # agents replaced one by one, no connection broken`);
    say(`   ip netns pids ${tb.nodes[1].netns} | xargs ps -o pid,args -p   # kill -9 the agent, watch the takeover`);
    say();
    say(bold(`5. Client traffic to the VIP, per 2 s window (Ctrl-C ${Number.isFinite(duration) ? `or ${duration} s ` : ''}ends the demo):`));
    const names = tb.nodes.map((n) => n.name);
    traffic = new Traffic(tb, tb.clients[0], tb.vip(0), (w) => say(`   ${new Date(w.at).toISOString().slice(11, 19)}  ${bar(w.answers, w.failed, names, w.clientErrors)}`), 2000);
    await Promise.race([interrupt, Number.isFinite(duration) ? sleep(duration * 1000) : new Promise(() => {})]);
    say();
    say('6. Stopping: nodes (kubelet, containerd, the agents), control plane, namespaces.');
  } finally {
    await stop();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exit(1);
  },
);
