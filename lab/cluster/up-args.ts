// Command line of up.ts (pure, tested).
import type { KubeletNode } from './kubelet.js';

export interface UpArgs {
  nodes: KubeletNode[];
  kubeconfigOut?: string;
  /** Create a test bed (lab/netns/testbed.ts) with this many node hosts and use them. */
  testbed?: number;
  help: boolean;
}

export const UP_USAGE = `usage: node dist/lab/cluster/up.js [--node NAME=IP[@NETNS]]... [--testbed N] [--kubeconfig-out PATH]

Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler (built by
lab/cluster/build.sh), registers the nodes and runs the test kubelet for them, prints
the kubeconfig path and stays up until Ctrl-C (SIGINT/SIGTERM), then removes everything.

  --node NAME=IP@NETNS   a node whose pods run in network namespace NETNS (must exist)
  --node NAME=IP         a node whose pods run in the host namespace
                         (default: one node "local" with IP 127.0.0.1 in the host namespace)
  --testbed N            also create a test bed of N namespace hosts (n1..nN on a bridge)
                         and register them as nodes; removed on exit
  --kubeconfig-out PATH  also copy the admin kubeconfig to PATH
`;

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseNode(spec: string): KubeletNode {
  const m = /^([^=]+)=([^@]+)(?:@(.+))?$/.exec(spec);
  if (!m) throw new Error(`--node ${spec}: expected NAME=IP or NAME=IP@NETNS`);
  const [, name, ip, netns] = m;
  if (!NAME.test(name)) throw new Error(`--node ${spec}: "${name}" is not a valid node name (lowercase letters, digits, '-')`);
  const oct = IPV4.exec(ip);
  if (!oct || oct.slice(1).some((o) => Number(o) > 255)) throw new Error(`--node ${spec}: "${ip}" is not an IPv4 address`);
  return { name, ip, netns: netns ?? null };
}

export function parseUpArgs(argv: string[]): UpArgs {
  const out: UpArgs = { nodes: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') out.help = true;
    else if (a === '--node') out.nodes.push(parseNode(value()));
    else if (a === '--kubeconfig-out') out.kubeconfigOut = value();
    else if (a === '--testbed') {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1 || n > 40) throw new Error(`--testbed ${v}: expected 1..40`);
      out.testbed = n;
    }
    else throw new Error(`unknown argument ${a}\n${UP_USAGE}`);
  }
  const names = out.nodes.map((n) => n.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`--node ${dup} given twice`);
  if (out.nodes.length === 0) out.nodes.push({ name: 'local', ip: '127.0.0.1', netns: null });
  if (out.testbed !== undefined && out.nodes.some((n) => /^n\d+$/.test(n.name))) {
    throw new Error('--testbed names its hosts n1..nN: give --node other names');
  }
  return out;
}
