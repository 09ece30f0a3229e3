// Client run in a client namespace: opens `count` short TCP connections (or sends one
// UDP datagram per socket) to vip:port and prints one JSON line: who answered each.
// argv[2]: JSON { vip, port, protocol, count, concurrency?, sources?, timeoutMs?, intervalMs? }
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

export interface ClientOptions {
  vip: string;
  port: number;
  protocol: 'tcp' | 'udp';
  count: number;
  concurrency?: number;
  /** local addresses; attempt i uses sources[i % length] */
  sources?: string[];
  timeoutMs?: number;
  /** paced: attempt i starts i * intervalMs after the first, however long the others take
   *  (a steady connection rate across a failure), instead of `concurrency` at a time */
  intervalMs?: number;
}

export interface Attempt {
  i: number;
  laddr: string;
  lport: number;
  node: string | null;
  error: string | null;
  /** ms after the client's start when the attempt began, and how long it took (a lost SYN
   *  shows as about 1000 more: the kernel's first retransmission) */
  atMs?: number;
  tookMs?: number;
}

const opts = JSON.parse(process.argv[2]) as ClientOptions;
const timeoutMs = opts.timeoutMs ?? 3000;

function tcpOnce(i: number, source?: string): Promise<Attempt> {
  return new Promise((resolve) => {
    const a: Attempt = { i, laddr: source ?? '', lport: 0, node: null, error: null };
    const sock = connect({ host: opts.vip, port: opts.port, localAddress: source });
    const timer = setTimeout(() => {
      a.error = 'timeout';
      sock.destroy();
    }, timeoutMs);
    let buf = '';
    sock.on('connect', () => {
      a.laddr = sock.localAddress ?? '';
      a.lport = sock.localPort ?? 0;
    });
    sock.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0 && a.node === null) {
        a.node = buf.slice(0, nl);
        sock.end();
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      a.error ??= e.code ?? e.message;
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(a);
    });
  });
}

function udpOnce(i: number, source?: string): Promise<Attempt> {
  return new Promise((resolve) => {
    const a: Attempt = { i, laddr: source ?? '', lport: 0, node: null, error: null };
    const s = createSocket(opts.vip.includes(':') ? 'udp6' : 'udp4');
    const done = (): void => {
      clearTimeout(timer);
      s.close();
      resolve(a);
    };
    const timer = setTimeout(() => {
      a.error = 'timeout';
      done();
    }, timeoutMs);
    s.on('message', (msg) => {
      a.node = msg.toString();
      done();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      a.error = e.code ?? e.message;
      done();
    });
    s.bind({ port: 0, address: source }, () => {
      // connected, so address() names the source address the kernel picked
      s.connect(opts.port, opts.vip, () => {
        const addr = s.address();
        a.laddr = addr.address;
        a.lport = addr.port;
        s.send('hi');
      });
    });
  });
}

async function main(): Promise<void> {
  const results: Attempt[] = new Array(opts.count);
  let next = 0;
  const t0 = Date.now();
  const once = (i: number): Promise<Attempt> => {
    const src = opts.sources === undefined ? undefined : opts.sources[i % opts.sources.length];
    const atMs = Date.now() - t0;
    return (opts.protocol === 'udp' ? udpOnce(i, src) : tcpOnce(i, src)).then((a) => ({ ...a, atMs, tookMs: Date.now() - t0 - atMs }));
  };
  if (opts.intervalMs !== undefined) {
    const every = opts.intervalMs;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < opts.count; i++) {
      const wait = t0 + i * every - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(once(i).then((a) => void (results[i] = a)));
    }
    await Promise.all(pending);
    process.stdout.write(JSON.stringify({ startedAt: t0, elapsedMs: Date.now() - t0, results }) + '\n');
    return;
  }
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      const i = next++;
      results[i] = await once(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 20, opts.count) }, worker));
  process.stdout.write(JSON.stringify({ startedAt: t0, elapsedMs: Date.now() - t0, results }) + '\n');
}

void main();
