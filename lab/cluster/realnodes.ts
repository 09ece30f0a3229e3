// A cluster of real nodes on the data-plane test bed: every test-bed node (a network
// namespace) runs containerd 2.x + runc, a real kubelet and a real kube-proxy (nftables),
// against the control plane of controlplane.ts. Pods get pod IPs from a CNI bridge +
// host-local range per node and family (10.244.<i>.0/24, fd00:10:244:<i>::/64), routed
// between the nodes over the test bed; in-cluster clients reach the API server through the
// `kubernetes` Service (10.0.0.1:443, or fd00:10:96::1 when IPv6 is the primary family) as
// on any cluster: kube-proxy sends it to the apiserver's advertised address, a relay in the
// test bed's bridge namespace. IPv4 (the default), dual-stack or IPv6-only: `families`. The apiserver reaches the kubelets (logs, exec) through an
// HTTP CONNECT proxy in the same namespace. The recipe and the pitfalls of this VM (no
// CAP_SYS_RESOURCE, cgroup v1, nsenter instead of `ip netns exec`) are in README.md.
//
//   const rc = await startRealCluster({ nodes: 3, clients: 1 });
//   try { await rc.importImage('/path/image.tar'); ... } finally { await rc.stop(); }
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { IPFamily } from '../../common/src/config/syntax.js';
import { RUN_DIR } from '../../operator/src/desired-objects.js';
import { createTestbed, type Host, type Testbed } from '../netns/testbed.js';
import { findNodeBinDir, repoRoot } from './binaries.js';
import { KUBERNETES_SERVICE_IPS, kubeconfigYaml, SERVICE_CIDRS, startControlPlane, type ControlPlane } from './controlplane.js';
import { issue } from './pki.js';
import { startProc, type Proc } from './procs.js';

const execFileP = promisify(execFile);

/** Pod addresses of the whole cluster per family; node i (1-based) gets podCidrOf(i, family). */
export const CLUSTER_POD_CIDRS: Readonly<Record<IPFamily, string>> = { ipv4: '10.244.0.0/16', ipv6: 'fd00:10:244::/56' };
export const CLUSTER_POD_CIDR = CLUSTER_POD_CIDRS.ipv4;
/** 10.244.<i>.0/24, fd00:10:244:<i>::/64 (i < 100: its digits read as hex stay in the /56) */
export const podCidrOf = (index: number, family: IPFamily = 'ipv4'): string => (family === 'ipv4' ? `10.244.${index}.0/24` : `fd00:10:244:${index}::/64`);
/** A host's address of a family on the bed (its main one on a single-family bed). */
export const hostAddress = (host: Pick<Host, 'ip' | 'ip6'>, family: IPFamily): string => {
  const a = family === 'ipv6' ? host.ip6 : host.ip;
  if (a === undefined || (family === 'ipv4' && a.includes(':'))) throw new Error(`real nodes: the bed has no ${family} address for ${host.ip}`);
  return a;
};
/** An address in a URL (IPv6 in brackets). */
const urlHost = (a: string): string => (a.includes(':') ? `[${a}]` : a);
/** The images every node has from the start (built by build.sh). */
export const PAUSE_IMAGE = 'localhost/vipfarm-lab/pause:1';
export const BUSYBOX_IMAGE = 'localhost/vipfarm-lab/busybox:1';
/** Controllers real nodes need besides CONTROLLERS: NotReady taints and evictions, Service endpoints. */
export const REAL_NODE_CONTROLLERS = ['node-lifecycle-controller', 'endpointslice-controller'];
const CGROUP_HIERARCHIES = '/sys/fs/cgroup';

export interface RealClusterOptions {
  nodes: number;
  clients?: number;
  /**
   * The cluster's address families, primary first (default ['ipv4']): the bed's, each
   * node's --node-ip (so its InternalIPs and its hostNetwork pods' hostIPs), the pod ranges,
   * the Service ranges and kube-proxy's. ['ipv4', 'ipv6'] is dual-stack, ['ipv6'] IPv6-only.
   */
  families?: readonly IPFamily[];
  /** The bed's switch floods unknown unicast (default true; false for Directed-mode tests, testbed.ts). */
  floodUnknownUnicast?: boolean;
  /** Seconds to wait for the control plane and for each node to be Ready. */
  readyTimeoutSec?: number;
}

