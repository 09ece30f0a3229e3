// The Datapath over the native module: nft tables and bucket sets, the VIPs on lo with
// their sysctls, and the ARP responder.
import type { DataplaneFarm } from '../../../common/src/types.js';
import { ArpResponder, bindVips, NftDataplane, unbindVips } from '../../../native/src/index.js';
import { networkInterfaces } from 'node:os';
import type { Datapath, KernelLoss } from './datapath.js';
import type { PacketCounter } from './metrics.js';

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
      const arpChanged = !prev || prev.interface !== farm.interface || prev.virtualMAC !== farm.virtualMAC ||
        servedIPs(prev).join(',') !== ips.join(',');
      if (arpChanged) {
        // the new responder first: for a moment both answer, never neither
        const arp = new ArpResponder({ iface: farm.interface, vips: ips, mac: farm.virtualMAC });
        arp.start();
        this.arp?.stop();
        this.arp = arp;
      }
    } catch (err) {
      this.rollback(farm, prev, bound);
      throw err;
    }
    if (prev) {
      const gone = servedIPs(prev).filter((v) => !ips.includes(v));
      // Same interface: only the addresses go (a released Service IP); the ARP settings stay.
      if (prev.interface !== farm.interface) unbindVips(prev.name, prev.interface, gone);
      else if (gone.length > 0) unbindVips(prev.name, prev.interface, gone, { keepSysctls: true });
    }
    this.farm = farm;
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

  setOwnership(owned: number[], orphans: number[], leaseMs: number): void {
    if (!this.farm) throw new Error('setOwnership before program');
    this.nft.setBuckets(this.farm.name, owned, leaseMs);
    this.nft.setOrphans(this.farm.name, orphans, leaseMs);
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
    const onLo = new Set((networkInterfaces().lo ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
    for (const vip of servedIPs(farm)) if (!onLo.has(vip)) out.push({ what: 'vip', detail: `${vip}/32 on lo: absent` });
    return out;
  }

  arpStats(): ReturnType<ArpResponder['stats']> | undefined {
    return this.arp?.stats();
  }

  remove(): void {
    const farm = this.farm;
    if (!farm) return;
    this.arp?.stop();
    this.arp = undefined;
    this.nft.remove(farm.name);
    this.rules = undefined;
    unbindVips(farm.name, farm.interface, servedIPs(farm));
    this.farm = undefined;
  }
}
