// Shared by the demos: printing, and a client that keeps connecting to the VIP and
// reports which node answered, window by window.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { distRoot, APP_PORT } from '../../lab/agent/farm.js';
import type { TrafficOptions } from '../../lab/agent/helpers/traffic.js';
import type { Host, Testbed } from '../../lab/netns/testbed.js';

const TRAFFIC = join(distRoot, 'lab/agent/helpers/traffic.js');
export const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
export const say = (s = ''): void => void process.stdout.write(s + '\n');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Window {
  at: number;
  answers: Record<string, number>;
  /** connections the farm did not answer in time (or refused) */
  failed: number;
  /** connections the client could not open itself, by errno code (not the farm's doing) */
  clientErrors: Record<string, number>;
}

/** Connections per second the demos' client opens, and the source addresses it spreads them over. */
export const TRAFFIC_RATE = 200;
const TRAFFIC_SOURCES = 4;

export function bar(answers: Record<string, number>, failed: number, nodes: string[], clientErrors: Record<string, number> = {}): string {
  const total = nodes.reduce((a, n) => a + (answers[n] ?? 0), 0) + failed;
  const parts = nodes.map((n) => {
    const v = answers[n] ?? 0;
    const w = total ? Math.round((v / total) * 20) : 0;
    return `${n} ${'█'.repeat(w).padEnd(20, '·')} ${String(v).padStart(3)}`;
  });
  const own = Object.entries(clientErrors).map(([code, n]) => `  client could not connect (${code}) ${n}`).join('');
  return parts.join('  ') + (failed ? `  no answer ${failed}` : '') + own;
}

export class Traffic {
  readonly windows: Window[] = [];
  private proc: ChildProcess;
  constructor(tb: Testbed, client: Host, vip: string, private readonly onWindow: (w: Window) => void, windowMs = 250) {
    // A few source addresses keep TIME_WAIT far from the port range of any one of them.
    const options: TrafficOptions = { vip, port: APP_PORT, rate: TRAFFIC_RATE, sources: tb.addAddresses(client, TRAFFIC_SOURCES), windowMs };
    this.proc = tb.spawn(client.netns, [process.execPath, TRAFFIC, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
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

