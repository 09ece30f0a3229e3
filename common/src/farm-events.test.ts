import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from './farmcluster-types.js';
import { agentReporter, eventObject } from './farm-events.js';

const fc = { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name: 'web', namespace: 'lb', uid: 'u-1', resourceVersion: '7' }, spec: {} } as never;

test('an agent\'s Event names the agent, its node and the FarmCluster', () => {
  const e = eventObject(fc, 'Warning', 'Failover', 'n1 took over 21 buckets of n2', new Date('2026-11-25T12:00:00.500Z'), 'n1', agentReporter('n1')) as any;
  expect(e.source).toEqual({ component: 'vipfarm-agent', host: 'n1' });
  expect(e.reportingComponent).toBe('vipfarm.io/agent');
  expect(e.reportingInstance).toBe('n1');
  expect(e.involvedObject).toMatchObject({ kind: 'FarmCluster', name: 'web', namespace: 'lb', uid: 'u-1' });
  expect(e.metadata).toMatchObject({ generateName: 'web.', namespace: 'lb' });
  expect(e.firstTimestamp).toBe('2026-11-25T12:00:00Z');
});
