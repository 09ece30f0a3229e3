import type { AddressInfo } from 'node:net';
import { AgentMetrics, startMetricsServer, type PacketCounter } from './metrics.js';

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('agent metrics endpoint', () => {
  test('exports farm metrics with farm and node labels, kernel counters at scrape time', async () => {
    let rows: PacketCounter[] = [{ vip: '10.0.0.1', port: 80, protocol: 'tcp', verdict: 'accept', packets: 5, bytes: 300 }];
    const m = new AgentMetrics('web', 'n1', () => rows);
    m.setMembers({ ready: 2, down: 1 });
    m.bucketsOwned.set(85);
    m.heartbeatsRejected.inc({ reason: 'bad_mac' });
    m.setOwners(['n1', 'n2', 'n1', '']);
    let ready = false;
    const server = await startMetricsServer(m, { live: () => true, ready: () => ({ ready, reason: ready ? 'ready' : 'checker web down' }) }, 0, '127.0.0.1');
    const port = (server.address() as AddressInfo).port;
    try {
      let r = await get(port, '/metrics');
      expect(r.status).toBe(200);
      expect(r.body).toContain('vipfarm_members{state="ready",farm="web",node="n1"} 2');
      expect(r.body).toContain('vipfarm_members{state="down",farm="web",node="n1"} 1');
      expect(r.body).toContain('vipfarm_buckets_owned{farm="web",node="n1"} 85');
      expect(r.body).toContain('vipfarm_heartbeats_rejected_total{reason="bad_mac",farm="web",node="n1"} 1');
      expect(r.body).toContain('vipfarm_bucket_owner_share{owner="n1",farm="web",node="n1"} 2');
      expect(r.body).toContain('vipfarm_packets_total{vip="10.0.0.1",port="80",protocol="tcp",verdict="accept",farm="web",node="n1"} 5');
      rows = [{ ...rows[0], packets: 9, bytes: 600 }];
      r = await get(port, '/metrics');
      expect(r.body).toContain('verdict="accept",farm="web",node="n1"} 9');
      expect((await get(port, '/healthz')).status).toBe(200);
      const nr = await get(port, '/readyz');
      expect(nr.status).toBe(503);
      expect(nr.body).toContain('checker web down');
      ready = true;
      expect((await get(port, '/readyz')).status).toBe(200);
      expect((await get(port, '/nope')).status).toBe(404);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a failing counter read does not break the scrape', async () => {
    const m = new AgentMetrics('web', 'n1', () => {
      throw new Error('table gone');
    });
    const body = await m.render();
    expect(body).toContain('vipfarm_buckets_owned');
  });
});

test('without a host it answers on IPv6 and IPv4 (an IPv6-only node\'s kubelet probes its IPv6 address)', async () => {
  const server = await startMetricsServer(new AgentMetrics('web', 'n1', () => []), { live: () => true, ready: () => ({ ready: true, reason: 'ready' }) }, 0);
  const port = (server.address() as AddressInfo).port;
  try {
    expect((server.address() as AddressInfo).address).toBe('::');
    for (const host of ['[::1]', '127.0.0.1']) expect((await fetch(`http://${host}:${port}/healthz`)).status).toBe(200);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
