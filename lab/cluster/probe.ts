// One readiness check (httpGet or tcpSocket), run by the kubelet for host-namespace pods
// and by nshelper inside a network namespace for the others.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export type ProbeRequest =
  | { kind: 'http'; scheme: 'HTTP' | 'HTTPS'; host: string; port: number; path: string; timeoutMs: number }
  | { kind: 'tcp'; host: string; port: number; timeoutMs: number };

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

export function runProbe(req: ProbeRequest): Promise<ProbeResult> {
  return req.kind === 'http' ? httpProbe(req) : tcpProbe(req);
}

function httpProbe(req: Extract<ProbeRequest, { kind: 'http' }>): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const mod = req.scheme === 'HTTPS' ? https : http;
    // Like the kubelet: HTTPS probes do not verify the certificate; 200-399 is success.
    const r = mod.get({ host: req.host, port: req.port, path: req.path, timeout: req.timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve({ ok: code >= 200 && code < 400, detail: `HTTP ${code}` });
    });
    r.on('timeout', () => r.destroy(new Error(`timeout after ${req.timeoutMs}ms`)));
    r.on('error', (err) => resolve({ ok: false, detail: err.message }));
  });
}

function tcpProbe(req: Extract<ProbeRequest, { kind: 'tcp' }>): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host: req.host, port: req.port });
    const timer = setTimeout(() => s.destroy(new Error(`timeout after ${req.timeoutMs}ms`)), req.timeoutMs);
    s.on('connect', () => {
      clearTimeout(timer);
      s.end();
      resolve({ ok: true, detail: 'connected' });
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: err.message });
    });
  });
}
