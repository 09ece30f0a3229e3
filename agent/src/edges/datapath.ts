// The agent's view of the kernel: program the farm, set what this node owns, read
// counters, remove everything. The native implementation is the only one that touches
// the kernel; tests of the agent's logic use a recording fake.
import type { DataplaneFarm, PeerSpec } from '../../../common/src/types.js';
import type { PacketCounter } from './metrics.js';
import type { ForwardingPeer } from '../core/forwarding.js';

export interface KernelLoss {
  /** metric label: nft_inet, nft_netdev, vip */
  what: 'nft_inet' | 'nft_netdev' | 'vip';
  detail: string;
}

/** Directed mode: where every bucket lives, so this node forwards what is not its own */
export interface Placement {
  /** owner per bucket under the current view ('' = nobody ready) */
  assignment: readonly string[];
  self: string;
  peers: readonly PeerSpec[];
  /** every peer's liveness and its claims in its last heartbeat: forward to the current
   *  holder, pass a taken-over bucket's leftovers to its previous one */
  claims: readonly ForwardingPeer[];
}

/** timed handoff (ownership.ts): buckets and the instant their new flows flip */
export interface Handoff {
  giving: readonly { bucket: number; atMs: number }[];
  taking: readonly { bucket: number; atMs: number }[];
}

export interface Datapath {
  /** tables, VIP binding, ARP responder; replaces an older program of the same farm */
  program(farm: DataplaneFarm): void;
  /** the full desired sets; leases refreshed in the same batch. `handoff`: the timed
   *  handoff's giving (subset of owned) and taking buckets, instants on the local clock in
   *  ms (Flooding mode; Directed mode has none and ignores them: a taker then accepts
   *  from its next loop on, later, never sooner) */
  setOwnership(owned: number[], orphans: number[], leaseMs: number, placement?: Placement, handoff?: Handoff): void;
  /** the owned sets of the Service IPs with externalTrafficPolicy Local (farm.services
   *  entries with nodes), each the full desired set with a fresh lease */
  setServiceOwnership(services: { ip: string; owned: number[] }[], leaseMs: number): void;
  counters(): PacketCounter[];
  /** read-only: what of the last program is no longer in the kernel (someone deleted or
   *  flushed a table, removed a VIP); empty when all is there or nothing is programmed */
  missing(): KernelLoss[];
  /** removes all kernel state this farm put there; idempotent */
  remove(): void;
  /** Leaves the tables, VIPs and sysctls for the next agent on this node, owning no bucket:
   *  established connections keep flowing through them. Stops answering ARP. */
  detach(): void;
  /** whether the farm's tables are in the kernel now (left by a previous agent) */
  present(farmName: string): boolean;
}
