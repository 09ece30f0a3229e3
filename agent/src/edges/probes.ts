// One probe per checker type. Each resolves (never rejects) with ok or the reason it failed,
// and never outlives its timeout.
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
import type { CheckerConfig, HttpCheckerConfig } from '../../../common/src/types.js';

export interface ProbeResult {
  ok: boolean;
  error?: string;
}

export function probe(c: CheckerConfig): Promise<ProbeResult> {
  switch (c.type) {
    case 'tcp':
      return probeTcp(c.host, c.port, c.timeoutMs);
    case 'http':
      return probeHttp(c);
    case 'exec':
      return probeExec(c.command, c.timeoutMs);
  }
}

export function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (r: ProbeResult): void => {
      sock.destroy();
      resolve(r);
    };
    const at = hostPort(host, port);
    sock.setTimeout(timeoutMs, () => done({ ok: false, error: `tcp ${at}: timeout after ${timeoutMs}ms` }));
    sock.once('connect', () => done({ ok: true }));
    sock.once('error', (err) => done({ ok: false, error: `tcp ${at}: ${err.message}` }));
  });
}

/** host:port as a URL or a message writes it: an IPv6 literal in brackets (RFC 3986) */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function probeHttp(c: HttpCheckerConfig): Promise<ProbeResult> {
  const url = `http://${hostPort(c.host, c.port)}${c.path}`;
  const expect = c.expectStatus;
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: c.timeoutMs, headers: { 'user-agent': 'vipfarm-checker' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        // Bodies are matched, not stored: cap what we keep so a huge page cannot hurt the agent.
        if (size < 65536) chunks.push(d);
        size += d.length;
      });
      res.on('end', () => {
        if (res.statusCode !== expect) {
          resolve({ ok: false, error: `GET ${url}: status ${res.statusCode}, want ${expect}` });
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        if (c.bodyContains !== undefined && !body.includes(c.bodyContains)) {
          resolve({ ok: false, error: `GET ${url}: body lacks ${JSON.stringify(c.bodyContains)}` });
          return;
        }
        resolve({ ok: true });
      });
      res.on('error', (err) => resolve({ ok: false, error: `GET ${url}: ${err.message}` }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${c.timeoutMs}ms`)));
    req.on('error', (err) => resolve({ ok: false, error: `GET ${url}: ${err.message}` }));
  });
}

export function probeExec(argv: string[], timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    if (argv.length === 0) {
      resolve({ ok: false, error: 'exec: empty command' });
      return;
    }
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', timeout: timeoutMs, killSignal: 'SIGKILL' });
    child.once('error', (err) => resolve({ ok: false, error: `exec ${argv[0]}: ${err.message}` }));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve({ ok: true });
      else if (signal) resolve({ ok: false, error: `exec ${argv[0]}: killed by ${signal} (timeout ${timeoutMs}ms?)` });
      else resolve({ ok: false, error: `exec ${argv[0]}: exit status ${code}` });
    });
  });
}