export interface RealNode {
  name: string;
  /** Its primary address (InternalIP), of families[0] */
  ip: string;
  /** Its address of each family, in the cluster's order (--node-ip) */
  ips: string[];
  netns: string;
  host: Host;
  /** Its pod range of the primary family */
  podCidr: string;
  /** Its pod range of each family, in the cluster's order */
  podCidrs: string[];
  /** The node's folder: containerd root/state, kubelet root dir, pod logs, CNI data, logs. */
  dir: string;
  containerdSocket: string;
  /** Pid of each of the node's processes (containerd, kubelet, kube-proxy). */
  pids(): { containerd: number; kubelet: number; kubeProxy: number };
  /** Stops the kubelet (its pods keep running, the node goes NotReady after the grace period). */
  stopKubelet(): Promise<void>;
  /** Starts the kubelet again. */
  startKubelet(): Promise<void>;
}

export interface ImportResult {
  /** Milliseconds for importing into all nodes (in parallel). */
  ms: number;
}

export interface RealCluster {
  testbed: Testbed;
  families: readonly IPFamily[];
  controlPlane: ControlPlane;
  nodes: RealNode[];
  /** The apiserver's address on the test bed (the `kubernetes` Service's endpoint), of the primary family. */
  apiAddress: string;
  /** The `kubernetes` Service's address (the first of the primary family's Service range). */
  kubernetesServiceIP: string;
  /** Milliseconds from the first containerd start until every node was Ready and proxying. */
  startupMs: number;
  /** Imports an image archive (docker-archive or OCI tar) into every node's containerd. */
  importImage(archive: string): Promise<ImportResult>;
  /** Runs argv in a node's network namespace (nsenter, as the node's processes run). */
  nsExec(node: RealNode, argv: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** containerd's configuration for one node (pure). */
export function containerdToml(d: { dir: string; socket: string; runcRoot: string; cniConfDir: string }): string {
  const q = JSON.stringify;
  return `version = 3
root = ${q(path.join(d.dir, 'containerd/root'))}
state = ${q(path.join(d.dir, 'containerd/state'))}
[grpc]
  address = ${q(d.socket)}
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = ${q(path.join(d.dir, 'containerd/opt'))}
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${q(PAUSE_IMAGE)}
  [plugins.'io.containerd.cri.v1.runtime']
    # No CAP_SYS_RESOURCE on this VM: a pause container's oom_score_adj -998 is refused
    # (runc fails with "can't get final child's PID from pipe").
    restrict_oom_score_adj = true
    # Pod namespaces in the node's folder, not in /run/netns beside everyone's.
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = ${q(d.runcRoot)}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = ${q(d.cniConfDir)}
`;
}

/** The node's CNI network: a bridge (gateway for its pods) and host-local addresses, one range per family (pure). */
export function cniConflist(podCidrs: string | readonly string[], ipamDir: string): string {
  const cidrs = typeof podCidrs === 'string' ? [podCidrs] : podCidrs;
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'vipfarm-lab',
    plugins: [{
      type: 'bridge',
      bridge: 'cni0',
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        ranges: cidrs.map((subnet) => [{ subnet }]),
        routes: cidrs.map((c) => ({ dst: c.includes(':') ? '::/0' : '0.0.0.0/0' })),
        dataDir: ipamDir,
      },
    }],
  });
}

