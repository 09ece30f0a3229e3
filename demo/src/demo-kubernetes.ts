// `bash scripts/demo.sh --kubernetes`: the same farm, run the Kubernetes way. A real control
// plane (built from Go modules), the CRD, the operator, and a FarmCluster whose agents the
// test kubelet runs in three network-namespace nodes; the client's traffic flows while the
// user runs kubectl. Ctrl-C (or --duration SEC) stops and removes everything.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../../lab/cluster/cluster.js';
import { createTestbed } from '../../lab/netns/testbed.js';
import { startEcho } from '../../lab/netns/procs.js';
import { applyCrd, farmYaml, startOperator, until, type OperatorProc } from '../../test/operator/helpers.js';
import { AGENT_MAIN, APP_PORT } from '../../lab/agent/farm.js';
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
  const tb = createTestbed({ nodes: 3, clients: 1 });
  const dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-demo-k8s-'));
  let cluster: Cluster | undefined;
  let operator: OperatorProc | undefined;
  let traffic: Traffic | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    traffic?.stop();
    await operator?.stop();
    await cluster?.stop();
    tb.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  let interrupted: () => void = () => {};
  const interrupt = new Promise<void>((r) => (interrupted = r));
  process.on('SIGINT', () => interrupted());
  process.on('SIGTERM', () => interrupted());
  try {
    say(bold('vipfarm on Kubernetes: a real control plane, the operator, a FarmCluster'));
    say('1. Starting etcd, kube-apiserver, controller-manager, scheduler and a test kubelet for nodes n1, n2, n3...');
    const t0 = Date.now();
    cluster = await startCluster({ nodes: tb.nodes.map((h) => ({ name: h.name, ip: h.ip, netns: h.netns })), env: { VIPFARM_RUN_DIR: tb.runDir } });
    const cp = cluster.controlPlane;
    say(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    say('2. Installing the FarmCluster CRD and starting the operator');
    await applyCrd(cp);
    operator = startOperator(cp, path.join(dir, 'operator.log'), ['--agent-entrypoint', AGENT_MAIN, '--node-binary', process.execPath, '--leader-elect', 'false']);
    for (const h of tb.nodes) await startEcho(tb, h, '0.0.0.0', [APP_PORT]);
    await cp.kubectl(['create', 'namespace', NS]);
    const spec = { virtualIPs: [tb.vip(0)], interface: 'eth0', rules: [{ port: APP_PORT, protocol: 'tcp', affinity: 'ClientIPAndPort' }], bucketCount: 64 };
    say(`3. kubectl apply -f farm.yaml   (VIP ${tb.vip(0)}:${APP_PORT}, 64 buckets)`);
    await cp.kubectl(['apply', '-f', '-'], farmYaml(FARM, NS, spec));
    const t1 = Date.now();
    await until('3/3 ready', async () => (JSON.parse(await cp.kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status?.readyNodes === 3), 120_000);
    say(`   the DaemonSet's agents reported ready on all 3 nodes after ${((Date.now() - t1) / 1000).toFixed(1)} s:`);
    say((await cp.kubectl(['get', 'farmclusters', '-n', NS])).trimEnd().replace(/^/gm, '     '));
    say();
    say(bold('Try it yourself in another terminal:'));
    say(`   export KUBECONFIG=${cp.kubeconfigPath}`);
    say(`   export PATH=${cp.binDir}:$PATH`);
    say(`   kubectl get farmclusters -n ${NS} -w`);
    say(`   kubectl get farmcluster ${FARM} -n ${NS} -o jsonpath='{.status.members}'`);
    say(`   kubectl edit farmcluster ${FARM} -n ${NS}     # weights, rules: agents re-program live`);
    say(`   ip netns pids ${tb.nodes[1].netns} | xargs ps -o pid,args -p   # kill -9 the agent, watch the takeover`);
    say();
    say(bold(`4. Client traffic to the VIP, per 2 s window (Ctrl-C ${Number.isFinite(duration) ? `or ${duration} s ` : ''}ends the demo):`));
    const names = tb.nodes.map((n) => n.name);
    traffic = new Traffic(tb, tb.clients[0], tb.vip(0), (w) => say(`   ${new Date(w.at).toISOString().slice(11, 19)}  ${bar(w.answers, w.failed, names, w.clientErrors)}`), 2000);
    await Promise.race([interrupt, Number.isFinite(duration) ? sleep(duration * 1000) : new Promise(() => {})]);
    say();
    say('5. Stopping: operator, agents (each removes its tables, VIP and sysctls), control plane, namespaces.');
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
