// Run in a client namespace: probes buckets of a ClientIPAndPort farm by choosing, for
// each bucket, source ports that hash into it, and reports which node answers each
// bucket first. One JSON line per served bucket, then {"event":"done"}.
// argv[2]: JSON { vip, port, clientIp, bucketCount, seed, buckets?: number[] (default all),
//                 attemptTimeoutMs?, roundMs?, maxInFlight?, maxMs?, armed? }
import { connect } from 'node:net';
import { bucketOf } from '../../../common/src/jhash.js';
import { clientSideCode } from '../../netns/connect-error.js';

interface Opts {
  vip: string;
  port: number;
  clientIp: string;
  bucketCount: number;
  seed: number;
  buckets?: number[];
  attemptTimeoutMs?: number;
  roundMs?: number;
  maxInFlight?: number;
  maxMs?: number;
  /** print {"event":"armed"} and wait for a line on stdin before the first attempt: lets a
   *  caller start the process ahead of the failure it measures (node's startup is not
   *  part of the measure) */
  armed?: boolean;
}

const o = JSON.parse(process.argv[2]) as Opts;
const attemptTimeoutMs = o.attemptTimeoutMs ?? 150;
const roundMs = o.roundMs ?? 10;
// Overlapping attempts per bucket: a SYN dropped just before the takeover must not hide
// the takeover for a whole attempt timeout. With attemptTimeoutMs / roundMs of them, a
// bucket sees a new SYN every roundMs however long the outage lasts.
const MAX_IN_FLIGHT = o.maxInFlight ?? 3;
const maxMs = o.maxMs ?? 10_000;
const wanted = o.buckets ?? Array.from({ length: o.bucketCount }, (_, i) => i);

// Source ports per bucket; rotating through them avoids reusing a 4-tuple still in TIME_WAIT.
// Each prober starts at a random point of each bucket's list: probes run one after another
// within 60 s would otherwise begin with the ports the previous one left in TIME_WAIT.
const ports = new Map<number, number[]>();
for (let p = 20000; p < 60000; p++) {
  const b = bucketOf(o.clientIp, p, 'ClientIPAndPort', o.bucketCount, o.seed);
  const l = ports.get(b);
  if (l) l.push(p);
  else ports.set(b, [p]);
}
const cursor = new Map<number, number>();

function nextPort(bucket: number): number {
  const l = ports.get(bucket)!;
  const i = cursor.get(bucket) ?? Math.floor(Math.random() * l.length);
  cursor.set(bucket, (i + 1) % l.length);
  return l[i];
}

// Attempts the client could not even start (a port still in TIME_WAIT: EADDRINUSE), by code;
// reported with the result so that they are not mistaken for a bucket nobody serves.
const clientErrors: Record<string, number> = {};

function attempt(bucket: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = connect({ host: o.vip, port: o.port, localAddress: o.clientIp, localPort: nextPort(bucket) });
    let answered: string | null = null;
    let buf = '';
    const timer = setTimeout(() => sock.destroy(), attemptTimeoutMs);
    sock.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0 && answered === null) {
        answered = buf.slice(0, nl);
        sock.end();
      }
    });
    sock.on('error', (err) => {
      const own = clientSideCode(err);
      if (own !== undefined) clientErrors[own] = (clientErrors[own] ?? 0) + 1;
      sock.destroy();
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(answered);
    });
  });
}

if (o.armed) {
  process.stdout.write(JSON.stringify({ event: 'armed' }) + '\n');
  await new Promise((r) => process.stdin.once('data', r));
  process.stdin.pause();
}
const t0 = Date.now();
const pending = new Set(wanted);
const inFlight = new Map<number, number>();
const inFlightTotal = (): number => [...inFlight.values()].reduce((a, b) => a + b, 0);
const owners: Record<number, string> = {};

function round(): void {
  if (pending.size === 0 || Date.now() - t0 > maxMs) {
    clearInterval(timer);
    const check = setInterval(() => {
      if (inFlightTotal() > 0) return;
      clearInterval(check);
      process.stdout.write(JSON.stringify({ event: 'done', elapsedMs: Date.now() - t0, unserved: [...pending], owners, clientErrors }) + '\n');
    }, 5);
    return;
  }
  for (const b of pending) {
    const n = inFlight.get(b) ?? 0;
    if (n >= MAX_IN_FLIGHT) continue;
    inFlight.set(b, n + 1);
    void attempt(b).then((node) => {
      inFlight.set(b, (inFlight.get(b) ?? 1) - 1);
      if (node !== null && pending.delete(b)) {
        owners[b] = node;
        // `at`: wall clock, comparable with the caller's and the agents' log timestamps
        const at = Date.now();
        process.stdout.write(JSON.stringify({ event: 'served', bucket: b, node, atMs: at - t0, at }) + '\n');
      }
    });
  }
}
const timer = setInterval(round, roundMs);
round();
