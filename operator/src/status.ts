// Aggregates what the agents report (status.members), what the DaemonSet controller reports
// and which agent pods are ready into the farm's conditions and summary. Pure.
import type { FarmClusterStatusCondition, FarmClusterStatusMember } from '../../common/src/farmcluster-types.js';
import type { FarmMode } from '../../common/src/types.js';

export interface DaemonSetView {
  generation: number;
  observedGeneration: number;
  /** nodes the DaemonSet wants an agent on */
  desired: number;
  /** pods running the current template */
  updated: number;
}

export interface AgentPodView {
  node: string;
  ready: boolean;
}

export interface AggregateInput {
  generation: number;
  bucketCount: number;
  /** formatErrors() of an invalid spec; the rest is then ignored */
  specErrors?: string;
  daemonSet?: DaemonSetView;
  pods: AgentPodView[];
  members: FarmClusterStatusMember[];
  previous: FarmClusterStatusCondition[];
  /** spec.mode (absent: Flooding); only Flooding farms need, and test, flooding */
  mode?: FarmMode;
  /** RFC 3339, for conditions that change now */
  now: string;
}

/** The part of status the operator owns (agents own members). */
export interface OperatorStatus {
  observedGeneration: number;
  readyNodes: number;
  totalNodes: number;
  ready: string;
  conditions: FarmClusterStatusCondition[];
}

type CondStatus = 'True' | 'False' | 'Unknown';

/** A member counts only while its pod is ready on that node: a killed agent cannot clear its own entry. */
export function readyMembers(members: FarmClusterStatusMember[], pods: AgentPodView[]): FarmClusterStatusMember[] {
  const readyPodNodes = new Set(pods.filter((p) => p.ready).map((p) => p.node));
  return members.filter((m) => m.ready === true && m.state !== 'down' && m.state !== 'draining' && readyPodNodes.has(m.node));
}

function rolloutProblem(i: AggregateInput): string | undefined {
  const ds = i.daemonSet;
  if (!ds) return 'agent DaemonSet not created yet';
  if (ds.observedGeneration < ds.generation) return 'DaemonSet controller has not seen the latest template yet';
  if (ds.updated < ds.desired) return `${ds.updated}/${ds.desired} agent pods run the current template`;
  const reported = new Set(i.members.map((m) => m.node));
  const silent = i.pods.filter((p) => !reported.has(p.node)).map((p) => p.node).sort();
  if (silent.length > 0) return `waiting for the first report of ${silent.join(', ')}`;
  return undefined;
}

function cond(type: string, status: CondStatus, reason: string, message: string, i: AggregateInput): FarmClusterStatusCondition {
  const prev = i.previous.find((c) => c.type === type);
  // lastTransitionTime moves only when status flips, as metav1.Condition requires.
  const lastTransitionTime = prev && prev.status === status ? prev.lastTransitionTime : i.now;
  return { type, status, observedGeneration: i.generation, lastTransitionTime, reason, message };
}

export function aggregateStatus(i: AggregateInput): OperatorStatus {
  const totalNodes = i.daemonSet?.desired ?? 0;
  const counted = readyMembers(i.members, i.pods);
  const readyNodes = new Set(counted.map((m) => m.node)).size;
  const base = { observedGeneration: i.generation, readyNodes, totalNodes, ready: `${readyNodes}/${totalNodes}` };

  if (i.specErrors !== undefined) {
    const msg = `invalid spec, the agents keep their last valid configuration: ${i.specErrors}`;
    return {
      ...base,
      conditions: [
        cond('Ready', 'False', 'InvalidSpec', msg, i),
        cond('Progressing', 'False', 'InvalidSpec', 'waiting for a valid spec', i),
        cond('Degraded', 'True', 'InvalidSpec', msg, i),
        cond('NetworkFloods', 'Unknown', 'InvalidSpec', 'waiting for a valid spec', i),
      ],
    };
  }

  const owned = counted.reduce((n, m) => n + (m.buckets ?? 0), 0);
  const rollout = rolloutProblem(i);
  const notReady = i.pods
    .map((p) => p.node)
    .filter((n) => !counted.some((m) => m.node === n))
    .sort();
  // an agent whose kernel refused the current spec says so in its entry
  const podNodes = new Set(i.pods.map((p) => p.node));
  const refusals = i.members
    .filter((m) => m.configRefused && podNodes.has(m.node))
    .sort((a, b) => a.node.localeCompare(b.node))
    .map((m) => `${m.node} refused generation ${m.configRefused!.generation} (${m.configRefused!.reason}: ${m.configRefused!.message})${m.appliedGeneration !== undefined ? `, runs generation ${m.appliedGeneration}` : ''}`);
  let problem: { reason: string; message: string } | undefined;
  if (totalNodes === 0 && !rollout) problem = { reason: 'NoNodes', message: 'no node matches the farm nodeSelector and tolerations' };
  else if (readyNodes < totalNodes) problem = { reason: 'NodesNotReady', message: `${readyNodes}/${totalNodes} nodes ready; not ready: ${notReady.join(', ') || 'pods missing'}` };
  else if (owned !== i.bucketCount) problem = { reason: 'BucketsMismatch', message: `ready nodes own ${owned} buckets, expected ${i.bucketCount}` };
  else if (refusals.length > 0) problem = { reason: 'ConfigRefused', message: `nodes keep serving their last applied spec: ${refusals.join('; ')}` };

  const conditions: FarmClusterStatusCondition[] = [];
  if (!problem) {
    conditions.push(cond('Ready', 'True', 'AllNodesReady', `${readyNodes}/${totalNodes} nodes ready, ${owned}/${i.bucketCount} buckets owned`, i));
  } else {
    conditions.push(cond('Ready', 'False', rollout ? 'RollingOut' : problem.reason, rollout ?? problem.message, i));
  }
  conditions.push(rollout ? cond('Progressing', 'True', 'RollingOut', rollout, i) : cond('Progressing', 'False', 'RolloutComplete', 'every selected node runs the current agent', i));
  // Degraded only once nothing is expected to change by itself.
  if (problem && !rollout) conditions.push(cond('Degraded', 'True', problem.reason, problem.message, i));
  else conditions.push(cond('Degraded', 'False', 'AsExpected', rollout ? 'rollout in progress' : 'all nodes ready', i));
  conditions.push(networkFloodsCondition(i));
  return { ...base, conditions };
}

