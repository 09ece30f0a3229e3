// The Datapath over the native module: nft tables and bucket sets, the VIPs on lo with
// their sysctls, and the neighbour responder (ARP for IPv4 VIPs, ND for IPv6 ones). Both
// families go through the same calls; the native side picks each address's family.
import type { DataplaneFarm } from '../../../common/src/types.js';
import { ArpResponder, bindVips, neighbours, NftDataplane, releaseInterface, unbindVips, type Neighbour } from '../../../native/src/index.js';
import { canonicalIP, ipFamilyOf, IP_BITS } from '../../../common/src/config/syntax.js';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { arpSlotsOf, reannouncement } from '../../../common/src/arp-slot.js';
import type { Datapath, Handoff, KernelLoss, Placement } from './datapath.js';
import type { PacketCounter } from './metrics.js';
import { holderAddresses, planForwarding, type ForwardingCarry } from '../core/forwarding.js';

/** Every address the farm answers for: its virtual IPs and its Services' IPs. */
export function servedIPs(farm: DataplaneFarm): string[] {
  return [...farm.virtualIPs, ...(farm.services ?? []).map((s) => s.ip)];
}

export class NativeDatapath implements Datapath {
  private readonly nft = new NftDataplane();
  private farm?: DataplaneFarm;
  private arp?: ArpResponder;
  /** rule counts right after the last apply: what missing() compares the kernel with */
  private rules?: { inet: number; netdev: number };
  /** Directed: the ARP slots this node answers now, and the ready nodes they were split over */
  private slots: number[] = [];
  private ready: string[] = [];
  /** Directed: what planForwarding remembers between refreshes (previous holders) */
  private forwarding?: ForwardingCarry;
  /** the periodic announcement and the interval it runs at */
  private reannounce?: { timer: NodeJS.Timeout; ms: number };

  /** All or nothing: if any step is refused, what it changed is put back and the previous
   *  farm keeps serving (the caller keeps its config and may retry). */
  program(farm: DataplaneFarm): void {
    const prev = this.farm;
    // Tables first: until they exist, a VIP on lo would accept every client on every node.
    // The tables are one atomic batch, checked (interface included) before it is sent.
    this.nft.apply(farm);
    this.rules = this.nft.ruleCounts(farm.name);
    const ips = servedIPs(farm);
    let bound = false;
    try {
      bindVips(farm.name, farm.interface, ips);
      bound = true;
      const arpChanged = !prev || prev.interface !== farm.interface || prev.virtualMAC !== farm.virtualMAC || prev.mode !== farm.mode ||
        servedIPs(prev).join(',') !== ips.join(',');
      if (arpChanged) {
        // the new responder first: for a moment both answer, never neither
        const arp = directed(farm)
          ? new ArpResponder({ iface: farm.interface, vips: ips, mac: ownMac(farm.interface), ownMac: true })
          : new ArpResponder({ iface: farm.interface, vips: ips, mac: farm.virtualMAC });
        // Directed: answer no one until the first placement says which slots are ours
        if (directed(farm)) arp.setAnswerSlots(this.slots);
        arp.start();
        this.arp?.stop();
        this.arp = arp;
      }
    } catch (err) {
      this.rollback(farm, prev, bound);
      throw err;
    }
    if (prev) {
      // Only the addresses go (a removed VIP, a released Service IP): the farm still needs
      // its ARP settings, and their saved originals are what remove() puts back at the end.
      const gone = servedIPs(prev).filter((v) => !ips.includes(v));
      if (gone.length > 0) unbindVips(prev.name, prev.interface, gone, { keepSysctls: true });
      // moved to another interface: the old one gets its own settings back
      if (prev.interface !== farm.interface) releaseInterface(prev.name, prev.interface);
    }
    this.farm = farm;
    this.setReannounce(farm.gratuitousARPIntervalMs ?? 0);
  }

