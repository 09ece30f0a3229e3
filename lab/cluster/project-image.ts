// The project's image (Dockerfile, built by buildah through scripts/build-image.sh)
// as an archive the real nodes import. Built from git HEAD, tagged with a hash of what the
// Dockerfile copies (IMAGE_INPUTS at HEAD), so a run reuses the image an earlier run built
// from the same sources, whatever else the commits changed. Uncommitted changes are not in it.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './binaries.js';

const execFileP = promisify(execFile);

export interface ProjectImage {
  /** localhost/vipfarm:tree-<hash> */
  ref: string;
  /** docker-archive for RealCluster.importImage */
  archive: string;
  /** Milliseconds spent building (0 when cached). */
  buildMs: number;
  /** The key=value lines scripts/build-image.sh printed when it built this image (image=, helm_set=...). */
  script: Record<string, string>;
}

function cacheRoot(): string {
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'vipfarm');
}

function store(): string {
  return process.env.VIPFARM_IMAGE_STORE ?? path.join(cacheRoot(), 'image');
}

function storeFlags(): string[] {
  return ['--root', path.join(store(), 'root'), '--runroot', path.join(store(), 'run'), '--storage-driver', 'vfs'];
}

/** What the Dockerfile's COPY lines take (keep in step with the Dockerfile). */
export const IMAGE_INPUTS = ['Dockerfile', 'package.json', 'package-lock.json', 'tsconfig.json', 'common', 'native', 'agent', 'operator'];

/** The image tag for the image inputs at HEAD (their git object ids). */
export function treeTag(): string {
  const listing = execFileSync('git', ['-C', repoRoot(), 'ls-tree', 'HEAD', '--', ...IMAGE_INPUTS], { encoding: 'utf8' });
  return `localhost/vipfarm:src-${createHash('sha256').update(listing).digest('hex').slice(0, 12)}`;
}

/** Parses build-image.sh's stdout (only key=value lines, by its contract). */
export function scriptOutput(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trim().split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/**
 * Builds (if needed) and exports the image. One build serves every test of every run with the
 * same image inputs: the image test and the real-node tests share it (a build is ~5-9 min here).
 */
export async function projectImage(opts: { tag?: string } = {}): Promise<ProjectImage> {
  const ref = opts.tag ?? treeTag();
  const flags = storeFlags();
  const dir = path.join(cacheRoot(), 'image-archives');
  mkdirSync(dir, { recursive: true });
  const base = path.join(dir, ref.replace(/[^a-zA-Z0-9.-]/g, '_'));
  const kvFile = `${base}.kv`;
  let buildMs = 0;
  const present = await execFileP('buildah', [...flags, 'inspect', '--type', 'image', ref]).then(() => true, () => false);
  // The script's output is kept with the image; an image without it (older cache) is rebuilt once.
  if (!present || !existsSync(kvFile)) {
    const t = Date.now();
    const out = await execFileP('bash', [path.join(repoRoot(), 'scripts/build-image.sh'), '--tag', ref, '--node-image', 'local'], {
      encoding: 'utf8', timeout: 1_800_000, maxBuffer: 16 << 20, env: { ...process.env, VIPFARM_BUILDER: 'buildah', VIPFARM_IMAGE_STORE: store() },
    });
    writeFileSync(`${kvFile}.${process.pid}.tmp`, out.stdout);
    renameSync(`${kvFile}.${process.pid}.tmp`, kvFile);
    buildMs = Date.now() - t;
  }
  const archive = `${base}.tar`;
  if (!existsSync(archive)) {
    const tmp = `${archive}.${process.pid}.tmp`;
    await execFileP('buildah', [...flags, 'push', '-q', ref, `docker-archive:${tmp}:${ref}`]);
    renameSync(tmp, archive);
  }
  return { ref, archive, buildMs, script: scriptOutput(readFileSync(kvFile, 'utf8')) };
}

/** Another tag of the same image, exported: a "new version" for rolling updates. */
export async function retaggedImage(image: ProjectImage, tag: string): Promise<ProjectImage> {
  const flags = storeFlags();
  await execFileP('buildah', [...flags, 'tag', image.ref, tag]);
  const archive = image.archive.replace(/\.tar$/, `-${tag.replace(/[^a-zA-Z0-9.-]/g, '_')}.tar`);
  if (!existsSync(archive)) {
    const tmp = `${archive}.${process.pid}.tmp`;
    await execFileP('buildah', [...flags, 'push', '-q', tag, `docker-archive:${tmp}:${tag}`]);
    renameSync(tmp, archive);
  }
  return { ref: tag, archive, buildMs: 0, script: image.script };
}
