// Leader election on a coordination.k8s.io/v1 Lease, so that of several operator replicas
// only one reconciles. The decision is a pure function of the Lease and the clock; the
// elector loop writes with the Lease's resourceVersion, so two candidates that both decide
// to take over race on the API server and exactly one wins.

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

// A type alias, not an interface, so that it is assignable to the REST client's object type.
export type Lease = {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
};

export type LeaseDecision = 'create' | 'renew' | 'takeover' | 'wait';

/** Kubernetes MicroTime: RFC 3339 with exactly 6 fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function leaseDecision(lease: Lease | undefined, me: string, nowMs: number): LeaseDecision {
  if (!lease) return 'create';
  const s = lease.spec;
  if (s.holderIdentity === me) return 'renew';
  if (!s.holderIdentity) return 'takeover';
  const renewed = Date.parse(s.renewTime ?? s.acquireTime ?? '');
  const duration = (s.leaseDurationSeconds ?? 0) * 1000;
  if (Number.isNaN(renewed) || renewed + duration < nowMs) return 'takeover';
  return 'wait';
}

/** The Lease to write for `decision` (not 'wait'). */
export function nextLease(prev: Lease | undefined, decision: Exclude<LeaseDecision, 'wait'>, ref: { name: string; namespace: string }, me: string, nowMs: number, durationSeconds: number): Lease {
  const now = microTime(nowMs);
  const spec: LeaseSpec =
    decision === 'renew'
      ? { ...prev!.spec, renewTime: now, leaseDurationSeconds: durationSeconds }
      : {
          holderIdentity: me,
          leaseDurationSeconds: durationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: (prev?.spec.leaseTransitions ?? 0) + (prev ? 1 : 0),
        };
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: ref.name, namespace: ref.namespace, ...(prev?.metadata.resourceVersion ? { resourceVersion: prev.metadata.resourceVersion } : {}) },
    spec,
  };
}

export interface LeaseApi {
  get(namespace: string, name: string): Promise<Lease | undefined>;
  create(lease: Lease): Promise<Lease>;
  /** PUT with metadata.resourceVersion: fails on a concurrent write */
  replace(lease: Lease): Promise<Lease>;
}

export interface ElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  /** how often to try to acquire or renew */
  retryPeriodMs: number;
  /** a leader that could not renew for this long steps down (< lease duration) */
  renewDeadlineMs: number;
}

export interface ElectorEvents {
  onStartedLeading(): void;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
  onError?(err: Error): void;
}

export class LeaderElector {
  private leading = false;
  private lastRenewMs = 0;
  private observedHolder: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: LeaseApi,
    private readonly opts: ElectorOptions,
    private readonly events: ElectorEvents,
    private readonly now: () => number = Date.now,
  ) {
    if (opts.renewDeadlineMs >= opts.leaseDurationSeconds * 1000) throw new Error('renewDeadlineMs must be shorter than the lease duration');
    if (opts.retryPeriodMs >= opts.renewDeadlineMs) throw new Error('retryPeriodMs must be shorter than renewDeadlineMs');
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops trying; a leader gives the Lease up so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.api.get(this.opts.namespace, this.opts.name);
      if (lease?.spec.holderIdentity === this.opts.identity) {
        await this.api.replace({ ...lease, spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: microTime(this.now()) } });
      }
    } catch (err) {
      this.events.onError?.(err as Error);
    }
    this.events.onStoppedLeading();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.tick = this.tryOnce().finally(() => this.schedule(this.opts.retryPeriodMs));
    }, ms);
  }

  /** One acquire-or-renew attempt. */
  async tryOnce(): Promise<void> {
    const { namespace, name, identity, leaseDurationSeconds } = this.opts;
    try {
      const lease = await this.api.get(namespace, name);
      const now = this.now();
      const decision = leaseDecision(lease, identity, now);
      if (decision === 'wait') {
        this.noteHolder(lease!.spec.holderIdentity!);
        if (this.leading) this.stepDown();
        return;
      }
      const next = nextLease(lease, decision, { namespace, name }, identity, now, leaseDurationSeconds);
      if (decision === 'create') await this.api.create(next);
      else await this.api.replace(next);
      if (this.stopped) return;
      this.lastRenewMs = now;
      this.noteHolder(identity);
      if (!this.leading) {
        this.leading = true;
        this.events.onStartedLeading();
      }
    } catch (err) {
      this.events.onError?.(err as Error);
      if (this.leading && this.now() - this.lastRenewMs > this.opts.renewDeadlineMs) this.stepDown();
    }
  }

  private noteHolder(holder: string): void {
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      this.events.onNewLeader?.(holder);
    }
  }

  private stepDown(): void {
    this.leading = false;
    this.events.onStoppedLeading();
  }
}
