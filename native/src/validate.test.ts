import type { DataplaneFarm } from '../../common/src/types.js';
import { checkBuckets, checkFarm, checkLease, checkMode, checkNodeMac, DataplaneInputError, isIPv4 } from './validate.js';

const good: DataplaneFarm = {
  name: 'web',
  interface: 'eth0',
  virtualIPs: ['10.99.0.100'],
  virtualMAC: '02:fa:00:00:00:01',
  rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }],
  bucketCount: 256,
  hashSeed: 0x1234,
};

describe('checkFarm', () => {
  it('accepts a valid farm and lowercases the MAC', () => {
    expect(checkFarm('apply', { ...good, virtualMAC: '02:FA:00:00:00:01' }).virtualMAC).toBe('02:fa:00:00:00:01');
  });

  const bad: [string, Partial<Record<keyof DataplaneFarm, unknown>>, RegExp][] = [
    ['uppercase name', { name: 'Web' }, /farm name/],
    ['name too long', { name: 'a'.repeat(41) }, /farm name/],
    ['name with dot', { name: 'a.b' }, /farm name/],
    ['name ending in -', { name: 'web-' }, /farm name/],
    ['empty interface', { interface: '' }, /interface/],
    ['interface with slash', { interface: 'eth0/x' }, /interface/],
    ['interface too long', { interface: 'abcdefghijklmnop' }, /interface/],
    ['no VIP', { virtualIPs: [] }, /at least one virtual IP/],
    ['VIP octet 300', { virtualIPs: ['10.0.0.300'] }, /virtualIPs\[0\]/],
    ['VIP three octets', { virtualIPs: ['10.0.1'] }, /virtualIPs\[0\]/],
    ['VIP leading zero', { virtualIPs: ['10.0.0.01'] }, /virtualIPs\[0\]/],
    ['VIP multicast', { virtualIPs: ['224.0.0.1'] }, /unicast/],
    ['VIP duplicate', { virtualIPs: ['10.0.0.1', '10.0.0.1'] }, /duplicates/],
    ['MAC short', { virtualMAC: '02:fa:00:00:01' }, /virtual MAC/],
    ['MAC dashes', { virtualMAC: '02-fa-00-00-00-01' }, /virtual MAC/],
    ['MAC multicast', { virtualMAC: '03:fa:00:00:00:01' }, /multicast/],
    ['MAC global', { virtualMAC: '00:fa:00:00:00:01' }, /locally administered/],
    ['bucketCount 100', { bucketCount: 100 }, /power of two/],
    ['bucketCount 8192', { bucketCount: 8192 }, /power of two/],
    ['bucketCount 1', { bucketCount: 1 }, /power of two/],
    ['negative seed', { hashSeed: -1 }, /hashSeed/],
    ['fractional seed', { hashSeed: 1.5 }, /hashSeed/],
    ['no rules', { rules: [] }, /at least one rule/],
    ['port 0', { rules: [{ port: 0, protocol: 'tcp', affinity: 'ClientIP' }] }, /rules\[0\]\.port/],
    ['port 70000', { rules: [{ port: 70000, protocol: 'tcp', affinity: 'ClientIP' }] }, /rules\[0\]\.port/],
    ['sctp', { rules: [{ port: 80, protocol: 'sctp', affinity: 'ClientIP' }] }, /protocol/],
    ['affinity None', { rules: [{ port: 80, protocol: 'tcp', affinity: 'None' }] }, /affinity/],
    [
      'repeated rule',
      {
        rules: [
          { port: 80, protocol: 'tcp', affinity: 'ClientIP' },
          { port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' },
        ],
      },
      /repeats tcp\/80/,
    ],
  ];
  it.each(bad)('rejects %s', (_label, patch, message) => {
    expect(() => checkFarm('apply', { ...good, ...patch })).toThrow(DataplaneInputError);
    expect(() => checkFarm('apply', { ...good, ...patch })).toThrow(message);
  });

  it('accepts the same port on tcp and udp', () => {
    const rules = [
      { port: 53, protocol: 'tcp' as const, affinity: 'ClientIP' as const },
      { port: 53, protocol: 'udp' as const, affinity: 'ClientIP' as const },
    ];
    expect(checkFarm('apply', { ...good, rules }).rules).toHaveLength(2);
  });
});

describe('checkBuckets', () => {
  it('sorts and de-duplicates', () => {
    expect(checkBuckets('x', [5, 1, 5, 0], 8)).toEqual([0, 1, 5]);
  });
  it.each([[[8]], [[-1]], [[1.5]], [['1']], [[NaN]]])('rejects %j for 8 buckets', (buckets) => {
    expect(() => checkBuckets('setBuckets', buckets, 8)).toThrow(/out of range/);
  });
  it('rejects a non-array', () => {
    expect(() => checkBuckets('setBuckets', 3, 8)).toThrow(/array/);
  });
});

describe('checkLease', () => {
  it.each([0, -5, 1.5, 86_400_001, Number.NaN])('rejects %p', (v) => {
    expect(() => checkLease('setBuckets', v)).toThrow(/leaseMs/);
  });
  it('accepts 1 ms and a day', () => {
    expect(checkLease('x', 1)).toBe(1);
    expect(checkLease('x', 86_400_000)).toBe(86_400_000);
  });
});

describe('isIPv4', () => {
  it.each(['0.0.0.0', '255.255.255.255', '10.1.2.3'])('accepts %s', (ip) => expect(isIPv4(ip)).toBe(true));
  it.each(['1.2.3', '1.2.3.4.5', '1.2.3.a', '', ' 1.2.3.4', '1.2.3.256'])('rejects %j', (ip) => expect(isIPv4(ip)).toBe(false));
});

describe('checkMode', () => {
  it('defaults to Flooding and keeps Directed', () => {
    expect(checkMode('apply', undefined)).toBe('Flooding');
    expect(checkFarm('apply', good).mode).toBe('Flooding');
    expect(checkFarm('apply', { ...good, mode: 'Directed' }).mode).toBe('Directed');
  });
  it.each(['directed', 'Auto', '', 1, null])('rejects %p', (m) => {
    expect(() => checkMode('apply', m)).toThrow(/mode .* must be Flooding or Directed/);
  });
});

describe('checkNodeMac', () => {
  // a node's own MAC is usually a vendor (globally administered) address
  it.each(['00:50:56:AB:CD:EF', '02:42:ac:11:00:02'])('accepts %s', (m) => expect(checkNodeMac('x', m)).toBe(m.toLowerCase()));
  it.each(['01:00:5e:00:00:01', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '00:50:56:ab:cd', 42])('rejects %p', (m) => {
    expect(() => checkNodeMac('x', m)).toThrow(DataplaneInputError);
  });
});
