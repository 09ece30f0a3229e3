// Kubernetes Events on a FarmCluster, as the operator and the agents write them (what
// users see in `kubectl describe farmcluster`).
import type { FarmCluster } from './farmcluster-types.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from './farmcluster-types.js';

export interface Reporter {
  component: string;
  reportingComponent: string;
  host?: string;
}

export const OPERATOR_REPORTER: Reporter = { component: 'vipfarm-operator', reportingComponent: 'vipfarm.io/operator' };

export function agentReporter(node: string): Reporter {
  return { component: 'vipfarm-agent', reportingComponent: 'vipfarm.io/agent', host: node };
}

/** What an Event can be about: a FarmCluster, or a Service the operator allocates for. */
export type Involved = Pick<FarmCluster, 'metadata'> & { apiVersion?: string; kind?: string };

/** The core/v1 Event for `fc` (a FarmCluster unless it says otherwise). */
export function eventObject(
  fc: Involved, type: 'Normal' | 'Warning', reason: string, message: string, now: Date, instance: string,
  reporter: Reporter = OPERATOR_REPORTER,
): Record<string, unknown> & { metadata: Record<string, unknown> } {
  const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: '', generateName: `${fc.metadata!.name}.`, namespace: fc.metadata!.namespace },
    involvedObject: {
      apiVersion: fc.apiVersion ?? FARMCLUSTER_API_VERSION,
      kind: fc.kind ?? FARMCLUSTER_KIND,
      name: fc.metadata!.name,
      namespace: fc.metadata!.namespace,
      uid: fc.metadata!.uid,
      resourceVersion: fc.metadata!.resourceVersion,
    },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component: reporter.component, ...(reporter.host ? { host: reporter.host } : {}) },
    reportingComponent: reporter.reportingComponent,
    reportingInstance: instance,
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
  };
}
