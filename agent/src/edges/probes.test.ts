import net from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecCheckerConfig, HttpCheckerConfig, TcpCheckerConfig } from '../../../common/src/types.js';
import { hostPort, probe } from './probes.js';

const common = { name: 'c', intervalMs: 1000, timeoutMs: 500, rise: 1, fall: 1 };
function tcpCfg(port: number): TcpCheckerConfig {
  return { ...common, type: 'tcp', host: '127.0.0.1', port };
}
function httpCfg(over: Partial<HttpCheckerConfig> & { port: number }): HttpCheckerConfig {
  return { ...common, type: 'http', host: '127.0.0.1', path: '/', expectStatus: 200, ...over };
}
function execCfg(over: Partial<ExecCheckerConfig> & { command: string[] }): ExecCheckerConfig {
  return { ...common, type: 'exec', ...over };
}

describe('probes', () => {
  let tcp: net.Server;
  let web: http.Server;
  let tcpPort = 0;
  let webPort = 0;
  beforeAll(async () => {
    tcp = net.createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    tcpPort = (tcp.address() as AddressInfo).port;
    web = http.createServer((req, res) => {
      if (req.url === '/ok') res.end('service is healthy');
      else if (req.url === '/slow') setTimeout(() => res.end('late'), 2000);
      else {
        res.statusCode = 503;
        res.end('down');
      }
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webPort = (web.address() as AddressInfo).port;
  });
  afterAll(async () => {
    web.closeAllConnections();
    await new Promise((r) => tcp.close(r));
    await new Promise((r) => web.close(r));
  });

  test('tcp: listening port is healthy', async () => {
    expect(await probe(tcpCfg(tcpPort))).toEqual({ ok: true });
  });
  test('tcp: closed port fails with the reason', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const r = await probe(tcpCfg(port));
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/ECONNREFUSED/);
  });
  test('http: status and body match', async () => {
    expect(await probe(httpCfg({ port: webPort, path: '/ok', bodyContains: 'healthy' }))).toEqual({ ok: true });
  });
  test('http: body mismatch fails', async () => {
    const r = await probe(httpCfg({ port: webPort, path: '/ok', bodyContains: 'nope' }));
    expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/body lacks/) });
  });
  test('http: wrong status fails, expected status passes', async () => {
    expect((await probe(httpCfg({ port: webPort, path: '/x' }))).error).toMatch(/status 503, want 200/);
    expect(await probe(httpCfg({ port: webPort, path: '/x', expectStatus: 503 }))).toEqual({ ok: true });
  });
  test('http: timeout fails in time', async () => {
    const t0 = Date.now();
    const r = await probe(httpCfg({ port: webPort, path: '/slow', timeoutMs: 200 }));
    expect(r.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
  test('exec: exit status decides', async () => {
    expect(await probe(execCfg({ command: ['true'] }))).toEqual({ ok: true });
    expect((await probe(execCfg({ command: ['sh', '-c', 'exit 3'] }))).error).toMatch(/exit status 3/);
    expect((await probe(execCfg({ command: ['/nonexistent/x'] }))).error).toMatch(/ENOENT/);
  });
  test('exec: a hanging command is killed at the timeout', async () => {
    const t0 = Date.now();
    const r = await probe(execCfg({ command: ['sleep', '5'], timeoutMs: 200 }));
    expect(r.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('hostPort (URLs and messages)', () => {
  test.each([
    ['127.0.0.1', 80, '127.0.0.1:80'],
    ['app.internal', 8080, 'app.internal:8080'],
    ['::1', 8080, '[::1]:8080'],
    ['fd00::5', 443, '[fd00::5]:443'],
  ])('%s port %i -> %s', (host, port, want) => {
    expect(hostPort(host, port)).toBe(want);
  });
});
