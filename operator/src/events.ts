// Kubernetes Events on a FarmCluster or a Service, for what users must see in `kubectl describe`.
// Best effort: an Event that cannot be written is logged, never a reconcile failure.
import { eventObject, OPERATOR_REPORTER, type Involved } from '../../common/src/farm-events.js';
import type { Logger } from '../../common/src/log.js';
import type { KubeObject } from './desired-objects.js';

export { eventObject } from '../../common/src/farm-events.js';

export interface EventRecorder {
  record(fc: Involved, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export class KubeEventRecorder implements EventRecorder {
  constructor(
    private readonly create: (o: KubeObject) => Promise<unknown>,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  async record(fc: Involved, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const o = eventObject(fc, type, reason, message, new Date(), this.instance, OPERATOR_REPORTER) as KubeObject;
    delete (o.metadata as { name?: string }).name;
    try {
      await this.create(o);
      this.log.info('event', { event: 'k8s_event', object: `${fc.kind ?? 'FarmCluster'} ${fc.metadata?.namespace}/${fc.metadata?.name}`, type, reason, message });
    } catch (err) {
      this.log.warn('could not record event', { event: 'k8s_event_error', farm: fc.metadata?.name, reason, error: (err as Error).message });
    }
  }
}
