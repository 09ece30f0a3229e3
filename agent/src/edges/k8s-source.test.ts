import type { V1Pod } from '@kubernetes/client-node';
import { peersFromPods } from './k8s-source.js';

const pod = (node?: string, hostIP?: string, deleting = false): V1Pod => ({
  metadata: { name: `agent-${node}`, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  spec: node ? { nodeName: node, containers: [] } : { containers: [] },
  status: hostIP ? { hostIP } : {},
});

describe('peersFromPods', () => {
  test('one peer per node with its host IP, sorted by node', () => {
    expect(peersFromPods([pod('n3', '10.0.0.3'), pod('n1', '10.0.0.1'), pod('n2', '10.0.0.2')])).toEqual([
      { name: 'n1', address: '10.0.0.1' }, { name: 'n2', address: '10.0.0.2' }, { name: 'n3', address: '10.0.0.3' },
    ]);
  });
  test('unscheduled pods, pods without a host IP and pods being deleted are not peers', () => {
    expect(peersFromPods([pod(undefined, '10.0.0.9'), pod('n2'), pod('n3', '10.0.0.3', true), pod('n1', '10.0.0.1')])).toEqual([
      { name: 'n1', address: '10.0.0.1' },
    ]);
  });
  test('a replacement pod on the same node gives one peer', () => {
    expect(peersFromPods([pod('n1', '10.0.0.1'), pod('n1', '10.0.0.1')])).toEqual([{ name: 'n1', address: '10.0.0.1' }]);
  });
});
