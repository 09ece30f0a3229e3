import { UdpTransport } from './transport.js';

describe('UDP heartbeat transport', () => {
  test.each([['ipv4', '127.0.0.1'], ['ipv6', '::1']] as const)('moves datagrams in the family it is given (%s)', async (family, addr) => {
    // a free port of that family: bind 0 first, then use it (heartbeats go to the same port)
    const probe = new UdpTransport(0, family, undefined, addr);
    await probe.start(() => {});
    const port = (probe as unknown as { socket: { address(): { port: number } } }).socket.address().port;
    await probe.stop();
    const got: Array<{ text: string; from: string }> = [];
    const t = new UdpTransport(port, family, undefined, addr);
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
