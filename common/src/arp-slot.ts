// Directed mode spreads ARP requesters over the ready nodes: a requester's slot is a
// hash of its IPv4 address, and slot s is answered by the (s mod n)-th ready node in name
// order, so every node computes the same answerer and only that one replies. The native
// responder hashes the same way (native/src/arp_socket.h arpSlotOf).
import { ipv4Bytes } from './jhash.js';

export const ARP_SLOTS = 256;

/** Knuth's multiplicative hash of the host-order address, top 8 bits */
export function arpSlotOf(ipv4: string): number {
  const [a, b, c, d] = ipv4Bytes(ipv4);
  const host = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
  return Math.imul(host, 2654435761) >>> 24;
}

/** the slots node answers among readyNodes (names; order does not matter) */
export function arpSlotsOf(node: string, readyNodes: readonly string[]): number[] {
  const sorted = [...new Set(readyNodes)].sort();
  const i = sorted.indexOf(node);
  if (i < 0) return [];
  return Array.from({ length: ARP_SLOTS }, (_, s) => s).filter((s) => s % sorted.length === i);
}
