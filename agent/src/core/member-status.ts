// The agent's own entry in FarmCluster.status.members, and when it is worth writing.
// Each agent server-side-applies only its entry (list map keyed by node), and only when
// something a human or the operator acts on has changed, so 100 ms heartbeats never
// become 100 ms API writes.
import type { MemberState } from '../../../common/src/types.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND, type FarmClusterStatusMemberNetworkFloods } from '../../../common/src/farmcluster-types.js';

export interface MemberStatus {
  node: string;
  ready: boolean;
  state: MemberState;
  weight: number;
  /** number of buckets owned */
  buckets: number;
  /** owned buckets as compact ranges, e.g. "0-63,128-130" */
  bucketRanges: string;
  /** ready peers this agent sees, itself included */
  peersReady: number;
  checkers: { name: string; healthy: boolean; lastError?: string }[];
  lastHeartbeat: string;
  /** metadata.generation of the spec the kernel runs (Kubernetes mode) */
  appliedGeneration?: number;
  /** the current spec, refused by this node: it keeps serving appliedGeneration */
  configRefused?: { generation: number; reason: string; message: string; since: string };
  /** Flooding mode's self-test (./flood-check.ts); absent before it judges and in Directed mode */
  networkFloods?: Required<FarmClusterStatusMemberNetworkFloods>;
}

/** Compact ranges of sorted or unsorted bucket numbers. */
export function bucketRanges(buckets: number[]): string {
  const b = [...new Set(buckets)].sort((x, y) => x - y);
  const parts: string[] = [];
  for (let i = 0; i < b.length; ) {
    let j = i;
    while (j + 1 < b.length && b[j + 1] === b[j] + 1) j++;
    parts.push(i === j ? `${b[i]}` : `${b[i]}-${b[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** True when `next` differs from the last written entry in anything but the timestamp, or
 *  when the timestamp is older than `refreshMs` (a liveness stamp for humans). */
export function statusNeedsWrite(last: MemberStatus | undefined, next: MemberStatus, refreshMs: number): boolean {
  if (!last) return true;
  const { lastHeartbeat: a, ...restLast } = last;
  const { lastHeartbeat: b, ...restNext } = next;
  if (JSON.stringify(restLast) !== JSON.stringify(restNext)) return true;
  return Date.parse(b) - Date.parse(a) >= refreshMs;
}

/** The server-side apply body that owns exactly this node's entry. */
export function memberStatusPatch(farm: string, namespace: string, entry: MemberStatus): object {
  return {
    apiVersion: FARMCLUSTER_API_VERSION,
    kind: FARMCLUSTER_KIND,
    metadata: { name: farm, namespace },
    status: { members: [entry] },
  };
}
