// Run in a client namespace: an attacker on the farm's L2 segment. The L2 heartbeats go to
// the virtual MAC, which the switch floods to every port, so a client sees every agent's.
//   capture <iface> <vmac> <ms>     prints the payload of every heartbeat frame heard in
//                                   ms, one base64 line each, then {"done":N}
//   replay <iface> <vmac> <ms> <intervalMs> <udpTarget> <udpPort>
//                                   reads base64 lines on stdin and sends them again, in
//                                   turn, every intervalMs for ms: as an L2 frame to the
//                                   virtual MAC and as a UDP datagram to udpTarget (any
//                                   number of targets, comma-separated); prints {"sent":N}
import { createSocket } from 'node:dgram';
import { FrameSocket } from '../../../native/src/index.js';

const [mode, iface, vmac, msText, intervalText, targets, portText] = process.argv.slice(2);
const ms = Number(msText);

function capture(): void {
  let n = 0;
  const s = new FrameSocket({
    iface: iface!, destination: vmac!, onFrame: (payload) => {
      n++;
      process.stdout.write(`${payload.toString('base64')}\n`);
    },
  });
  s.start();
  setTimeout(() => {
    s.stop();
    process.stdout.write(`${JSON.stringify({ done: n })}\n`);
  }, ms);
}

async function replay(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += (chunk as Buffer).toString();
  const frames = input.split('\n').filter((l) => l.trim()).map((l) => Buffer.from(l, 'base64'));
  if (frames.length === 0) throw new Error('nothing to replay');
  const l2 = new FrameSocket({ iface: iface!, destination: vmac!, onFrame: () => {} });
  l2.start();
  const udp = createSocket('udp4');
  const to = targets!.split(',');
  let sent = 0;
  const end = Date.now() + ms;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      if (Date.now() >= end) {
        clearInterval(timer);
        done();
        return;
      }
      const f = frames[sent % frames.length]!;
      l2.send(f);
      for (const t of to) udp.send(f, Number(portText), t);
      sent++;
    }, Number(intervalText));
  });
  l2.stop();
  udp.close();
  process.stdout.write(`${JSON.stringify({ sent })}\n`);
}

if (mode === 'capture') capture();
else if (mode === 'replay') void replay();
else throw new Error(`usage: hb-replay capture|replay ...`);
