import type { FarmClusterStatusMember } from '../../common/src/farmcluster-types.js';
import { aggregateStatus, networkFloodsCondition, readyMembers, staleMembers, statusChanged, type AggregateInput } from './status.js';

const NOW = '2026-11-25T12:00:00Z';
const EARLIER = '2026-11-25T11:00:00Z';

function member(node: string, buckets: number, extra: Partial<FarmClusterStatusMember> = {}): FarmClusterStatusMember {
  return { node, ready: true, state: 'ready', weight: 1, buckets, ...extra };
}

function input(over: Partial<AggregateInput> = {}): AggregateInput {
  return {
    generation: 2,
    bucketCount: 256,
    daemonSet: { generation: 1, observedGeneration: 1, desired: 3, updated: 3 },
    pods: [{ node: 'n1', ready: true }, { node: 'n2', ready: true }, { node: 'n3', ready: true }],
    members: [member('n1', 86), member('n2', 85), member('n3', 85)],
    previous: [],
    now: NOW,
    ...over,
  };
}

const byType = (s: ReturnType<typeof aggregateStatus>): Record<string, { status: string; reason: string; message: string }> =>
  Object.fromEntries(s.conditions.map((c) => [c.type, c]));

describe('aggregateStatus', () => {
  test('all nodes ready and buckets add up: Ready, not Progressing, not Degraded', () => {
    const s = aggregateStatus(input());
    expect(s).toMatchObject({ readyNodes: 3, totalNodes: 3, ready: '3/3', observedGeneration: 2 });
    const c = byType(s);
    expect(c.Ready).toMatchObject({ status: 'True', reason: 'AllNodesReady' });
    expect(c.Ready.message).toContain('256/256');
    expect(c.Progressing).toMatchObject({ status: 'False', reason: 'RolloutComplete' });
    expect(c.Degraded).toMatchObject({ status: 'False', reason: 'AsExpected' });
    for (const x of s.conditions) expect(x.observedGeneration).toBe(2);
  });

  test('an agent whose pod is not ready does not count, even if its entry says ready', () => {
    const s = aggregateStatus(input({ pods: [{ node: 'n1', ready: true }, { node: 'n2', ready: false }, { node: 'n3', ready: true }] }));
    expect(s.ready).toBe('2/3');
    const c = byType(s);
    expect(c.Ready).toMatchObject({ status: 'False', reason: 'NodesNotReady' });
    expect(c.Degraded).toMatchObject({ status: 'True', reason: 'NodesNotReady' });
    expect(c.Degraded.message).toContain('not ready: n2');
  });

  test('buckets that do not add up are Degraded with BucketsMismatch', () => {
    const s = aggregateStatus(input({ members: [member('n1', 86), member('n2', 85), member('n3', 80)] }));
    const c = byType(s);
    expect(c.Ready).toMatchObject({ status: 'False', reason: 'BucketsMismatch' });
    expect(c.Degraded.message).toBe('ready nodes own 251 buckets, expected 256');
  });

  test('a node whose kernel refused the spec: Ready False and Degraded, naming the node, what and why', () => {
    const refused = { generation: 3, reason: 'KernelRefused', message: 'interface eth9: No such device', since: EARLIER };
    const s = aggregateStatus(input({ members: [member('n1', 86, { appliedGeneration: 3 }), member('n2', 85, { appliedGeneration: 2, configRefused: refused }), member('n3', 85)] }));
    expect(s.ready).toBe('3/3');
    const c = byType(s);
    expect(c.Ready).toMatchObject({ status: 'False', reason: 'ConfigRefused' });
    expect(c.Degraded).toMatchObject({ status: 'True', reason: 'ConfigRefused' });
    expect(c.Degraded.message).toBe('nodes keep serving their last applied spec: n2 refused generation 3 (KernelRefused: interface eth9: No such device), runs generation 2');
  });

  test('a standby node (weight 0, no buckets) is ready', () => {
    const s = aggregateStatus(input({ members: [member('n1', 128), member('n2', 128), member('n3', 0, { weight: 0, state: 'standby' })] }));
    expect(byType(s).Ready.status).toBe('True');
  });

  test('draining and down members are not ready', () => {
    const ms = [member('n1', 128), member('n2', 128, { state: 'draining' }), member('n3', 0, { state: 'down' })];
    expect(readyMembers(ms, input().pods).map((m) => m.node)).toEqual(['n1']);
  });

  test('a pod that has not reported yet keeps the farm Progressing, not Degraded', () => {
    const s = aggregateStatus(input({ members: [member('n1', 128), member('n2', 128)] }));
    const c = byType(s);
    expect(c.Progressing).toMatchObject({ status: 'True', reason: 'RollingOut' });
    expect(c.Progressing.message).toContain('n3');
    expect(c.Ready).toMatchObject({ status: 'False', reason: 'RollingOut' });
    expect(c.Degraded.status).toBe('False');
  });

  test('DaemonSet rolling out is Progressing', () => {
    const s = aggregateStatus(input({ daemonSet: { generation: 2, observedGeneration: 2, desired: 3, updated: 1 } }));
    expect(byType(s).Progressing.message).toBe('1/3 agent pods run the current template');
    const t = aggregateStatus(input({ daemonSet: { generation: 3, observedGeneration: 2, desired: 3, updated: 3 } }));
    expect(byType(t).Progressing.status).toBe('True');
  });

  test('no DaemonSet yet is Progressing with 0 nodes', () => {
    const s = aggregateStatus(input({ daemonSet: undefined, pods: [], members: [] }));
    expect(s.ready).toBe('0/0');
    expect(byType(s).Progressing).toMatchObject({ status: 'True', message: 'agent DaemonSet not created yet' });
  });

  test('no node selected is Degraded NoNodes', () => {
    const s = aggregateStatus(input({ daemonSet: { generation: 1, observedGeneration: 1, desired: 0, updated: 0 }, pods: [], members: [] }));
    expect(byType(s).Degraded).toMatchObject({ status: 'True', reason: 'NoNodes' });
  });

  test('members of nodes without an agent pod (left the farm) are ignored', () => {
    const s = aggregateStatus(input({ members: [member('n1', 86), member('n2', 85), member('n3', 85), member('gone', 256)] }));
    expect(s.ready).toBe('3/3');
    expect(byType(s).Ready.status).toBe('True');
  });

  test('invalid spec: Degraded InvalidSpec with the field errors, not Ready', () => {
    const s = aggregateStatus(input({ specErrors: 'spec.rules[0].port: must be 1..65535, got 0' }));
    const c = byType(s);
    expect(c.Degraded).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(c.Degraded.message).toContain('spec.rules[0].port');
    expect(c.Ready).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
  });

  test('lastTransitionTime is kept while a condition keeps its status and moves when it flips', () => {
    const previous = [
      { type: 'Ready', status: 'True' as const, lastTransitionTime: EARLIER, reason: 'AllNodesReady', message: 'x' },
      { type: 'Degraded', status: 'False' as const, lastTransitionTime: EARLIER, reason: 'AsExpected', message: 'x' },
    ];
    const same = aggregateStatus(input({ previous }));
    expect(same.conditions.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe(EARLIER);
    const flipped = aggregateStatus(input({ previous, pods: [{ node: 'n1', ready: false }, { node: 'n2', ready: true }, { node: 'n3', ready: true }] }));
    expect(flipped.conditions.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe(NOW);
    expect(flipped.conditions.find((c) => c.type === 'Progressing')!.lastTransitionTime).toBe(NOW);
  });
});

describe('networkFloodsCondition', () => {
  const floods = (f: boolean, unseenFrom: string[] = []): Partial<FarmClusterStatusMember> => ({ networkFloods: { floods: f, unseenFrom } });
  test('every node judged and saw every peer: True, naming them', () => {
    const c = networkFloodsCondition(input({ members: [member('n2', 85, floods(true)), member('n1', 86, floods(true)), member('n3', 85, floods(true))] }));
    expect(c).toMatchObject({ type: 'NetworkFloods', status: 'True', reason: 'VirtualMACFlooded', message: 'frames to the virtual MAC reach n1, n2, n3', observedGeneration: 2 });
  });
  test('one node missing frames: False, naming the node and whose frames it missed', () => {
    const c = networkFloodsCondition(input({ members: [member('n1', 86, floods(true)), member('n2', 85, floods(false, ['n1', 'n3'])), member('n3', 85, floods(false, ['n1']))] }));
    expect(c).toMatchObject({ status: 'False', reason: 'VirtualMACNotFlooded' });
    expect(c.message).toContain('do not reach n2 (no frames from n1, n3); n3 (no frames from n1)');
    expect(c.message).toContain('use mode: Directed');
    expect(c.message).not.toMatch(/n1 \(/);
  });
  test('False wins over nodes not judged yet; True says which are still pending', () => {
    expect(networkFloodsCondition(input({ members: [member('n1', 86), member('n2', 85, floods(false, ['n3'])), member('n3', 85)] })).status).toBe('False');
    const c = networkFloodsCondition(input({ members: [member('n1', 86, floods(true)), member('n2', 85), member('n3', 85)] }));
    expect(c).toMatchObject({ status: 'True', message: 'frames to the virtual MAC reach n1; not judged yet: n2, n3' });
  });
  test('nobody judged: Unknown NotJudged', () => {
    expect(networkFloodsCondition(input())).toMatchObject({ status: 'Unknown', reason: 'NotJudged' });
  });
  test('Directed mode: Unknown, whatever stale verdicts the members carry', () => {
    const c = networkFloodsCondition(input({ mode: 'Directed', members: [member('n1', 86, floods(false, ['n2']))] }));
    expect(c).toMatchObject({ status: 'Unknown', reason: 'DirectedMode' });
  });
  test('a member without an agent pod (left the farm) does not count', () => {
    const c = networkFloodsCondition(input({ pods: [{ node: 'n1', ready: true }], members: [member('n1', 86, floods(true)), member('n9', 1, floods(false, ['n1']))] }));
    expect(c).toMatchObject({ status: 'True', message: 'frames to the virtual MAC reach n1' });
  });
  test('aggregateStatus renders it next to Ready, also for an invalid spec (Unknown)', () => {
    expect(byType(aggregateStatus(input({ members: [member('n1', 86, floods(false, ['n2'])), member('n2', 85), member('n3', 85)] }))).NetworkFloods.status).toBe('False');
    expect(byType(aggregateStatus(input({ specErrors: 'spec.x: bad' }))).NetworkFloods).toMatchObject({ status: 'Unknown', reason: 'InvalidSpec' });
  });
  test('lastTransitionTime moves when the verdict flips', () => {
    const prev = [{ type: 'NetworkFloods', status: 'True' as const, reason: 'VirtualMACFlooded', message: '', lastTransitionTime: EARLIER }];
    expect(networkFloodsCondition(input({ previous: prev, members: [member('n1', 86, floods(true))] })).lastTransitionTime).toBe(EARLIER);
    expect(networkFloodsCondition(input({ previous: prev, members: [member('n1', 86, floods(false, ['n2']))] })).lastTransitionTime).toBe(NOW);
  });
});

describe('statusChanged', () => {
  test('ignores timestamps, sees everything else', () => {
    const a = aggregateStatus(input());
    const b = aggregateStatus(input({ now: '2030-01-01T00:00:00Z' }));
    expect(statusChanged(a, b)).toBe(false);
    expect(statusChanged(undefined, a)).toBe(true);
    expect(statusChanged(a, aggregateStatus(input({ generation: 3 })))).toBe(true);
    expect(statusChanged(a, aggregateStatus(input({ members: [member('n1', 86), member('n2', 85)] })))).toBe(true);
    expect(statusChanged({ ...a, conditions: [...a.conditions].reverse() }, a)).toBe(false);
  });
});

describe('staleMembers', () => {
  const pods = [{ node: 'n1', ready: true }, { node: 'n2', ready: false }];
  test('a member without a pod is stale only after the grace period', () => {
    const since = new Map<string, number>();
    const ms = [member('n1', 128), member('n2', 128), member('n3', 0)];
    expect(staleMembers(ms, pods, since, 1000, 5000)).toEqual([]);
    expect(staleMembers(ms, pods, since, 5999, 5000)).toEqual([]);
    expect(staleMembers(ms, pods, since, 6000, 5000)).toEqual(['n3']);
  });

  test('a pod that comes back resets the clock; pruned members are forgotten', () => {
    const since = new Map<string, number>();
    const ms = [member('n1', 128), member('n3', 0)];
    staleMembers(ms, pods, since, 0, 5000);
    expect(staleMembers(ms, [...pods, { node: 'n3', ready: false }], since, 4000, 5000)).toEqual([]);
    expect(since.has('n3')).toBe(false);
    expect(staleMembers(ms, pods, since, 8000, 5000)).toEqual([]);
    expect(staleMembers(ms, pods, since, 13_000, 5000)).toEqual(['n3']);
    staleMembers([member('n1', 128)], pods, since, 14_000, 5000);
    expect(since.size).toBe(0);
  });

  test('a not-ready pod still holds its member', () => {
    expect(staleMembers([member('n2', 0)], pods, new Map(), 0, 0)).toEqual([]);
  });
});
