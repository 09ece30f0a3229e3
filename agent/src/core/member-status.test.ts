import { bucketRanges, memberStatusPatch, statusNeedsWrite, type MemberStatus } from './member-status.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from '../../../common/src/farmcluster-types.js';

const base: MemberStatus = {
  node: 'n1', ready: true, state: 'ready', weight: 1, buckets: 3, bucketRanges: '0-2', peersReady: 3,
  checkers: [{ name: 'web', healthy: true }], lastHeartbeat: '2026-11-25T10:00:00.000Z',
};

describe('member status', () => {
  test.each([
    [[], ''],
    [[5], '5'],
    [[0, 1, 2, 3], '0-3'],
    [[3, 1, 2, 9, 7, 8, 20], '1-3,7-9,20'],
    [[4, 4, 5], '4-5'],
  ])('bucketRanges(%j) = %s', (input, want) => {
    expect(bucketRanges(input)).toBe(want);
  });
  test('first write always happens', () => {
    expect(statusNeedsWrite(undefined, base, 30000)).toBe(true);
  });
  test('a newer timestamp alone does not write until the refresh period', () => {
    expect(statusNeedsWrite(base, { ...base, lastHeartbeat: '2026-11-25T10:00:10.000Z' }, 30000)).toBe(false);
    expect(statusNeedsWrite(base, { ...base, lastHeartbeat: '2026-11-25T10:00:30.000Z' }, 30000)).toBe(true);
  });
  test('any real change writes', () => {
    expect(statusNeedsWrite(base, { ...base, buckets: 4, bucketRanges: '0-3' }, 30000)).toBe(true);
    expect(statusNeedsWrite(base, { ...base, ready: false }, 30000)).toBe(true);
    expect(statusNeedsWrite(base, { ...base, checkers: [{ name: 'web', healthy: false, lastError: 'x' }] }, 30000)).toBe(true);
  });
  test('patch carries only this node\'s entry', () => {
    expect(memberStatusPatch('web', 'lb', base)).toEqual({
      apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name: 'web', namespace: 'lb' }, status: { members: [base] },
    });
  });
});
