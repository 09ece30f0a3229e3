// Kernel receive times of L2 frames, in a test bed namespace (test/netns/frame-stamps.test.ts).
//   send <iface> <dst> <count> <intervalMs>   sends count frames to dst, each carrying
//                                             {seq, sentAt: realtimeMs() just before it left}
//   recv <iface> <dst> <ms> <busyMs>          prints {seq, sentAt, receivedAt, readAt} per frame
//                                             heard in ms, then {"done":N}; blocks its own event
//                                             loop busyMs at a time, so frames wait to be read
//                                             as a busy agent's heartbeats do
import { FrameSocket, realtimeMs } from '../../../native/src/index.js';

const [mode, iface, dst, a, b] = process.argv.slice(2);

function send(count: number, intervalMs: number): void {
  const s = new FrameSocket({ iface: iface!, destination: dst!, onFrame: () => {} });
  s.start();
  let seq = 0;
  const timer = setInterval(() => {
    s.send(Buffer.from(JSON.stringify({ seq, sentAt: realtimeMs() })));
    if (++seq >= count) {
      clearInterval(timer);
      s.stop();
      process.stdout.write(`${JSON.stringify({ sent: seq })}\n`);
    }
  }, intervalMs);
}

function recv(ms: number, busyMs: number): void {
  let n = 0;
  const s = new FrameSocket({
    iface: iface!, destination: dst!, onFrame: (payload, _source, receivedAt) => {
      const readAt = realtimeMs();
      const m = JSON.parse(payload.toString()) as { seq: number; sentAt: number };
      n++;
      process.stdout.write(`${JSON.stringify({ ...m, receivedAt: receivedAt ?? null, readAt })}\n`);
    },
  });
  s.start();
  process.stdout.write(`${JSON.stringify({ listening: true })}\n`);
  const busy = setInterval(() => {
    const until = Date.now() + busyMs;
    while (Date.now() < until) { /* a loop late by busyMs */ }
  }, 2);
  setTimeout(() => {
    clearInterval(busy);
    s.stop();
    process.stdout.write(`${JSON.stringify({ done: n })}\n`);
  }, ms);
}

if (mode === 'send') send(Number(a), Number(b));
else if (mode === 'recv') recv(Number(a), Number(b));
else throw new Error('usage: frame-stamps send|recv <iface> <dst> ...');
