import { createServer, type Server } from 'node:net';
import { tcpKernelProbe } from './kernel-probe.js';

// Silence (a node that is down) is measured in namespaces: test/agent/partition.test.ts, cable cut.
describe('tcpKernelProbe (127.0.0.1 only)', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('a listening port answers', async () => {
    expect(await tcpKernelProbe(port, 1000)('127.0.0.1')).toBe(true);
  });

  test('a closed port answers too: the kernel refused (RST), it is alive', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const p = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await tcpKernelProbe(p, 1000)('127.0.0.1')).toBe(true);
  });
});
