// `helm install` of the chart on real nodes (lab/cluster/realnodes.ts) with the project's
// image, for the end-to-end tests and benches that need the operator and agents as users
// run them, and what they read on the nodes (counters, the agent's process).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { findBinDir, repoRoot } from './binaries.js';
import { serviceSets } from '../../native/src/index.js';
import type { ProjectImage } from './project-image.js';
import type { RealCluster, RealNode } from './realnodes.js';

const execFileP = promisify(execFile);
export const RELEASE_NS = 'vipfarm-system';

/** Installs release `vf` into vipfarm-system and waits for the operator; errors carry pods and logs. */
export async function installChart(rc: RealCluster, image: ProjectImage, dir: string): Promise<void> {
  const kubectl = (args: string[]): Promise<string> => rc.controlPlane.kubectl(args);
  const [repository, tag] = image.ref.split(/:(?=[^:]+$)/);
  writeFileSync(path.join(dir, 'values.yaml'), yaml.dump({ image: { repository, tag, pullPolicy: 'Never' }, operator: { replicas: 1, logLevel: 'debug' } }));
  await execFileP(path.join(findBinDir(), 'helm'), ['install', 'vf', path.join(repoRoot(), 'helm/vipfarm'), '-n', RELEASE_NS, '--create-namespace',
    '-f', path.join(dir, 'values.yaml'), '--wait', '--timeout', '180s', '--kubeconfig', rc.controlPlane.kubeconfigPath], { encoding: 'utf8' })
    .catch(async (err) => {
      const pods = await kubectl(['get', 'pods', '-A', '-o', 'wide']).catch(() => '');
      const logs = await kubectl(['logs', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/name=vipfarm', '--tail=30']).catch((e: Error) => e.message);
      throw new Error(`helm install: ${(err as { stderr?: string }).stderr}\n${pods}\n${logs}`, { cause: err });
    });
}

/** The agent's vipfarm_packets_total{verdict} (accept or drop) for one address, summed over ports, scraped on the node. */
export async function packetsOf(rc: RealCluster, node: RealNode, ip: string, verdict: 'accept' | 'drop', metricsPort = 9477): Promise<number> {
  const text = await rc.nsExec(node, ['curl', '-sf', '--max-time', '3', `http://127.0.0.1:${metricsPort}/metrics`]);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('vipfarm_packets_total{')) continue;
    if (!line.includes(`vip="${ip}"`) || !line.includes(`verdict="${verdict}"`)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Packets one stage of the farm's filter (established, owned, orphan, drop) counted for an address, on the node. */
export async function stagePackets(rc: RealCluster, node: RealNode, farm: string, ip: string, stage: string): Promise<number> {
  const out = JSON.parse(await rc.nsExec(node, ['nft', '-j', 'list', 'table', 'inet', `vipfarm_${farm}`])) as { nftables: { rule?: { comment?: string; expr: Record<string, any>[] } }[] };
  let sum = 0;
  for (const o of out.nftables) {
    const c = o.rule?.comment;
    if (!c || !c.startsWith(`vipfarm ${ip} `) || !c.endsWith(` ${stage}`)) continue;
    for (const e of o.rule!.expr) if (e.counter) sum += Number(e.counter.packets);
  }
  return sum;
}

/** The buckets a node owns of a Service IP with its own sets (externalTrafficPolicy Local), sorted. */
export async function serviceOwnedBuckets(rc: RealCluster, node: RealNode, farm: string, ip: string): Promise<number[]> {
  const out = JSON.parse(await rc.nsExec(node, ['nft', '-j', 'list', 'set', 'inet', `vipfarm_${farm}`, serviceSets(ip).ownedSet])) as { nftables: { set?: { elem?: unknown[] } }[] };
  const elems = out.nftables.find((o) => o.set)?.set?.elem ?? [];
  return elems.map((e) => (typeof e === 'number' ? e : Number((e as { elem: { val: number } }).elem.val))).sort((a, b) => a - b);
}

/** Pid of the farm agent running in the node's network namespace (its container's process). */
export function agentPid(node: RealNode): number {
  const pids = execFileSync('ip', ['netns', 'pids', node.netns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/agent/src/main.js');
    } catch {
      return false;
    }
  });
  if (pids.length !== 1) throw new Error(`agents on ${node.name}: ${pids.length}`);
  return pids[0]!;
}

/**
 * A client's view of a takeover: attempts that began after `killMs` (client clock, ms from
 * its start) and needed a SYN retransmission (> 900 ms) or failed. The takeover gap is the
 * first run of them (each within 300 ms of the previous): it ends when new connections get
 * through at their first SYN again. Later isolated slow attempts (a loaded machine) are
 * counted apart, not taken for the takeover.
 */
export function takeoverGap(results: readonly { atMs?: number; tookMs?: number; node: string | null }[], killMs: number): { servedAgainMs: number; inGap: number; stragglers: number } {
  const slow = results.filter((a) => (a.atMs ?? 0) >= killMs - 50 && ((a.tookMs ?? 0) > 900 || a.node === null)).map((a) => a.atMs ?? 0).sort((x, y) => x - y);
  if (slow.length === 0) return { servedAgainMs: 0, inGap: 0, stragglers: 0 };
  let end = 0;
  while (end + 1 < slow.length && slow[end + 1]! - slow[end]! <= 300) end++;
  return { servedAgainMs: Math.max(0, slow[end]! - killMs), inGap: end + 1, stragglers: slow.length - end - 1 };
}
