// Counts established TCP connections to the VIPs from /proc/net/tcp, so a drain can wait
// for them to end. The VIP is a local /32, so accepted connections show up as local sockets.
import { readFileSync } from 'node:fs';

const TCP_ESTABLISHED = '01';

/** /proc/net/tcp stores IPv4 addresses as the host-order hex of the 32-bit value. */
export function procHexToIPv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

/** Pure: established sockets whose local address is one of `vips` (and port in `ports` when given). */
export function countEstablished(procNetTcp: string, vips: string[], ports?: number[]): number {
  const wanted = new Set(vips);
  let n = 0;
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== TCP_ESTABLISHED) continue;
    const [addrHex, portHex] = f[1].split(':');
    if (!addrHex || !portHex) continue;
    if (!wanted.has(procHexToIPv4(addrHex))) continue;
    if (ports && !ports.includes(parseInt(portHex, 16))) continue;
    n++;
  }
  return n;
}

export function establishedToVips(vips: string[], ports?: number[]): number {
  return countEstablished(readFileSync('/proc/net/tcp', 'utf8'), vips, ports);
}
