import { parseAddressPool } from '../../common/src/address-pool.js';
import { allocate, farmServiceAddresses, LB_CLASS, type Decision, type FarmPool, type ServiceView } from './service-allocator.js';

function pool(key: string, entries: string[], servicesWithoutClass = false): FarmPool {
  const r = parseAddressPool(entries, []);
  if (!r.ok) throw new Error('bad pool');
  return { key, addresses: r.ranges, servicesWithoutClass };
}

let clock = 0;
function svc(name: string, over: Partial<ServiceView> = {}): ServiceView {
  clock++;
  return {
    key: `default/${name}`, namespace: 'default', created: `2026-12-01T20:00:${String(clock).padStart(2, '0')}Z`,
    annotations: {}, type: 'LoadBalancer', loadBalancerClass: LB_CLASS, ports: [{ port: 80, protocol: 'TCP' }],
    ingressIPs: [], heldByUs: false, ...over,
  };
}

const web = pool('default/web', ['10.0.0.200-10.0.0.202']);
const summary = (d: Map<string, Decision>): Record<string, string> =>
  Object.fromEntries([...d].map(([k, v]) => [k.replace('default/', ''), v.kind === 'allocated' ? v.ip : v.kind === 'refused' ? v.reason : v.kind]));

describe('allocate', () => {
  test('first free address in pool order; other classes and types never touched', () => {
    const d = allocate([web], [
      svc('a'), svc('b'), svc('other', { loadBalancerClass: 'metallb.io/x' }), svc('cip', { type: 'ClusterIP' }),
      svc('unclassed', { loadBalancerClass: undefined }),
    ]);
    expect(summary(d)).toEqual({ a: '10.0.0.200', b: '10.0.0.201', other: 'ignore', cip: 'ignore', unclassed: 'ignore' });
  });

  test('held addresses are kept whatever the order of creation (restart rebuilds the same allocation)', () => {
    const old = svc('old');
    const young = svc('young', { ingressIPs: ['10.0.0.200'], heldByUs: true });
    const d = allocate([web], [old, young]);
    expect(summary(d)).toEqual({ young: '10.0.0.200', old: '10.0.0.201' });
    // Feeding the result back in as status changes nothing.
    const again = allocate([web], [{ ...old, ingressIPs: ['10.0.0.201'], heldByUs: true }, young]);
    expect(summary(again)).toEqual(summary(d));
  });

  test('requested address by annotation or spec.loadBalancerIP; outside the pool, in use, disagreeing: refused', () => {
    const d = allocate([web], [
      svc('ann', { annotations: { 'vipfarm.io/ip': '10.0.0.202' } }),
      svc('lbip', { loadBalancerIP: '10.0.0.201' }),
      svc('outside', { annotations: { 'vipfarm.io/ip': '10.0.9.9' } }),
      svc('taken', { annotations: { 'vipfarm.io/ip': '10.0.0.202' } }),
      svc('disagree', { annotations: { 'vipfarm.io/ip': '10.0.0.200' }, loadBalancerIP: '10.0.0.201' }),
      svc('garbage', { annotations: { 'vipfarm.io/ip': 'ten' } }),
      svc('plain'),
    ]);
    expect(summary(d)).toEqual({
      ann: '10.0.0.202', lbip: '10.0.0.201', outside: 'AddressOutsidePool', taken: 'AddressInUse',
      disagree: 'InvalidRequest', garbage: 'InvalidRequest', plain: '10.0.0.200',
    });
    const outside = d.get('default/outside');
    expect(outside?.kind === 'refused' && outside.message).toBe('10.0.9.9 is not in the address pool of FarmCluster default/web (10.0.0.200-10.0.0.202)');
  });

  test('sharing: same key and different ports share; a port clash or a different key is refused', () => {
    const key = { 'vipfarm.io/allow-shared-ip': 'shop' };
    const d = allocate([web], [
      svc('https', { annotations: key, ports: [{ port: 443 }] }),
      svc('http', { annotations: key, ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }),
      svc('clash', { annotations: { ...key, 'vipfarm.io/ip': '10.0.0.200' }, ports: [{ port: 443, protocol: 'TCP' }] }),
      svc('udp443', { annotations: key, ports: [{ port: 443, protocol: 'UDP' }] }),
      svc('stranger', { annotations: { 'vipfarm.io/ip': '10.0.0.200' }, ports: [{ port: 8080 }] }),
      svc('otherkey', { annotations: { 'vipfarm.io/allow-shared-ip': 'x', 'vipfarm.io/ip': '10.0.0.200' }, ports: [{ port: 8081 }] }),
    ]);
    expect(summary(d)).toEqual({ https: '10.0.0.200', http: '10.0.0.200', clash: 'PortClash', udp443: '10.0.0.200', stranger: 'AddressInUse', otherkey: 'AddressInUse' });
    const clash = d.get('default/clash');
    expect(clash?.kind === 'refused' && clash.message).toBe('10.0.0.200 is shared with default/http, default/https, which already use port 443/tcp');
    expect(farmServiceAddresses('default/web', d)).toEqual([{
      ip: '10.0.0.200', externalTrafficPolicy: 'Cluster', services: ['default/http', 'default/https', 'default/udp443'],
      rules: [
        { port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }, { port: 53, protocol: 'udp', affinity: 'ClientIPAndPort' },
        { port: 443, protocol: 'tcp', affinity: 'ClientIPAndPort' }, { port: 443, protocol: 'udp', affinity: 'ClientIPAndPort' },
      ],
    }]);
  });

  test('exhaustion refuses only the newcomer; a release frees the address for it', () => {
    const held = ['a', 'b', 'c'].map((n, i) => svc(n, { ingressIPs: [`10.0.0.20${i}`], heldByUs: true }));
    const late = svc('late');
    expect(summary(allocate([web], [...held, late]))).toEqual({ a: '10.0.0.200', b: '10.0.0.201', c: '10.0.0.202', late: 'PoolExhausted' });
    // b changes type: the API server clears its status; here it is still held, so it is released.
    const b = { ...held[1]!, type: 'ClusterIP' };
    const d = allocate([web], [held[0]!, b, held[2]!, late]);
    // Released in the same pass, so the newcomer gets the freed address at once.
    expect(summary(d)).toEqual({ a: '10.0.0.200', b: 'release', c: '10.0.0.202', late: '10.0.0.201' });
  });

  test('picking a farm: annotation in the namespace or ns/name; several offering farms need the annotation', () => {
    const other = pool('infra/edge', ['10.0.1.0/30']);
    const d = allocate([web, other], [
      svc('none'),
      svc('local', { annotations: { 'vipfarm.io/farm': 'web' } }),
      svc('qualified', { annotations: { 'vipfarm.io/farm': 'infra/edge' } }),
      svc('missing', { annotations: { 'vipfarm.io/farm': 'nope' } }),
    ]);
    expect(summary(d)).toEqual({ none: 'NoFarm', local: '10.0.0.200', qualified: '10.0.1.0', missing: 'NoFarm' });
    const none = d.get('default/none');
    expect(none?.kind === 'refused' && none.message).toContain('2 FarmClusters offer addresses (default/web, infra/edge)');
    // No farm offers anything: our class gets a reason, unclassed Services are not ours at all.
    expect(summary(allocate([], [svc('x'), svc('y', { loadBalancerClass: undefined })]))).toEqual({ x: 'NoFarm', y: 'ignore' });
  });

  test('servicesWithoutClass: unclassed Services are served; turning it off releases them', () => {
    const dflt = pool('default/web', ['10.0.0.200-10.0.0.202'], true);
    const u = svc('u', { loadBalancerClass: undefined });
    expect(summary(allocate([dflt], [u]))).toEqual({ u: '10.0.0.200' });
    expect(summary(allocate([web], [{ ...u, ingressIPs: ['10.0.0.200'], heldByUs: true }]))).toEqual({ u: 'release' });
    // An IP some other implementation wrote is not ours to release.
    expect(summary(allocate([web], [{ ...u, ingressIPs: ['10.0.0.200'], heldByUs: false }]))).toEqual({ u: 'ignore' });
  });

  test('SCTP and duplicate ports are refused with a reason', () => {
    expect(summary(allocate([web], [svc('s', { ports: [{ port: 9, protocol: 'SCTP' }] }), svc('d', { ports: [{ port: 9 }, { port: 9, protocol: 'TCP' }] })])))
      .toEqual({ s: 'UnsupportedProtocol', d: 'InvalidRequest' });
  });

  test('a pool that shrank revokes what is now outside it; ClientIP affinity is carried; eTP Local refused for now', () => {
    const small = pool('default/web', ['10.0.0.200']);
    const d = allocate([small], [
      svc('in', { ingressIPs: ['10.0.0.200'], heldByUs: true, sessionAffinity: 'ClientIP' }),
      svc('out', { ingressIPs: ['10.0.0.202'], heldByUs: true }),
      svc('local', { externalTrafficPolicy: 'Local' }),
    ]);
    expect(summary(d)).toEqual({ in: '10.0.0.200', out: 'AddressOutsidePool', local: 'UnsupportedPolicy' });
    expect(d.get('default/in')).toEqual({ kind: 'allocated', farm: 'default/web', ip: '10.0.0.200', externalTrafficPolicy: 'Cluster', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }] });
  });
});

describe('a farm whose spec turned invalid (frozen)', () => {
  test('keeps what its Services hold, hands out nothing new', () => {
    const frozen = { ...web, frozen: true };
    const d = allocate([frozen], [svc('held', { ingressIPs: ['10.0.0.201'], heldByUs: true }), svc('new')]);
    expect(summary(d)).toEqual({ held: '10.0.0.201', new: 'NoFarm' });
    const n = d.get('default/new');
    expect(n?.kind === 'refused' && n.message).toContain('the spec of FarmCluster default/web is invalid');
  });
});
