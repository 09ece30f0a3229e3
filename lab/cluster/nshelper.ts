// Runs inside a node's network namespace (ip netns exec NS node nshelper.js ...) for the
// test kubelet. Two jobs, both over unix sockets since those cross namespaces:
//  - the apiserver listens on the host's 127.0.0.1, unreachable from the namespace, so
//    127.0.0.1:<port> here is piped to a unix socket the kubelet relays to the apiserver;
//  - readiness probes must reach the pod's addresses from inside: one JSON request line
//    per connection on the probe socket, answered with one JSON result line.
// Usage: nshelper.js <apiPort> <apiRelaySocket> <probeSocket>
import net from 'node:net';
import { rmSync } from 'node:fs';
import { runProbe, type ProbeRequest } from './probe.js';

function pipeTo(client: net.Socket, target: net.Socket): void {
  client.pipe(target);
  target.pipe(client);
  const close = (): void => {
    client.destroy();
    target.destroy();
  };
  client.on('error', close);
  target.on('error', close);
  client.on('close', close);
  target.on('close', close);
}

function main(): void {
  const [portArg, relaySock, probeSock] = process.argv.slice(2);
  const port = Number(portArg);
  if (!Number.isInteger(port) || !relaySock || !probeSock) {
    console.error('usage: nshelper.js <apiPort> <apiRelaySocket> <probeSocket>');
    process.exit(2);
  }
  const api = net.createServer((c) => pipeTo(c, net.connect(relaySock)));
  api.on('error', (err) => {
    console.error(`nshelper: api listener on 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
  });
  rmSync(probeSock, { force: true });
  const probes = net.createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ProbeRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ProbeRequest;
      } catch (err) {
        c.end(JSON.stringify({ ok: false, detail: `bad request: ${String(err)}` }) + '\n');
        return;
      }
      void runProbe(req).then((res) => c.end(JSON.stringify(res) + '\n'));
    });
    c.on('error', () => undefined);
  });
  // Probe socket last: its existence tells the kubelet both listeners are up.
  api.listen(port, '127.0.0.1', () => probes.listen(probeSock, () => console.log('nshelper ready')));
  const quit = (): void => {
    rmSync(probeSock, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}

main();
