// LoadBalancer Service allocation against a real control plane: the operator hands out
// addresses from a FarmCluster's pool into status.loadBalancer, shares an IP between
// Services with the same key, refuses clashes, exhaustion and addresses outside the pool
// with a Warning Event (touching nothing else), releases on delete and type change, never
// touches other classes, and keeps every address across a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '../../lab/cluster/controlplane.js';
import { applyCrd, farmYaml, startOperator, until, type OperatorProc } from './helpers.js';

const NS = 'shop';
const out = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-svc-test-'));
let cp: ControlPlane | undefined;
const operators: OperatorProc[] = [];

function operator(name: string): OperatorProc {
  const op = startOperator(cp!, path.join(out, `${name}.log`), ['--identity', name, '--leader-elect', 'false']);
  operators.push(op);
  return op;
}

interface SvcOpts {
  ports?: { port: number; protocol?: string }[];
  annotations?: Record<string, string>;
  cls?: string | null;
  type?: string;
}

function svcYaml(name: string, o: SvcOpts = {}): string {
  const spec: Record<string, unknown> = {
    type: o.type ?? 'LoadBalancer',
    selector: { app: name },
    ports: (o.ports ?? [{ port: 80 }]).map((p, i) => ({ name: `p${i}`, port: p.port, protocol: p.protocol ?? 'TCP', targetPort: 8080 })),
  };
  if (o.cls !== null && (o.type ?? 'LoadBalancer') === 'LoadBalancer') spec.loadBalancerClass = o.cls ?? 'vipfarm.io/farm';
  return JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, annotations: o.annotations ?? {} }, spec });
}

async function svc(name: string): Promise<any> {
  return JSON.parse(await cp!.kubectl(['get', 'svc', name, '-n', NS, '-o', 'json']));
}
const ingressOf = async (name: string): Promise<any[]> => (await svc(name)).status?.loadBalancer?.ingress ?? [];
const ipOf = (name: string): Promise<string> =>
  until(`${name} has an address`, async () => (await ingressOf(name))[0]?.ip as string | undefined, 30_000);

