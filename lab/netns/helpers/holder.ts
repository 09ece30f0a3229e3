// Long-lived connections for handoff and takeover tests: opens `count` TCP connections,
// reports who answered each, then pings every connection every pingMs and expects the
// same node to echo. Reports each failure at once; "stop" on stdin prints the summary.
// argv[2]: JSON { vip, port, count, pingMs?, sources? }
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

interface Opts {
  vip: string;
  port: number;
  count: number;
  pingMs?: number;
  sources?: string[];
}

interface Conn {
  i: number;
  lport: number;
  laddr: string;
  node: string | null;
  sent: number;
  echoed: number;
  wrongNode: number;
  error: string | null;
  sock: Socket;
}

const opts = JSON.parse(process.argv[2]) as Opts;
const out = (o: object): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};
const conns: Conn[] = [];

function open(i: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect({ host: opts.vip, port: opts.port, localAddress: opts.sources?.[i % opts.sources.length] });
    sock.setNoDelay(true); // a ping must leave at once, even behind unacknowledged ones
    const c: Conn = { i, lport: 0, laddr: '', node: null, sent: 0, echoed: 0, wrongNode: 0, error: null, sock };
    conns.push(c);
    let buf = '';
    sock.on('connect', () => {
      c.lport = sock.localPort ?? 0;
      c.laddr = sock.localAddress ?? '';
    });
    sock.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (c.node === null) {
          c.node = line;
          resolve();
        } else if (line.startsWith(`${c.node} p`)) c.echoed++;
        else c.wrongNode++;
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (c.error === null) {
        c.error = e.code ?? e.message;
        out({ event: 'error', i, node: c.node, code: c.error, at: Date.now() });
      }
      resolve();
    });
    sock.on('close', () => resolve());
  });
}

async function main(): Promise<void> {
  await Promise.all(Array.from({ length: opts.count }, (_, i) => open(i)));
  out({ event: 'open', conns: conns.map(({ i, lport, laddr, node, error }) => ({ i, lport, laddr, node, error })) });
  const timer = setInterval(() => {
    for (const c of conns) {
      if (c.error !== null || c.sock.destroyed) continue;
      c.sent++;
      c.sock.write(`p${c.sent}\n`);
    }
  }, opts.pingMs ?? 100);
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() !== 'stop') return;
    clearInterval(timer);
    // let the last echoes arrive
    setTimeout(() => {
      out({
        event: 'done',
        conns: conns.map(({ i, lport, node, sent, echoed, wrongNode, error }) => ({ i, lport, node, sent, echoed, wrongNode, error })),
      });
      for (const c of conns) c.sock.destroy();
      process.exit(0);
    }, 300);
  });
}

void main();
