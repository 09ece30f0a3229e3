import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../lab/cluster/binaries.js';
import { startProc } from '../../lab/cluster/procs.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-procs-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Running, not a zombie: a killed orphan may wait for its reaper a while. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitForFile(file: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    try {
      const s = readFileSync(file, 'utf8').trim();
      if (s) return s;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error(`${file} not written`);
}

test('stop() ends the whole process group, not only the leader', async () => {
  const pidFile = path.join(dir, 'bg1');
  const p = startProc('sh', 'sh', ['-c', `sleep 1000 & echo $! > ${pidFile}; wait`], path.join(dir, 'sh1.log'));
  const bg = Number(await waitForFile(pidFile));
  expect(alive(bg)).toBe(true);
  await p.stop(1000);
  await sleep(100);
  expect(alive(p.pid)).toBe(false);
  expect(alive(bg)).toBe(false);
});

test('when the leader exits by itself, what it left in its group is killed', async () => {
  const pidFile = path.join(dir, 'bg2');
  const p = startProc('sh', 'sh', ['-c', `sleep 1000 & echo $! > ${pidFile}; exit 4`], path.join(dir, 'sh2.log'));
  expect(await p.exited).toBe(4);
  const bg = Number(await waitForFile(pidFile));
  await sleep(100);
  expect(alive(bg)).toBe(false);
});

test('SIGTERM to the owning program ends its children too', async () => {
  const pidFile = path.join(dir, 'child');
  const procsUrl = pathToFileURL(path.join(repoRoot(), 'dist/lab/cluster/procs.js')).href;
  const script = `
    import { startProc } from ${JSON.stringify(procsUrl)};
    import { writeFileSync } from 'node:fs';
    const p = startProc('sleep', 'sleep', ['1000'], ${JSON.stringify(path.join(dir, 'sleep.log'))});
    writeFileSync(${JSON.stringify(pidFile)}, String(p.pid));
    setInterval(() => {}, 1000);
  `;
  const owner = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => owner.on('exit', (code) => r(code)));
  const child = Number(await waitForFile(pidFile));
  expect(alive(child)).toBe(true);
  owner.kill('SIGTERM');
  expect(await exited).toBe(143);
  await sleep(200);
  expect(alive(child)).toBe(false);
});
