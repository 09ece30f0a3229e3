// Byte relays between the host and the test bed's namespaces for real nodes (realnodes.ts).
// Unix sockets are the only thing both sides see, so every crossing goes through one:
//   forward=LISTEN=TARGET   accept on LISTEN, pipe each connection to TARGET
//   connect=LISTEN          an HTTP CONNECT proxy (the apiserver's egress to the kubelets):
//                           dials the host:port each request names, from this namespace
// Addresses: tcp:HOST:PORT (an IPv6 HOST in brackets or not) or unix:PATH. Prints "relay ready" once every listener is up.
// Usage: node relay.js SPEC...
import net from 'node:net';
import { rmSync } from 'node:fs';

type Addr = { unix: string } | { host: string; port: number };

export function parseAddr(s: string): Addr {
  if (s.startsWith('unix:') && s.length > 5) return { unix: s.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(s);
  if (m && Number(m[2]) > 0 && Number(m[2]) < 65536) return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
  throw new Error(`relay: bad address ${JSON.stringify(s)} (tcp:HOST:PORT or unix:PATH)`);
}

/** The target of an HTTP CONNECT request head, or null when it is not one. */
export function connectTarget(head: string): { host: string; port: number } | null {
  // the apiserver writes an IPv6 kubelet address in brackets: CONNECT [fd00::11]:10250
  const m = /^CONNECT (?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d+) HTTP\/1\.[01]\r\n/.exec(head);
  return m ? { host: m[1] ?? m[2], port: Number(m[3]) } : null;
}

function dial(a: Addr): net.Socket {
  return 'unix' in a ? net.connect(a.unix) : net.connect(a.port, a.host);
}

function pipeBoth(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on('error', close);
    s.on('close', close);
  }
}

function listen(server: net.Server, a: Addr): Promise<void> {
  if ('unix' in a) rmSync(a.unix, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if ('unix' in a) server.listen(a.unix, resolve);
    else server.listen(a.port, a.host, resolve);
  });
}

function forward(target: Addr): net.Server {
  return net.createServer((c) => pipeBoth(c, dial(target)));
}

function connectProxy(): net.Server {
  return net.createServer((c) => {
    let head = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 8192) c.destroy();
        return;
      }
      c.off('data', onData);
      c.pause();
      const t = connectTarget(head.subarray(0, end + 4).toString('latin1'));
      if (!t) {
        c.end('HTTP/1.1 400 Bad Request\r\n\r\n');
        return;
      }
      const rest = head.subarray(end + 4);
      const up = net.connect(t.port, t.host);
      let connected = false;
      up.once('connect', () => {
        connected = true;
        c.write('HTTP/1.1 200 Connection established\r\n\r\n');
        if (rest.length > 0) up.write(rest);
        pipeBoth(c, up);
        c.resume();
      });
      up.once('error', (err) => {
        if (!connected) c.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
        console.error(JSON.stringify({ event: 'connect-failed', target: `${t.host}:${t.port}`, error: err.message }));
      });
    };
    c.on('data', onData);
    c.on('error', () => undefined);
  });
}

async function main(): Promise<void> {
  const specs = process.argv.slice(2);
  if (specs.length === 0) throw new Error('usage: relay.js forward=LISTEN=TARGET | connect=LISTEN ...');
  for (const spec of specs) {
    const [kind, listenAt, target] = spec.split('=');
    if (kind === 'forward' && target) await listen(forward(parseAddr(target)), parseAddr(listenAt));
    else if (kind === 'connect' && listenAt && target === undefined) await listen(connectProxy(), parseAddr(listenAt));
    else throw new Error(`relay: bad spec ${JSON.stringify(spec)}`);
  }
  console.log('relay ready');
}

// Only as a program (the tests import the parsers).
if (process.argv[1]?.endsWith('/relay.js')) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
