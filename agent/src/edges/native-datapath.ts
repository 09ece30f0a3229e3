// The Datapath over the native module: nft tables and bucket sets, the VIPs on lo with
// their sysctls, and the ARP responder.
import type { DataplaneFarm } from '../../../common/src/types.js';
import { ArpResponder, bindVips, NftDataplane, unbindVips } from '../../../native/src/index.js';
import type { Datapath } from './datapath.js';
import type { PacketCounter } from './metrics.js';

export class NativeDatapath implements Datapath {
  private readonly nft = new NftDataplane();
  private farm?: DataplaneFarm;
  private arp?: ArpResponder;

  program(farm: DataplaneFarm): void {
    const prev = this.farm;
    // Tables first: until they exist, a VIP on lo would accept every client on every node.
    this.nft.apply(farm);
    bindVips(farm.name, farm.interface, farm.virtualIPs);
    if (prev) {
      const gone = prev.virtualIPs.filter((v) => !farm.virtualIPs.includes(v));
      if (gone.length > 0 || prev.interface !== farm.interface) unbindVips(prev.name, prev.interface, gone);
    }
    const arpChanged = !prev || prev.interface !== farm.interface || prev.virtualMAC !== farm.virtualMAC ||
      prev.virtualIPs.join(',') !== farm.virtualIPs.join(',');
    if (arpChanged) {
      this.arp?.stop();
      this.arp = new ArpResponder({ iface: farm.interface, vips: farm.virtualIPs, mac: farm.virtualMAC });
      this.arp.start();
    }
    this.farm = farm;
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

  arpStats(): ReturnType<ArpResponder['stats']> | undefined {
    return this.arp?.stats();
  }

  remove(): void {
    const farm = this.farm;
    if (!farm) return;
    this.arp?.stop();
    this.arp = undefined;
    this.nft.remove(farm.name);
    unbindVips(farm.name, farm.interface, farm.virtualIPs);
    this.farm = undefined;
  }
}
