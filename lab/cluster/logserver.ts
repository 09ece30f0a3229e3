// The kubelet's containerLogs endpoint, so `kubectl logs [-f] [--tail N]` works: the
// apiserver proxies to https://<node InternalDNS>:<daemonEndpoints port>/containerLogs/...
// All nodes of the test kubelet share this one server on 127.0.0.1 (InternalDNS localhost).
import { createReadStream, readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/** The last n lines of text (n < 0: all), keeping the final newline. */
export function tailLines(text: string, n: number): string {
  if (n < 0) return text;
  if (n === 0) return '';
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (body === '') return text;
  const lines = body.split('\n');
  return lines.slice(-n).join('\n') + (text.endsWith('\n') ? '\n' : '');
}

export interface LogQuery {
  namespace: string;
  pod: string;
  container: string;
  follow: boolean;
  tailLines: number;
  limitBytes: number;
}

/** /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&limitBytes= */
export function parseLogUrl(url: string): LogQuery | undefined {
  const u = new URL(url, 'https://kubelet');
  const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(u.pathname);
  if (!m) return undefined;
  const num = (k: string): number => {
    const v = u.searchParams.get(k);
    return v !== null && /^\d+$/.test(v) ? Number(v) : -1;
  };
  return {
    namespace: decodeURIComponent(m[1]),
    pod: decodeURIComponent(m[2]),
    container: decodeURIComponent(m[3]),
    follow: u.searchParams.get('follow') === 'true',
    tailLines: num('tailLines'),
    limitBytes: num('limitBytes'),
  };
}

export interface LogServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves log files. logFile finds a container's file, isRunning tells whether to keep
 * following it.
 */
export async function startLogServer(
  tls: { cert: string; key: string },
  logFile: (q: LogQuery) => string | undefined,
  isRunning: (q: LogQuery) => boolean,
): Promise<LogServer> {
  const followers = new Set<NodeJS.Timeout>();
  const server = https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => {
    const q = parseLogUrl(req.url ?? '/');
    if (!q || req.method !== 'GET') {
      res.writeHead(404).end('not found\n');
      return;
    }
    const file = logFile(q);
    if (!file) {
      res.writeHead(404).end(`container ${q.container} of pod ${q.namespace}/${q.pod} is not on this test kubelet\n`);
      return;
    }
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      /* not written yet */
    }
    let out = tailLines(text, q.tailLines);
    if (q.limitBytes >= 0) out = out.slice(0, q.limitBytes);
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write(out);
    if (!q.follow) {
      res.end();
      return;
    }
    // Follow by polling the size: simple, and the files are small.
    let offset = Buffer.byteLength(text);
    let reading = false;
    const timer = setInterval(() => {
      if (reading) return;
      let size = offset;
      try {
        size = statSync(file).size;
      } catch {
        /* removed with its pod */
      }
      if (size > offset) {
        reading = true;
        const s = createReadStream(file, { start: offset, end: size - 1 });
        s.on('data', (d) => res.write(d));
        s.on('end', () => (reading = false));
        s.on('error', () => (reading = false));
        offset = size;
      } else if (!isRunning(q)) {
        stop();
      }
    }, 250);
    followers.add(timer);
    const stop = (): void => {
      clearInterval(timer);
      followers.delete(timer);
      res.end();
    };
    req.on('close', stop);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const t of followers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