/**
 * NetworkFloods from the agents' self-tests (Flooding mode): False as soon as one node
 * misses a peer's frames to the virtual MAC (clients' frames for the VIP miss it too),
 * True when every node that judged saw them all, Unknown before any judged and in
 * Directed mode, which does not need flooding. Members without an agent pod are ignored.
 */
export function networkFloodsCondition(i: AggregateInput): FarmClusterStatusCondition {
  if (i.mode === 'Directed') return cond('NetworkFloods', 'Unknown', 'DirectedMode', 'Directed mode does not use the virtual MAC; flooding is not needed and not tested', i);
  const podNodes = new Set(i.pods.map((p) => p.node));
  const members = i.members.filter((m) => podNodes.has(m.node)).sort((a, b) => a.node.localeCompare(b.node));
  const judged = members.filter((m) => m.networkFloods !== undefined);
  const pending = members.filter((m) => m.networkFloods === undefined).map((m) => m.node);
  const missing = judged.filter((m) => m.networkFloods!.floods === false);
  if (missing.length > 0) {
    const which = missing.map((m) => `${m.node} (no frames from ${(m.networkFloods!.unseenFrom ?? []).join(', ') || 'some peers'})`);
    return cond('NetworkFloods', 'False', 'VirtualMACNotFlooded',
      `frames to the virtual MAC do not reach ${which.join('; ')}: the switch does not flood it, clients' frames for the VIPs miss these nodes; use mode: Directed`, i);
  }
  if (judged.length === 0) return cond('NetworkFloods', 'Unknown', 'NotJudged', 'no node has judged yet (each needs its peers heard for a few seconds; a single node cannot judge)', i);
  const rest = pending.length > 0 ? `; not judged yet: ${pending.join(', ')}` : '';
  return cond('NetworkFloods', 'True', 'VirtualMACFlooded', `frames to the virtual MAC reach ${judged.map((m) => m.node).join(', ')}${rest}`, i);
}

/** True when writing `next` would change what `current` shows (timestamps aside). */
export function statusChanged(current: Partial<OperatorStatus> | undefined, next: OperatorStatus): boolean {
  if (!current) return true;
  const strip = (cs: FarmClusterStatusCondition[] | undefined): unknown =>
    (cs ?? [])
      .map(({ type, status, reason, message, observedGeneration }) => ({ type, status, reason, message, observedGeneration }))
      .sort((a, b) => a.type.localeCompare(b.type));
  return (
    current.observedGeneration !== next.observedGeneration ||
    current.readyNodes !== next.readyNodes ||
    current.totalNodes !== next.totalNodes ||
    current.ready !== next.ready ||
    JSON.stringify(strip(current.conditions)) !== JSON.stringify(strip(next.conditions))
  );
}

/**
 * Members to remove from status: their node has had no agent pod for `graceMs` (it left
 * the farm, e.g. a nodeSelector change or a deleted node). An agent owns its entry but
 * cannot remove it once its pod is gone. `missingSince` remembers when each node was first
 * seen without a pod and is updated in place.
 */
export function staleMembers(
  members: FarmClusterStatusMember[],
  pods: AgentPodView[],
  missingSince: Map<string, number>,
  nowMs: number,
  graceMs: number,
): string[] {
  const withPod = new Set(pods.map((p) => p.node));
  const stale: string[] = [];
  for (const node of [...missingSince.keys()]) if (withPod.has(node) || !members.some((m) => m.node === node)) missingSince.delete(node);
  for (const m of members) {
    if (withPod.has(m.node)) continue;
    const since = missingSince.get(m.node) ?? nowMs;
    missingSince.set(m.node, since);
    if (nowMs - since >= graceMs) stale.push(m.node);
  }
  return stale.sort();
}
