import { LeaderElector, leaseDecision, microTime, nextLease, type Lease, type LeaseApi } from './leader.js';

const T0 = Date.parse('2026-11-25T12:00:00.000Z');
const ref = { namespace: 'vipfarm-system', name: 'vipfarm-operator' };

function lease(spec: Lease['spec'], rv = '7'): Lease {
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...ref, resourceVersion: rv }, spec };
}

describe('leaseDecision', () => {
  test.each([
    ['no lease', undefined, 'create'],
    ['mine', lease({ holderIdentity: 'me', renewTime: microTime(T0 - 60_000), leaseDurationSeconds: 15 }), 'renew'],
    ['released', lease({ holderIdentity: undefined, renewTime: microTime(T0), leaseDurationSeconds: 1 }), 'takeover'],
    ['other, fresh', lease({ holderIdentity: 'other', renewTime: microTime(T0 - 14_000), leaseDurationSeconds: 15 }), 'wait'],
    ['other, expired', lease({ holderIdentity: 'other', renewTime: microTime(T0 - 16_000), leaseDurationSeconds: 15 }), 'takeover'],
    ['other, no times', lease({ holderIdentity: 'other', leaseDurationSeconds: 15 }), 'takeover'],
    ['other, only acquireTime fresh', lease({ holderIdentity: 'other', acquireTime: microTime(T0 - 1000), leaseDurationSeconds: 15 }), 'wait'],
  ])('%s', (_n, l, expected) => {
    expect(leaseDecision(l as Lease | undefined, 'me', T0)).toBe(expected);
  });
});

describe('nextLease', () => {
  test('microTime has 6 fractional digits', () => {
    expect(microTime(T0 + 123)).toBe('2026-11-25T12:00:00.123000Z');
  });

  test('takeover counts a transition and keeps the resourceVersion for optimistic locking', () => {
    const prev = lease({ holderIdentity: 'other', leaseTransitions: 4, acquireTime: microTime(0), renewTime: microTime(0), leaseDurationSeconds: 15 });
    const n = nextLease(prev, 'takeover', ref, 'me', T0, 15);
    expect(n.metadata.resourceVersion).toBe('7');
    expect(n.spec).toEqual({ holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: microTime(T0), renewTime: microTime(T0), leaseTransitions: 5 });
  });

  test('renew moves only renewTime', () => {
    const prev = lease({ holderIdentity: 'me', leaseTransitions: 2, acquireTime: microTime(T0 - 5000), renewTime: microTime(T0 - 2000), leaseDurationSeconds: 15 });
    const n = nextLease(prev, 'renew', ref, 'me', T0, 15);
    expect(n.spec).toEqual({ ...prev.spec, renewTime: microTime(T0) });
  });

  test('create starts at zero transitions without a resourceVersion', () => {
    const n = nextLease(undefined, 'create', ref, 'me', T0, 15);
    expect(n.metadata.resourceVersion).toBeUndefined();
    expect(n.spec.leaseTransitions).toBe(0);
  });
});

/** An in-memory API server for Leases with resourceVersion conflicts. */
class FakeLeases implements LeaseApi {
  stored: Lease | undefined;
  rv = 0;
  failing = false;
  async get(): Promise<Lease | undefined> {
    if (this.failing) throw new Error('connection refused');
    return this.stored && structuredClone(this.stored);
  }
  async create(l: Lease): Promise<Lease> {
    if (this.failing) throw new Error('connection refused');
    if (this.stored) throw new Error('409 AlreadyExists');
    this.stored = { ...structuredClone(l), metadata: { ...l.metadata, resourceVersion: String(++this.rv) } };
    return this.stored;
  }
  async replace(l: Lease): Promise<Lease> {
    if (this.failing) throw new Error('connection refused');
    if (l.metadata.resourceVersion !== this.stored?.metadata.resourceVersion) throw new Error('409 Conflict');
    this.stored = { ...structuredClone(l), metadata: { ...l.metadata, resourceVersion: String(++this.rv) } };
    return this.stored;
  }
}

describe('LeaderElector', () => {
  const opts = (identity: string) => ({ ...ref, identity, leaseDurationSeconds: 15, retryPeriodMs: 2000, renewDeadlineMs: 10_000 });

  test('of two candidates exactly one leads; the other takes over only after expiry', async () => {
    const api = new FakeLeases();
    let now = T0;
    const log: string[] = [];
    const mk = (id: string) =>
      new LeaderElector(api, opts(id), { onStartedLeading: () => log.push(`${id} leads`), onStoppedLeading: () => log.push(`${id} stops`) }, () => now);
    const a = mk('a');
    const b = mk('b');
    await Promise.all([a.tryOnce(), b.tryOnce()]);
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    const [leader, other] = a.isLeader() ? [a, b] : [b, a];
    now += 10_000;
    await other.tryOnce();
    expect(other.isLeader()).toBe(false);
    now += 6_000; // leader silent for 16 s > 15 s
    await other.tryOnce();
    expect(other.isLeader()).toBe(true);
    await leader.tryOnce();
    expect(leader.isLeader()).toBe(false);
    expect(log.filter((l) => l.endsWith('leads'))).toHaveLength(2);
    expect(log).toContain(`${a.isLeader() ? 'b' : 'a'} stops`);
  });

  test('a leader that cannot renew past the deadline steps down', async () => {
    const api = new FakeLeases();
    let now = T0;
    let stopped = 0;
    const e = new LeaderElector(api, opts('a'), { onStartedLeading: () => {}, onStoppedLeading: () => stopped++ }, () => now);
    await e.tryOnce();
    expect(e.isLeader()).toBe(true);
    api.failing = true;
    now += 5_000;
    await e.tryOnce();
    expect(e.isLeader()).toBe(true);
    now += 6_000;
    await e.tryOnce();
    expect(e.isLeader()).toBe(false);
    expect(stopped).toBe(1);
  });

  test('stop() releases the Lease so a standby takes over at once', async () => {
    const api = new FakeLeases();
    let now = T0;
    const a = new LeaderElector(api, opts('a'), { onStartedLeading: () => {}, onStoppedLeading: () => {} }, () => now);
    const b = new LeaderElector(api, opts('b'), { onStartedLeading: () => {}, onStoppedLeading: () => {} }, () => now);
    await a.tryOnce();
    await a.stop();
    now += 1_500;
    await b.tryOnce();
    expect(b.isLeader()).toBe(true);
  });

  test('rejects inconsistent timings', () => {
    expect(() => new LeaderElector(new FakeLeases(), { ...opts('a'), renewDeadlineMs: 15_000 }, { onStartedLeading() {}, onStoppedLeading() {} })).toThrow(/renewDeadline/);
  });
});
