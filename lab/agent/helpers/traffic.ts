// Run in a client namespace: opens short connections to vip:port at a steady rate, each
// from the next source address in turn, and prints, every windowMs, how many each node
// answered, how many got no answer, and how many the client itself could not open.
// argv[2]: JSON TrafficOptions. Stops on stdin "stop" or EOF.
//
// Paced on purpose: the client closes first, so every connection leaves its 4-tuple in
// TIME_WAIT for 60 s. Unpaced, a few thousand connections per second use up the ~28k
// ephemeral ports of one source address within seconds and every later connect fails
// with EADDRNOTAVAIL until the first ones expire: a periodic "outage" that is the
// client's. rate x 60 s / sources.length must stay well below the port range.
import { connect } from 'node:net';
import { clientSideCode } from '../../netns/connect-error.js';

export interface TrafficOptions {
  vip: string;
  port: number;
  /** new connections per second (default 200) */
  rate?: number;
  /** local addresses, used in turn (default: the kernel's choice) */
  sources?: string[];
  windowMs?: number;
  /** a connection not answered within this counts as "no answer" (default 500) */
  timeoutMs?: number;
  /** above this many open connections the client waits instead of opening more (default 256) */
  maxInFlight?: number;
  /** also one line per connection when it ends: {"event":"conn","start","answeredAt","node"}
   *  (wall clock ms; answeredAt and node null when unanswered), to place failures in time */
  perConnection?: boolean;
}

const o = JSON.parse(process.argv[2]) as TrafficOptions;
const timeoutMs = o.timeoutMs ?? 500;
const rate = o.rate ?? 200;
const maxInFlight = o.maxInFlight ?? 256;
const sources = o.sources ?? [];
let answers: Record<string, number> = {};
let failed = 0;
let clientErrors: Record<string, number> = {};
let inFlight = 0;
let launched = 0;
let running = true;

function once(localAddress: string | undefined): void {
  inFlight++;
  const start = Date.now();
  let answeredAt: number | null = null;
  let node: string | null = null;
  const sock = connect({ host: o.vip, port: o.port, localAddress });
  let answered = false;
  let own: string | undefined;
  let buf = '';
  const timer = setTimeout(() => sock.destroy(), timeoutMs);
  sock.on('data', (d) => {
    buf += d.toString();
    const nl = buf.indexOf('\n');
    if (nl >= 0 && !answered) {
      answered = true;
      answeredAt = Date.now();
      node = buf.slice(0, nl);
      answers[node] = (answers[node] ?? 0) + 1;
      sock.end();
    }
  });
  sock.on('error', (err) => {
    own ??= clientSideCode(err);
    sock.destroy();
  });
  sock.on('close', () => {
    clearTimeout(timer);
    inFlight--;
    if (own !== undefined) clientErrors[own] = (clientErrors[own] ?? 0) + 1;
    else if (!answered) failed++;
    if (o.perConnection && own === undefined) process.stdout.write(JSON.stringify({ event: 'conn', start, answeredAt, node }) + '\n');
  });
}

const t0 = Date.now();
// Every 5 ms open what the rate owes since the start, so timer jitter does not lower it.
const pacer = setInterval(() => {
  if (!running) return;
  const due = Math.floor(((Date.now() - t0) * rate) / 1000) - launched;
  for (let k = 0; k < due && inFlight < maxInFlight; k++) {
    once(sources.length ? sources[launched % sources.length] : undefined);
    launched++;
  }
  // What the in-flight cap held back is dropped, not caught up later in a burst.
  launched = Math.max(launched, Math.floor(((Date.now() - t0) * rate) / 1000));
}, 5);

const tick = setInterval(() => {
  process.stdout.write(JSON.stringify({ event: 'window', at: Date.now(), answers, failed, clientErrors }) + '\n');
  answers = {};
  failed = 0;
  clientErrors = {};
}, o.windowMs ?? 250);

const stop = (): void => {
  running = false;
  clearInterval(pacer);
  // Let the connections in flight finish, then exit.
  const done = setInterval(() => {
    if (inFlight > 0) return;
    clearInterval(done);
    clearInterval(tick);
    process.exit(0);
  }, 10);
};
process.stdin.on('data', (d) => {
  if (d.toString().includes('stop')) stop();
});
process.stdin.on('end', stop);
