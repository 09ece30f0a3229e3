// node dist/lab/cluster/up.js: a local cluster for the demo and for trying kubectl.
import { copyFileSync } from 'node:fs';
import { createTestbed, type Testbed } from '../netns/testbed.js';
import { startCluster } from './cluster.js';
import { parseUpArgs, UP_USAGE } from './up-args.js';

async function main(): Promise<void> {
  const args = parseUpArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(UP_USAGE);
    return;
  }
  let tb: Testbed | undefined;
  let nodes = args.nodes;
  if (args.testbed !== undefined) {
    tb = createTestbed({ nodes: args.testbed, clients: 1 });
    nodes = [...tb.nodes.map((h) => ({ name: h.name, ip: h.ip, netns: h.netns })), ...nodes];
  }
  let cluster;
  try {
    cluster = await startCluster({ nodes, env: tb ? { VIPFARM_RUN_DIR: tb.runDir } : {} });
  } catch (err) {
    tb?.destroy();
    throw err;
  }
  const cp = cluster.controlPlane;
  let kubeconfig = cp.kubeconfigPath;
  if (args.kubeconfigOut) {
    copyFileSync(cp.kubeconfigPath, args.kubeconfigOut);
    kubeconfig = args.kubeconfigOut;
  }
  process.stdout.write(`${JSON.stringify({ event: 'ready', kubeconfig, server: cp.server, nodes, clients: tb?.clients ?? [], logs: cp.dir, kubeletDir: cluster.kubelet.dir })}\n`);
  process.stdout.write(`export KUBECONFIG=${kubeconfig}\nkubectl: ${cp.binDir}/kubectl\nCtrl-C stops the cluster.\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping the cluster\n`);
    cluster.stop().then(
      () => {
        tb?.destroy();
        process.exit(0);
      },
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
