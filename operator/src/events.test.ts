import { eventObject } from './events.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from '../../common/src/farmcluster-types.js';

describe('eventObject', () => {
  const fc = { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name: 'web', namespace: 'ns', uid: 'u1', resourceVersion: '9' }, spec: { virtualIPs: [], interface: 'eth0', rules: [] } };

  test('a core/v1 Event about the FarmCluster', () => {
    const e = eventObject(fc, 'Warning', 'InvalidSpec', 'spec.rules[0].port: bad', new Date('2026-11-25T12:00:00.123Z'), 'op-1') as any;
    expect(e).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: 'web.', namespace: 'ns' },
      involvedObject: { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, name: 'web', namespace: 'ns', uid: 'u1' },
      type: 'Warning',
      reason: 'InvalidSpec',
      message: 'spec.rules[0].port: bad',
      source: { component: 'vipfarm-operator' },
      reportingInstance: 'op-1',
      firstTimestamp: '2026-11-25T12:00:00Z',
      count: 1,
    });
  });

  test('long messages are cut to 1024 characters', () => {
    const e = eventObject(fc, 'Normal', 'Ready', 'x'.repeat(5000), new Date(), 'op') as any;
    expect(e.message).toHaveLength(1024);
  });
});
