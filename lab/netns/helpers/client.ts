// Client run in a client namespace: opens `count` short TCP connections (or sends one
// UDP datagram per socket) to vip:port and prints one JSON line: who answered each.
// argv[2]: JSON { vip, port, protocol, count, concurrency?, sources?, timeoutMs? }
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
}

export interface Attempt {
  i: number;
  laddr: string;
  lport: number;
  node: string | null;
  error: string | null;
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
    const s = createSocket('udp4');
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
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      const i = next++;
      const src = opts.sources === undefined ? undefined : opts.sources[i % opts.sources.length];
      results[i] = await (opts.protocol === 'udp' ? udpOnce(i, src) : tcpOnce(i, src));
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 20, opts.count) }, worker));
  process.stdout.write(JSON.stringify({ elapsedMs: Date.now() - t0, results }) + '\n');
}

void main();
