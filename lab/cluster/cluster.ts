// Control plane + Node objects + test kubelet in one call, for e2e tests and the demo.
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './controlplane.js';
import { startKubelet, type Kubelet, type KubeletNode, type KubeletOptions } from './kubelet.js';

export interface Cluster {
  controlPlane: ControlPlane;
  kubelet: Kubelet;
  stop(): Promise<void>;
}

export async function startCluster(opts: { nodes: KubeletNode[] } & Omit<ControlPlaneOptions, 'nodes'> & Omit<KubeletOptions, 'controlPlane' | 'nodes'>): Promise<Cluster> {
  const controlPlane = await startControlPlane({ ...opts, nodes: opts.nodes.map(({ name, ip, labels }) => ({ name, ip, labels })) });
  let kubelet: Kubelet;
  try {
    kubelet = await startKubelet({ controlPlane, nodes: opts.nodes, cwd: opts.cwd, env: opts.env });
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
  return {
    controlPlane,
    kubelet,
    stop: async () => {
      await kubelet.stop();
      await controlPlane.stop();
    },
  };
}
