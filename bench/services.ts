// `npm run bench -- services`: a LoadBalancer Service of our class on 3 real nodes (kubelet,
// containerd, kube-proxy nftables; lab/cluster/realnodes.ts) with the chart's operator and
// agents from the project image, 6 pods behind it. Measures, through kube-proxy:
// - the spread of 600 new connections from 600 client addresses over the nodes (SYNs each
//   node's farm filter accepted as owner);
// - takeover when a node's agent is SIGKILLed: a paced client (one connection every 5 ms,
//   each from another address) runs across the kill; a connection whose SYN the dead
//   agent's node no longer accepts (its kernel lease ran out) is retried by the client's
//   kernel 1 s later. "served again" = start of the last such connection - the kill, i.e.
//   from then on every new connection got through at its first SYN.
// The farm runs with the default heartbeat settings (what users get).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { backendDeployment, parseGreeting } from '../lab/cluster/backend.js';
import { projectImage } from '../lab/cluster/project-image.js';
import { agentPid, installChart, stagePackets, takeoverGap } from '../lab/cluster/real-helm.js';
import { startRealCluster } from '../lab/cluster/realnodes.js';
import { runClient } from '../lab/netns/procs.js';
import { DEFAULTS } from '../common/src/config/index.js';
import { median, percentile } from './dataplane.js';
import { writeSection } from './report.js';

const NS = 'bench';
const FARM = 'web';
const TRIALS = Number(process.env.VIPFARM_BENCH_TRIALS ?? 6);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`bench services: timed out waiting for ${what}`);
    await sleep(250);
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-bench-svc-'));
  const image = await projectImage();
  const rc = await startRealCluster({ nodes: 3, clients: 1 });
  try {
    const kubectl = (args: string[], input?: string): Promise<string> => rc.controlPlane.kubectl(args, input);
    const farmStatus = async (): Promise<any> => JSON.parse(await kubectl(['get', 'farmcluster', FARM, '-n', NS, '-o', 'json'])).status ?? {};
    const whole = async (): Promise<boolean> => {
      const s = await farmStatus();
      return s.readyNodes === 3 && (s.members ?? []).reduce((a: number, m: any) => a + (m.buckets ?? 0), 0) === 64;
    };
    await rc.importImage(image.archive);
    const sources = rc.testbed.addAddresses(rc.testbed.clients[0]!, 600);
    await installChart(rc, image, dir);
    await kubectl(['create', 'namespace', NS]);
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'vipfarm.io/v1alpha1', kind: 'FarmCluster', metadata: { name: FARM, namespace: NS },
      spec: { virtualIPs: [rc.testbed.vip(0)], interface: 'eth0', rules: [{ port: 9090 }], bucketCount: 64, addresses: [rc.testbed.vip(1)] },
    }));
    await kubectl(['apply', '-f', '-'], backendDeployment({ name: 'shop', namespace: NS, image: image.ref, replicas: 6 }));
    await until('3/3 agents', whole, 180_000);
    await kubectl(['rollout', 'status', 'deployment/shop', '-n', NS, '--timeout=120s']);
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'shop', namespace: NS },
      spec: { type: 'LoadBalancer', loadBalancerClass: 'vipfarm.io/farm', selector: { app: 'shop' }, ports: [{ port: 80, targetPort: 8080 }] },
    }));
    const ip = rc.testbed.vip(1);
    await until('the Service IP answers', async () => {
      const r = await runClient(rc.testbed, rc.testbed.clients[0]!, { vip: ip, port: 80, protocol: 'tcp', count: 6, concurrency: 6, sources: sources.slice(0, 6), timeoutMs: 500 });
      return r.results.every((a) => a.node !== null);
    }, 60_000);

    const owned = (): Promise<number[]> => Promise.all(rc.nodes.map((n) => stagePackets(rc, n, FARM, ip, 'owned')));
    const before = await owned();
    const spreadRun = await runClient(rc.testbed, rc.testbed.clients[0]!, { vip: ip, port: 80, protocol: 'tcp', count: 600, concurrency: 20, sources });
    const spread = (await owned()).map((v, i) => v - before[i]!);
    const pods = new Set(spreadRun.results.map((a) => parseGreeting(a.node)?.pod).filter(Boolean));
    const spreadFailed = spreadRun.results.filter((a) => parseGreeting(a.node) === undefined).length;

    const trials: { node: string; servedAgainMs: number; slow: number; failed: number }[] = [];
    for (let k = 0; k < TRIALS; k++) {
      const node = rc.nodes[k % 3]!;
      await until('3/3 agents before the kill', whole, 300_000);
      const pid = agentPid(node);
      const paced = runClient(rc.testbed, rc.testbed.clients[0]!, { vip: ip, port: 80, protocol: 'tcp', count: 500, intervalMs: 5, sources, timeoutMs: 5000 });
      await sleep(800);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const res = await paced;
      const kill = killedAt - res.startedAt;
      const gap = takeoverGap(res.results, kill);
      trials.push({ node: node.name, servedAgainMs: gap.servedAgainMs, slow: gap.inGap, failed: res.results.filter((a) => a.node === null).length });
      process.stdout.write(`${JSON.stringify({ event: 'bench-services-trial', ...trials.at(-1) })}\n`);
    }
    const served = trials.map((t) => t.servedAgainMs).sort((a, b) => a - b);
    const result = {
      spread, pods: pods.size, spreadFailed,
      trials: trials.length, p50Ms: median(served), p99Ms: percentile(served, 99), maxMs: served.at(-1) ?? 0,
      failed: trials.reduce((a, t) => a + t.failed, 0), load: loadavg()[0]!.toFixed(1),
      heartbeat: { intervalMs: DEFAULTS.intervalMs, failureThresholdMs: DEFAULTS.failureThresholdMs },
    };
    writeSection('services', [
      '## LoadBalancer Service through kube-proxy (real nodes)',
      '',
      `3 real nodes (kubelet, containerd, kube-proxy nftables), operator + agents from the project image, 6 pods behind a Service of class vipfarm.io/farm; default heartbeat (${DEFAULTS.intervalMs} ms interval, ${DEFAULTS.failureThresholdMs} ms threshold). Load average ${result.load} at the end (2 CPUs, shared).`,
      '',
      `- Spread of 600 new connections from 600 client addresses (SYNs accepted as owner per node): ${spread.join(' / ')}; answered by ${pods.size} of 6 pods; ${spreadFailed} failed.`,
      `- Agent SIGKILLed (${trials.length} trials, round robin over the nodes), paced client 1 connection / 5 ms across the kill: new connections served again at first SYN **p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms** after the kill (max ${result.maxMs} ms); connections failed: ${result.failed} (a SYN lost in the gap is retried by the client 1 s later).`,
      '',
      '| trial | node | served again after (ms) | connections that needed a SYN retry | failed |',
      '|---|---|---|---|---|',
      ...trials.map((t, i) => `| ${i + 1} | ${t.node} | ${t.servedAgainMs} | ${t.slow} | ${t.failed} |`),
    ].join('\n'));
    return result;
  } finally {
    await rc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