/** KubeletConfiguration for one node (pure). */
export function kubeletYaml(d: { name: string; cgroupRoot: string; cert: string; key: string; caCert: string; socket: string; podLogs: string; families?: readonly IPFamily[] }): string {
  // '::' takes IPv4 too; a namespace without IPv6 has no '::' to bind
  const address = (d.families ?? ['ipv4']).includes('ipv6') ? "'::'" : '0.0.0.0';
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 here; containerd 2.4 still supports it
failCgroupV1: false
cgroupDriver: cgroupfs
# kubelets sharing /kubepods would remove each other's pods: one root per node
cgroupRoot: ${d.cgroupRoot}
failSwapOn: false
address: ${address}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${d.cert}
tlsPrivateKeyFile: ${d.key}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: ${d.caCert}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://${d.socket}
# the same reason as cgroupRoot: /var/log/pods would be shared
podLogsDir: ${d.podLogs}
clusterDomain: cluster.local
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%, imagefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 30
nodeStatusUpdateFrequency: 2s
`;
}

/** KubeProxyConfiguration for one node (pure). */
export function kubeProxyYaml(d: { name: string; kubeconfig: string; families?: readonly IPFamily[] }): string {
  const clusterCidr = (d.families ?? ['ipv4']).map((f) => CLUSTER_POD_CIDRS[f]).join(',');
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${d.kubeconfig}}
hostnameOverride: ${d.name}
mode: nftables
clusterCIDR: ${clusterCidr}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# the conntrack table size is the host's (not per namespace): leave it alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr || e.message).trim()}`, { cause: err });
  }
}

const tryRun = (cmd: string, args: string[]): void => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    /* best effort */
  }
};

function logTail(file: string, lines = 20): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

/** Every cgroup v1 hierarchy (and the unified one, if mounted) a kubelet may create its root in. */
function hierarchies(): string[] {
  return readdirSync(CGROUP_HIERARCHIES).map((h) => path.join(CGROUP_HIERARCHIES, h)).filter((h) => existsSync(path.join(h, 'cgroup.procs')));
}

