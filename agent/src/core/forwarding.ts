// Directed mode: where this node sends the frames of buckets it does not hold, and to whom
// it passes the leftovers of buckets it took over. Pure; the datapath calls planForwarding
// on every ownership refresh and keeps `carry` for the next call.
//
// - Forward to the current holder: the live peer whose last heartbeat claims the bucket.
//   Only when nobody claims it, to the node the assignment names. During a planned
//   handoff the assignment already names the new owner while the old one still holds
//   (and accepts) the bucket; forwarding by assignment sent new SYNs to a node that
//   would not take them yet.
// - Second chance: a bucket this node acquired keeps, as long as we hold it, the live
//   peer that held it last. Its connections still live there; packets of them that reach
//   us (not a SYN, unknown to our conntrack) go on to it. Kept while that peer is alive
//   (a drain may last as long as its longest connection), dropped when the peer dies
//   (its connections died with it: the orphan set answers them with RST) or when the
//   bucket leaves us. Two nodes never hold one bucket, so no packet is passed on twice.
import { canonicalIP, ipFamilyOf, unicastIPProblem, type IPFamily } from '../../../common/src/config/syntax.js';

export interface ForwardingPeer {
  name: string;
  alive: boolean;
  /** buckets claimed in its last heartbeat */
  held: readonly number[];
}

export interface ForwardingCarry {
  /** per bucket: the last live peer seen claiming it (kept after its release) */
  lastHolder: ReadonlyMap<number, string>;
  previous: ReadonlyMap<number, string>;
}

export interface ForwardingInput {
  self: string;
  owned: readonly number[];
  /** owner per bucket under the current view ('' = nobody ready) */
  assignment: readonly string[];
  peers: readonly ForwardingPeer[];
  carry?: ForwardingCarry;
}

export interface ForwardingPlan {
  /** bucket -> live peer to forward its frames to; owned buckets are absent */
  forward: Map<number, string>;
  /** owned bucket -> live peer that held it before (second chance) */
  previous: Map<number, string>;
  carry: ForwardingCarry;
}

export function planForwarding(input: ForwardingInput): ForwardingPlan {
  const { self } = input;
  const owned = new Set(input.owned);
  const alive = new Set(input.peers.filter((p) => p.alive && p.name !== self).map((p) => p.name));
  const holder = new Map<number, string>();
  for (const p of input.peers) {
    if (!alive.has(p.name)) continue;
    for (const b of p.held) if (!holder.has(b)) holder.set(b, p.name);
  }
  const forward = forwardTargets(input.assignment, self, owned, holder, alive);

  const before = input.carry ?? { lastHolder: new Map<number, string>(), previous: new Map<number, string>() };
  const lastHolder = new Map<number, string>();
  for (const [b, name] of before.lastHolder) if (alive.has(name)) lastHolder.set(b, name);
  for (const [b, name] of holder) lastHolder.set(b, name);

  const previous = new Map<number, string>();
  for (const b of owned) {
    const p = before.previous.get(b) ?? before.lastHolder.get(b);
    // a peer that claims the bucket now is a second holder (partition), not a drain
    if (p !== undefined && alive.has(p) && !holder.has(b)) previous.set(b, p);
  }
  return { forward, previous, carry: { lastHolder, previous } };
}

/** the current holder, else the assigned node, for every bucket not ours */
function forwardTargets(assignment: readonly string[], self: string, owned: ReadonlySet<number>,
  holder: ReadonlyMap<number, string>, alive: ReadonlySet<string>): Map<number, string> {
  const forward = new Map<number, string>();
  assignment.forEach((assigned, b) => {
    if (owned.has(b)) return;
    const to = holder.get(b) ?? (assigned !== self && alive.has(assigned) ? assigned : undefined);
    if (to !== undefined) forward.set(b, to);
  });
  return forward;
}

/** Where the second chance sends a previous holder's packets, one address per VIP family:
 *  its heartbeat address for that family; for the other family (a dual-stack farm whose
 *  nodes talk one family) an address the peer is known by (Kubernetes: its hostIPs), else
 *  a global address the neighbour table has for the peer's MAC. None: that family's moved
 *  connections of its buckets are not passed on. */
export function holderAddresses(peer: { address: string; otherAddresses?: readonly string[] }, mac: string | undefined,
  neigh: readonly { ip: string; mac: string }[], families: ReadonlySet<IPFamily>): string[] {
  const own = canonicalIP(peer.address) ?? peer.address;
  const usable = (ip: string, family: IPFamily): boolean => ipFamilyOf(ip) === family && unicastIPProblem(ip, family) === undefined;
  const out: string[] = [];
  for (const family of families) {
    if (ipFamilyOf(own) === family) {
      out.push(own);
      continue;
    }
    const known = (peer.otherAddresses ?? []).find((ip) => usable(ip, family));
    const seen = mac === undefined ? undefined : neigh.find((n) => n.mac === mac && usable(n.ip, family))?.ip;
    const ip = known ?? seen;
    if (ip !== undefined) out.push(canonicalIP(ip) ?? ip);
  }
  return out;
}
