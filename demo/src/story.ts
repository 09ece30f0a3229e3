// Shared by the demos: printing, and a client that keeps connecting to the VIP and
// reports which node answered, window by window.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { distRoot, APP_PORT } from '../../lab/agent/farm.js';
import type { Host, Testbed } from '../../lab/netns/testbed.js';

const TRAFFIC = join(distRoot, 'lab/agent/helpers/traffic.js');
export const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
export const say = (s = ''): void => void process.stdout.write(s + '\n');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Window {
  at: number;
  answers: Record<string, number>;
  failed: number;
}

export function bar(answers: Record<string, number>, failed: number, nodes: string[]): string {
  const total = nodes.reduce((a, n) => a + (answers[n] ?? 0), 0) + failed;
  const parts = nodes.map((n) => {
    const v = answers[n] ?? 0;
    const w = total ? Math.round((v / total) * 20) : 0;
    return `${n} ${'█'.repeat(w).padEnd(20, '·')} ${String(v).padStart(3)}`;
  });
  return parts.join('  ') + (failed ? `  no answer ${failed}` : '');
}

export class Traffic {
  readonly windows: Window[] = [];
  private proc: ChildProcess;
  constructor(tb: Testbed, client: Host, vip: string, private readonly onWindow: (w: Window) => void, windowMs = 250) {
    this.proc = tb.spawn(client.netns, [process.execPath, TRAFFIC, JSON.stringify({ vip, port: APP_PORT, concurrency: 6, windowMs })], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const w = JSON.parse(buf.slice(0, i)) as Window;
        buf = buf.slice(i + 1);
        this.windows.push(w);
        this.onWindow(w);
      }
    });
  }
  stop(): void {
    this.proc.stdin!.end('stop\n');
  }
}

