import { ownerKey } from './controller.js';

describe('ownerKey', () => {
  test.each([
    [{ metadata: { namespace: 'ns', name: 'web-agent-x', labels: { 'vipfarm.io/farm': 'web' } } }, 'ns/web'],
    [{ metadata: { namespace: 'ns', name: 'other', labels: { app: 'x' } } }, undefined],
    [{ metadata: { name: 'cluster-scoped', labels: { 'vipfarm.io/farm': 'web' } } }, undefined],
    [{}, undefined],
  ])('%j -> %s', (o, key) => {
    expect(ownerKey(o)).toBe(key);
  });
});
