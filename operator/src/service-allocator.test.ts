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
  Object.fromEntries([...d].map(([k, v]) => [k.replace('default/', ''), v.kind === 'allocated' ? v.ips.join(',') : v.kind === 'refused' ? v.reason : v.kind]));

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

  test('a pool that shrank revokes what is now outside it; ClientIP affinity is carried; eTP Local allocated', () => {
    const small = pool('default/web', ['10.0.0.200']);
    const d = allocate([small], [
      svc('in', { ingressIPs: ['10.0.0.200'], heldByUs: true, sessionAffinity: 'ClientIP' }),
      svc('out', { ingressIPs: ['10.0.0.202'], heldByUs: true }),
      svc('local', { externalTrafficPolicy: 'Local' }),
    ]);
    expect(summary(d)).toEqual({ in: '10.0.0.200', out: 'AddressOutsidePool', local: 'PoolExhausted' });
    expect(summary(allocate([web], [svc('local2', { externalTrafficPolicy: 'Local' })]))).toEqual({ local2: '10.0.0.200' });
    expect(d.get('default/in')).toEqual({ kind: 'allocated', farm: 'default/web', ips: ['10.0.0.200'], externalTrafficPolicy: 'Cluster', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }] });
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

describe('address families (spec.ipFamilies / ipFamilyPolicy)', () => {
  const dual = pool('default/web', ['10.0.0.200-10.0.0.201', '2001:db8::200-2001:db8::201']);
  const v6 = pool('default/web', ['2001:db8::200-2001:db8::201']);
  const v4v6 = { ipFamilies: ['IPv4', 'IPv6'] };
  const v6v4 = { ipFamilies: ['IPv6', 'IPv4'] };
  const one = (farms: FarmPool[], over: Partial<ServiceView>): string => summary(allocate(farms, [svc('s', over)])).s!;

  test.each<[string, FarmPool, Partial<ServiceView>, string]>([
    // SingleStack (the default): the primary family only
    ['v4 single on dual pool', dual, { ipFamilies: ['IPv4'] }, '10.0.0.200'],
    ['v6 single on dual pool', dual, { ipFamilies: ['IPv6'] }, '2001:db8::200'],
    ['v6 single on v6 pool', v6, { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' }, '2001:db8::200'],
    ['single takes the primary of two listed', dual, { ...v6v4, ipFamilyPolicy: 'SingleStack' }, '2001:db8::200'],
    ['v4 single on v6 pool', v6, { ipFamilies: ['IPv4'] }, 'FamilyNotInPool'],
    ['v6 single on v4 pool', web, { ipFamilies: ['IPv6'] }, 'FamilyNotInPool'],
    ['no ipFamilies: the pool\'s first family (v4)', dual, {}, '10.0.0.200'],
    ['no ipFamilies on a v6 pool', v6, {}, '2001:db8::200'],
    // PreferDualStack: each listed family the pool has, in the listed order
    ['prefer dual on dual pool', dual, { ...v4v6, ipFamilyPolicy: 'PreferDualStack' }, '10.0.0.200,2001:db8::200'],
    ['prefer dual, v6 primary', dual, { ...v6v4, ipFamilyPolicy: 'PreferDualStack' }, '2001:db8::200,10.0.0.200'],
    ['prefer dual on v4 pool', web, { ...v4v6, ipFamilyPolicy: 'PreferDualStack' }, '10.0.0.200'],
    ['prefer dual on v6 pool', v6, { ...v4v6, ipFamilyPolicy: 'PreferDualStack' }, '2001:db8::200'],
    ['prefer dual, single-stack cluster lists one', dual, { ipFamilies: ['IPv6'], ipFamilyPolicy: 'PreferDualStack' }, '2001:db8::200'],
    ['prefer dual, v6 listed, v4 pool', web, { ipFamilies: ['IPv6'], ipFamilyPolicy: 'PreferDualStack' }, 'FamilyNotInPool'],
    // RequireDualStack: both or nothing
    ['require dual on dual pool', dual, { ...v4v6, ipFamilyPolicy: 'RequireDualStack' }, '10.0.0.200,2001:db8::200'],
    ['require dual on v4 pool', web, { ...v4v6, ipFamilyPolicy: 'RequireDualStack' }, 'FamilyNotInPool'],
    ['require dual on v6 pool', v6, { ...v6v4, ipFamilyPolicy: 'RequireDualStack' }, 'FamilyNotInPool'],
    ['require dual listing one family', dual, { ipFamilies: ['IPv4'], ipFamilyPolicy: 'RequireDualStack' }, 'InvalidRequest'],
    // requested addresses: exactly those, one per family, of the Service's families
    ['requested v6', dual, { ipFamilies: ['IPv6'], annotations: { 'vipfarm.io/ip': '2001:DB8::201' } }, '2001:db8::201'],
    ['requested v6 by loadBalancerIP', v6, { ipFamilies: ['IPv6'], loadBalancerIP: '2001:db8::201' }, '2001:db8::201'],
    ['requested both', dual, { ...v4v6, ipFamilyPolicy: 'RequireDualStack', annotations: { 'vipfarm.io/ip': '2001:db8::201, 10.0.0.201' } }, '2001:db8::201,10.0.0.201'],
    ['requested v4 only, prefer dual: v4 only', dual, { ...v4v6, ipFamilyPolicy: 'PreferDualStack', annotations: { 'vipfarm.io/ip': '10.0.0.201' } }, '10.0.0.201'],
    ['requested one, require dual', dual, { ...v4v6, ipFamilyPolicy: 'RequireDualStack', annotations: { 'vipfarm.io/ip': '10.0.0.201' } }, 'InvalidRequest'],
    ['requested v6 on a v4 Service', dual, { ipFamilies: ['IPv4'], annotations: { 'vipfarm.io/ip': '2001:db8::201' } }, 'InvalidRequest'],
    ['requested two of one family', dual, { ...v4v6, ipFamilyPolicy: 'RequireDualStack', annotations: { 'vipfarm.io/ip': '10.0.0.200,10.0.0.201' } }, 'InvalidRequest'],
    ['requested link-local', dual, { ipFamilies: ['IPv6'], annotations: { 'vipfarm.io/ip': 'fe80::1' } }, 'InvalidRequest'],
    ['requested v6 outside the pool', dual, { ipFamilies: ['IPv6'], annotations: { 'vipfarm.io/ip': '2001:db8::999' } }, 'AddressOutsidePool'],
    ['annotation and loadBalancerIP agree by value', v6, { ipFamilies: ['IPv6'], annotations: { 'vipfarm.io/ip': '2001:db8::201' }, loadBalancerIP: '2001:db8:0::201' }, '2001:db8::201'],
    // held addresses are kept per family; a family the Service no longer has is dropped
    ['held v6 kept, v4 added', dual, { ...v4v6, ipFamilyPolicy: 'PreferDualStack', ingressIPs: ['2001:db8::201'], heldByUs: true }, '10.0.0.200,2001:db8::201'],
    ['held v4 dropped after going v6 single', dual, { ipFamilies: ['IPv6'], ingressIPs: ['10.0.0.201'], heldByUs: true }, '2001:db8::200'],
    ['held v6 in another text', dual, { ipFamilies: ['IPv6'], ingressIPs: ['2001:DB8:0::201'], heldByUs: true }, '2001:db8::201'],
  ])('%s', (_l, farm, over, want) => {
    expect(one([farm], over)).toBe(want);
  });

  test('messages name the families and the pool', () => {
    const d = allocate([web], [svc('s', { ...v4v6, ipFamilyPolicy: 'RequireDualStack' })]).get('default/s');
    expect(d?.kind === 'refused' && d.message).toBe("the Service wants IPv6 (RequireDualStack), but FarmCluster default/web's pool has only IPv4 addresses");
    const r = allocate([dual], [svc('r', { ipFamilies: ['IPv4'], annotations: { 'vipfarm.io/ip': '2001:db8::201' } })]).get('default/r');
    expect(r?.kind === 'refused' && r.message).toBe("requested address 2001:db8::201 is IPv6, not one of the Service's families (IPv4)");
  });

  test('each family is exhausted on its own; PreferDualStack settles for one, RequireDualStack does not', () => {
    const services = [
      svc('a', { ipFamilies: ['IPv6'] }), svc('b', { ipFamilies: ['IPv6'] }),
      svc('prefer', { ...v4v6, ipFamilyPolicy: 'PreferDualStack' }),
      svc('require', { ...v4v6, ipFamilyPolicy: 'RequireDualStack' }),
      svc('v4', { ipFamilies: ['IPv4'] }),
    ];
    const d = allocate([dual], services);
    expect(summary(d)).toEqual({ a: '2001:db8::200', b: '2001:db8::201', prefer: '10.0.0.200', require: 'PoolExhausted', v4: '10.0.0.201' });
    const req = d.get('default/require');
    expect(req?.kind === 'refused' && req.message).toContain('every IPv6 address of FarmCluster default/web');
    // nothing half-taken: with the refused one gone the same addresses result
    expect(summary(allocate([dual], services.filter((s) => s.key !== 'default/require')))).toEqual({
      a: '2001:db8::200', b: '2001:db8::201', prefer: '10.0.0.200', v4: '10.0.0.201',
    });
  });

  test('dual-stack Services share both addresses; the farm serves each with the rules of all, IPv4 then IPv6 by value', () => {
    const share = { 'vipfarm.io/allow-shared-ip': 'k' };
    const big = pool('default/web', ['2001:db8::9-2001:db8::10', '10.0.0.200']);
    const d = allocate([big], [
      svc('x', { ...v6v4, ipFamilyPolicy: 'RequireDualStack', annotations: share }),
      svc('y', { ...v4v6, ipFamilyPolicy: 'RequireDualStack', annotations: share, ports: [{ port: 443, protocol: 'TCP' }] }),
      svc('z', { ipFamilies: ['IPv6'], annotations: { 'vipfarm.io/ip': '2001:db8::10' } }),
    ]);
    expect(summary(d)).toEqual({ x: '2001:db8::9,10.0.0.200', y: '10.0.0.200,2001:db8::9', z: '2001:db8::10' });
    expect(farmServiceAddresses('default/web', d).map((a) => [a.ip, a.rules.map((r) => r.port).join('+'), a.services.length])).toEqual([
      ['10.0.0.200', '80+443', 2], ['2001:db8::9', '80+443', 2], ['2001:db8::10', '80', 1],
    ]);
    // a port clash on one family refuses the Service as a whole
    const clash = allocate([big], [
      svc('x', { ...v4v6, ipFamilyPolicy: 'RequireDualStack', annotations: share }),
      svc('y', { ...v4v6, ipFamilyPolicy: 'RequireDualStack', annotations: { ...share, 'vipfarm.io/ip': '10.0.0.200,2001:db8::9' } }),
    ]);
    expect(summary(clash)).toEqual({ x: '10.0.0.200,2001:db8::9', y: 'PortClash' });
  });

  test('a frozen farm keeps both addresses of a dual-stack Service', () => {
    const frozen = { ...dual, frozen: true };
    const d = allocate([frozen], [svc('held', { ...v4v6, ipFamilyPolicy: 'RequireDualStack', ingressIPs: ['10.0.0.201', '2001:db8::200'], heldByUs: true })]);
    expect(summary(d)).toEqual({ held: '10.0.0.201,2001:db8::200' });
  });
});

describe('externalTrafficPolicy Local: the nodes that may own a Service IP', () => {
  test('a Local IP lists the nodes with a ready endpoint; a Cluster one lists none', () => {
    const d = allocate([web], [svc('local', { externalTrafficPolicy: 'Local' }), svc('cluster')]);
    const ready = new Map([['default/local', ['n3', 'n1']], ['default/cluster', ['n2']]]);
    expect(farmServiceAddresses('default/web', d, ready)).toEqual([
      { ip: '10.0.0.200', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], services: ['default/local'], externalTrafficPolicy: 'Local', nodes: ['n1', 'n3'] },
      { ip: '10.0.0.201', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], services: ['default/cluster'], externalTrafficPolicy: 'Cluster' },
    ]);
  });

  test('no ready endpoint anywhere: an empty list (nobody owns it), not every node', () => {
    const d = allocate([web], [svc('local', { externalTrafficPolicy: 'Local' })]);
    expect(farmServiceAddresses('default/web', d)[0]).toMatchObject({ externalTrafficPolicy: 'Local', nodes: [] });
  });

  test('a shared IP: the nodes where every Local Service behind it has an endpoint; Cluster ones do not restrict', () => {
    const share = { annotations: { 'vipfarm.io/allow-shared-ip': 'k' } };
    const d = allocate([web], [
      svc('a', { ...share, externalTrafficPolicy: 'Local' }),
      svc('b', { ...share, externalTrafficPolicy: 'Local', ports: [{ port: 443, protocol: 'TCP' }] }),
      svc('c', { ...share, ports: [{ port: 53, protocol: 'UDP' }] }),
    ]);
    expect(summary(d)).toEqual({ a: '10.0.0.200', b: '10.0.0.200', c: '10.0.0.200' });
    const ready = new Map([['default/a', ['n1', 'n2']], ['default/b', ['n2', 'n3']], ['default/c', ['n1']]]);
    const [a] = farmServiceAddresses('default/web', d, ready);
    expect(a).toMatchObject({ externalTrafficPolicy: 'Local', nodes: ['n2'], services: ['default/a', 'default/b', 'default/c'] });
    expect(a!.rules.map((r) => r.port)).toEqual([80, 443, 53]);
  });
});
