// The FarmCluster CRD against a real kube-apiserver: it installs, kubectl explain has the
// descriptions, defaults are applied, and invalid farms are refused with the CEL messages.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, parseFarmSpec } from '../../common/src/config/index.js';
import { VALIDATION_CASES, caseName, caseSpec } from '../../common/src/config/validation-cases.js';
import { startControlPlane, type ControlPlane } from '../../lab/cluster/controlplane.js';
import { applyCrd, farmYaml, kubectlResult, root } from './helpers.js';

let cp: ControlPlane | undefined;
const NS = 'crd-test';
const base = { virtualIPs: ['10.99.0.100'], interface: 'eth0', rules: [{ port: 80 }] };

beforeAll(async () => {
  cp = await startControlPlane();
  await applyCrd(cp);
  await cp.kubectl(['create', 'namespace', NS]);
}, 180_000);

afterAll(async () => {
  await cp?.stop();
});

async function create(name: string, spec: Record<string, unknown>): Promise<{ ok: boolean; out: string }> {
  return kubectlResult(cp!, ['create', '-f', '-'], farmYaml(name, NS, spec));
}

describe('FarmCluster CRD', () => {
  test('a minimal farm is accepted and defaulted', async () => {
    const r = await create('minimal', base);
    expect(r).toMatchObject({ ok: true });
    const fc = JSON.parse(await cp!.kubectl(['get', 'fc', 'minimal', '-n', NS, '-o', 'json']));
    expect(fc.spec.bucketCount).toBe(256);
    expect(fc.spec.heartbeat).toEqual({ intervalMs: DEFAULTS.intervalMs, port: DEFAULTS.heartbeatPort });
    expect(fc.spec.rules).toEqual([{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }]);
    expect(fc.spec.defaultWeight).toBe(1);
  });

  test('examples/farm.yaml is accepted', async () => {
    const text = readFileSync(path.join(root, 'examples/farm.yaml'), 'utf8').replace('namespace: default', `namespace: ${NS}`);
    const r = await kubectlResult(cp!, ['apply', '-f', '-'], text);
    expect(r).toEqual({ ok: true, out: expect.stringContaining('farmcluster.vipfarm.io/web') });
  });

  // The shared table (common/src/config/validation-cases.ts), also run against the parser
  // and the native checks: what the API server accepts, every validator accepts.
  test.each(VALIDATION_CASES.map((c) => [c.label, c] as const))('shared table: %s', async (_l, c) => {
    const r = await kubectlResult(cp!, ['create', '--dry-run=server', '-f', '-'], farmYaml(caseName(c), NS, caseSpec(c)));
    if (c.refused) {
      expect(r.ok).toBe(false);
      expect(r.out).toContain(c.refused.apiServer);
    } else {
      expect(r).toEqual({ ok: true, out: expect.stringContaining('created (server dry run)') });
    }
  });

  test('the same spec with valid values is accepted (the rules are not over-strict)', async () => {
    const r = await create('full', {
      ...base,
      virtualIPs: ['10.99.0.100', '192.168.1.1'],
      virtualMAC: '02:FA:00:00:00:01',
      rules: [{ port: 80 }, { port: 80, protocol: 'udp' }, { port: 65535, affinity: 'ClientIPAndPort' }],
      bucketCount: 4096,
      heartbeat: { intervalMs: 200, failureThresholdMs: 401 },
      checkers: [
        { name: 'a', type: 'tcp', port: 1 },
        { name: 'b', type: 'http', port: 8080, path: '/healthz', expectStatus: 204 },
        { name: 'c', type: 'exec', command: ['true'] },
      ],
      weights: { 'node-1.example': 0 },
      addresses: ['10.99.0.200', '10.99.0.201-10.99.0.220', '10.99.1.0/28', '192.168.2.0/24'],
      servicesWithoutClass: true,
    });
    expect(r).toEqual({ ok: true, out: expect.stringContaining('created') });
    expect(parseFarmSpec(JSON.parse(await cp!.kubectl(['get', 'fc', 'full', '-n', NS, '-o', 'json'])).spec, { name: 'full' }).ok).toBe(true);
  });

  test('kubectl explain shows the field descriptions', async () => {
    const out = await cp!.kubectl(['explain', 'farmcluster.spec.bucketCount']);
    expect(out).toContain('power of two');
    const members = await cp!.kubectl(['explain', 'fc.status.members.bucketRanges']);
    expect(members).toContain('compact ranges');
  });

  test('printer columns: VIP, READY, NODES, AGE', async () => {
    const out = await cp!.kubectl(['get', 'farmclusters', 'minimal', '-n', NS]);
    const [header, row] = out.trim().split('\n');
    expect(header.split(/\s+/)).toEqual(['NAME', 'VIP', 'READY', 'NODES', 'AGE']);
    expect(row).toContain('10.99.0.100');
  });

  test('status is a subresource: spec writes do not touch it and status writes need /status', async () => {
    await cp!.kubectl(['patch', 'fc', 'minimal', '-n', NS, '--type=merge', '-p', JSON.stringify({ status: { readyNodes: 5 } })]);
    let fc = JSON.parse(await cp!.kubectl(['get', 'fc', 'minimal', '-n', NS, '-o', 'json']));
    expect(fc.status?.readyNodes).toBeUndefined();
    await cp!.kubectl(['patch', 'fc', 'minimal', '-n', NS, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { readyNodes: 5 } })]);
    fc = JSON.parse(await cp!.kubectl(['get', 'fc', 'minimal', '-n', NS, '-o', 'json']));
    expect(fc.status.readyNodes).toBe(5);
  });
});