/** Pids in a cgroup subtree (all hierarchies hold the same processes; one with every process is enough). */
function cgroupPids(root: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    try {
      for (const l of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.add(Number(l));
    } catch {
      /* removed meanwhile */
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  walk(root);
  return [...pids];
}

function rmCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroupTree(path.join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    /* still busy: reported by the caller's check */
  }
}

/** Mount points at or below dir, deepest first. */
export function mountsUnder(mountinfo: string, dir: string): string[] {
  const points = mountinfo.split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m)
    // mountinfo escapes spaces and the like as \\ooo
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(dir + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Pids of containerd shims started for this socket (they outlive containerd by design). */
function shimPids(socket: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(socket)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The shims' ttrpc sockets (in /run/containerd/s/), from the task bundles' bootstrap.json. */
function shimSockets(stateDir: string): string[] {
  const tasks = path.join(stateDir, 'io.containerd.runtime.v2.task');
  const out = new Set<string>();
  if (!existsSync(tasks)) return [];
  for (const ns of readdirSync(tasks)) {
    for (const id of readdirSync(path.join(tasks, ns))) {
      try {
        const a = (JSON.parse(readFileSync(path.join(tasks, ns, id, 'bootstrap.json'), 'utf8')) as { address?: string }).address ?? '';
        const file = a.replace(/^unix:\/\//, '');
        if (file.startsWith('/run/containerd/s/')) out.add(file);
      } catch {
        /* no bootstrap file (yet) */
      }
    }
  }
  return [...out];
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * The agents keep a node's original sysctls in the host's /run/vipfarm (their hostPath),
 * named by the node's network-namespace inode. Agents killed with their node never remove
 * them; the namespace (and so what they describe) goes with the bed, so they go too.
 */
function removeSavedSysctls(netns: string): void {
  let ino: number;
  try {
    ino = statSync(`/run/netns/${netns}`).ino;
  } catch {
    return;
  }
  const suffix = `-netns${ino}.json`;
  let names: string[];
  try {
    names = readdirSync(RUN_DIR);
  } catch {
    return;
  }
  for (const f of names) if (f.startsWith('sysctl-') && f.endsWith(suffix)) rmSync(path.join(RUN_DIR, f), { force: true });
}

const tcpOpen = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, host);
    s.setTimeout(1000, () => s.destroy());
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
  });

export async function startRealCluster(opts: RealClusterOptions): Promise<RealCluster> {
  const binDir = findNodeBinDir();
  const bin = (n: string): string => path.join(binDir, n);
  const timeoutMs = (opts.readyTimeoutSec ?? 120) * 1000;
  const families = opts.families ?? ['ipv4'];
  if (families.length === 0 || new Set(families).size !== families.length) throw new Error(`real nodes: families ${JSON.stringify(families)}: one or two distinct families`);
  const primary = families[0];
  const tb = createTestbed({ nodes: opts.nodes, clients: opts.clients ?? 1, families, floodUnknownUnicast: opts.floodUnknownUnicast });
  // Short: unix socket paths must stay under 108 bytes.
  const base = mkdtempSync(`/tmp/vfn${tb.runId}-`);
  // of the primary family: the `kubernetes` Service (primary family) has it as its endpoint
  const apiAddress = primary === 'ipv4' ? `${tb.prefix}.0.254` : `${tb.prefix6}::254`;
  const kubernetesServiceIP = KUBERNETES_SERVICE_IPS[primary];
  const procs: Proc[] = [];
  const nodeProcs = new Map<string, { containerd?: Proc; kubelet?: Proc; kubeProxy?: Proc }>();
  let cp: ControlPlane | undefined;
  let cleaned = false;

  const nodesInfo = tb.nodes.map((host, i) => {
    const dir = path.join(base, host.name);
    return {
      host,
      name: host.name,
      ip: hostAddress(host, primary),
      ips: families.map((f) => hostAddress(host, f)),
      netns: host.netns,
      podCidr: podCidrOf(i + 1, primary),
      podCidrs: families.map((f) => podCidrOf(i + 1, f)),
      dir,
      socket: path.join(dir, 'containerd.sock'),
      cgroupRoot: `/vipfarm-${tb.runId}-${host.name}`,
    };
  });
  const nsenter = (netns: string, cmd: string, args: string[]): [string, string[]] => ['nsenter', [`--net=/run/netns/${netns}`, cmd, ...args]];

  // One node's processes, containers, shims, sockets and cgroups; what could not be removed.
  const cleanupNodeSync = (n: (typeof nodesInfo)[number]): string[] => {
    const left: string[] = [];
    const ps = nodeProcs.get(n.name);
    for (const p of [ps?.kubeProxy, ps?.kubelet]) if (p && p.exitCode === null) tryKillGroup(p.pid);
    // Containers (and pause): every one is in the node's cgroup root.
    const roots = hierarchies().map((h) => path.join(h, n.cgroupRoot.slice(1)));
    for (let i = 0; i < 50; i++) {
      const pids = roots.flatMap(cgroupPids);
      if (pids.length === 0) break;
      killAll(pids);
      sleepSync(100);
    }
    const sockets = shimSockets(path.join(n.dir, 'containerd/state'));
    if (ps?.containerd && ps.containerd.exitCode === null) tryKillGroup(ps.containerd.pid);
    for (let i = 0; i < 30; i++) {
      const shims = shimPids(n.socket);
      if (shims.length === 0) break;
      killAll(shims);
      sleepSync(100);
    }
    for (const s of sockets) rmSync(s, { force: true });
    // The shims' folder is fixed (/run/containerd/s); remove it only if we made it empty.
    for (const d of ['/run/containerd/s', '/run/containerd']) {
      try {
        rmdirSync(d);
      } catch {
        /* not empty (another containerd) or absent */
      }
    }
    for (const r of roots) {
      rmCgroupTree(r);
      if (existsSync(r)) left.push(`cgroup ${r}`);
    }
    removeSavedSysctls(n.host.netns);
    return left;
  };
  // Synchronous, so the process 'exit' hook can run it too: by then procs.ts has SIGKILLed
  // our process groups, so nothing here relies on containerd answering.
  const cleanupSync = (): string[] => {
    if (cleaned) return [];
    cleaned = true;
    process.off('exit', onExit);
    const left: string[] = [];
    for (const n of nodesInfo) left.push(...cleanupNodeSync(n));
    for (const p of procs) if (p.exitCode === null) tryKillGroup(p.pid);
    for (const m of mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), base)) tryRun('umount', ['-l', m]);
    const stillMounted = mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), base);
    left.push(...stillMounted.map((m) => `mount ${m}`));
    if (stillMounted.length === 0) {
      // VIPFARM_KEEP_NODES=1 keeps the logs (and configurations) for debugging.
      if (process.env.VIPFARM_KEEP_NODES === '1') {
        for (const n of nodesInfo) for (const d of ['containerd', 'kubelet', 'runc', 'cni/ipam']) rmSync(path.join(n.dir, d), { recursive: true, force: true });
      } else rmSync(base, { recursive: true, force: true });
    }
    tb.destroy();
    return left;
  };
  const onExit = (): void => void cleanupSync();
  process.on('exit', onExit);

  const stop = async (): Promise<void> => {
    if (cleaned) return;
    // Gracefully first: kubelets and kube-proxies, then the control plane; the rest is forced.
    for (const ps of nodeProcs.values()) {
      await ps.kubeProxy?.stop(5000);
      await ps.kubelet?.stop(10_000);
    }
    await Promise.all([...nodeProcs.values()].map((ps) => ps.containerd?.stop(1)));
    const left = cleanupSync();
    await cp?.stop();
    if (left.length > 0) throw new Error(`real nodes: left behind after cleanup: ${left.join(', ')}`);
  };

  try {
    // The apiserver's address on the bed, and routes to every node's pods (replies of the
    // apiserver relay to pods, pods of one node to another's).
    if (primary === 'ipv6') {
      // the bed keeps its switch out of IPv6 (its ports stay so); br0 gets the apiserver's address
      run(...nsenter(tb.bridgeNetns, 'sysctl', ['-qw', ...['accept_dad=0', 'accept_ra=0', 'router_solicitations=0', 'disable_ipv6=0'].map((k) => `net.ipv6.conf.br0.${k}`)]));
      run('ip', ['-n', tb.bridgeNetns, 'addr', 'add', `${apiAddress}/64`, 'dev', 'br0', 'nodad']);
    } else run('ip', ['-n', tb.bridgeNetns, 'addr', 'add', `${apiAddress}/16`, 'dev', 'br0']);
    for (const n of nodesInfo) run('ip', ['-n', tb.bridgeNetns, 'route', 'add', n.podCidr, 'via', n.ip]);
    for (const n of nodesInfo) {
      const routes = nodesInfo.filter((o) => o !== n).flatMap((o) => o.podCidrs.map((c, k) => `route add ${c} via ${o.ips[k]} dev eth0`));
      // A Service address needs a route before kube-proxy's DNAT (in the output hook, after
      // routing) can apply; a real node has its default route. The bridge answers nothing else
      // (the other family's range: on-link, nothing behind it either).
      routes.push(...families.map((f) => `route add ${SERVICE_CIDRS[f]} ${f === primary ? `via ${apiAddress}` : ''} dev eth0`));
      run('ip', ['-n', n.netns, '-batch', '-'], routes.join('\n') + '\n');
      const forwarding = families.map((f) => (f === 'ipv4' ? 'net.ipv4.ip_forward=1' : 'net.ipv6.conf.all.forwarding=1'));
      run(...nsenter(n.netns, 'sysctl', ['-qw', ...forwarding]));
    }

    const egressSocket = path.join(base, 'egress.sock');
    const apiSocket = path.join(base, 'api.sock');
    cp = await startControlPlane({
      advertiseAddress: apiAddress,
      egressProxySocket: egressSocket,
      extraControllers: REAL_NODE_CONTROLLERS,
      // NotReady 10 s after the last status (the kubelets post every 2 s), not 50 s: tests wait for it.
      controllerManagerArgs: ['--node-monitor-grace-period=10s', '--node-monitor-period=2s'],
      readyTimeoutSec: opts.readyTimeoutSec,
      families,
    });
    const relayJs = path.join(repoRoot(), 'dist/lab/cluster/relay.js');
    const hostRelay = startProc('relay-host', process.execPath, [relayJs, `forward=unix:${apiSocket}=tcp:127.0.0.1:${cp.port}`], path.join(base, 'relay-host.log'));
    procs.push(hostRelay);
    const bridgeRelay = startProc('relay-bridge', ...nsenter(tb.bridgeNetns, process.execPath, [relayJs,
      `forward=tcp:${apiAddress}:${cp.port}=unix:${apiSocket}`, `connect=unix:${egressSocket}`]), path.join(base, 'relay-bridge.log'));
    procs.push(bridgeRelay);
    const nodeKubeconfig = path.join(base, 'node.kubeconfig');
    writeFileSync(nodeKubeconfig, kubeconfigYaml(`https://${urlHost(apiAddress)}:${cp.port}`, cp.pki));

    const started = Date.now();
    const startKubeletOf = (n: (typeof nodesInfo)[number]): Proc =>
      startProc(`kubelet-${n.name}`, ...nsenter(n.netns, bin('kubelet'), [
        `--config=${path.join(n.dir, 'kubelet.yaml')}`, `--kubeconfig=${nodeKubeconfig}`, `--root-dir=${path.join(n.dir, 'kubelet')}`,
        `--hostname-override=${n.name}`, `--node-ip=${n.ips.join(',')}`, '--v=1',
      ]), path.join(n.dir, 'kubelet.log'));

    await Promise.all(nodesInfo.map(async (n) => {
      for (const d of ['containerd/root', 'containerd/state', 'containerd/opt', 'kubelet', 'cni/net.d', 'cni/ipam', 'runc', 'pod-logs']) {
        mkdirSync(path.join(n.dir, d), { recursive: true });
      }
      for (const h of hierarchies()) mkdirSync(path.join(h, n.cgroupRoot.slice(1)), { recursive: true });
      // cpuset children start empty; a task can only join one with cpus and mems.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        const parent = path.join(CGROUP_HIERARCHIES, 'cpuset', f);
        if (existsSync(parent)) writeFileSync(path.join(CGROUP_HIERARCHIES, 'cpuset', n.cgroupRoot.slice(1), f), readFileSync(parent));
      }
      writeFileSync(path.join(n.dir, 'containerd.toml'), containerdToml({ dir: n.dir, socket: n.socket, runcRoot: path.join(n.dir, 'runc'), cniConfDir: path.join(n.dir, 'cni/net.d') }));
      writeFileSync(path.join(n.dir, 'cni/net.d/10-vipfarm-lab.conflist'), cniConflist(n.podCidrs, path.join(n.dir, 'cni/ipam')));
      const cert = issue(n.dir, 'kubelet', { commonName: n.name, dnsNames: [n.name], ips: n.ips, usage: 'server' }, cp!.pki.caCert, cp!.pki.caKey);
      writeFileSync(path.join(n.dir, 'kubelet.yaml'), kubeletYaml({ name: n.name, cgroupRoot: n.cgroupRoot, cert: cert.cert, key: cert.key, caCert: cp!.pki.caCert, socket: n.socket, podLogs: path.join(n.dir, 'pod-logs'), families }));
      writeFileSync(path.join(n.dir, 'kube-proxy.yaml'), kubeProxyYaml({ name: n.name, kubeconfig: nodeKubeconfig, families }));

      const ps: { containerd?: Proc; kubelet?: Proc; kubeProxy?: Proc } = {};
      nodeProcs.set(n.name, ps);
      // nsenter --net, not `ip netns exec`: that remounts /sys, hiding the cgroup v1 mounts.
      ps.containerd = startProc(`containerd-${n.name}`, ...nsenter(n.netns, bin('containerd'), ['--config', path.join(n.dir, 'containerd.toml')]),
        path.join(n.dir, 'containerd.log'), { env: { ...process.env, PATH: `${binDir}:${process.env.PATH}` } });
      await waitUntil(`containerd of ${n.name}`, async () => {
        if (ps.containerd!.exitCode !== null) throw new Error(`containerd of ${n.name} exited: ${logTail(path.join(n.dir, 'containerd.log'))}`);
        return existsSync(n.socket);
      }, timeoutMs);
      for (const img of ['pause.tar', 'busybox.tar']) await ctrImport(bin('ctr'), n.socket, bin(img));
      ps.kubelet = startKubeletOf(n);
    }));

    const core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await waitUntil('every node Ready', async () => {
      for (const n of nodesInfo) {
        const k = nodeProcs.get(n.name)!.kubelet!;
        if (k.exitCode !== null) throw new Error(`kubelet of ${n.name} exited (${k.exitCode}):\n${logTail(path.join(n.dir, 'kubelet.log'))}`);
      }
      const list = await core.listNode();
      const ready = list.items.filter((no) => no.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !no.spec?.taints?.length);
      return ready.length === nodesInfo.length;
    }, timeoutMs);

    for (const n of nodesInfo) {
      nodeProcs.get(n.name)!.kubeProxy = startProc(`kube-proxy-${n.name}`, ...nsenter(n.netns, bin('kube-proxy'), [
        `--config=${path.join(n.dir, 'kube-proxy.yaml')}`, '--v=1',
      ]), path.join(n.dir, 'kube-proxy.log'));
    }
    // Proxying once the `kubernetes` Service answers from every node.
    await waitUntil(`the kubernetes Service (${kubernetesServiceIP}:443) from every node`, async () => {
      for (const n of nodesInfo) {
        const kp = nodeProcs.get(n.name)!.kubeProxy!;
        if (kp.exitCode !== null) throw new Error(`kube-proxy of ${n.name} exited (${kp.exitCode}):\n${logTail(path.join(n.dir, 'kube-proxy.log'))}`);
        try {
          await execFileP('nsenter', [`--net=/run/netns/${n.netns}`, 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${kubernetesServiceIP}/443`]);
        } catch {
          return false;
        }
      }
      return true;
    }, timeoutMs);
    const startupMs = Date.now() - started;

    const nodes: RealNode[] = nodesInfo.map((n) => ({
      name: n.name,
      ip: n.ip,
      ips: n.ips,
      netns: n.netns,
      host: n.host,
      podCidr: n.podCidr,
      podCidrs: n.podCidrs,
      dir: n.dir,
      containerdSocket: n.socket,
      pids: () => {
        const ps = nodeProcs.get(n.name)!;
        return { containerd: ps.containerd?.pid ?? -1, kubelet: ps.kubelet?.pid ?? -1, kubeProxy: ps.kubeProxy?.pid ?? -1 };
      },
      stopKubelet: async () => {
        await nodeProcs.get(n.name)!.kubelet?.stop(10_000);
      },
      startKubelet: async () => {
        const ps = nodeProcs.get(n.name)!;
        if (ps.kubelet && ps.kubelet.exitCode === null) return;
        ps.kubelet = startKubeletOf(n);
      },
    }));

    return {
      testbed: tb,
      families,
      controlPlane: cp,
      nodes,
      apiAddress,
      kubernetesServiceIP,
      startupMs,
      importImage: async (archive) => {
        const s = Date.now();
        await Promise.all(nodesInfo.map((n) => ctrImport(bin('ctr'), n.socket, archive)));
        return { ms: Date.now() - s };
      },
      nsExec: async (node, argv) => (await execFileP('nsenter', [`--net=/run/netns/${node.netns}`, ...argv], { encoding: 'utf8' })).stdout,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

function tryKillGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

async function ctrImport(ctr: string, socket: string, archive: string): Promise<void> {
  try {
    await execFileP(ctr, ['-a', socket, '-n', 'k8s.io', 'images', 'import', archive], { encoding: 'utf8', maxBuffer: 16 << 20 });
  } catch (err) {
    throw new Error(`importing ${archive} into ${socket}: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`, { cause: err });
  }
}

async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch((err: Error) => {
      if (err.message.includes('exited')) throw err;
      return false;
    })) return;
    if (Date.now() > deadline) throw new Error(`real nodes: timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(250);
  }
}
