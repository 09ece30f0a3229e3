// The paced traffic helper (helpers/traffic.ts) run in a farm's client namespace, keeping
// every connection's outcome: what the handoff test and the handoff and peers benches count.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { APP_PORT, distRoot, type AgentFarm } from './farm.js';
import type { TrafficOptions } from './helpers/traffic.js';

const TRAFFIC = join(distRoot, 'lab/agent/helpers/traffic.js');

export interface Conn {
  start: number;
  answeredAt: number | null;
  node: string | null;
}

/** The traffic helper in the client namespace, keeping every connection's outcome. */
export class Client {
  readonly conns: Conn[] = [];
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(farm: AgentFarm, opts: Omit<TrafficOptions, 'vip' | 'port'>) {
    const o: TrafficOptions = { vip: farm.vip, port: APP_PORT, perConnection: true, ...opts };
    this.proc = farm.tb.spawn(farm.client.netns, [process.execPath, TRAFFIC, JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, i)) as Conn & { event: string };
        buf = buf.slice(i + 1);
        if (m.event === 'conn') this.conns.push({ start: m.start, answeredAt: m.answeredAt, node: m.node });
      }
    });
    this.exited = new Promise((r) => this.proc.once('exit', () => r()));
  }

  async stop(): Promise<void> {
    this.proc.stdin!.end('stop\n');
    await this.exited;
  }

  /** connections started in [from, to) not answered */
  failedBetween(from: number, to: number): number {
    return this.conns.filter((c) => c.start >= from && c.start < to && c.answeredAt === null).length;
  }
}
