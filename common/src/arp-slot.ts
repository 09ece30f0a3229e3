// Directed mode spreads ARP requesters (and IPv6 soliciters) over the ready nodes: a
// requester's slot is a hash of its address, and slot s is answered by the (s mod n)-th
// ready node in name order, so every node computes the same answerer and only that one
// replies. The native responders hash the same way (native/src/responder.h neighbourSlotOf).
import { ipFamilyOf, parseIPv6 } from './config/syntax.js';
import { ipv4Bytes } from './jhash.js';

export const ARP_SLOTS = 256;

/** Knuth's multiplicative hash of the host-order address, top 8 bits; an IPv6 address is
 *  first folded to 32 bits (its four 32-bit words XORed) */
export function arpSlotOf(ip: string): number {
  let host: number;
  if (ipFamilyOf(ip) === 'ipv6') {
    const g = parseIPv6(ip);
    if (g === undefined) throw new Error(`arpSlotOf: invalid IPv6 address "${ip}"`);
    host = 0;
    for (let w = 0; w < 4; w++) host = (host ^ ((g[2 * w]! << 16) | g[2 * w + 1]!)) >>> 0;
  } else {
    const [a, b, c, d] = ipv4Bytes(ip);
    host = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
  }
  return Math.imul(host, 2654435761) >>> 24;
}

/** the slots node answers among readyNodes (names; order does not matter) */
export function arpSlotsOf(node: string, readyNodes: readonly string[]): number[] {
  const sorted = [...new Set(readyNodes)].sort();
  const i = sorted.indexOf(node);
  if (i < 0) return [];
  return Array.from({ length: ARP_SLOTS }, (_, s) => s).filter((s) => s % sorted.length === i);
}

/**
 * Pure: what this node announces when the ready set changes from `before` to `after`.
 * left: a node that answered some requesters is gone. broadcast: this node is the one
 * survivor that names itself to every requester (the one answering the lowest slot of
 * the first node gone, a choice every survivor makes alike from the same view).
 */
export function reannouncement(self: string, before: readonly string[], after: readonly string[]): { left: boolean; broadcast: boolean } {
  const gone = before.filter((n) => !after.includes(n)).sort();
  if (gone.length === 0 || !after.includes(self)) return { left: false, broadcast: false };
  const lowest = Math.min(...arpSlotsOf(gone[0]!, before));
  return { left: true, broadcast: arpSlotsOf(self, after).includes(lowest) };
}
