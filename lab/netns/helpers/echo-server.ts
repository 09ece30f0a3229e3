// Tiny server run in a node's namespace: answers every TCP connection and UDP datagram
// with its node name, echoes TCP lines as "<name> <line>", and logs each peer as a JSON
// line on stdout so tests can compare what the client saw with what the node saw.
// argv: <name> <bindAddresses comma list> <tcpPorts comma list|-> <udpPorts comma list|-> [serviceMs]
// serviceMs: a backend that serves one TCP connection at a time, each taking serviceMs
// (queued, not busy-waited: 1000 / serviceMs connections per second at most), the
// per-node capacity limit of the peers bench.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [name, bind, tcpArg, udpArg, serviceArg] = process.argv.slice(2);
const serviceMs = serviceArg === undefined ? 0 : Number(serviceArg);
/** when the single server is free again (serviceMs > 0) */
let freeAt = 0;
/** Beyond this much queued work a new connection is refused at once: an overloaded
 *  server that sheds load, instead of one serving clients that have long given up. */
const MAX_QUEUE_MS = 100;
/** run fn when the server has served everyone before this connection, and this one;
 *  false: refused (queue full) */
const served = (fn: () => void): boolean => {
  if (serviceMs <= 0) {
    fn();
    return true;
  }
  const now = performance.now();
  if (freeAt - now > MAX_QUEUE_MS) return false;
  freeAt = Math.max(freeAt, now) + serviceMs;
  setTimeout(fn, freeAt - now);
  return true;
};
const list = (s: string | undefined): number[] => (s === undefined || s === '-' ? [] : s.split(',').map(Number));
let pending = 0;
const log = (o: object): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};
const ready = (): void => {
  if (--pending === 0) log({ event: 'ready' });
};

for (const host of bind.split(',')) for (const port of list(tcpArg)) {
  pending++;
  const srv = createServer((sock) => {
    log({ event: 'tcp', port, local: host, peer: `${sock.remoteAddress}:${sock.remotePort}` });
    sock.setNoDelay(true);
    if (!served(() => sock.writable && sock.write(`${name}\n`))) sock.destroy();
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        sock.write(`${name} ${buf.slice(0, i)}\n`);
        buf = buf.slice(i + 1);
      }
    });
    sock.on('error', () => sock.destroy());
  });
  srv.listen({ port, host, backlog: 1024 }, ready);
}

for (const host of bind.split(',')) for (const port of list(udpArg)) {
  pending++;
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (_msg, rinfo) => {
    log({ event: 'udp', port, local: host, peer: `${rinfo.address}:${rinfo.port}` });
    s.send(name, rinfo.port, rinfo.address);
  });
  s.bind(port, host, ready);
}
if (pending === 0) log({ event: 'ready' });
