// node dist/lab/cluster/up.js: a local cluster of real nodes for trying kubectl and helm.
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { projectImage } from './project-image.js';
import { startRealCluster } from './realnodes.js';
import { parseUpArgs, UP_USAGE } from './up-args.js';

async function main(): Promise<void> {
  const args = parseUpArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(UP_USAGE);
    return;
  }
  // built before the cluster starts: a build takes minutes, the cluster's clock is running
  const image = args.image ? await projectImage() : undefined;
  const rc = await startRealCluster({ nodes: args.nodes, clients: args.clients });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping the cluster\n`);
    rc.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    if (image) await rc.importImage(image.archive);
  } catch (err) {
    await rc.stop();
    throw err;
  }
  const cp = rc.controlPlane;
  let kubeconfig = cp.kubeconfigPath;
  if (args.kubeconfigOut) {
    copyFileSync(cp.kubeconfigPath, args.kubeconfigOut);
    kubeconfig = args.kubeconfigOut;
  }
  const nodes = rc.nodes.map((n) => ({ name: n.name, ip: n.ip, netns: n.netns }));
  const clients = rc.testbed.clients.map((c) => ({ name: c.name, ip: c.ip, netns: c.netns }));
  process.stdout.write(`${JSON.stringify({ event: 'ready', kubeconfig, server: cp.server, nodes, clients, logs: cp.dir, nodesDir: path.dirname(rc.nodes[0]!.dir), image: image?.ref, startupMs: rc.startupMs })}\n`);
  process.stdout.write(`export KUBECONFIG=${kubeconfig}\nkubectl: ${cp.binDir}/kubectl\n`);
  if (image) process.stdout.write(`helm install vf helm/vipfarm -n vipfarm-system --create-namespace ${image.script.helm_set ?? ''} --set image.pullPolicy=Never\n`);
  process.stdout.write('Ctrl-C stops the cluster.\n');
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
