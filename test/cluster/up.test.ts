// up.js as a user runs it: real nodes start, kubectl sees them Ready, Ctrl-C, nothing left.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../lab/cluster/binaries.js';

test('up.js --nodes 1 prints a working kubeconfig and cleans up on SIGINT', async () => {
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist/lab/cluster/up.js'), '--nodes', '1', '--clients', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!stdout.includes('\n')) {
      if (child.exitCode !== null) throw new Error(`up.js exited ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`up.js not ready: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const ready = JSON.parse(stdout.split('\n')[0]) as { event: string; kubeconfig: string; logs: string; nodesDir: string; nodes: { name: string; netns: string }[] };
    expect(ready.event).toBe('ready');
    const kubectl = path.join(stdout.match(/kubectl: (\S+)/)![1]);
    const nodes = execFileSync(kubectl, ['--kubeconfig', ready.kubeconfig, 'get', 'nodes', '--no-headers'], { encoding: 'utf8' });
    expect(nodes.trim().split('\n')).toHaveLength(1);
    expect(nodes).toMatch(/^n1\s+Ready/m);
    const netns = ready.nodes.find((n) => n.name === 'n1')!.netns;
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(netns);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(ready.logs)).toBe(false);
    expect(existsSync(ready.nodesDir)).toBe(false);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(netns);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await exited;
    }
  }
}, 180_000);
