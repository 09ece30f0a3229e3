// One reconcile of one FarmCluster: finalizer, parse (the shared parser), server-side apply
// of the desired objects, status aggregation. Returns an Outcome for the work queue:
// an invalid spec becomes a Degraded condition and an Event and is not retried; an API
// failure is retried with backoff. Unchanged objects are not re-applied.
import { createHash } from 'node:crypto';
import { formatErrors, parseFarmSpec } from '../../common/src/config/index.js';
import type { FarmCluster, FarmClusterStatusCondition } from '../../common/src/farmcluster-types.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } from '../../common/src/farmcluster-types.js';
import type { Logger } from '../../common/src/log.js';
import {
  FIELD_MANAGER,
  FINALIZER,
  HEARTBEAT_KEY_FIELD,
  agentSelector,
  describeObject,
  desiredObjects,
  labelSelectorString,
  newHeartbeatKey,
  objectNames,
  type KubeObject,
  type OperatorSettings,
} from './desired-objects.js';
import type { EventRecorder } from './events.js';
import { KubeError, type Kube, type ObjectRef } from './kube.js';
import type { OperatorMetrics } from './metrics.js';
import { aggregateStatus, staleMembers, statusChanged, type AgentPodView, type DaemonSetView } from './status.js';
import type { Outcome } from './workqueue.js';

