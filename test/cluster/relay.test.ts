// The relay's parsers (lab/cluster/relay.ts); the relaying itself is exercised by realnodes.test.ts.
import { connectTarget, parseAddr } from '../../lab/cluster/relay.js';

test.each([
  ['tcp:10.1.0.254:6443', { host: '10.1.0.254', port: 6443 }],
  ['tcp:fd00:0:201::254:6443', { host: 'fd00:0:201::254', port: 6443 }],
  ['tcp:[fd00:0:201::254]:6443', { host: 'fd00:0:201::254', port: 6443 }],
  ['unix:/tmp/x/api.sock', { unix: '/tmp/x/api.sock' }],
])('parseAddr(%s)', (s, want) => expect(parseAddr(s)).toEqual(want));

test.each(['tcp:10.1.0.1', 'tcp:10.1.0.1:0', 'tcp:10.1.0.1:70000', 'unix:', 'udp:1.2.3.4:5', ''])('parseAddr refuses %j', (s) => {
  expect(() => parseAddr(s)).toThrow(/bad address/);
});

test('connectTarget reads an HTTP CONNECT head, nothing else', () => {
  expect(connectTarget('CONNECT 10.1.0.11:10250 HTTP/1.1\r\nHost: 10.1.0.11:10250\r\n\r\n')).toEqual({ host: '10.1.0.11', port: 10250 });
  expect(connectTarget('CONNECT [fd00:0:201::11]:10250 HTTP/1.1\r\nHost: [fd00:0:201::11]:10250\r\n\r\n')).toEqual({ host: 'fd00:0:201::11', port: 10250 });
  expect(connectTarget('CONNECT fd00::11:10250 HTTP/1.1\r\n\r\n')).toBeNull();
  expect(connectTarget('GET / HTTP/1.1\r\n\r\n')).toBeNull();
  expect(connectTarget('CONNECT 10.1.0.11 HTTP/1.1\r\n\r\n')).toBeNull();
});
