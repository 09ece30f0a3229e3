import net from 'node:net';
import { countEstablished, establishedToVips, ipKey, procHexToIPv4 } from './connections.js';

const SAMPLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 6400630A:0050 0200630A:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 6400630A:0050 0300630A:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0
   2: 6400630A:1F90 0300630A:C352 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   3: 0100007F:0050 0100007F:C353 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   4: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;

// /proc/net/tcp6: 2001:db8::64 on port 80, ::ffff:10.99.0.100 on port 80 (an IPv4 client
// of a server listening on [::]), ::1
const SAMPLE6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: B80D0120000000000000000064000000:0050 B80D0120000000000000000002000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00006400630A:0050 0000000000000000FFFF00000200630A:C351 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000001000000:0050 00000000000000000000000001000000:C352 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000064000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;

describe('established connection count', () => {
  test('IPv6 and IPv4-mapped sockets in /proc/net/tcp6', () => {
    expect(countEstablished(SAMPLE6, ['2001:db8::64'])).toBe(1);
    expect(countEstablished(SAMPLE6, ['2001:DB8:0:0:0:0:0:64'], [80])).toBe(1);
    expect(countEstablished(SAMPLE6, ['10.99.0.100'])).toBe(1);
    expect(countEstablished(SAMPLE6, ['::1', '10.99.0.100', '2001:db8::64'])).toBe(3);
    expect(countEstablished(SAMPLE6, ['2001:db8::65'])).toBe(0);
    expect(ipKey('::ffff:10.99.0.100')).toBe(ipKey('10.99.0.100'));
    expect(ipKey('::1')).not.toBe(ipKey('::'));
  });

  test('decodes /proc/net/tcp addresses', () => {
    expect(procHexToIPv4('6400630A')).toBe('10.99.0.100');
    expect(procHexToIPv4('0100007F')).toBe('127.0.0.1');
  });
  test('counts only ESTABLISHED sockets on the VIPs', () => {
    expect(countEstablished(SAMPLE, ['10.99.0.100'])).toBe(2);
    expect(countEstablished(SAMPLE, ['10.99.0.100'], [80])).toBe(1);
    expect(countEstablished(SAMPLE, ['10.99.0.100', '127.0.0.1'], [80])).toBe(2);
    expect(countEstablished(SAMPLE, ['10.1.1.1'])).toBe(0);
    expect(countEstablished('', ['10.99.0.100'])).toBe(0);
  });
  test('sees a real loopback connection', async () => {
    const server = net.createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const before = establishedToVips(['127.0.0.1'], [port]);
    const c = net.connect(port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    try {
      expect(establishedToVips(['127.0.0.1'], [port])).toBe(before + 1);
    } finally {
      c.destroy();
      server.close();
    }
  });
});
