import { readyEndpointNodes, type EndpointSliceObject } from './service-sync.js';

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