export interface PodLike {
  metadata?: { name?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: { conditions?: { type: string; status: string }[]; hostIP?: string };
}

export interface DaemonSetLike {
  metadata?: { generation?: number };
  status?: { observedGeneration?: number; desiredNumberScheduled?: number; updatedNumberScheduled?: number };
}

/** Read-only views of the informers' caches. */
export interface Caches {
  daemonSet(namespace: string, name: string): DaemonSetLike | undefined;
  agentPods(namespace: string, farm: string): PodLike[];
}

export interface ReconcilerDeps {
  kube: Pick<Kube, 'get' | 'apply' | 'jsonPatch' | 'delete' | 'list'>;
  caches: Caches;
  settings: OperatorSettings;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  randomBytes: (n: number) => Buffer;
  now?: () => Date;
  /** how long deletion waits for agent pods to finish their cleanup */
  finalizerTimeoutMs?: number;
  /** safety resync while a farm is not settled */
  resyncMs?: number;
  /** fault injection for tests: pause before each object apply, to stop a reconcile halfway */
  applyDelayMs?: number;
  /** how long a member's node must be without an agent pod before its entry is removed */
  memberGraceMs?: number;
  /** unchanged objects are applied again after this long (default 10 min) */
  reapplyMs?: number;
}

const farmRef = (namespace: string, name: string): ObjectRef => ({ apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, namespace, name });

export function podView(p: PodLike): AgentPodView | undefined {
  const node = p.spec?.nodeName;
  if (!node || p.metadata?.deletionTimestamp) return undefined;
  return { node, ready: (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True') };
}

export function daemonSetView(ds: DaemonSetLike | undefined): DaemonSetView | undefined {
  if (!ds) return undefined;
  return {
    generation: ds.metadata?.generation ?? 0,
    observedGeneration: ds.status?.observedGeneration ?? 0,
    desired: ds.status?.desiredNumberScheduled ?? 0,
    updated: ds.status?.updatedNumberScheduled ?? 0,
  };
}

function hashOf(o: KubeObject): string {
  return createHash('sha256').update(JSON.stringify(o)).digest('hex');
}

function wrap(what: string, err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  return new Error(`${what}: ${e.message}`, { cause: e });
}

export class Reconciler {
  /** per farm uid: hash of each object as last applied, and when */
  private readonly applied = new Map<string, Map<string, { hash: string; at: number }>>();
  /** per farm uid: the generation whose errors or warnings were already announced by an Event */
  private readonly announcedInvalid = new Map<string, number>();
  /** per farm uid: node -> when its member entry was first seen without an agent pod */
  private readonly missingSince = new Map<string, Map<string, number>>();
  private readonly now: () => Date;

  constructor(private readonly d: ReconcilerDeps) {
    this.now = d.now ?? (() => new Date());
  }

  /** Forget memoised applies (e.g. an owned object changed behind our back). */
  invalidate(uid?: string): void {
    if (uid) this.applied.delete(uid);
    else this.applied.clear();
  }

  async reconcile(key: string): Promise<Outcome> {
    const [namespace, name] = key.split('/');
    const log = this.d.log.child({ farm: name, namespace });
    const started = process.hrtime.bigint();
    let outcome: Outcome;
    try {
      outcome = await this.reconcileFarm(namespace!, name!, log);
    } catch (err) {
      const error = wrap(`reconcile ${key}`, err);
      outcome = { kind: 'retry', error };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.d.metrics.observe(outcome, seconds);
    if (outcome.kind === 'retry') log.warn('reconcile failed, will retry', { event: 'reconcile_error', error: outcome.error.message });
    else if (outcome.kind === 'noRetry') log.warn('reconcile stopped until the farm changes', { event: 'reconcile_invalid', error: outcome.error.message });
    else log.debug('reconciled', { event: 'reconciled', seconds, outcome: outcome.kind });
    return outcome;
  }

  private async reconcileFarm(namespace: string, name: string, log: Logger): Promise<Outcome> {
    const fc = await this.d.kube.get<FarmCluster>(farmRef(namespace, name));
    if (!fc) {
      log.info('farm gone', { event: 'farm_gone' });
      return { kind: 'done' };
    }
    const uid = fc.metadata!.uid!;
    if (fc.metadata?.deletionTimestamp) return this.finalize(fc, log);
    if (!(fc.metadata?.finalizers ?? []).includes(FINALIZER)) {
      if (!(await this.addFinalizer(fc))) {
        // The farm changed between our read and the patch (e.g. a spec edit right after
        // create): not a failure, just read it again.
        log.info('farm changed while adding the finalizer, reading it again', { event: 'finalizer_conflict' });
        return { kind: 'requeueAfter', ms: 50 };
      }
      log.info('finalizer added', { event: 'finalizer_added' });
    }

    const parsed = parseFarmSpec(fc.spec, { name, path: 'spec' });
    if (!parsed.ok) {
      const text = formatErrors(parsed.errors);
      if (this.announcedInvalid.get(uid) !== fc.metadata!.generation) {
        const first = parsed.errors[0]!;
        await this.d.events.record(fc, 'Warning', 'InvalidSpec', `${first.field}: ${first.message}${parsed.errors.length > 1 ? ` (and ${parsed.errors.length - 1} more)` : ''}`);
        this.announcedInvalid.set(uid, fc.metadata!.generation ?? 0);
      }
      await this.writeStatus(fc, text, log);
      return { kind: 'noRetry', error: new Error(`invalid spec: ${text.replace(/\n/g, '; ')}`) };
    }
    if (this.announcedInvalid.get(uid) !== fc.metadata!.generation && parsed.warnings.length > 0) {
      for (const w of parsed.warnings) log.warn('spec warning', { event: 'spec_warning', field: w.field, message: w.message });
      await this.d.events.record(fc, 'Warning', 'SpecWarning', parsed.warnings.map((w) => `${w.field}: ${w.message}`).join('; '));
    }
    // Remembered for valid specs too, so that warnings are announced once per generation.
    this.announcedInvalid.set(uid, fc.metadata!.generation ?? 0);

    const key = await this.heartbeatKey(namespace, name);
    const objects = desiredObjects(fc, parsed.value, key, this.d.settings);
    await this.applyAll(uid, objects, log);

    const { settled, recheckMs } = await this.writeStatus(fc, undefined, log);
    const resync = settled ? recheckMs : Math.min(recheckMs ?? Infinity, this.d.resyncMs ?? 30_000);
    return resync === undefined ? { kind: 'done' } : { kind: 'requeueAfter', ms: resync };
  }

  private async heartbeatKey(namespace: string, farm: string): Promise<string> {
    const secret = await this.d.kube.get<{ data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret', namespace, name: objectNames(farm).secret });
    const existing = secret?.data?.[HEARTBEAT_KEY_FIELD];
    // Made once: rotating it would split the farm until every agent reloads it.
    return existing && existing.length > 0 ? existing : newHeartbeatKey(this.d.randomBytes);
  }

  private async applyAll(uid: string, objects: KubeObject[], log: Logger): Promise<void> {
    const memo = this.applied.get(uid) ?? new Map<string, { hash: string; at: number }>();
    const now = this.now().getTime();
    this.applied.set(uid, memo);
    for (const o of objects) {
      const id = describeObject(o);
      const h = hashOf(o);
      const missingDs = o.kind === 'DaemonSet' && !this.d.caches.daemonSet(o.metadata.namespace!, o.metadata.name);
      const last = memo.get(id);
      // Re-applied now and then even when unchanged: only the DaemonSet is watched, so this
      // is what undoes a hand edit of the Role or the Secret (an unchanged apply is a no-op).
      if (last && last.hash === h && now - last.at < (this.d.reapplyMs ?? 600_000) && !missingDs) continue;
      if (this.d.applyDelayMs) await new Promise((r) => setTimeout(r, this.d.applyDelayMs));
      try {
        await this.d.kube.apply(o, FIELD_MANAGER);
      } catch (err) {
        memo.delete(id);
        throw wrap(`apply ${id}`, err);
      }
      memo.set(id, { hash: h, at: now });
      log.info('applied', { event: 'applied', object: id });
    }
  }

  /**
   * Removes the entries of members whose node left the farm. JSON patch, not apply: the
   * entries belong to the agents' field managers. Each removal is guarded by a test of the
   * node name, so a concurrent change of the list makes the patch fail instead of removing
   * the wrong entry. Returns when to look again for members still within their grace.
   */
  private async pruneMembers(fc: FarmCluster, pods: AgentPodView[], log: Logger): Promise<number | undefined> {
    const uid = fc.metadata!.uid!;
    const grace = this.d.memberGraceMs ?? 60_000;
    const missing = this.missingSince.get(uid) ?? new Map<string, number>();
    this.missingSince.set(uid, missing);
    const members = fc.status?.members ?? [];
    const now = this.now().getTime();
    const stale = staleMembers(members, pods, missing, now, grace);
    if (stale.length > 0) {
      const indexed = members.map((m, i) => ({ node: m.node, i })).filter((m) => stale.includes(m.node)).sort((a, b) => b.i - a.i);
      await this.d.kube.jsonPatch(
        farmRef(fc.metadata!.namespace!, fc.metadata!.name!),
        indexed.flatMap(({ node, i }) => [
          { op: 'test', path: `/status/members/${i}/node`, value: node },
          { op: 'remove', path: `/status/members/${i}` },
        ]),
        'status',
      );
      for (const node of stale) missing.delete(node);
      fc.status = { ...fc.status, members: members.filter((m) => !stale.includes(m.node)) };
      log.info('members removed', { event: 'members_pruned', nodes: stale.join(',') });
      await this.d.events.record(fc, 'Normal', 'MemberRemoved', `removed the status of ${stale.join(', ')}: no agent of this farm runs there any more`);
    }
    if (missing.size === 0) return undefined;
    return Math.max(100, Math.min(...[...missing.values()].map((t) => t + grace - now)));
  }

  /** Writes the operator's part of status when it changed. */
  private async writeStatus(fc: FarmCluster, specErrors: string | undefined, log: Logger): Promise<{ settled: boolean; recheckMs?: number }> {
    const namespace = fc.metadata!.namespace!;
    const name = fc.metadata!.name!;
    const ds = this.d.caches.daemonSet(namespace, objectNames(name).daemonSet);
    const pods = this.d.caches.agentPods(namespace, name).map(podView).filter((p): p is AgentPodView => p !== undefined);
    const recheckMs = await this.pruneMembers(fc, pods, log);
    const previous: FarmClusterStatusCondition[] = fc.status?.conditions ?? [];
    const next = aggregateStatus({
      generation: fc.metadata!.generation ?? 0,
      bucketCount: fc.spec.bucketCount ?? 256,
      specErrors,
      daemonSet: daemonSetView(ds),
      pods,
      members: fc.status?.members ?? [],
      previous,
      mode: fc.spec.mode,
      now: this.now().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
    const ready = next.conditions.find((c) => c.type === 'Ready')!;
    if (statusChanged(fc.status, next)) {
      await this.d.kube.apply(
        { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name, namespace }, status: next },
        FIELD_MANAGER,
        { subresource: 'status' },
      );
      const before = previous.find((c) => c.type === 'Ready');
      if (before?.status !== ready.status && specErrors === undefined) {
        if (ready.status === 'True') await this.d.events.record(fc, 'Normal', 'Ready', ready.message);
        else if (before?.status === 'True') await this.d.events.record(fc, 'Warning', ready.reason, ready.message);
      }
      log.info('status', { event: 'status', ready: next.ready, reason: ready.reason });
    }
    return { settled: ready.status === 'True' || specErrors !== undefined, recheckMs };
  }

  /** False when the farm's resourceVersion moved since `fc` was read (the guard's test failed). */
  private async addFinalizer(fc: FarmCluster): Promise<boolean> {
    const has = Array.isArray(fc.metadata?.finalizers);
    try {
      await this.d.kube.jsonPatch(farmRef(fc.metadata!.namespace!, fc.metadata!.name!), [
        { op: 'test', path: '/metadata/resourceVersion', value: fc.metadata!.resourceVersion },
        has ? { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER } : { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
      ]);
      return true;
    } catch (err) {
      if (err instanceof KubeError && (err.status === 409 || err.status === 422)) return false;
      throw err;
    }
  }

  /**
   * Deletion: remove the DaemonSet, wait until every agent pod is gone (each agent removes
   * its kernel state on SIGTERM before it exits), then release the FarmCluster. The other
   * objects go with it through their owner references.
   */
  private async finalize(fc: FarmCluster, log: Logger): Promise<Outcome> {
    const namespace = fc.metadata!.namespace!;
    const name = fc.metadata!.name!;
    const finalizers = fc.metadata?.finalizers ?? [];
    const idx = finalizers.indexOf(FINALIZER);
    if (idx < 0) return { kind: 'done' };
    const dsName = objectNames(name).daemonSet;
    if (await this.d.kube.delete({ apiVersion: 'apps/v1', kind: 'DaemonSet', namespace, name: dsName }, 'Background')) {
      log.info('deleting agents', { event: 'finalize_delete_daemonset', object: `DaemonSet ${namespace}/${dsName}` });
      await this.d.events.record(fc, 'Normal', 'Deleting', 'removing the agents; each agent removes its VIPs and kernel filter before it exits');
    }
    const pods = await this.d.kube.list<PodLike>({ apiVersion: 'v1', kind: 'Pod', namespace }, { labelSelector: labelSelectorString(agentSelector(name)) });
    if (pods.items.length > 0) {
      const waited = this.now().getTime() - Date.parse(fc.metadata!.deletionTimestamp!);
      if (waited < (this.d.finalizerTimeoutMs ?? 300_000)) {
        log.info('waiting for agents to clean up', { event: 'finalize_wait', pods: pods.items.length });
        return { kind: 'requeueAfter', ms: 1000 };
      }
      const left = pods.items.map((p) => p.spec?.nodeName ?? p.metadata?.name).join(', ');
      await this.d.events.record(fc, 'Warning', 'CleanupTimeout', `agents on ${left} did not exit in time; their nodes may keep kernel state`);
      log.warn('cleanup timed out', { event: 'finalize_timeout', nodes: left });
    }
    try {
      await this.d.kube.jsonPatch(farmRef(namespace, name), [
        { op: 'test', path: '/metadata/finalizers', value: finalizers },
        { op: 'remove', path: `/metadata/finalizers/${idx}` },
      ]);
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return { kind: 'done' };
      throw wrap('remove finalizer', err);
    }
    this.applied.delete(fc.metadata!.uid!);
    this.announcedInvalid.delete(fc.metadata!.uid!);
    this.missingSince.delete(fc.metadata!.uid!);
    log.info('finalized', { event: 'finalized' });
    return { kind: 'done' };
  }
}
