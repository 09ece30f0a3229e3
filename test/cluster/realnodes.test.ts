// Real nodes on the test bed (lab/cluster/realnodes.ts): kubelet + containerd + runc +
// kube-proxy in each network namespace, one shared cluster for the whole file. It is an
// IPv6-only cluster (nodes, pods, Services, the apiserver's address: IPv6 only); IPv4 and
// dual-stack clusters are what the e2e files run on (realnodes-farm: dual-stack).
import { jest } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { installChart } from '../../lab/cluster/chart.js';
import { projectImage } from '../../lab/cluster/project-image.js';
import { runClient, startEcho } from '../../lab/netns/procs.js';
import { farmYaml, until } from '../operator/helpers.js';
import { BUSYBOX_IMAGE, cniConflist, containerdToml, hostAddress, kubeletYaml, kubeProxyYaml, mountsUnder, podCidrOf, startRealCluster, type RealCluster } from '../../lab/cluster/realnodes.js';

jest.setTimeout(180_000);

let rc: RealCluster;
const shimSockets = (): string[] => (existsSync('/run/containerd/s') ? readdirSync('/run/containerd/s') : []);
let socketsBefore: string[] = [];
const kubectl = (args: string[], input?: string): Promise<string> => rc.controlPlane.kubectl(args, input);

/** A busybox pod bound to a node; `command` is its shell script. */
const podYaml = (name: string, node: string, script: string, labels: Record<string, string> = {}): string => JSON.stringify({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app: name, ...labels } },
  spec: {
    nodeName: node,
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'main', image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['sh', '-c', script] }],
  },
});

async function podIp(name: string): Promise<string> {
  await kubectl(['wait', '--for=condition=Ready', `pod/${name}`, '--timeout=90s']);
  return (await kubectl(['get', 'pod', name, '-o', 'jsonpath={.status.podIP}'])).trim();
}

beforeAll(async () => {
  socketsBefore = shimSockets();
  rc = await startRealCluster({ nodes: 2, clients: 1, families: ['ipv6'] });
  console.log(JSON.stringify({ event: 'real-cluster-up', nodes: 2, families: rc.families, nodesReadyAndProxyingMs: rc.startupMs }));
}, 240_000);

afterAll(async () => {
  await rc?.stop();
});

