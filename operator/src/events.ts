// Kubernetes Events on a FarmCluster, for what users must see in `kubectl describe`.
// Best effort: an Event that cannot be written is logged, never a reconcile failure.
import type { FarmCluster } from '../../common/src/farmcluster-types.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from '../../common/src/farmcluster-types.js';
import type { Logger } from '../../common/src/log.js';
import type { KubeObject } from './desired-objects.js';

export interface EventRecorder {
  record(fc: FarmCluster, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** The core/v1 Event for `fc`. */
export function eventObject(fc: FarmCluster, type: 'Normal' | 'Warning', reason: string, message: string, now: Date, instance: string): KubeObject {
  const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: '', generateName: `${fc.metadata!.name}.`, namespace: fc.metadata!.namespace },
    involvedObject: {
      apiVersion: FARMCLUSTER_API_VERSION,
      kind: FARMCLUSTER_KIND,
      name: fc.metadata!.name,
      namespace: fc.metadata!.namespace,
      uid: fc.metadata!.uid,
      resourceVersion: fc.metadata!.resourceVersion,
    },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component: 'vipfarm-operator' },
    reportingComponent: 'vipfarm.io/operator',
    reportingInstance: instance,
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
  };
}

export class KubeEventRecorder implements EventRecorder {
  constructor(
    private readonly create: (o: KubeObject) => Promise<unknown>,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  async record(fc: FarmCluster, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const o = eventObject(fc, type, reason, message, new Date(), this.instance);
    delete (o.metadata as { name?: string }).name;
    try {
      await this.create(o);
      this.log.info('event', { event: 'k8s_event', farm: fc.metadata?.name, type, reason, message });
    } catch (err) {
      this.log.warn('could not record event', { event: 'k8s_event_error', farm: fc.metadata?.name, reason, error: (err as Error).message });
    }
  }
}
