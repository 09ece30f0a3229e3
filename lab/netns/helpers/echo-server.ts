// Tiny server run in a node's namespace: answers every TCP connection and UDP datagram
// with its node name, echoes TCP lines as "<name> <line>", and logs each peer as a JSON
// line on stdout so tests can compare what the client saw with what the node saw.
// argv: <name> <bindAddresses comma list> <tcpPorts comma list|-> <udpPorts comma list|->
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [name, bind, tcpArg, udpArg] = process.argv.slice(2);
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
    sock.write(`${name}\n`);
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
