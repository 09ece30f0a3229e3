// Run in a client namespace: keeps opening short connections to vip:port from random
// source ports and prints, every windowMs, how many each node answered and how many failed.
// argv[2]: JSON { vip, port, concurrency?, windowMs?, timeoutMs? }. Stops on stdin "stop" or EOF.
import { connect } from 'node:net';

const o = JSON.parse(process.argv[2]) as { vip: string; port: number; concurrency?: number; windowMs?: number; timeoutMs?: number };
const timeoutMs = o.timeoutMs ?? 500;
let window: Record<string, number> = {};
let failed = 0;
let running = true;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect({ host: o.vip, port: o.port });
    let answered = false;
    let buf = '';
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0 && !answered) {
        answered = true;
        const node = buf.slice(0, nl);
        window[node] = (window[node] ?? 0) + 1;
        sock.end();
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(timer);
      if (!answered) failed++;
      resolve();
    });
  });
}

async function worker(): Promise<void> {
  while (running) await once();
}

const tick = setInterval(() => {
  process.stdout.write(JSON.stringify({ event: 'window', at: Date.now(), answers: window, failed }) + '\n');
  window = {};
  failed = 0;
}, o.windowMs ?? 250);

process.stdin.on('data', (d) => {
  if (d.toString().includes('stop')) running = false;
});
process.stdin.on('end', () => (running = false));
await Promise.all(Array.from({ length: o.concurrency ?? 4 }, () => worker()));
clearInterval(tick);
process.exit(0);
