// What a stopping agent (Kubernetes mode, SIGTERM) does with its kernel state. Pure: the
// farm, the DaemonSet and this agent's pod as the API server showed them, in; a plan out.
//
// A rollout replaces the pod on the same node within seconds: the agent hands its buckets
// to its peers (SYN-gated, so established connections stay on this node's kernel) and
// leaves the tables and VIPs in place for the next agent to adopt, which breaks no
// connection. Anything else is the farm leaving this node (FarmCluster or DaemonSet deleted,
// the pod deleted or evicted, the node drained, shut down or no longer selected), or
// cannot be told apart from it: then everything the agent put in the kernel goes.

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

/** the scheduling fields of a pod (template), as far as they decide which nodes run it */
export interface Placement {
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
}

export interface ExitFacts {
  /** undefined: the FarmCluster is gone */
  farm?: { deleting: boolean };
  /** undefined: the DaemonSet is gone or could not be read */
  daemonSet?: { deleting: boolean; generation: number; template: Placement };
  /** undefined: this agent's pod is not known (not in the watch cache) */
  pod?: { templateGeneration?: number; placement: Placement };
}

export type ExitPlan = { keepKernelState: true; reason: string } | { keepKernelState: false; reason: string };

/** Tolerations the DaemonSet controller adds to every daemon pod (not in the template). */
const DAEMON_TOLERATION_KEYS = new Set([
  'node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable', 'node.kubernetes.io/disk-pressure',
  'node.kubernetes.io/memory-pressure', 'node.kubernetes.io/pid-pressure', 'node.kubernetes.io/unschedulable',
  'node.kubernetes.io/network-unavailable',
]);

const canonical = (t: Toleration): string =>
  JSON.stringify([t.key ?? '', t.operator ?? 'Equal', t.value ?? '', t.effect ?? '', t.tolerationSeconds ?? null]);

function sameTolerations(template: readonly Toleration[], pod: readonly Toleration[]): boolean {
  const mine = pod.filter((t) => !DAEMON_TOLERATION_KEYS.has(t.key ?? '') || template.some((x) => canonical(x) === canonical(t)));
  const a = template.map(canonical).sort();
  const b = [...new Set(mine.map(canonical))].sort();
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameSelector(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

export function exitPlan(f: ExitFacts): ExitPlan {
  const leave = (reason: string): ExitPlan => ({ keepKernelState: false, reason });
  if (!f.farm) return leave('the FarmCluster is gone');
  if (f.farm.deleting) return leave('the FarmCluster is being deleted');
  if (!f.daemonSet) return leave('the agent DaemonSet is gone or unreadable');
  if (f.daemonSet.deleting) return leave('the agent DaemonSet is being deleted');
  if (!f.pod || f.pod.templateGeneration === undefined) return leave('this agent\'s pod is unknown');
  // The same template: nothing replaces this pod on purpose (deleted, evicted, node drained
  // or no longer selected, kubelet shutting down); no successor is sure to come.
  if (f.daemonSet.generation <= f.pod.templateGeneration) return leave('not a rollout: the DaemonSet template is the one this pod runs');
  const t = f.daemonSet.template;
  const p = f.pod.placement;
  // A new template that places pods elsewhere may not place one here again.
  if (!sameSelector(t.nodeSelector, p.nodeSelector)) return leave('a rollout that changes the nodeSelector');
  if (!sameTolerations(t.tolerations ?? [], p.tolerations ?? [])) return leave('a rollout that changes the tolerations');
  return { keepKernelState: true, reason: `a rollout (DaemonSet generation ${f.daemonSet.generation}, this pod ${f.pod.templateGeneration}): the next agent on this node adopts the kernel state` };
}
