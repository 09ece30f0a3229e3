// The FarmCluster CRD against a real kube-apiserver: it installs, kubectl explain has the
// descriptions, defaults are applied, and invalid farms are refused with the CEL messages.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, parseFarmSpec } from '../../common/src/farm-config.js';
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

  test.each([
    ['bad-ip', { virtualIPs: ['10.99.0.300'] }, 'must be an IPv4 address in dotted-quad form'],
    ['loopback-ip', { virtualIPs: ['127.0.0.5'] }, 'must be a unicast IPv4 address'],
    ['port-zero', { rules: [{ port: 0 }] }, 'port must be between 1 and 65535'],
    ['bucket-100', { bucketCount: 100 }, 'bucketCount must be a power of two between 2 and 4096'],
    ['bucket-8192', { bucketCount: 8192 }, 'bucketCount must be a power of two between 2 and 4096'],
    ['dup-rule', { rules: [{ port: 80 }, { port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }] }, 'each port and protocol may appear only once'],
    ['bad-mac', { virtualMAC: '03:fa:00:00:00:01' }, 'virtualMAC must be a unicast MAC address'],
    ['short-mac', { virtualMAC: '02:fa:00:00:01' }, 'virtualMAC must be a unicast MAC address'],
    ['threshold', { heartbeat: { intervalMs: 200, failureThresholdMs: 300 } }, 'failureThresholdMs must be greater than 2 * heartbeat.intervalMs'],
    ['threshold-default-interval', { heartbeat: { failureThresholdMs: 2 * DEFAULTS.intervalMs } }, 'failureThresholdMs must be greater than 2 * heartbeat.intervalMs'],
    ['iface', { interface: 'eth/0' }, 'interface must be a Linux interface name'],
    ['checker-port', { checkers: [{ name: 'web', type: 'tcp' }] }, 'tcp and http checkers need a port'],
    ['checker-exec', { checkers: [{ name: 'x', type: 'exec' }] }, 'exec checkers need a command'],
    ['checker-dup', { checkers: [{ name: 'a', type: 'tcp', port: 1 }, { name: 'a', type: 'tcp', port: 2 }] }, 'names must be unique'],
    ['checker-timeout', { checkers: [{ name: 'a', type: 'tcp', port: 1, intervalMs: 1000, timeoutMs: 1000 }] }, 'timeoutMs must be less than intervalMs'],
    ['pool-syntax', { addresses: ['10.99.0.200..10.99.0.210'] }, 'must be an IPv4 address, a range 10.0.0.200-10.0.0.220 or a CIDR'],
    ['pool-prefix', { addresses: ['10.99.1.0/33'] }, 'must be an IPv4 address, a range 10.0.0.200-10.0.0.220 or a CIDR'],
    ['pool-empty', { addresses: [] }, 'spec.addresses: Invalid value'],
    ['unclassed-no-pool', { servicesWithoutClass: true }, 'spec.servicesWithoutClass needs spec.addresses'],
  ])('%s is refused with the CEL message, and by the shared parser', async (name, over, message) => {
    const r = await create(name, { ...base, ...over });
    expect(r.ok).toBe(false);
    expect(r.out).toContain(message);
    // The agent's YAML mode must refuse the same farm.
    expect(parseFarmSpec({ ...base, ...over }, { name: 'x' }).ok).toBe(false);
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

  test('a name too long for the kernel objects is refused', async () => {
    const r = await create('a'.repeat(41), base);
    expect(r.out).toContain('metadata.name must be a DNS label of at most 40 characters');
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
