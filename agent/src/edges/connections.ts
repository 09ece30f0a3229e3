// Counts established TCP connections to the VIPs from /proc/net/tcp and /proc/net/tcp6,
// so a drain can wait for them to end. The VIP is a local address, so accepted connections
// show up as local sockets: IPv4 ones in tcp, IPv6 ones in tcp6, and IPv4 ones accepted by
// a server listening on [::] in tcp6 as ::ffff:a.b.c.d.
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

const TCP_ESTABLISHED = '01';

/** /proc/net/tcp stores an IPv4 address as the host-order hex of the 32-bit value, tcp6
 *  an IPv6 one as four such words. Returns the address bytes. */
function procHexToBytes(hex: string): number[] {
  const out: number[] = [];
  for (let w = 0; w + 8 <= hex.length; w += 8) {
    const n = parseInt(hex.slice(w, w + 8), 16);
    out.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);
  }
  return out;
}

/** A comparable key of an address: IPv4 and IPv4-mapped IPv6 give the same one. */
function bytesKey(b: number[]): string {
  const mapped = b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255;
  return (mapped ? b.slice(12) : b).join('.');
}

export function ipKey(ip: string): string {
  if (net.isIPv4(ip)) return ip.split('.').map(Number).join('.');
  if (!net.isIPv6(ip)) return ip;
  // expand "::" and an embedded IPv4 tail into 8 groups
  const [head, tail = ''] = ip.toLowerCase().split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? v4Groups(g) : [g])));
  const h = groups(head!);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return bytesKey(all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 255];
  }));
}

function v4Groups(v4: string): string[] {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

export function procHexToIPv4(hex: string): string {
  return procHexToBytes(hex).join('.');
}

/** Pure: established sockets in a /proc/net/tcp or tcp6 text whose local address is one
 *  of `vips` (and port in `ports` when given). */
export function countEstablished(procNetTcp: string, vips: string[], ports?: number[]): number {
  const wanted = new Set(vips.map(ipKey));
  let n = 0;
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== TCP_ESTABLISHED) continue;
    const [addrHex, portHex] = f[1]!.split(':');
    if (!addrHex || !portHex) continue;
    if (!wanted.has(bytesKey(procHexToBytes(addrHex)))) continue;
    if (ports && !ports.includes(parseInt(portHex, 16))) continue;
    n++;
  }
  return n;
}

export function establishedToVips(vips: string[], ports?: number[]): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (existsSync(file)) n += countEstablished(readFileSync(file, 'utf8'), vips, ports);
  }
  return n;
}
