import { kubeProxyReadyNodes, readyEndpointNodes, type EndpointSliceObject, type ServiceObject } from './service-sync.js';

describe('readyEndpointNodes', () => {
  const slice = (ns: string, svc: string | undefined, endpoints: NonNullable<EndpointSliceObject['endpoints']>): EndpointSliceObject => ({
    metadata: { namespace: ns, labels: svc === undefined ? {} : { 'kubernetes.io/service-name': svc } },
    endpoints,
  });

  test('per Service, over all its slices: the nodes of ready endpoints, sorted, once each', () => {
    const m = readyEndpointNodes([
      slice('shop', 'web', [{ nodeName: 'n2', conditions: { ready: true } }, { nodeName: 'n1', conditions: { ready: true } }]),
      slice('shop', 'web', [{ nodeName: 'n2', conditions: { ready: true } }, { nodeName: 'n3', conditions: { ready: false } }]),
      slice('other', 'web', [{ nodeName: 'n3', conditions: {} }]),
    ]);
    expect(Object.fromEntries(m)).toEqual({ 'shop/web': ['n1', 'n2'], 'other/web': ['n3'] });
  });

  test('not ready (terminating, failing its probe), no node, or a slice of no Service: left out', () => {
    const m = readyEndpointNodes([
      slice('shop', 'web', [{ nodeName: 'n1', conditions: { ready: false } }, { conditions: { ready: true } }]),
      slice('shop', undefined, [{ nodeName: 'n2', conditions: { ready: true } }]),
      { metadata: { namespace: 'shop', labels: { 'kubernetes.io/service-name': 'empty' } }, endpoints: null },
    ]);
    expect(Object.fromEntries(m)).toEqual({ 'shop/web': [], 'shop/empty': [] });
  });
});

describe('kubeProxyReadyNodes', () => {
  const svc = (name: string, spec: ServiceObject['spec']): ServiceObject => ({ metadata: { namespace: 'shop', name }, spec });
  const ready = new Map<string, readonly string[]>([['shop/local', ['n1', 'n2', 'n3']], ['shop/cluster', ['n1', 'n2']]]);
  const addresses = new Map([['n1', '10.0.0.11'], ['n2', '10.0.0.12'], ['n3', '10.0.0.13']]);
  const services = [svc('local', { externalTrafficPolicy: 'Local', healthCheckNodePort: 31000 }), svc('cluster', { externalTrafficPolicy: 'Cluster' })];

  test('a Local Service keeps only the nodes whose kube-proxy answered 200; every endpoint node is probed', () => {
    const answers: Record<string, boolean | undefined> = { n1: true, n2: false, n3: undefined };
    const k = kubeProxyReadyNodes(ready, services, addresses, (s, n) => (s === 'shop/local' ? answers[n] : undefined));
    expect(k.nodes.get('shop/local')).toEqual(['n1']);
    expect(k.targets).toEqual([
      { service: 'shop/local', node: 'n1', address: '10.0.0.11', port: 31000 },
      { service: 'shop/local', node: 'n2', address: '10.0.0.12', port: 31000 },
      { service: 'shop/local', node: 'n3', address: '10.0.0.13', port: 31000 },
    ]);
  });

  test('a Cluster Service, or a Local one without a healthCheckNodePort, keeps the EndpointSlices\' list unprobed', () => {
    const k = kubeProxyReadyNodes(ready, [services[1]!, svc('local', { externalTrafficPolicy: 'Local' })], addresses, () => false);
    expect(Object.fromEntries(k.nodes)).toEqual({ 'shop/local': ['n1', 'n2', 'n3'], 'shop/cluster': ['n1', 'n2'] });
    expect(k.targets).toEqual([]);
  });

  test('a node with no known address (no agent pod there) is neither probed nor listed; the input map is not changed', () => {
    const k = kubeProxyReadyNodes(ready, services, new Map([['n1', '10.0.0.11']]), () => true);
    expect(k.nodes.get('shop/local')).toEqual(['n1']);
    expect(k.targets.map((t) => t.node)).toEqual(['n1']);
    expect(ready.get('shop/local')).toEqual(['n1', 'n2', 'n3']);
  });

  test('a Local Service with no EndpointSlice yet has no entry and no probe', () => {
    const k = kubeProxyReadyNodes(new Map(), services, addresses, () => true);
    expect(k.nodes.size).toBe(0);
    expect(k.targets).toEqual([]);
  });
});
