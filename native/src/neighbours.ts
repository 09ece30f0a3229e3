// The kernel's neighbour table of one interface, both families (ARP and NDP entries that
// are resolved), read over rtnetlink: what Directed mode learns the peers' MACs from.
import { canonicalIP } from '../../common/src/config/syntax.js';
import { native } from './load.js';
import { checkIface } from './validate.js';

export interface Neighbour {
  /** canonical text (IPv6 as RFC 5952 writes it), comparable with the parser's addresses */
  ip: string;
  mac: string;
}

export function neighbours(iface: string): Neighbour[] {
  const dev = checkIface('neighbours', iface);
  return native().neighbours(dev).map((n) => ({ ip: canonicalIP(n.ip) ?? n.ip, mac: n.mac }));
}