describe('the configuration files (pure)', () => {
  test('containerd: restricted oom_score_adj, pinned pause image, per-node runc root and pod namespaces', () => {
    const t = containerdToml({ dir: '/x/n1', socket: '/x/n1/c.sock', runcRoot: '/x/n1/runc', cniConfDir: '/x/n1/cni' });
    expect(t).toContain('restrict_oom_score_adj = true');
    expect(t).toContain('netns_mounts_under_state_dir = true');
    expect(t).toContain('address = "/x/n1/c.sock"');
    expect(t).toContain('Root = "/x/n1/runc"');
    expect(t).toContain('sandbox = "localhost/vipfarm-lab/pause:1"');
  });
  test('kubelet: cgroup v1 allowed, private cgroup root and pod logs; CNI: the node range', () => {
    const y = kubeletYaml({ name: 'n1', cgroupRoot: '/vf-n1', cert: 'c', key: 'k', caCert: 'ca', socket: '/s', podLogs: '/logs' });
    expect(y).toMatch(/^failCgroupV1: false$/m);
    expect(y).toMatch(/^cgroupRoot: \/vf-n1$/m);
    expect(y).toMatch(/^podLogsDir: \/logs$/m);
    const c = JSON.parse(cniConflist('10.244.2.0/24', '/ipam'));
    expect(c.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.244.2.0/24' }]]);
    expect(c.plugins[0].ipam.routes).toEqual([{ dst: '0.0.0.0/0' }]);
  });
  test('families: IPv4 by default; dual-stack and IPv6-only pod ranges, kubelet address, kube-proxy cluster CIDRs', () => {
    expect([podCidrOf(3), podCidrOf(3, 'ipv6'), podCidrOf(12, 'ipv6')]).toEqual(['10.244.3.0/24', 'fd00:10:244:3::/64', 'fd00:10:244:12::/64']);
    const dual = JSON.parse(cniConflist([podCidrOf(2), podCidrOf(2, 'ipv6')], '/ipam')).plugins[0].ipam;
    expect(dual.ranges).toEqual([[{ subnet: '10.244.2.0/24' }], [{ subnet: 'fd00:10:244:2::/64' }]]);
    expect(dual.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
    expect(JSON.parse(cniConflist([podCidrOf(2, 'ipv6')], '/ipam')).plugins[0].ipam.routes).toEqual([{ dst: '::/0' }]);
    const kubelet = (families?: ('ipv4' | 'ipv6')[]): string => kubeletYaml({ name: 'n1', cgroupRoot: '/r', cert: 'c', key: 'k', caCert: 'ca', socket: '/s', podLogs: '/l', families });
    expect(kubelet()).toMatch(/^address: 0\.0\.0\.0$/m);
    expect(kubelet(['ipv4', 'ipv6'])).toMatch(/^address: '::'$/m);
    expect(kubelet(['ipv6'])).toMatch(/^address: '::'$/m);
    const proxy = (families?: ('ipv4' | 'ipv6')[]): string => kubeProxyYaml({ name: 'n1', kubeconfig: '/k', families });
    expect(proxy()).toMatch(/^clusterCIDR: 10\.244\.0\.0\/16$/m);
    expect(proxy(['ipv4', 'ipv6'])).toMatch(/^clusterCIDR: 10\.244\.0\.0\/16,fd00:10:244::\/56$/m);
    expect(proxy(['ipv6'])).toMatch(/^clusterCIDR: fd00:10:244::\/56$/m);
    expect(hostAddress({ ip: '10.1.0.11', ip6: 'fd00:0:1::11' }, 'ipv6')).toBe('fd00:0:1::11');
    expect(hostAddress({ ip: '10.1.0.11', ip6: 'fd00:0:1::11' }, 'ipv4')).toBe('10.1.0.11');
    expect(() => hostAddress({ ip: 'fd00:0:1::11', ip6: 'fd00:0:1::11' }, 'ipv4')).toThrow(/no ipv4 address/);
    expect(() => hostAddress({ ip: '10.1.0.11' }, 'ipv6')).toThrow(/no ipv6 address/);
  });
  test('mountsUnder: deepest first, only below the folder, octal escapes decoded', () => {
    const info = [
      '1 0 0:1 / /tmp/vfnA rw - tmpfs x rw',
      '2 1 0:2 / /tmp/vfnA/n1/kubelet/pods/a\\040b rw - tmpfs x rw',
      '3 1 0:3 / /tmp/vfnAB rw - tmpfs x rw',
      '4 1 0:4 / /tmp/vfnA/n1 rw - tmpfs x rw',
    ].join('\n');
    expect(mountsUnder(info, '/tmp/vfnA')).toEqual(['/tmp/vfnA/n1/kubelet/pods/a b', '/tmp/vfnA/n1', '/tmp/vfnA']);
  });
});

// Issue 13's "a v6-only cluster must work": the nodes have no IPv4 address, so the agents
// can only heartbeat over IPv6, to the peers' addresses Kubernetes mode takes from their pods.
describe('a FarmCluster on the IPv6-only cluster', () => {
  test('the chart from the project image; both agents Ready with their share of the buckets; the IPv6 VIP serves from both nodes', async () => {
    const tb = rc.testbed;
    const image = await projectImage();
    const imported = await rc.importImage(image.archive);
    await installChart(rc.controlPlane, { release: 'vf', namespace: 'vipfarm-system', image: image.ref });
    for (const h of tb.nodes) await startEcho(tb, h, '::', [8080]);
    await kubectl(['create', 'namespace', 'lb6']);
    await kubectl(['apply', '-f', '-'], farmYaml('web6', 'lb6', {
      virtualIPs: [tb.vip6(0)], interface: 'eth0', rules: [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }], bucketCount: 64,
      heartbeat: { intervalMs: 100, failureThresholdMs: 2000 },
    }));
    const st = await until('2/2 ready, every bucket served', async () => {
      const s = JSON.parse(await kubectl(['get', 'farmcluster', 'web6', '-n', 'lb6', '-o', 'json'])).status ?? {};
      const buckets = (s.members ?? []).map((m: any) => m.buckets ?? 0);
      return s.readyNodes === 2 && buckets.reduce((a: number, b: number) => a + b, 0) === 64 && buckets.every((b: number) => b > 0) ? s : undefined;
    }, 180_000);
    expect(st.members.map((m: any) => m.node).sort()).toEqual(['n1', 'n2']);
    // the agents' pods know their node by its IPv6 address only
    const pods = JSON.parse(await kubectl(['get', 'pods', '-n', 'lb6', '-l', 'vipfarm.io/farm=web6', '-o', 'json'])).items;
    for (const p of pods) expect(p.status.hostIPs).toEqual([{ ip: rc.nodes.find((n) => n.name === p.spec.nodeName)!.ip }]);
    const r = await runClient(tb, tb.clients[0], { vip: tb.vip6(0), port: 8080, protocol: 'tcp', count: 200, concurrency: 8 });
    const by: Record<string, number> = {};
    for (const a of r.results) by[a.node ?? 'failed'] = (by[a.node ?? 'failed'] ?? 0) + 1;
    console.log(JSON.stringify({ event: 'v6-only-farm', importMs: imported.ms, by }));
    expect(by.failed).toBeUndefined();
    for (const n of ['n1', 'n2']) expect(by[n]).toBeGreaterThan(40);
    for (const h of tb.nodes) expect(tb.exec(h.netns, ['ip', '-6', 'addr', 'show', 'dev', 'lo'])).toContain(`${tb.vip6(0)}/128`);
    // deleted with the farm: the next tests count the nodes' processes
    await kubectl(['delete', 'farmcluster', 'web6', '-n', 'lb6', '--wait=true', '--timeout=120s']);
  }, 600_000);
});

describe('a cluster of real nodes', () => {
  test('every node is registered by its kubelet, Ready, with containerd as its runtime and only its IPv6 address', async () => {
    const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])).items;
    expect(nodes.map((n: any) => n.metadata.name).sort()).toEqual(['n1', 'n2']);
    for (const n of nodes) {
      expect(n.status.nodeInfo.kubeletVersion).toBe('v1.36.3');
      expect(n.status.nodeInfo.containerRuntimeVersion).toBe('containerd://2.4.2');
      const host = rc.nodes.find((r) => r.name === n.metadata.name)!.host;
      expect(n.status.addresses.filter((a: any) => a.type === 'InternalIP')).toEqual([{ type: 'InternalIP', address: hostAddress(host, 'ipv6') }]);
      expect(n.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
    }
  });

  test('pods get addresses of their node\'s range and reach each other across nodes, directly and through a Service', async () => {
    await kubectl(['apply', '-f', '-'], podYaml('web', 'n2', 'mkdir -p /www && echo hello-from-n2 > /www/index.html && exec httpd -f -p 8080 -h /www'));
    await kubectl(['apply', '-f', '-'], podYaml('client', 'n1', 'exec sleep 3600'));
    const webIp = await podIp('web');
    const clientIp = await podIp('client');
    expect(webIp).toMatch(/^fd00:10:244:2::[0-9a-f]+$/);
    expect(clientIp).toMatch(/^fd00:10:244:1::[0-9a-f]+$/);
    expect(await kubectl(['exec', 'client', '--', 'timeout', '5', 'wget', '-q', '-O', '-', `http://[${webIp}]:8080/`])).toBe('hello-from-n2\n');
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
    }));
    const clusterIp = (await kubectl(['get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    expect(clusterIp).toMatch(/^fd00:10:96::/);
    // kube-proxy programs the Service once its EndpointSlice exists.
    let got = '';
    for (let i = 0; i < 60 && got !== 'hello-from-n2\n'; i++) {
      got = await kubectl(['exec', 'client', '--', 'timeout', '3', 'wget', '-q', '-O', '-', `http://[${clusterIp}]/`]).catch(() => '');
      if (got !== 'hello-from-n2\n') await new Promise((r) => setTimeout(r, 500));
    }
    expect(got).toBe('hello-from-n2\n');
    // and from a node itself (host network), as a hostNetwork agent would
    const fromNode = await rc.nsExec(rc.nodes[0], ['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${clusterIp}/80; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`]);
    expect(fromNode).toContain('hello-from-n2');
  });

  test('in-cluster clients reach the API server through the kubernetes Service, with their service-account token', async () => {
    // busybox has no TLS client: a connect to [fd00:10:96::1]:443 and the mounted credentials.
    expect(rc.kubernetesServiceIP).toBe('fd00:10:96::1');
    const out = await kubectl(['exec', 'client', '--', 'sh', '-c',
      'nc -w 3 "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT" </dev/null && echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT open"; ls /var/run/secrets/kubernetes.io/serviceaccount']);
    expect(out).toContain('fd00:10:96::1:443 open');
    expect(out).toMatch(/ca\.crt[\s\S]*namespace[\s\S]*token/);
    // The same path answers TLS with the apiserver's certificate (checked from the node with openssl).
    const tls = await rc.nsExec(rc.nodes[1], ['timeout', '5', 'openssl', 's_client', '-connect', '[fd00:10:96::1]:443', '-CAfile', rc.controlPlane.pki.caCert, '-servername', 'kubernetes.default.svc'])
      .catch((e: { stdout?: string }) => e.stdout ?? '');
    expect(tls).toMatch(/Verify return code: 0 \(ok\)/);
  });

  test('kubectl logs and exec reach the kubelets through the egress proxy', async () => {
    await kubectl(['apply', '-f', '-'], podYaml('talker', 'n1', 'echo line-one; echo line-two; exec sleep 3600'));
    await podIp('talker');
    expect(await kubectl(['logs', 'talker'])).toBe('line-one\nline-two\n');
    expect((await kubectl(['exec', 'talker', '--', 'hostname'])).trim()).toBe('talker');
  });

  test('stop() leaves no process, mount, cgroup, shim socket or namespace behind', async () => {
    const base = rc.nodes[0].dir.replace(/\/n1$/, '');
    const netnsPrefix = rc.nodes[0].netns.replace(/-n1$/, '-');
    const cgroupName = readdirSync('/sys/fs/cgroup/pids').filter((d) => d.startsWith(`vipfarm-${rc.testbed.runId}-`));
    expect(cgroupName.length).toBe(2);
    const pids = rc.nodes.flatMap((n) => Object.values(n.pids()));
    const shimsBefore = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(base);
      } catch {
        return false;
      }
    });
    expect(shimsBefore.length).toBeGreaterThan(0);
    await rc.stop();
    for (const pid of [...pids, ...shimsBefore.map(Number)]) expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).toBe(false);
    expect(mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), base)).toEqual([]);
    expect(existsSync(base)).toBe(false);
    expect(shimSockets().filter((s) => !socketsBefore.includes(s))).toEqual([]);
    for (const h of readdirSync('/sys/fs/cgroup')) for (const c of cgroupName) expect(existsSync(`/sys/fs/cgroup/${h}/${c}`)).toBe(false);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(netnsPrefix);
  });
});