async function warning(name: string, reason: string): Promise<string> {
  return until(`Warning ${reason} on ${name}`, async () => {
    const list = JSON.parse(await cp!.kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name},involvedObject.kind=Service`, '-o', 'json']));
    const e = (list.items as any[]).find((x) => x.type === 'Warning' && x.reason === reason);
    return e?.message as string | undefined;
  }, 30_000);
}

beforeAll(async () => {
  cp = await startControlPlane();
  await applyCrd(cp);
  await cp.kubectl(['create', 'namespace', NS]);
  await cp.kubectl(['apply', '-f', '-'], farmYaml('web', NS, {
    virtualIPs: ['10.252.0.100'], interface: 'eth0', rules: [{ port: 80 }],
    addresses: ['10.252.0.200-10.252.0.201', '10.252.1.0/31'],
  }));
}, 240_000);

afterAll(async () => {
  for (const op of operators) await op.stop('SIGKILL').catch(() => {});
  await cp?.stop().catch(() => {});
  if (!process.env.VIPFARM_KEEP_LOGS) rmSync(out, { recursive: true, force: true });
}, 60_000);

describe('LoadBalancer Services', () => {
  const before: Record<string, string> = {};

  test('a Service of our class gets the first pool address with ipMode VIP, shown by kubectl get svc', async () => {
    const a = operator('op-a');
    await until('op-a synced', () => a.events('caches_synced').length > 0, 60_000);
    const t0 = Date.now();
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('front'));
    expect(await ipOf('front')).toBe('10.252.0.200');
    const ms = Date.now() - t0;
    expect(await ingressOf('front')).toEqual([{ ip: '10.252.0.200', ipMode: 'VIP' }]);
    const table = await cp!.kubectl(['get', 'svc', 'front', '-n', NS]);
    expect(table.split('\n')[1]!.split(/\s+/)[3]).toBe('10.252.0.200');
    // The issue asks for "within a second or two"; the bound is a sanity bound for a loaded machine.
    expect(ms).toBeLessThan(10_000);
    process.stdout.write(`allocation visible after ${ms} ms\n`);
  }, 60_000);

  test('two Services with one sharing key share an address on different ports; a port clash is refused with an Event', async () => {
    const key = { 'vipfarm.io/allow-shared-ip': 'shop' };
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('https', { annotations: key, ports: [{ port: 443 }] }));
    const ip = await ipOf('https');
    expect(ip).toBe('10.252.0.201');
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('dns', { annotations: key, ports: [{ port: 53, protocol: 'UDP' }, { port: 53 }] }));
    expect(await ipOf('dns')).toBe(ip);
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('clash', { annotations: { ...key, 'vipfarm.io/ip': ip }, ports: [{ port: 443 }] }));
    expect(await warning('clash', 'PortClash')).toBe(`${ip} is shared with ${NS}/dns, ${NS}/https, which already use port 443/tcp`);
    expect(await ingressOf('clash')).toEqual([]);
  }, 60_000);

  test('other classes and unclassed Services are never touched; an address outside the pool is refused', async () => {
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('metal', { cls: 'metallb.io/l2' }));
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('plain', { cls: null }));
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('far', { annotations: { 'vipfarm.io/ip': '10.252.9.9' } }));
    expect(await warning('far', 'AddressOutsidePool')).toContain('10.252.9.9 is not in the address pool of FarmCluster shop/web (10.252.0.200-10.252.0.201, 10.252.1.0/31)');
    for (const n of ['metal', 'plain', 'far']) expect(await ingressOf(n)).toEqual([]);
    expect((JSON.parse(await cp!.kubectl(['get', 'svc', 'metal', '-n', NS, '-o', 'json', '--show-managed-fields'])).metadata.managedFields as any[]).some((m) => m.manager === 'vipfarm-operator')).toBe(false);
  }, 60_000);

  test('exhaustion refuses only the newcomer; the other addresses do not move', async () => {
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('third'));
    expect(await ipOf('third')).toBe('10.252.1.0');
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('fourth'));
    expect(await ipOf('fourth')).toBe('10.252.1.1');
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('late'));
    expect(await warning('late', 'PoolExhausted')).toContain("every IPv4 address of FarmCluster shop/web's pool");
    expect(await ingressOf('late')).toEqual([]);
    for (const n of ['front', 'https', 'dns', 'third', 'fourth']) before[n] = (await ingressOf(n))[0].ip;
    expect(before).toEqual({ front: '10.252.0.200', https: '10.252.0.201', dns: '10.252.0.201', third: '10.252.1.0', fourth: '10.252.1.1' });
  }, 60_000);

  test('operator killed and restarted: every Service keeps its address', async () => {
    await operators[0]!.stop('SIGKILL');
    const b = operator('op-b');
    await until('op-b synced', () => b.events('caches_synced').length > 0, 60_000);
    // A change after the restart makes the new operator decide again over everything.
    await cp!.kubectl(['annotate', 'svc', 'late', '-n', NS, 'touch=1']);
    await until('op-b ran a sync', () => b.events('service_refused').length > 0, 30_000);
    for (const [n, ip] of Object.entries(before)) expect((await ingressOf(n))[0].ip).toBe(ip);
    expect(b.events('service_allocated')).toEqual([]);
  }, 90_000);

  test('delete releases the address (the waiting Service gets it); a type change releases too', async () => {
    await cp!.kubectl(['delete', 'svc', 'third', '-n', NS]);
    expect(await ipOf('late')).toBe('10.252.1.0');
    // Type change: the API server clears status.loadBalancer; the address is free again.
    await cp!.kubectl(['patch', 'svc', 'fourth', '-n', NS, '--type=json', '-p', JSON.stringify([
      { op: 'replace', path: '/spec/type', value: 'ClusterIP' },
      { op: 'remove', path: '/spec/loadBalancerClass' },
    ])]);
    await until('fourth has no address', async () => (await ingressOf('fourth')).length === 0, 30_000);
    await cp!.kubectl(['apply', '-f', '-'], svcYaml('fifth'));
    expect(await ipOf('fifth')).toBe('10.252.1.1');
    expect((await ingressOf('front'))[0].ip).toBe('10.252.0.200');
  }, 60_000);
});
