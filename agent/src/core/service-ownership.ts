// Buckets of the Service IPs with externalTrafficPolicy Local. Such an IP may only be
// served by nodes with a ready endpoint of its Service (kube-proxy drops at the others), so
// its buckets get an assignment of their own: the same assignment function over the farm's
// members restricted to the IP's node list (status.services[].nodes, rendered by the
// operator from EndpointSlices), programmed into the IP's own kernel sets. Pure.
//
// The handoff is the farm's, minus the claims on the wire (heartbeats carry the farm's
// held buckets only):
// - The node lists are part of the view digest (localServicesKey goes into
//   decideOwnership's digestExtra), so "every live peer advertises my digest" also means
//   "every live peer computes this IP's assignment from the same node list and members".
// - A bucket no longer assigned to me is released at once (no deferral), in the same loop
//   that computes the new digest; the kernel drops it before that loop's heartbeat leaves.
// - A bucket newly assigned to me is acquired only while the farm's decision allows
//   acquisitions (mayAcquire: digests agree, not resuming after a stall). A peer that
//   advertises my digest has therefore already released it: two nodes never accept new
//   connections of one bucket. Between the release and the acquisition (one heartbeat
//   at most) a new SYN of that bucket is dropped and retransmitted by the client.
// - Established connections are never moved: the filter accepts them by conntrack on the
//   node that took them, whose endpoint (and kube-proxy's conntrack entry) they use.
// - The leases are the farm's: a hung agent's IP sets lapse like its owned set.
// A dead peer's Local buckets are not orphans (no RST for its mid-stream packets): its
// node's kernel keeps the connections it accepted, and their endpoint is on that node.
import { assignBuckets, type Member } from './assignment.js';
import type { AssignmentCache } from './ownership.js';

export interface LocalService {
  ip: string;
  /** nodes with a ready endpoint, sorted */
  nodes: readonly string[];
}

/** Canonical text of the Local Services' node lists ('' for none): equal texts, equal inputs. */
export function localServicesKey(services: readonly LocalService[]): string {
  return [...services]
    .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0))
    .map((s) => `${s.ip}=${[...s.nodes].sort().join(',')}`)
    .join(';');
}

export interface ServiceOwnershipInput {
  services: readonly LocalService[];
  self: string;
  /** the farm decision's members (weight 0 unless ready) */
  members: readonly Member[];
  bucketCount: number;
  /** per IP: buckets its kernel set holds now */
  held: ReadonlyMap<string, readonly number[]>;
  /** the farm decision's mayAcquire */
  mayAcquire: boolean;
  cache?: AssignmentCache;
}

export interface ServiceOwnership {
  ip: string;
  /** buckets to accept new connections for, ascending */
  owned: number[];
  acquired: number[];
  released: number[];
  /** assigned to me, not yet taken (digests disagree) */
  waiting: number[];
  /** owner per bucket ('' = nobody: no ready node with an endpoint) */
  assignment: string[];
}

export function decideServiceOwnership(x: ServiceOwnershipInput): ServiceOwnership[] {
  return x.services.map((svc) => {
    const eligible = new Set(svc.nodes);
    const members = x.members.filter((m) => eligible.has(m.name));
    const assignment = x.cache ? x.cache.get(members, x.bucketCount).assignment : assignBuckets(members, x.bucketCount);
    const held = new Set(x.held.get(svc.ip) ?? []);
    const out: ServiceOwnership = { ip: svc.ip, owned: [], acquired: [], released: [], waiting: [], assignment };
    for (let b = 0; b < x.bucketCount; b++) {
      const mine = assignment[b] === x.self;
      if (!mine) {
        if (held.has(b)) out.released.push(b);
        continue;
      }
      if (held.has(b)) out.owned.push(b);
      else if (x.mayAcquire) {
        out.owned.push(b);
        out.acquired.push(b);
      } else out.waiting.push(b);
    }
    return out;
  });
}
