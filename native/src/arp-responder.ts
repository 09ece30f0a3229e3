// Answers for the VIPs with the virtual MAC: ARP for the IPv4 ones, Neighbour Discovery
// for the IPv6 ones (one AF_PACKET socket per family present, polled by libuv on the JS
// thread's loop: no busy loop, no blocking); on start, gratuitous ARP and unsolicited
// Neighbour Advertisements to all nodes. Directed mode: slots and announce cover both.
import { native, type NativeArpResponder } from './load.js';
import { ARP_SLOTS } from '../../common/src/arp-slot.js';
import { checkBuckets, checkIface, checkMac, checkNodeMac, checkVips } from './validate.js';

function checkSlots(op: string, slots: unknown): number[] {
  return checkBuckets(`ArpResponder.${op}`, slots, ARP_SLOTS);
}

export interface ArpStats {
  requests: number;
  replies: number;
  gratuitous: number;
  sendErrors: number;
  /** Directed mode: requests of a slot another node answers */
  notMine: number;
  /** unicast replies sent unasked to known requesters (announce) */
  announcements: number;
}

export class ArpResponder {
  private readonly impl: NativeArpResponder;

  /** mac: the virtual MAC (Flooding) or, with ownMac, this node's own MAC (Directed) */
  constructor(opts: { iface: string; vips: string[]; mac: string; ownMac?: boolean }) {
    const op = 'ArpResponder';
    const iface = checkIface(op, opts.iface);
    const vips = checkVips(op, opts.vips);
    const mac = opts.ownMac === true ? checkNodeMac(op, opts.mac) : checkMac(op, opts.mac);
    this.impl = new (native().ArpResponder)(iface, vips, mac);
  }

  /** opens the sockets, starts answering, sends one gratuitous ARP / unsolicited NA per
   *  VIP (not when answer slots are set: Directed); all families or none; idempotent */
  start(): void {
    this.impl.start();
  }

  /** Directed mode: answer only requesters in these slots (common/src/arp-slot.ts); null:
   *  answer every request (Flooding). Kept across stop/start. */
  setAnswerSlots(slots: number[] | null): void {
    this.impl.setAnswerSlots(slots === null ? null : checkSlots('setAnswerSlots', slots));
  }

  /** unicast "VIP is-at <mac>" (IPv6: an unsolicited NA with override) to every requester
   *  seen in these slots (every node sees every broadcast or multicast request); re-points
   *  a dead node's requesters at once. Returns the number of answers sent. */
  announce(slots: number[]): number {
    return this.impl.announce(checkSlots('announce', slots));
  }

  sendGratuitous(): void {
    this.impl.sendGratuitous();
  }

  /** closes the socket; safe to call twice */
  stop(): void {
    this.impl.stop();
  }

  stats(): ArpStats {
    return this.impl.stats();
  }
}
