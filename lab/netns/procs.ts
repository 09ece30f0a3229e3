// Parent-side handles on the helper processes of test/netns/helpers, each run inside a
// test bed namespace with `ip netns exec <ns> node <helper.js>`.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Host, Testbed } from './testbed.js';
// Types only: importing them does not run the helper script.
import type { Attempt, ClientOptions } from './helpers/client.js';

export function helperPath(name: string): string {
  return fileURLToPath(new URL(`./helpers/${name}.js`, import.meta.url));
}

/** Collects a child's stdout as JSON lines; waitFor resolves on the first match. */
export class JsonLines {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  private waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.pred(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const found = this.lines.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr.slice(-2000)}`)), timeoutMs);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`process exited while waiting for ${what}; stderr: ${this.stderr.slice(-2000)}`));
      };
      this.child.once('exit', onExit);
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          this.child.removeListener('exit', onExit);
          resolve(l);
        },
      });
    });
  }
}

export class DriverError extends Error {
  constructor(message: string, readonly code: string | null) {
    super(message);
  }
}

/** The data plane of one host, driven through helpers/dp-driver in its namespace. */
export class Driver {
  private nextId = 1;
  private readonly out: JsonLines;

  constructor(readonly child: ChildProcess, readonly host: Host) {
    this.out = new JsonLines(child);
  }

  static start(tb: Testbed, host: Host, argvPrefix: string[] = []): Driver {
    return new Driver(tb.spawn(host.netns, [...argvPrefix, process.execPath, helperPath('dp-driver')]), host);
  }

  async call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    this.child.stdin?.write(JSON.stringify({ id, op, args }) + '\n');
    const reply = (await this.out.waitFor((l) => l.id === id, 15000, `${this.host.name} ${op}`)) as {
      ok: boolean;
      result: T;
      error?: { message: string; code: string | null };
    };
    if (!reply.ok) throw new DriverError(reply.error?.message ?? 'unknown error', reply.error?.code ?? null);
    return reply.result;
  }

  close(): void {
    this.child.stdin?.end();
  }
}

/** helpers/echo-server on host, bound to bind (one address or a comma list); resolves when it listens */
export async function startEcho(tb: Testbed, host: Host, bind: string, tcp: number[], udp: number[] = []): Promise<JsonLines> {
  const child = tb.spawn(host.netns, [
    process.execPath,
    helperPath('echo-server'),
    host.name,
    bind,
    tcp.length ? tcp.join(',') : '-',
    udp.length ? udp.join(',') : '-',
  ]);
  const lines = new JsonLines(child);
  await lines.waitFor((l) => l.event === 'ready', 10000, `echo server on ${host.name}`);
  return lines;
}

export type { Attempt, ClientOptions };

/** runs helpers/client on host to completion */
/** startedAt: the client's clock (ms since the epoch) at attempt 0; atMs counts from it */
export async function runClient(tb: Testbed, host: Host, opts: ClientOptions): Promise<{ startedAt: number; elapsedMs: number; results: Attempt[] }> {
  const child = tb.spawn(host.netns, [process.execPath, helperPath('client'), JSON.stringify(opts)]);
  const lines = new JsonLines(child);
  const res = await lines.waitFor((l) => Array.isArray(l.results), 120000, 'client results');
  return res as unknown as { startedAt: number; elapsedMs: number; results: Attempt[] };
}

export interface HeldConn {
  i: number;
  lport: number;
  laddr: string;
  node: string | null;
  error: string | null;
}

export interface HeldSummary {
  i: number;
  lport: number;
  node: string | null;
  sent: number;
  echoed: number;
  wrongNode: number;
  error: string | null;
}

/** helpers/holder: long-lived pinging connections */
export class Holder {
  readonly out: JsonLines;
  constructor(readonly child: ChildProcess) {
    this.out = new JsonLines(child);
  }
  static start(tb: Testbed, host: Host, opts: { vip: string; port: number; count: number; pingMs?: number; sources?: string[] }): Holder {
    return new Holder(tb.spawn(host.netns, [process.execPath, helperPath('holder'), JSON.stringify(opts)]));
  }
  async opened(): Promise<HeldConn[]> {
    const l = await this.out.waitFor((x) => x.event === 'open', 20000, 'holder connections');
    return l.conns as HeldConn[];
  }
  errors(): { i: number; node: string | null; code: string; at: number }[] {
    return this.out.lines.filter((l) => l.event === 'error') as unknown as { i: number; node: string | null; code: string; at: number }[];
  }
  async stop(): Promise<HeldSummary[]> {
    this.child.stdin?.write('stop\n');
    const l = await this.out.waitFor((x) => x.event === 'done', 10000, 'holder summary');
    return l.conns as HeldSummary[];
  }
}
