import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpProbe, startProxyHealth, type ProxyHealthTarget } from './kube-proxy-health.js';

const t = (node: string, port = 1): ProxyHealthTarget => ({ service: 'shop/local', node, address: '127.0.0.1', port });
const waitFor = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('startProxyHealth', () => {
  test('a new target is probed at once; each change of answer calls onChange once', async () => {
    const answers = new Map([['n1', true], ['n2', false]]);
    let changes = 0;
    const seen: string[] = [];
    const h = startProxyHealth({ onChange: (x, ok) => { changes++; seen.push(`${x.node}=${ok}`); }, intervalMs: 20, probe: async (x) => answers.get(x.node)! });
    try {
      expect(h.ready('shop/local', 'n1')).toBeUndefined();
      h.setTargets([t('n1'), t('n2')]);
      await waitFor(() => h.ready('shop/local', 'n1') === true && h.ready('shop/local', 'n2') === false);
      expect(changes).toBe(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(changes).toBe(2);
      answers.set('n2', true);
      await waitFor(() => h.ready('shop/local', 'n2') === true);
      expect(changes).toBe(3);
      expect(seen.sort()).toEqual(['n1=true', 'n2=false', 'n2=true']);
    } finally {
      h.stop();
    }
  });

  test('a dropped target, or one whose port changed, forgets its answer', async () => {
    const h = startProxyHealth({ onChange: () => {}, intervalMs: 1000, probe: async (x) => x.port === 1 });
    try {
      h.setTargets([t('n1')]);
      await waitFor(() => h.ready('shop/local', 'n1') === true);
      h.setTargets([t('n1', 2)]);
      expect(h.ready('shop/local', 'n1')).toBeUndefined();
      await waitFor(() => h.ready('shop/local', 'n1') === false);
      h.setTargets([]);
      expect(h.ready('shop/local', 'n1')).toBeUndefined();
    } finally {
      h.stop();
    }
  });
});

describe('httpProbe', () => {
  test('200 is ready; 503, a refused port and a timeout are not', async () => {
    let status = 200;
    let hang = false;
    const server = http.createServer((_req, res) => {
      if (hang) return;
      res.statusCode = status;
      res.end('{"localEndpoints":1}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      expect(await httpProbe(t('n1', port), 500)).toBe(true);
      status = 503;
      expect(await httpProbe(t('n1', port), 500)).toBe(false);
      hang = true;
      const t0 = Date.now();
      expect(await httpProbe(t('n1', port), 200)).toBe(false);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    expect(await httpProbe(t('n1', port), 500)).toBe(false);
  });
});
