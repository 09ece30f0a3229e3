// Command line of up.ts (pure, tested).

export interface UpArgs {
  /** Real nodes n1..nN (lab/cluster/realnodes.ts), each in a network namespace of a test bed. */
  nodes: number;
  /** Client hosts c1..cN on the same bed (for traffic to VIPs). */
  clients: number;
  /** Import the project's image (built if needed) into every node. */
  image: boolean;
  kubeconfigOut?: string;
  help: boolean;
}

export const UP_USAGE = `usage: node dist/lab/cluster/up.js [--nodes N] [--clients N] [--image] [--kubeconfig-out PATH]

Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and N real nodes
(kubelet + containerd + runc + kube-proxy, each in a network namespace of a test bed;
binaries built by lab/cluster/build.sh), prints the kubeconfig path and stays up until
Ctrl-C (SIGINT/SIGTERM), then removes everything.

  --nodes N              real nodes n1..nN (default 2, 1..40)
  --clients N            client hosts c1..cN on the bed (default 1, 0..40)
  --image                import the project's image (scripts/build-image.sh, cached) into
                         every node and print its reference, for helm install
  --kubeconfig-out PATH  also copy the admin kubeconfig to PATH
`;

function count(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > 40) throw new Error(`${flag} ${v}: expected ${min}..40`);
  return n;
}

export function parseUpArgs(argv: string[]): UpArgs {
  const out: UpArgs = { nodes: 2, clients: 1, image: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') out.help = true;
    else if (a === '--nodes') out.nodes = count(a, value(), 1);
    else if (a === '--clients') out.clients = count(a, value(), 0);
    else if (a === '--image') out.image = true;
    else if (a === '--kubeconfig-out') out.kubeconfigOut = value();
    else throw new Error(`unknown argument ${a}\n${UP_USAGE}`);
  }
  return out;
}