  /**
   * Switches forget a MAC they have not seen for their FDB aging time and clients let
   * their neighbour entry go stale: say again, unasked, where the VIPs are (MetalLB #2910).
   * Flooding: gratuitous ARP / unsolicited NA with the virtual MAC, as at start. Directed:
   * only to the requesters of this node's slots, by unicast (a broadcast with our own MAC
   * would pull every client to this node).
   */
  private setReannounce(ms: number): void {
    if (this.reannounce?.ms === ms) return;
    this.stopReannounce();
    if (ms <= 0) return;
    const timer = setInterval(() => {
      try {
        if (!this.farm) return;
        if (directed(this.farm)) this.arp?.announce(this.slots);
        else this.arp?.sendGratuitous();
      } catch {
        // a send the socket refused (link down): the next tick tries again; sendErrors counts it
      }
    }, ms);
    timer.unref();
    this.reannounce = { timer, ms };
  }

  private stopReannounce(): void {
    if (this.reannounce) clearInterval(this.reannounce.timer);
    this.reannounce = undefined;
  }

  /** Best effort: the refusal is what the caller must hear, not a failure to undo. The
   *  addresses of VIPs new in `farm` stay on lo until the next program() or remove(): no
   *  table and no ARP reply leads traffic to them. */
  private rollback(farm: DataplaneFarm, prev: DataplaneFarm | undefined, bound: boolean): void {
    try {
      if (prev) this.nft.apply(prev);
      else {
        this.nft.remove(farm.name);
    this.rules = undefined;
        if (bound) unbindVips(farm.name, farm.interface, servedIPs(farm));
      }
    } catch {
      // the next program() or remove() replaces whatever is left
    }
  }

  setOwnership(owned: number[], orphans: number[], leaseMs: number, placement?: Placement, handoff?: Handoff): void {
    if (!this.farm) throw new Error('setOwnership before program');
    if (directed(this.farm) && placement) {
      this.setDirected(this.farm, owned, leaseMs, placement);
    } else {
      // every loop: the handoff sets are emptied with the owned set when nothing is timed
      this.nft.setBucketsAndHandoff(this.farm.name, owned, leaseMs, handoff?.giving ?? [], handoff?.taking ?? []);
    }
    this.nft.setOrphans(this.farm.name, orphans, leaseMs);
  }

  setServiceOwnership(services: { ip: string; owned: number[] }[], leaseMs: number): void {
    if (!this.farm) throw new Error('setServiceOwnership before program');
    for (const x of services) this.nft.setServiceBuckets(this.farm.name, x.ip, x.owned, leaseMs);
  }

  /** Owned + forwarding + second chance in one batch; then the ARP slots of the ready
   *  nodes, announcing to the requesters of slots that just became ours (a dead or
   *  leaving node's clients). */
  private setDirected(farm: DataplaneFarm, owned: number[], leaseMs: number, p: Placement): void {
    const others = p.peers.filter((x) => x.name !== p.self);
    const neigh = neighbours(farm.interface);
    const macs = peerMacs(neigh, others);
    const plan = planForwarding({ self: p.self, owned, assignment: p.assignment, peers: p.claims, carry: this.forwarding });
    const owners = new Map<number, string>();
    for (const [bucket, node] of plan.forward) {
      const mac = macs.get(node);
      if (mac !== undefined) owners.set(bucket, mac);
    }
    const families = new Set(servedIPs(farm).map(ipFamilyOf));
    const holders = new Map(others.map((x) => [x.name, holderAddresses(x, macs.get(x.name), neigh, families)]));
    const previous = new Map<number, string[]>();
    for (const [bucket, node] of plan.previous) {
      const ips = holders.get(node);
      if (ips !== undefined && ips.length > 0) previous.set(bucket, ips);
    }
    this.nft.setBucketsAndForwarding(farm.name, owned, leaseMs, { owners, nodeMacs: [ownMac(farm.interface), ...macs.values()], previous });
    this.forwarding = plan.carry;
    const ready = [...new Set(p.assignment.filter((n) => n !== ''))];
    const move = reannouncement(p.self, this.ready, ready);
    this.ready = ready;
    const slots = arpSlotsOf(p.self, ready);
    if (slots.join(',') === this.slots.join(',')) return;
    const gained = slots.filter((s) => !this.slots.includes(s));
    this.slots = slots;
    this.arp?.setAnswerSlots(slots);
    // A node left: requesters only it knew (it saw their unicast re-validations, nobody
    // else did) would keep its MAC. One survivor names itself to everyone by broadcast
    // (Linux takes a gratuitous ARP / unsolicited NA with override for an existing entry
    // even with arp_accept=0); every survivor then pulls its known requesters back to
    // itself by unicast, after the locktime, twice to cover the survivors' skew.
    if (move.broadcast) {
      try {
        this.arp?.sendGratuitous();
      } catch {
        // refused (link down): the unicast announcements below still reach the known requesters
      }
    }
    const again = move.left ? slots : gained;
    if (gained.length > 0) this.arp?.announce(gained);
    if (again.length === 0) return;
    // Linux ignores an ARP reply within locktime (1 s) of the entry's last update: say it again
    const arp = this.arp;
    const repeats = move.left ? [1100, 2200] : [1100];
    for (const ms of repeats) {
      setTimeout(() => {
        try {
          // a node joining meanwhile takes some slots: announce only those still ours
          const still = again.filter((x) => this.slots.includes(x));
          if (this.arp === arp && still.length > 0) arp?.announce(still);
        } catch {
          // stopped meanwhile: nothing left to announce for
        }
      }, ms).unref();
    }
  }

