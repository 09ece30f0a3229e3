// Locates the control-plane binaries built by build.sh. build.sh owns the cache key, so
// we ask it (--print-bindir only hashes files, it never builds) instead of guessing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'helm'] as const;
export type BinaryName = (typeof BINARIES)[number];
/** What the test bed's real nodes run (realnodes.ts), and the images every node imports. */
export const NODE_BINARIES = ['kubelet', 'kube-proxy', 'containerd', 'containerd-shim-runc-v2', 'ctr', 'pause.tar', 'busybox.tar'] as const;

/** Repo root, from dist/lab/cluster/binaries.js or lab/cluster/binaries.ts. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repo root not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/**
 * The folder with etcd, kube-apiserver, ... for the pinned versions. VIPFARM_K8S_BIN
 * overrides it. Throws with the command to run when they are not built.
 */
export function findBinDir(): string {
  return checked(process.env.VIPFARM_K8S_BIN || askBuildScript('--print-bindir', 'Kubernetes control-plane binaries'), BINARIES, 'control-plane binaries');
}

/** The folder with kubelet, kube-proxy, containerd, ... and the nodes' images (VIPFARM_NODE_BIN overrides). */
export function findNodeBinDir(): string {
  return checked(process.env.VIPFARM_NODE_BIN || askBuildScript('--print-nodedir', 'Node binaries (kubelet, kube-proxy, containerd)'), NODE_BINARIES, 'node binaries');
}

function checked(dir: string, names: readonly string[], what: string): string {
  const missing = names.filter((b) => !existsSync(path.join(dir, b)));
  if (missing.length > 0) throw new Error(`${what} missing in ${dir}: ${missing.join(', ')}; run: bash lab/cluster/build.sh`);
  return dir;
}

function askBuildScript(flag: string, what: string): string {
  const script = path.join(repoRoot(), 'lab/cluster/build.sh');
  try {
    return execFileSync('bash', [script, flag], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`${what} are not built (the first build takes minutes, later runs are cached): ${stderr || String(err)}`, { cause: err });
  }
}
