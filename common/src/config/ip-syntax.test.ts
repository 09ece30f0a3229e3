// The address syntax of both families: what parses, its canonical text, and which
// addresses can never be a VIP. (The shared table ./validation-cases.ts holds the rows
// that CEL and the native checks must agree on; these are the finer cases of the parser.)
import { canonicalIP, formatIP, ipFamilyOf, parseIP, parseIPv6, unicastIPProblem } from './syntax.js';

describe('parseIPv6', () => {
  test.each([
    ['2001:db8::1', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]],
    ['2001:DB8::A', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 10]],
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['1:2:3:4:5:6:7::', [1, 2, 3, 4, 5, 6, 7, 0]],
    ['::2:3:4:5:6:7:8', [0, 2, 3, 4, 5, 6, 7, 8]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['fd00:0:1::ffff', [0xfd00, 0, 1, 0, 0, 0, 0, 0xffff]],
  ])('%s parses', (s, groups) => {
    expect(parseIPv6(s)).toEqual(groups);
  });

  test.each([
    '', ':', ':::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '1::2::3',
    ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '12345::1', 'g::1', '::ffff:1.2.3.4', '64:ff9b::192.0.2.1', 'fe80::1%eth0',
    ' ::1', '2001:db8::1 ', '2001:0db8:0000:0000:0000:0000:0000:00001', '[::1]', '::1/128',
  ])('%j does not parse', (s) => {
    expect(parseIPv6(s)).toBeUndefined();
  });
});

describe('canonical text (RFC 5952)', () => {
  test.each([
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'], // the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not '::'
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['fd00:0:1:0:0:0:0:200', 'fd00:0:1::200'],
    ['0:0:1::', '0:0:1::'],
    ['10.99.0.100', '10.99.0.100'],
    ['0.0.0.0', '0.0.0.0'],
  ])('%s is written %s', (s, canonical) => {
    expect(canonicalIP(s)).toBe(canonical);
    // and the canonical text is a fixed point
    expect(canonicalIP(canonical)).toBe(canonical);
  });

  test('value and text round-trip over many addresses of both families', () => {
    let x = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 2000; i++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 128n) - 1n);
      // sparse groups so that zero runs of every length occur
      const v6 = i % 2 === 0 ? x : x & 0xffff0000ffff00000000ffff0000ffffn;
      for (const ip of [{ family: 'ipv6' as const, value: v6 }, { family: 'ipv4' as const, value: x >> 96n }]) {
        const text = formatIP(ip);
        expect(parseIP(text)).toEqual(ip);
        expect(ipFamilyOf(text)).toBe(ip.family);
      }
    }
  });

  test('not an address', () => {
    expect(canonicalIP('10.0.0.300')).toBeUndefined();
    expect(canonicalIP('fe80::1%1')).toBeUndefined();
  });
});

describe('unicastIPProblem', () => {
  test.each(['10.99.0.100', '2001:db8::1', 'fd00::1', '2001:0db8:0:0:0:0:0:1', '64:ff9b::c000:201', '::1:0:0:1', 'fec0::1', '2002:c000:201::1', 'fe00::1'])(
    '%s can be a VIP',
    (s) => {
      expect(unicastIPProblem(s)).toBeUndefined();
    },
  );

  test.each([
    ['::', 'unspecified'],
    ['0:0:0:0:0:0:0:0', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:a63:64', 'IPv4-mapped'],
    ['::ffff:0:0', 'IPv4-mapped'],
    ['::a63:64', 'IPv4-compatible'],
    ['::2', 'IPv4-compatible'],
    ['fe80::1', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['FF0E::1', 'multicast'],
    ['fe80::1%eth0', 'must be an IPv6 address'],
    ['::ffff:10.99.0.100', 'no embedded dotted quad'],
    ['2001:db8::g', 'must be an IPv6 address'],
    ['0.1.2.3', '0.0.0.0/8'],
    ['127.0.0.1', 'loopback'],
    ['224.0.0.1', 'unicast'],
    ['240.0.0.1', 'unicast'],
    ['10.0.0.01', 'must be an IPv4 address'],
  ])('%s is refused: %s', (s, why) => {
    expect(unicastIPProblem(s)).toContain(why);
  });

  test('the family, when given, is enforced with a message naming it', () => {
    expect(unicastIPProblem('2001:db8::1', 'ipv6')).toBeUndefined();
    expect(unicastIPProblem('10.0.0.1', 'ipv4')).toBeUndefined();
    expect(unicastIPProblem('2001:db8::1', 'ipv4')).toContain('must be an IPv4 address');
    expect(unicastIPProblem('10.0.0.1', 'ipv6')).toContain('must be an IPv6 address');
  });

  test('the neighbours of each refused block are fine (the prefix lengths are right)', () => {
    expect(unicastIPProblem('fec0::')).toBeUndefined(); // just past fe80::/10
    expect(unicastIPProblem('fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBeUndefined();
    expect(unicastIPProblem('feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBeUndefined();
    expect(unicastIPProblem('0:0:0:0:0:1::')).toBeUndefined(); // past ::ffff:0:0/96 and ::/96
    expect(unicastIPProblem('::fffe:ffff:ffff')).toBeUndefined();
    expect(unicastIPProblem('::1:0:0')).toBeUndefined(); // just past ::/96
    expect(unicastIPProblem('1.0.0.0')).toBeUndefined();
    expect(unicastIPProblem('223.255.255.255')).toBeUndefined();
  });
});
