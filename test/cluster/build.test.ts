// build.sh's cache key and its answers when nothing is built (no Go build here).
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../lab/cluster/binaries.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-build-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of build.sh + tools/ so go.mod can be edited; an empty cache. */
function copyScript(name: string): string {
  const dir = path.join(tmp, name);
  cpSync(path.join(repoRoot(), 'lab/cluster/build.sh'), path.join(dir, 'build.sh'));
  cpSync(path.join(repoRoot(), 'lab/cluster/tools'), path.join(dir, 'tools'), { recursive: true });
  return dir;
}

function printBindir(dir: string): { status: number | null; stderr: string; key: string } {
  const r = spawnSync('bash', [path.join(dir, 'build.sh'), '--print-bindir'], {
    encoding: 'utf8',
    env: { ...process.env, XDG_CACHE_HOME: path.join(tmp, 'cache') },
  });
  return { status: r.status, stderr: r.stderr, key: /for key (\w+)/.exec(r.stderr)?.[1] ?? '' };
}

test('--print-bindir exits 3 with the command to run when nothing is built', () => {
  const r = printBindir(copyScript('a'));
  expect(r.status).toBe(3);
  expect(r.stderr).toMatch(/not built .*run: bash lab\/cluster\/build.sh/);
  expect(r.key).toMatch(/^[0-9a-f]{16}$/);
});

test('the key is stable and changes with the pinned modules', () => {
  const a = printBindir(copyScript('b'));
  const b = printBindir(copyScript('c'));
  expect(b.key).toBe(a.key);
  const changed = copyScript('d');
  appendFileSync(path.join(changed, 'tools/etcd/go.sum'), 'example.com/x v1.0.0 h1:AAAA=\n');
  expect(printBindir(changed).key).not.toBe(a.key);
});

test('the node binaries have their own key: changing them leaves the control plane cached', () => {
  const nodeKey = (dir: string): { status: number | null; key: string } => {
    const r = spawnSync('bash', [path.join(dir, 'build.sh'), '--print-nodedir'], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: path.join(tmp, 'cache') } });
    return { status: r.status, key: /for key (\w+)/.exec(r.stderr)?.[1] ?? '' };
  };
  const a = copyScript('e');
  const changed = copyScript('f');
  appendFileSync(path.join(changed, 'tools/containerd/go.sum'), 'example.com/x v1.0.0 h1:AAAA=\n');
  expect(nodeKey(a).status).toBe(3);
  expect(nodeKey(a).key).toMatch(/^[0-9a-f]{16}$/);
  expect(nodeKey(changed).key).not.toBe(nodeKey(a).key);
  expect(printBindir(changed).key).toBe(printBindir(a).key);
  expect(nodeKey(a).key).not.toBe(printBindir(a).key);
});
