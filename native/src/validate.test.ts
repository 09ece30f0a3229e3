import type { DataplaneFarm } from '../../common/src/types.js';
import { formatErrors } from '../../common/src/config/collector.js';
import { parseFarmSpec } from '../../common/src/config/farm-spec.js';
import { VALIDATION_CASES, caseName, caseSpec, type ValidationCase } from '../../common/src/config/validation-cases.js';
import { checkBuckets, checkFarm, checkLease, checkMode, checkNodeMac, DataplaneInputError } from './validate.js';

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
    ['VIP duplicate', { virtualIPs: ['10.0.0.1', '10.0.0.1'] }, /duplicates virtualIPs\[0\]/],
    ['MAC short', { virtualMAC: '02:fa:00:00:01' }, /virtualMAC/],
    ['MAC dashes', { virtualMAC: '02-fa-00-00-00-01' }, /virtualMAC/],
    ['MAC multicast', { virtualMAC: '03:fa:00:00:00:01' }, /unicast/],
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

// The shared table (common/src/config/validation-cases.ts) against the checks run before
// any native call: a farm the parser accepts is one the kernel side accepts, and a
// refused value of a kernel field is refused here too, naming the field.
const KERNEL_FIELDS = ['interface', 'virtualIPs', 'virtualMAC', 'rules', 'bucketCount', 'hashSeed'];
/** The case's farm as the kernel side gets it: the API server's defaults for the rest. */
function dataplaneOf(c: ValidationCase): Record<string, unknown> {
  const spec = caseSpec(c);
  const rules = Array.isArray(spec.rules)
    ? spec.rules.map((r: Record<string, unknown>) => ({ protocol: 'tcp', affinity: 'ClientIP', ...r }))
    : spec.rules;
  return { ...good, ...Object.fromEntries(KERNEL_FIELDS.filter((k) => k in spec).map((k) => [k, spec[k]])), rules, name: caseName(c) };
}
const kernelCase = (c: ValidationCase): boolean =>
  c.refused === undefined || c.refused.field === 'metadata.name' || KERNEL_FIELDS.includes(c.refused.field.replace(/^spec\./, '').replace(/[[.].*$/, ''));

describe('shared validation table: the native checks', () => {
  const valid = VALIDATION_CASES.filter((c) => !c.refused);
  const refused = VALIDATION_CASES.filter((c) => c.refused && kernelCase(c));
  test('the table has kernel rows of both kinds', () => {
    expect(valid.length).toBeGreaterThan(10);
    expect(refused.length).toBeGreaterThan(20);
  });
  test.each(valid.map((c) => [c.label, c] as const))('%s is accepted, as the parser returns it and as written', (_l, c) => {
    const parsed = parseFarmSpec(caseSpec(c), { name: caseName(c) });
    if (!parsed.ok) throw new Error(formatErrors(parsed.errors));
    expect(checkFarm('apply', parsed.value).name).toBe(caseName(c));
    expect(checkFarm('apply', dataplaneOf(c)).name).toBe(caseName(c));
  });
  test.each(refused.map((c) => [c.label, c] as const))('%s is refused, naming the field', (_l, c) => {
    const field = c.refused!.field === 'metadata.name' ? 'farm name' : c.refused!.field.replace(/^spec\./, '');
    expect(() => checkFarm('apply', dataplaneOf(c))).toThrow(DataplaneInputError);
    expect(() => checkFarm('apply', dataplaneOf(c))).toThrow(field);
  });
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
