// Application checkers with IPv6 hosts, for real: in a namespace of an IPv6-only test bed a
// tcp and an http listener on ::1 (and on the node's global address), checkers written as
// an operator would (`host: "::1"`) go through the one parser and then the agent's probes.
// The listeners exist only inside the namespace, so a pass cannot come from the host.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** the script run inside the node's namespace: listeners, parse, probe, one JSON line out */
function script(global6: string): string {
  return `
import net from 'node:net';
import http from 'node:http';
import { parseFarmSpec } from '${dist}/common/src/config/farm-spec.js';
import { probe } from '${dist}/agent/src/edges/probes.js';
const tcp = net.createServer((s) => s.end());
const web = http.createServer((req, res) => { res.statusCode = req.url === '/ok' ? 200 : 503; res.end('v6 app healthy'); });
await new Promise((r) => tcp.listen(18081, '::1', r));
await new Promise((r) => web.listen(18080, '::1', r));
const web2 = http.createServer((req, res) => res.end('global'));
await new Promise((r) => web2.listen(18082, '${global6}', r));
const spec = {
  virtualIPs: ['fd00:99::100'], interface: 'eth0', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }],
  checkers: [
    { name: 'tcp6', type: 'tcp', host: '::1', port: 18081 },
    { name: 'http6', type: 'http', host: '0:0::1', port: 18080, path: '/ok', bodyContains: 'healthy' },
    { name: 'http6-status', type: 'http', host: '::1', port: 18080, path: '/down' },
    { name: 'tcp6-closed', type: 'tcp', host: '::1', port: 18089 },
    { name: 'http6-global', type: 'http', host: '${global6.toUpperCase()}', port: 18082, bodyContains: 'global' },
  ],
};
const parsed = parseFarmSpec(spec, { name: 'chk' });
if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
const out = {};
for (const c of parsed.value.checkers) out[c.name] = { host: c.host, ...(await probe(c)) };
process.stdout.write(JSON.stringify(out));
tcp.close(); web.close(); web2.close();
`;
}

let tb: Testbed;
beforeAll(() => {
  tb = createTestbed({ nodes: 1, clients: 0, families: ['ipv6'] });
});
afterAll(() => {
  tb?.destroy();
});

test('tcp and http checkers reach listeners on ::1 and on a global IPv6 address; failures say [host]:port', () => {
  const node = tb.nodes[0];
  const text = tb.exec(node.netns, [process.execPath, '--input-type=module', '-e', script(node.ip6!)]);
  const r = JSON.parse(text) as Record<string, { host: string; ok: boolean; error?: string }>;
  expect(r.tcp6).toEqual({ host: '::1', ok: true });
  // the parser hands on the canonical text
  expect(r.http6).toEqual({ host: '::1', ok: true });
  expect(r['http6-global']).toEqual({ host: node.ip6, ok: true });
  expect(r['http6-status']!.ok).toBe(false);
  expect(r['http6-status']!.error).toBe('GET http://[::1]:18080/down: status 503, want 200');
  expect(r['tcp6-closed']!.ok).toBe(false);
  expect(r['tcp6-closed']!.error).toMatch(/^tcp \[::1\]:18089: connect ECONNREFUSED ::1:18089$/);
});
