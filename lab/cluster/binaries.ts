// Locates the control-plane binaries built by build.sh. build.sh owns the cache key, so
// we ask it (--print-bindir only hashes files, it never builds) instead of guessing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'helm'] as const;
export type BinaryName = (typeof BINARIES)[number];

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
  const override = process.env.VIPFARM_K8S_BIN;
  const dir = override || askBuildScript();
  const missing = BINARIES.filter((b) => !existsSync(path.join(dir, b)));
  if (missing.length > 0) {
    throw new Error(`control-plane binaries missing in ${dir}: ${missing.join(', ')}; run: bash lab/cluster/build.sh`);
  }
  return dir;
}

function askBuildScript(): string {
  const script = path.join(repoRoot(), 'lab/cluster/build.sh');
  try {
    return execFileSync('bash', [script, '--print-bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`Kubernetes control-plane binaries are not built (the first build takes minutes, later runs are cached): ${stderr || String(err)}`, { cause: err });
  }
}
