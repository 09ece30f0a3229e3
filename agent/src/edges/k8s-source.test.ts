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

describe('peersFromPods in one address family', () => {
  const dual = (node: string, v4: string, v6: string, primary: 'v4' | 'v6' = 'v4'): V1Pod => ({
    metadata: { name: `agent-${node}` },
    spec: { nodeName: node, containers: [] },
    status: {
      hostIP: primary === 'v4' ? v4 : v6,
      hostIPs: primary === 'v4' ? [{ ip: v4 }, { ip: v6 }] : [{ ip: v6 }, { ip: v4 }],
    },
  });
  const pods = [dual('n2', '10.0.0.2', 'fd00::2', 'v6'), dual('n1', '10.0.0.1', 'FD00:0::1')];

  test.each([
    ['ipv4', ['10.0.0.1', '10.0.0.2']],
    ['ipv6', ['fd00::1', 'fd00::2']],
  ] as const)('dual-stack nodes, %s heartbeats: each node\'s address of that family, canonical', (family, want) => {
    expect(peersFromPods(pods, family).map((p) => p.address)).toEqual(want);
  });

  test('a dual-stack node\'s addresses of the other family come along (the second chance\'s next hop)', () => {
    expect(peersFromPods(pods, 'ipv4')).toEqual([
      { name: 'n1', address: '10.0.0.1', otherAddresses: ['fd00::1'] },
      { name: 'n2', address: '10.0.0.2', otherAddresses: ['fd00::2'] },
    ]);
    expect(peersFromPods(pods, 'ipv6').map((p) => p.otherAddresses)).toEqual([['10.0.0.1'], ['10.0.0.2']]);
  });

  test('no family: each pod\'s primary host IP', () => {
    expect(peersFromPods(pods).map((p) => p.address)).toEqual(['10.0.0.1', 'fd00::2']);
  });

  test('a v6-only node: hostIP only (older API servers), or podIPs', () => {
    const v6only: V1Pod[] = [
      { metadata: { name: 'a' }, spec: { nodeName: 'n1', containers: [] }, status: { hostIP: 'fd00:0:0:0:0:0:0:11' } },
      { metadata: { name: 'b' }, spec: { nodeName: 'n2', containers: [] }, status: { podIPs: [{ ip: 'fd00::12' }] } },
    ];
    expect(peersFromPods(v6only, 'ipv6')).toEqual([{ name: 'n1', address: 'fd00::11' }, { name: 'n2', address: 'fd00::12' }]);
    // a node without an address of the family is no peer (it could not hear us)
    expect(peersFromPods([...v6only, pod('n3', '10.0.0.3')], 'ipv6').map((p) => p.name)).toEqual(['n1', 'n2']);
  });
});
