import { compareIPs, firstFree, parseAddressEntry, parseAddressPool, poolContains, poolFamilies, poolSize } from './address-pool.js';
import { parseAgentFile, parseFarmSpec } from './config/index.js';

describe('parseAddressEntry', () => {
  const good: [string, string, string][] = [
    ['10.0.0.200', '10.0.0.200', '10.0.0.200'],
    ['10.0.0.200-10.0.0.220', '10.0.0.200', '10.0.0.220'],
    ['10.0.0.7-10.0.0.7', '10.0.0.7', '10.0.0.7'],
    ['10.0.1.0/28', '10.0.1.0', '10.0.1.15'],
    ['10.0.1.5/32', '10.0.1.5', '10.0.1.5'],
    ['192.168.0.0/16', '192.168.0.0', '192.168.255.255'],
    ['10.0.0.255-10.0.1.3', '10.0.0.255', '10.0.1.3'],
    ['223.255.255.0/24', '223.255.255.0', '223.255.255.255'],
    ['2001:db8::200', '2001:db8::200', '2001:db8::200'],
    ['2001:DB8:0:0::200', '2001:db8::200', '2001:db8::200'],
    ['2001:db8::200-2001:db8::2ff', '2001:db8::200', '2001:db8::2ff'],
    ['2001:db8::ffff-2001:db8::1:3', '2001:db8::ffff', '2001:db8::1:3'],
    ['2001:db8:1::/120', '2001:db8:1::', '2001:db8:1::ff'],
    ['2001:db8:1::/112', '2001:db8:1::', '2001:db8:1::ffff'],
    ['fd00:0:99::5/128', 'fd00:0:99::5', 'fd00:0:99::5'],
    ['fd00::ffff:ffff:ff00/120', 'fd00::ffff:ffff:ff00', 'fd00::ffff:ffff:ffff'],
  ];
  test.each(good)('%s is %s..%s', (text, first, last) => {
    const r = parseAddressEntry(text);
    if (!('range' in r)) throw new Error(r.problem);
    expect([r.range.first, r.range.last, r.range.text]).toEqual([first, last, text]);
  });

  const bad: [string, string][] = [
    ['', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.256', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['010.0.0.1', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.1/', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.0/33', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.0/08', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.1-', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.1-10.0.0.2-10.0.0.3', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['10.0.0.0/24-10.0.1.0', 'must be an address (10.0.0.200, 2001:db8::200), a range'],
    ['fd00::1%eth0', 'must be an address'],
    ['::ffff:10.0.0.1', 'must be an address'],
    ['2001:db8::/129', 'must be an address'],
    ['2001:db8::/0120', 'must be an address'],
    ['2001:db8::1-2001:db8::2-2001:db8::3', 'must be an address'],
    ['10.0.0.1-2001:db8::1', 'both ends must be of one family'],
    ['2001:db8::1/120', 'host bits set: the network of a /120 containing it is 2001:db8::/120'],
    ['2001:db8::9-2001:db8::1', 'the first address is after the last'],
    ['2001:db8::/111', 'holds 131072 addresses, more than 65536'],
    ['2001:db8::/64', 'holds 18446744073709551616 addresses'],
    ['2001:db8::-2001:db8::1:0', 'holds 65537 addresses'],
    ['fe80::/112', 'the first address must not be a link-local'],
    ['fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ff00-fe80::5', 'the last address must not be a link-local'],
    ['ff02::/120', 'must be a unicast address, not multicast'],
    ['::/112', 'the first address must not be the unspecified'],
    ['::ffff:0:0/112', 'IPv4-mapped'],
    ['::1', 'loopback'],
    ['10.0.0.1/28', 'host bits set: the network of a /28 containing it is 10.0.0.0/28'],
    ['10.0.0.9-10.0.0.1', 'the first address is after the last'],
    ['10.0.0.0/15', 'holds 131072 addresses, more than 65536'],
    ['10.0.0.0-10.1.0.0', 'holds 65537 addresses'],
    ['127.0.0.1', 'must not be a loopback address'],
    ['126.255.255.0-127.0.0.5', 'the last address must not be a loopback'],
    ['0.0.0.0/24', 'the first address must not be in 0.0.0.0/8'],
    ['224.0.0.0/24', 'must be a unicast address'],
    ['223.255.255.250-224.0.0.1', 'the last address must be a unicast address'],
    ['255.255.255.255', 'must be a unicast address'],
  ];
  test.each(bad)('%j is refused: %s', (text, fragment) => {
    const r = parseAddressEntry(text);
    expect('problem' in r ? r.problem : 'accepted').toContain(fragment);
  });
});

describe('parseAddressPool', () => {
  test('ranges in the written order; overlaps and the farm\'s own VIPs refused by index', () => {
    const ok = parseAddressPool(['10.0.0.200-10.0.0.220', '10.0.1.0/28'], ['10.0.0.100']);
    if (!ok.ok) throw new Error(JSON.stringify(ok.errors));
    expect(poolSize(ok.ranges)).toBe(21 + 16);

    const bad = parseAddressPool(['10.0.0.0/28', '10.0.0.8-10.0.0.20', 'x', '10.0.2.0/30', 7], ['10.0.2.2']);
    expect(bad).toEqual({
      ok: false,
      errors: [
        { index: 1, message: '10.0.0.8-10.0.0.20 overlaps entry [0] (10.0.0.0/28)' },
        { index: 2, message: expect.stringContaining('must be an address') },
        { index: 3, message: "10.0.2.0/30 contains 10.0.2.2, one of the farm's virtualIPs" },
        { index: 4, message: 'must be a string, got number' },
      ],
    });
    const many = parseAddressPool(Array.from({ length: 33 }, (_, i) => `10.0.3.${i}`), []);
    expect(many.ok ? [] : many.errors.map((e) => e.message)).toEqual(['at most 32 entries, got 33']);
  });

  test('poolContains and firstFree walk the entries in order, across octet boundaries', () => {
    const r = parseAddressPool(['10.0.0.254-10.0.1.1', '10.0.5.0/31'], []);
    if (!r.ok) throw new Error('pool refused');
    expect(['10.0.0.253', '10.0.0.254', '10.0.1.1', '10.0.1.2', '10.0.5.1', '10.0.5.2'].map((ip) => poolContains(r.ranges, ip))).toEqual([false, true, true, false, true, false]);
    const taken = new Set(['10.0.0.254', '10.0.0.255']);
    expect(firstFree(r.ranges, (ip) => taken.has(ip))).toBe('10.0.1.0');
    const all = new Set(['10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1', '10.0.5.0']);
    expect(firstFree(r.ranges, (ip) => all.has(ip))).toBe('10.0.5.1');
    all.add('10.0.5.1');
    expect(firstFree(r.ranges, (ip) => all.has(ip))).toBeUndefined();
  });

  test('IPv6 and dual-stack pools: overlaps by value within a family, never across families', () => {
    const ok = parseAddressPool(['2001:db8::200-2001:db8::2ff', '10.0.0.0/30', '2001:db8:1::/120'], ['2001:db8::100', '10.0.1.1']);
    if (!ok.ok) throw new Error(JSON.stringify(ok.errors));
    expect(poolSize(ok.ranges)).toBe(256 + 4 + 256);
    expect(poolFamilies(ok.ranges)).toEqual(['ipv4', 'ipv6']);
    expect(poolFamilies(ok.ranges.filter((r) => r.family === 'ipv6'))).toEqual(['ipv6']);
    const bad = parseAddressPool(['2001:db8::/120', '2001:DB8::80-2001:db8::100', '2001:db8:5::/126'], ['2001:db8:5:0:0:0:0:2']);
    expect(bad.ok ? [] : bad.errors).toEqual([
      { index: 1, message: '2001:DB8::80-2001:db8::100 overlaps entry [0] (2001:db8::/120)' },
      { index: 2, message: "2001:db8:5::/126 contains 2001:db8:5:0:0:0:0:2, one of the farm's virtualIPs" },
    ]);
  });

  test('IPv6 poolContains and firstFree, per family, canonical text out', () => {
    const r = parseAddressPool(['10.0.0.1', '2001:db8::fffe-2001:db8::1:1'], []);
    if (!r.ok) throw new Error('pool refused');
    expect(['2001:db8::fffd', '2001:DB8::FFFE', '2001:db8:0:0:0:0:1:0', '2001:db8::1:2', '10.0.0.1', '::ffff:a00:1'].map((ip) => poolContains(r.ranges, ip)))
      .toEqual([false, true, true, false, true, false]);
    const taken = new Set(['2001:db8::fffe', '2001:db8::ffff']);
    expect(firstFree(r.ranges, (ip) => taken.has(ip), 'ipv6')).toBe('2001:db8::1:0');
    expect(firstFree(r.ranges, (ip) => taken.has(ip), 'ipv4')).toBe('10.0.0.1');
    expect(firstFree(r.ranges, (ip) => taken.has(ip))).toBe('10.0.0.1');
    expect(firstFree(r.ranges, (ip) => ip.includes('.') || taken.has(ip))).toBe('2001:db8::1:0');
  });

  test('compareIPs: IPv4 first, then by value (not by text)', () => {
    const list = ['2001:db8::10', '10.0.0.10', '2001:db8::9', '10.0.0.9', '2001:db8::1:0', '9.255.255.255'];
    expect([...list].sort(compareIPs)).toEqual(['9.255.255.255', '10.0.0.9', '10.0.0.10', '2001:db8::9', '2001:db8::10', '2001:db8::1:0']);
  });
});

describe('spec.addresses and spec.servicesWithoutClass in the farm parser', () => {
  const base = { virtualIPs: ['10.99.0.100'], interface: 'eth0', rules: [{ port: 80 }] };
  const parse = (over: Record<string, unknown>) => parseFarmSpec({ ...base, ...over }, { name: 'web' });
  const lines = (r: ReturnType<typeof parse>): string[] => (r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`));

  test('absent: no pool, unclassed Services not served', () => {
    const r = parse({});
    expect(r.ok && r.value.loadBalancer).toEqual({ addresses: [], servicesWithoutClass: false });
  });
  test('a pool and the default-class switch', () => {
    const r = parse({ addresses: ['10.99.0.200-10.99.0.201'], servicesWithoutClass: true });
    expect(r.ok && r.value.loadBalancer).toEqual({
      addresses: [{ text: '10.99.0.200-10.99.0.201', family: 'ipv4', first: '10.99.0.200', last: '10.99.0.201' }],
      servicesWithoutClass: true,
    });
  });
  const refused: [Record<string, unknown>, string][] = [
    [{ addresses: [] }, 'spec.addresses: must not be empty'],
    [{ addresses: '10.99.0.200' }, 'spec.addresses: must be a list'],
    [{ addresses: ['10.99.0.96/28'] }, "spec.addresses[0]: 10.99.0.96/28 contains 10.99.0.100, one of the farm's virtualIPs"],
    [{ addresses: ['10.99.0.200', '10.99.0.200'] }, 'spec.addresses[1]: 10.99.0.200 overlaps entry [0]'],
    [{ servicesWithoutClass: true }, 'spec.servicesWithoutClass: needs spec.addresses'],
    [{ addresses: ['10.99.0.200'], servicesWithoutClass: 'yes' }, 'spec.servicesWithoutClass: must be true or false'],
  ];
  test.each(refused)('%j: %s', (over, line) => {
    const got = lines(parse(over));
    if (!got.some((l) => l.startsWith(line))) throw new Error(`no "${line}" in:\n${got.join('\n')}`);
  });
  test('the standalone agent file has no operator to allocate: addresses is an unknown field there', () => {
    const r = parseAgentFile('name: web\nvirtualIPs: [10.99.0.100]\ninterface: eth0\nrules: [{port: 80}]\nnode: {name: n1, address: 10.99.0.11}\nkeyFile: /k\naddresses: [10.99.0.200]\n');
    expect(r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`)).toEqual(['addresses: unknown field']);
  });
});
