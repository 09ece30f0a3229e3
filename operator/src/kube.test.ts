import { KubeError, isConflict, isNotFound, resourcePath } from './kube.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND, FARMCLUSTER_PLURAL } from '../../common/src/farmcluster-types.js';

describe('resourcePath', () => {
  test.each([
    [{ apiVersion: 'v1', kind: 'Secret', namespace: 'ns', name: 'web-heartbeat' }, undefined, '/api/v1/namespaces/ns/secrets/web-heartbeat'],
    [{ apiVersion: 'v1', kind: 'Pod', namespace: 'ns' }, undefined, '/api/v1/namespaces/ns/pods'],
    [{ apiVersion: 'v1', kind: 'Pod' }, undefined, '/api/v1/pods'],
    [{ apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: 'ns', name: 'web-agent' }, undefined, '/apis/apps/v1/namespaces/ns/daemonsets/web-agent'],
    [{ apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, namespace: 'ns', name: 'web' }, 'status', `/apis/${FARMCLUSTER_API_VERSION}/namespaces/ns/${FARMCLUSTER_PLURAL}/web/status`],
    [{ apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND }, 'status', `/apis/${FARMCLUSTER_API_VERSION}/${FARMCLUSTER_PLURAL}`],
    [{ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'a b', name: 'x/y' }, undefined, '/apis/coordination.k8s.io/v1/namespaces/a%20b/leases/x%2Fy'],
  ])('%j %s', (ref, sub, expected) => {
    expect(resourcePath(ref, sub)).toBe(expected);
  });

  test('unknown kinds are refused', () => {
    expect(() => resourcePath({ apiVersion: 'v1', kind: 'Gadget', name: 'x' })).toThrow('unknown kind v1/Gadget');
  });
});

describe('KubeError', () => {
  test('carries status and reason; helpers classify it', () => {
    const e = new KubeError(404, 'NotFound', 'secrets "x" not found', 'GET', '/api/v1/namespaces/ns/secrets/x');
    expect(e.message).toBe('GET /api/v1/namespaces/ns/secrets/x: 404 NotFound: secrets "x" not found');
    expect(isNotFound(e)).toBe(true);
    expect(isConflict(e)).toBe(false);
    expect(isConflict(new KubeError(409, 'Conflict', '', 'PUT', '/'))).toBe(true);
    expect(isNotFound(new Error('404'))).toBe(false);
  });
});