  counters(): PacketCounter[] {
    if (!this.farm) return [];
    return this.nft.counters(this.farm.name);
  }

  missing(): KernelLoss[] {
    const farm = this.farm;
    if (!farm || !this.rules) return [];
    const out: KernelLoss[] = [];
    const now = this.nft.ruleCounts(farm.name);
    const say = (n: number, want: number): string => (n < 0 ? 'absent' : `${n} of ${want} rules`);
    if (now.inet !== this.rules.inet) out.push({ what: 'nft_inet', detail: `table inet vipfarm_${farm.name}: ${say(now.inet, this.rules.inet)}` });
    if (now.netdev !== this.rules.netdev) out.push({ what: 'nft_netdev', detail: `table netdev vipfarm_${farm.name}_in: ${say(now.netdev, this.rules.netdev)}` });
    const onLo = new Set((networkInterfaces().lo ?? []).map((a) => canonicalIP(a.address)));
    for (const vip of servedIPs(farm)) {
      if (!onLo.has(canonicalIP(vip))) out.push({ what: 'vip', detail: `${vip}/${IP_BITS[ipFamilyOf(vip)]} on lo: absent` });
    }
    return out;
  }

  arpStats(): ReturnType<ArpResponder['stats']> | undefined {
    return this.arp?.stats();
  }

  detach(): void {
    const farm = this.farm;
    if (!farm) return;
    // no bucket stays ours: the peers that took them over are the only ones taking SYNs
    this.nft.setBuckets(farm.name, [], 0);
    this.nft.setOrphans(farm.name, [], 0);
    this.stopReannounce();
    this.arp?.stop();
    this.arp = undefined;
    this.rules = undefined;
    this.farm = undefined;
  }

  present(farmName: string): boolean {
    return this.nft.ruleCounts(farmName).inet >= 0;
  }

  remove(): void {
    const farm = this.farm;
    if (!farm) return;
    this.stopReannounce();
    this.arp?.stop();
    this.arp = undefined;
    this.nft.remove(farm.name);
    this.rules = undefined;
    unbindVips(farm.name, farm.interface, servedIPs(farm));
    this.farm = undefined;
    this.forwarding = undefined;
    this.slots = [];
    this.ready = [];
  }
}

function directed(farm: DataplaneFarm): boolean {
  return farm.mode === 'Directed';
}

function ownMac(iface: string): string {
  return readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim();
}

/** The peers' MACs from the kernel's neighbour table (ARP or NDP, by the peers' address
 *  family): heartbeats to their addresses keep the entries resolved. A peer without a
 *  resolved entry gets no forwarded frames yet. */
function peerMacs(neigh: readonly Neighbour[], peers: readonly { name: string; address: string }[]): Map<string, string> {
  const byIp = new Map(neigh.map((n) => [n.ip, n.mac]));
  const out = new Map<string, string>();
  for (const peer of peers) {
    const mac = byIp.get(canonicalIP(peer.address) ?? peer.address);
    if (mac !== undefined) out.set(peer.name, mac);
  }
  return out;
}
