import { UdpTransport } from './transport.js';

describe('UDP heartbeat transport', () => {
  test.each([['127.0.0.1'], ['::1']])('moves datagrams in the bind address\'s family (%s)', async (addr) => {
    // a free port of that family: bind 0 first, then use it (heartbeats go to the same port)
    const probe = new UdpTransport(0, addr);
    await probe.start(() => {});
    const port = (probe as unknown as { socket: { address(): { port: number } } }).socket.address().port;
    await probe.stop();
    const got: Array<{ text: string; from: string }> = [];
    const t = new UdpTransport(port, addr);
    await t.start((buf, from) => got.push({ text: buf.toString(), from }));
    try {
      const deadline = Date.now() + 2000;
      while (got.length === 0 && Date.now() < deadline) {
        t.send(Buffer.from('hb'), [addr]);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(got[0]).toEqual({ text: 'hb', from: addr });
    } finally {
      await t.stop();
    }
  });
});
