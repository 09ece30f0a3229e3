import {
  defaultHashSeed,
  defaultVirtualMAC,
  formatErrors,
  ifnameProblem,
  parseAgentFile,
  parseFarmSpec,
  parseIPv4,
  parseServiceAddresses,
  type Result,
} from './index.js';
import type { FarmConfig } from '../types.js';

const minimal = () => ({
  virtualIPs: ['10.99.0.100'],
  interface: 'eth0',
  rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }],
});

function errorsOf<T>(r: Result<T>): string[] {
  return r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`);
}

function expectError<T>(r: Result<T>, field: string, fragment: string): void {
  expect(r.ok).toBe(false);
  const lines = errorsOf(r);
  const match = lines.find((l) => l.startsWith(`${field}: `) && l.includes(fragment));
  if (!match) throw new Error(`no error "${field}: …${fragment}…" in:\n${lines.join('\n')}`);
}

function ok(r: Result<FarmConfig>): FarmConfig {
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

describe('parseFarmSpec defaults', () => {
  test('fills every default', () => {
    const f = ok(parseFarmSpec(minimal(), { name: 'web' }));
    expect(f.name).toBe('web');
    expect(f.bucketCount).toBe(256);
    expect(f.heartbeat).toEqual({ intervalMs: 40, failureThresholdMs: 120, port: 7946 });
    expect(f.checkers).toEqual([]);
    expect(f.weights).toEqual({});
    expect(f.defaultWeight).toBe(1);
    expect(f.metricsPort).toBe(9477);
    expect(f.virtualMAC).toBe(defaultVirtualMAC('web'));
    expect(f.hashSeed).toBe(defaultHashSeed('web'));
  });

  test('rule protocol and affinity default to tcp / ClientIP', () => {
    const f = ok(parseFarmSpec({ ...minimal(), rules: [{ port: 443 }] }, { name: 'web' }));
    expect(f.rules).toEqual([{ port: 443, protocol: 'tcp', affinity: 'ClientIP' }]);
  });

  test('generated MAC is 02:fa + sha256 bytes, deterministic and name-dependent', () => {
    const a = defaultVirtualMAC('web');
    expect(a).toMatch(/^02:fa(:[0-9a-f]{2}){4}$/);
    expect(defaultVirtualMAC('web')).toBe(a);
    expect(defaultVirtualMAC('web2')).not.toBe(a);
    // sha256("web") = 4b5e57f6... (sha256sum): the first 4 bytes follow 02:fa
    expect(a).toBe('02:fa:4b:5e:57:f6');
  });

  test('hash seed derived from the name is a uint32 and differs between farms', () => {
    const s = defaultHashSeed('a');
    expect(Number.isInteger(s) && s >= 0 && s <= 0xffffffff).toBe(true);
    expect(defaultHashSeed('b')).not.toBe(s);
  });

  test('default threshold follows a long interval', () => {
    const f = ok(parseFarmSpec({ ...minimal(), heartbeat: { intervalMs: 300 } }, { name: 'web' }));
    expect(f.heartbeat.failureThresholdMs).toBe(900);
  });

  test('explicit values are kept, MAC lower-cased', () => {
    const f = ok(
      parseFarmSpec(
        {
          ...minimal(),
          virtualIPs: ['10.0.0.1', '10.0.0.2'],
          virtualMAC: '02:AA:00:00:00:01',
          bucketCount: 1024,
          hashSeed: 0x1234,
          heartbeat: { intervalMs: 50, failureThresholdMs: 300, port: 9000 },
          weights: { n1: 2, n2: 0 },
          defaultWeight: 3,
          agent: { metricsPort: 9100, image: 'vipfarm:dev' },
          nodeSelector: { role: 'edge' },
          tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }],
        },
        { name: 'web' },
      ),
    );
    expect(f.virtualMAC).toBe('02:aa:00:00:00:01');
    expect(f.bucketCount).toBe(1024);
    expect(f.hashSeed).toBe(0x1234);
    expect(f.heartbeat).toEqual({ intervalMs: 50, failureThresholdMs: 300, port: 9000 });
    expect(f.weights).toEqual({ n1: 2, n2: 0 });
    expect(f.defaultWeight).toBe(3);
    expect(f.metricsPort).toBe(9100);
  });

  test('checker defaults per type', () => {
    const f = ok(
      parseFarmSpec(
        {
          ...minimal(),
          checkers: [
            { name: 'port', type: 'tcp', port: 80 },
            { name: 'web', type: 'http', port: 8080 },
            { name: 'script', type: 'exec', command: ['/bin/true'] },
          ],
        },
        { name: 'web' },
      ),
    );
    expect(f.checkers[0]).toEqual({ name: 'port', type: 'tcp', host: '127.0.0.1', port: 80, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 2 });
    expect(f.checkers[1]).toMatchObject({ type: 'http', path: '/', expectStatus: 200, port: 8080 });
    expect(f.checkers[2]).toMatchObject({ type: 'exec', command: ['/bin/true'] });
    expect(f.checkers[2]).not.toHaveProperty('port');
  });
});

describe('parseFarmSpec errors name the field and the problem', () => {
  const cases: Array<[string, (s: Record<string, unknown>) => void, string, string]> = [
    ['missing VIPs', (s) => delete s.virtualIPs, 'spec.virtualIPs', 'is required'],
    ['empty VIPs', (s) => (s.virtualIPs = []), 'spec.virtualIPs', 'must not be empty'],
    ['bad VIP', (s) => (s.virtualIPs = ['10.0.0.256']), 'spec.virtualIPs[0]', 'IPv4'],
    ['leading zero VIP', (s) => (s.virtualIPs = ['10.0.0.01']), 'spec.virtualIPs[0]', 'IPv4'],
    ['VIP not a string', (s) => (s.virtualIPs = [10]), 'spec.virtualIPs[0]', 'got 10'],
    ['duplicate VIP', (s) => (s.virtualIPs = ['10.0.0.1', '10.0.0.1']), 'spec.virtualIPs[1]', 'duplicate of spec.virtualIPs[0]'],
    ['multicast VIP', (s) => (s.virtualIPs = ['239.1.1.1']), 'spec.virtualIPs[0]', 'unicast'],
    ['loopback VIP', (s) => (s.virtualIPs = ['127.0.0.1']), 'spec.virtualIPs[0]', 'loopback'],
    ['missing interface', (s) => delete s.interface, 'spec.interface', 'is required'],
    ['long interface', (s) => (s.interface = 'abcdefghijklmnop'), 'spec.interface', 'at most 15'],
    ['interface with slash', (s) => (s.interface = 'eth/0'), 'spec.interface', "'/'"],
    ['interface dot', (s) => (s.interface = '..'), 'spec.interface', 'must not be'],
    ['MAC syntax', (s) => (s.virtualMAC = '02:fa:00:00:00'), 'spec.virtualMAC', 'aa:bb:cc:dd:ee:ff'],
    ['multicast MAC', (s) => (s.virtualMAC = '03:00:00:00:00:01'), 'spec.virtualMAC', 'unicast'],
    ['zero MAC', (s) => (s.virtualMAC = '00:00:00:00:00:00'), 'spec.virtualMAC', 'must not be 00:00:00:00:00:00'],
    ['missing rules', (s) => delete s.rules, 'spec.rules', 'is required'],
    ['empty rules', (s) => (s.rules = []), 'spec.rules', 'must not be empty'],
    ['port 0', (s) => (s.rules = [{ port: 80 }, { port: 0 }]), 'spec.rules[1].port', 'must be 1..65535, got 0'],
    ['port 65536', (s) => (s.rules = [{ port: 65536 }]), 'spec.rules[0].port', 'got 65536'],
    ['port string', (s) => (s.rules = [{ port: '80' }]), 'spec.rules[0].port', 'must be an integer'],
    ['port fraction', (s) => (s.rules = [{ port: 80.5 }]), 'spec.rules[0].port', 'must be an integer'],
    ['protocol', (s) => (s.rules = [{ port: 80, protocol: 'sctp' }]), 'spec.rules[0].protocol', 'tcp or udp'],
    ['affinity', (s) => (s.rules = [{ port: 80, affinity: 'None' }]), 'spec.rules[0].affinity', 'ClientIP or ClientIPAndPort'],
    ['duplicate rule', (s) => (s.rules = [{ port: 80 }, { port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }]), 'spec.rules[1]', 'duplicate rule for 80/tcp'],
    ['rule typo', (s) => (s.rules = [{ port: 80, protocl: 'udp' }]), 'spec.rules[0].protocl', 'did you mean "protocol"'],
    ['bucketCount 100', (s) => (s.bucketCount = 100), 'spec.bucketCount', 'power of two'],
    ['bucketCount 1', (s) => (s.bucketCount = 1), 'spec.bucketCount', '2..4096'],
    ['bucketCount 8192', (s) => (s.bucketCount = 8192), 'spec.bucketCount', '2..4096'],
    ['hashSeed negative', (s) => (s.hashSeed = -1), 'spec.hashSeed', '0..4294967295'],
    ['hashSeed big', (s) => (s.hashSeed = 2 ** 32), 'spec.hashSeed', '0..4294967295'],
    ['interval too small', (s) => (s.heartbeat = { intervalMs: 10 }), 'spec.heartbeat.intervalMs', '20..'],
    ['threshold <= 2 interval', (s) => (s.heartbeat = { intervalMs: 100, failureThresholdMs: 200 }), 'spec.heartbeat.failureThresholdMs', 'greater than 2 * intervalMs (200)'],
    ['heartbeat port', (s) => (s.heartbeat = { port: 0 }), 'spec.heartbeat.port', '1..65535'],
    ['heartbeat typo', (s) => (s.heartbeat = { intervalMS: 100 }), 'spec.heartbeat.intervalMS', 'did you mean "intervalMs"'],
    ['checker type', (s) => (s.checkers = [{ name: 'a', type: 'ping' }]), 'spec.checkers[0].type', 'tcp, http or exec'],
    ['checker no port', (s) => (s.checkers = [{ name: 'a', type: 'tcp' }]), 'spec.checkers[0].port', 'is required for a tcp checker'],
    ['exec no command', (s) => (s.checkers = [{ name: 'a', type: 'exec' }]), 'spec.checkers[0].command', 'is required'],
    ['exec empty command', (s) => (s.checkers = [{ name: 'a', type: 'exec', command: [] }]), 'spec.checkers[0].command', 'must not be empty'],
    ['field of another type', (s) => (s.checkers = [{ name: 'a', type: 'tcp', port: 1, path: '/' }]), 'spec.checkers[0].path', 'not allowed for a tcp checker'],
    ['checker dup names', (s) => (s.checkers = [{ name: 'a', type: 'tcp', port: 1 }, { name: 'a', type: 'tcp', port: 2 }]), 'spec.checkers[1].name', 'duplicate checker name'],
    ['checker timeout >= interval', (s) => (s.checkers = [{ name: 'a', type: 'tcp', port: 1, intervalMs: 500, timeoutMs: 500 }]), 'spec.checkers[0].timeoutMs', 'less than intervalMs (500)'],
    ['checker rise 0', (s) => (s.checkers = [{ name: 'a', type: 'tcp', port: 1, rise: 0 }]), 'spec.checkers[0].rise', '1..100'],
    ['checker path', (s) => (s.checkers = [{ name: 'a', type: 'http', port: 1, path: 'x' }]), 'spec.checkers[0].path', "start with '/'"],
    ['checker status', (s) => (s.checkers = [{ name: 'a', type: 'http', port: 1, expectStatus: 99 }]), 'spec.checkers[0].expectStatus', '100..599'],
    ['checker name', (s) => (s.checkers = [{ name: 'Bad Name', type: 'tcp', port: 1 }]), 'spec.checkers[0].name', 'DNS label'],
    ['checker host', (s) => (s.checkers = [{ name: 'a', type: 'tcp', port: 1, host: '1.2.3' }]), 'spec.checkers[0].host', 'IPv4 or IPv6 address or a host name'],
    ['weight too big', (s) => (s.weights = { n1: 1001 }), 'spec.weights.n1', '0..1000'],
    ['weight fraction', (s) => (s.weights = { n1: 1.5 }), 'spec.weights.n1', 'integer'],
    ['weight node name', (s) => (s.weights = { N_1: 1 }), 'spec.weights.N_1', 'node name'],
    ['defaultWeight', (s) => (s.defaultWeight = -1), 'spec.defaultWeight', '0..1000'],
    ['metricsPort', (s) => (s.agent = { metricsPort: 70000 }), 'spec.agent.metricsPort', '1..65535'],
    ['unknown top field', (s) => (s.bucketcount = 256), 'spec.bucketcount', 'did you mean "bucketCount"'],
    ['nodeSelector value', (s) => (s.nodeSelector = { a: 1 }), 'spec.nodeSelector.a', 'must be a string'],
  ];
  test.each(cases)('%s', (_label, mutate, field, fragment) => {
    const spec: Record<string, unknown> = minimal();
    mutate(spec);
    expectError(parseFarmSpec(spec, { name: 'web' }), field, fragment);
  });

  test('bad farm names', () => {
    expectError(parseFarmSpec(minimal(), { name: 'Web' }), 'metadata.name', 'DNS label');
    expectError(parseFarmSpec(minimal(), { name: 'a'.repeat(41) }), 'metadata.name', 'at most 40');
    expectError(parseFarmSpec(minimal(), { name: '-a' }), 'metadata.name', 'DNS label');
  });

  test('collects all errors, not just the first', () => {
    const r = parseFarmSpec(
      { virtualIPs: ['x'], interface: '', rules: [{ port: 0 }], bucketCount: 3, heartbeat: { failureThresholdMs: 80 } },
      { name: 'web' },
    );
    const fields = errorsOf(r).map((l) => l.split(':')[0]);
    expect(fields).toEqual(
      expect.arrayContaining(['spec.virtualIPs[0]', 'spec.interface', 'spec.rules[0].port', 'spec.bucketCount', 'spec.heartbeat.failureThresholdMs']),
    );
  });

  test('a non-locally-administered MAC is refused, saying why (the kernel side refuses it too)', () => {
    expectError(parseFarmSpec({ ...minimal(), virtualMAC: '00:11:22:33:44:55' }, { name: 'web' }), 'spec.virtualMAC', 'locally administered');
  });

  test('custom path prefix', () => {
    expectError(parseFarmSpec({ ...minimal(), bucketCount: 3 }, { name: 'web', path: 'farm' }), 'farm.bucketCount', 'power of two');
  });

  test('never throws on garbage', () => {
    const garbage: unknown[] = [null, undefined, 1, 'x', [], [1], { rules: 'x' }, { virtualIPs: {}, rules: [null], checkers: [1, null, { type: 'http' }] },
      { heartbeat: [], weights: [], agent: 'x', tolerations: {} }, Object.create(null)];
    for (const g of garbage) {
      const r = parseFarmSpec(g, { name: 'web' });
      expect(r.ok).toBe(false);
      expect(formatErrors(r.ok ? [] : r.errors).length).toBeGreaterThan(0);
    }
  });
});

describe('IPv6 virtual IPs in the farm parser', () => {
  test('alone or mixed with IPv4, handed on in canonical text', () => {
    const f = ok(parseFarmSpec({ ...minimal(), virtualIPs: ['2001:DB8:0:0::100', '10.99.0.100', 'fd00:0:0:0:0:0:0:1'] }, { name: 'web' }));
    expect(f.virtualIPs).toEqual(['2001:db8::100', '10.99.0.100', 'fd00::1']);
  });

  test.each([
    ['fe80::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:10.0.0.1', 'must be an IPv6 address'],
  ])('%s is refused: %s', (ip, why) => {
    expectError(parseFarmSpec({ ...minimal(), virtualIPs: ['10.99.0.100', ip] }, { name: 'web' }), 'spec.virtualIPs[1]', why);
  });

  test('status.services IPs of either family, duplicates found by value', () => {
    const rules = [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }];
    const r = parseServiceAddresses([{ ip: '2001:DB8::200', rules }, { ip: '10.99.0.200', rules }], ['2001:db8::100']);
    expect(r.ok && r.value.map((s) => s.ip)).toEqual(['2001:db8::200', '10.99.0.200']);
    const dup = parseServiceAddresses([{ ip: '2001:db8:0::100', rules }], ['2001:db8::100']);
    expectError(dup, 'status.services[0].ip', 'served twice');
  });
});

describe('small syntaxes', () => {
  test.each([
    ['1.2.3.4', true], ['0.0.0.0', true], ['255.255.255.255', true], ['1.2.3', false], ['1.2.3.4.5', false],
    ['01.2.3.4', false], ['1.2.3.-4', false], ['a.b.c.d', false], ['1.2.3.4 ', false], ['256.1.1.1', false], ['', false],
  ])('parseIPv4(%j) valid=%s', (s, valid) => {
    expect(parseIPv4(s) !== undefined).toBe(valid);
  });
  test.each([['eth0', true], ['veth-n1.100', true], ['a'.repeat(15), true], ['a'.repeat(16), false], ['', false], ['a b', false], ['a:b', false]])(
    'ifname %j valid=%s',
    (s, valid) => {
      expect(ifnameProblem(s) === undefined).toBe(valid);
    },
  );
});

describe('formatErrors', () => {
  test('one line per error', () => {
    expect(formatErrors([{ field: 'spec.rules[1].port', message: 'must be 1..65535, got 0' }, { field: 'a', message: 'b' }])).toBe(
      'spec.rules[1].port: must be 1..65535, got 0\na: b',
    );
  });
});

const agentYaml = `
name: web
virtualIPs: [10.99.0.100]
interface: eth0
rules:
  - port: 80
weights: { n2: 5 }
node: { name: n1, address: 10.99.0.11 }
peers:
  - { name: n1, address: 10.99.0.11 }
  - { name: n2, address: 10.99.0.12 }
keyFile: /etc/vipfarm/key
`;

describe('parseAgentFile', () => {
  test('valid file, weight from the default', () => {
    const r = parseAgentFile(agentYaml);
    if (!r.ok) throw new Error(formatErrors(r.errors));
    expect(r.value.farm.name).toBe('web');
    expect(r.value.node).toEqual({ name: 'n1', address: '10.99.0.11', weight: 1 });
    expect(r.value.peers).toHaveLength(2);
    expect(r.value.keyFile).toBe('/etc/vipfarm/key');
    expect(r.value.farm.metricsPort).toBe(9477);
  });

  test('weight: node.weight ?? weights[node] ?? defaultWeight', () => {
    const fromMap = parseAgentFile(agentYaml.replace('name: n1, address: 10.99.0.11 }\npeers', 'name: n2, address: 10.99.0.12 }\npeers'));
    expect(fromMap.ok && fromMap.value.node.weight).toBe(5);
    const own = parseAgentFile(agentYaml.replace('{ name: n1, address: 10.99.0.11 }\npeers', '{ name: n1, address: 10.99.0.11, weight: 7 }\npeers'));
    expect(own.ok && own.value.node.weight).toBe(7);
    const dflt = parseAgentFile(`${agentYaml}defaultWeight: 4\n`);
    expect(dflt.ok && dflt.value.node.weight).toBe(4);
  });

  test('dual-stack peers: otherAddresses holds one address of the other family, canonical', () => {
    const dual = agentYaml.replace('{ name: n2, address: 10.99.0.12 }', "{ name: n2, address: 10.99.0.12, otherAddresses: ['FD00:0::12'] }");
    const r = parseAgentFile(dual);
    if (!r.ok) throw new Error(formatErrors(r.errors));
    expect(r.value.peers[1]).toEqual({ name: 'n2', address: '10.99.0.12', otherAddresses: ['fd00::12'] });
    expect(r.value.peers[0]).toEqual({ name: 'n1', address: '10.99.0.11' });
    expectError(parseAgentFile(dual.replace("['FD00:0::12']", "['10.99.0.13']")), 'peers[1].otherAddresses[0]', 'other family than address (ipv4)');
    expectError(parseAgentFile(dual.replace("['FD00:0::12']", "['fd00::12', 'fd00::13']")), 'peers[1].otherAddresses', 'at most one');
    expectError(parseAgentFile(dual.replace("['FD00:0::12']", "['fe80::12']")), 'peers[1].otherAddresses[0]', 'link-local');
    expectError(parseAgentFile(dual.replace("['FD00:0::12']", "'fd00::12'")), 'peers[1].otherAddresses', 'list');
  });

  test('IPv6 nodes: addresses in canonical text, and one family for the node and its peers', () => {
    const v6 = agentYaml
      .replace('node: { name: n1, address: 10.99.0.11 }', "node: { name: n1, address: 'FD00:0:0::11' }")
      .replace('{ name: n1, address: 10.99.0.11 }', "{ name: n1, address: 'fd00::11' }")
      .replace('{ name: n2, address: 10.99.0.12 }', "{ name: n2, address: 'fd00:0:0:0:0:0:0:12' }");
    const r = parseAgentFile(v6);
    if (!r.ok) throw new Error(formatErrors(r.errors));
    expect(r.value.node.address).toBe('fd00::11');
    expect(r.value.peers.map((p) => p.address)).toEqual(['fd00::11', 'fd00::12']);
    // the same address in another text is still the same peer
    expectError(parseAgentFile(v6.replace("'fd00:0:0:0:0:0:0:12'", "'fd00::0:11'")), 'peers[1].address', 'duplicate peer address');
    expectError(parseAgentFile(v6.replace("'fd00:0:0:0:0:0:0:12'", '10.99.0.12')), 'peers[1].address', "node.address's family (ipv6)");
    expectError(parseAgentFile(v6.replace("address: 'FD00:0:0::11' }", "address: 'fe80::11' }")), 'node.address', 'link-local');
  });

  test('top-level metricsPort overrides', () => {
    const r = parseAgentFile(`${agentYaml}metricsPort: 9999\n`);
    expect(r.ok && r.value.farm.metricsPort).toBe(9999);
  });

  test('YAML syntax error is a field error with a line', () => {
    const r = parseAgentFile('name: web\nrules: [\n');
    expectError(r, '(yaml)', 'line');
  });

  test('duplicate YAML keys are reported', () => {
    expectError(parseAgentFile('name: a\nname: b\n'), '(yaml)', 'duplicat');
  });

  test.each<[string, string, string, string]>([
    ['no name', 'name: web\n', 'name', 'is required'],
    ['bad name', 'name: web\n', 'name', 'DNS label'],
    ['no node', 'node: { name: n1, address: 10.99.0.11 }\n', 'node', 'is required'],
    ['no keyFile', 'keyFile: /etc/vipfarm/key\n', 'keyFile', 'is required'],
  ])('%s', (label, remove, field, fragment) => {
    const text = label === 'bad name' ? agentYaml.replace('name: web', 'name: Web_1') : agentYaml.replace(remove, '');
    expectError(parseAgentFile(text), field, fragment);
  });

  test.each<[string, string, string]>([
    ['  - { name: n2, address: 10.99.0.12 }', '  - { name: n2, address: 10.99.0.11 }', 'peers[1].address'],
    ['  - { name: n2, address: 10.99.0.12 }', '  - { name: n1, address: 10.99.0.13 }', 'peers[1].name'],
    ['node: { name: n1, address: 10.99.0.11 }', 'node: { name: n1, address: 10.99.0.x }', 'node.address'],
    ['node: { name: n1, address: 10.99.0.11 }', 'node: { name: n1, address: 10.99.0.11, weight: -2 }', 'node.weight'],
    ['node: { name: n1, address: 10.99.0.11 }', 'node: { name: n1, adress: 10.99.0.11 }', 'node.adress'],
    ['  - { name: n2, address: 10.99.0.12 }', '  - { name: n3, address: 10.99.0.11 }', 'peers[1].address'],
    ['  - { name: n1, address: 10.99.0.11 }', '  - { name: n1, address: 10.99.0.19 }', 'peers[0].address'],
    ['rules:', 'rulez:', 'rulez'],
  ])('peer / node error %#', (from, to, field) => {
    const r = parseAgentFile(agentYaml.replace(from, to));
    expect(r.ok).toBe(false);
    expect(errorsOf(r).some((l) => l.startsWith(`${field}: `))).toBe(true);
  });

  test('farm errors in the file have no "spec." prefix', () => {
    expectError(parseAgentFile(agentYaml.replace('port: 80', 'port: 0')), 'rules[0].port', 'must be 1..65535, got 0');
  });

  test('a non-string name is one error, not two', () => {
    const r = parseAgentFile(agentYaml.replace('name: web', 'name: 123'));
    expect(errorsOf(r).filter((l) => l.startsWith('name: '))).toEqual(['name: must be a string, got 123']);
  });

  test('an all-digit MAC needs no quotes (YAML 1.2, no sexagesimal numbers)', () => {
    const r = parseAgentFile(`${agentYaml}virtualMAC: 02:00:00:00:00:01\n`);
    expect(r.ok && r.value.farm.virtualMAC).toBe('02:00:00:00:00:01');
  });

  test('not a mapping', () => {
    expectError(parseAgentFile('- a\n- b\n'), '(top level)', 'mapping');
    expectError(parseAgentFile(''), '(top level)', 'mapping');
  });
});

describe('spec.mode', () => {
  const base = { virtualIPs: ['10.0.0.100'], interface: 'eth0', rules: [{ port: 80 }] };
  it('defaults to Flooding and accepts Directed', () => {
    const a = parseFarmSpec(base, { name: 'web' });
    const b = parseFarmSpec({ ...base, mode: 'Directed' }, { name: 'web' });
    expect(a.ok && a.value.mode).toBe('Flooding');
    expect(b.ok && b.value.mode).toBe('Directed');
  });
  it.each(['directed', 'Auto', 3])('refuses %p naming the field', (mode) => {
    const r = parseFarmSpec({ ...base, mode }, { name: 'web' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([expect.objectContaining({ field: 'spec.mode', message: expect.stringMatching(/Flooding or Directed/) })]);
  });
});

describe('spec.gratuitousARPIntervalMs', () => {
  const base = { virtualIPs: ['10.0.0.100'], interface: 'eth0', rules: [{ port: 80 }] };
  it('defaults to 60 s; 0 is off; the same key in the agent file', () => {
    const a = parseFarmSpec(base, { name: 'web' });
    const off = parseFarmSpec({ ...base, gratuitousARPIntervalMs: 0 }, { name: 'web' });
    const file = parseAgentFile(`${agentYaml}gratuitousARPIntervalMs: 1500\n`);
    expect(a.ok && a.value.gratuitousARPIntervalMs).toBe(60_000);
    expect(off.ok && off.value.gratuitousARPIntervalMs).toBe(0);
    expect(file.ok && file.value.farm.gratuitousARPIntervalMs).toBe(1500);
  });
  it.each([
    [500, /0 \(off\) or between 1000 and 3600000, got 500/],
    [3_600_001, /0..3600000/],
    [1.5, /must be an integer/],
    ['60s', /must be an integer/],
  ])('refuses %p naming the field', (ms, message) => {
    const r = parseFarmSpec({ ...base, gratuitousARPIntervalMs: ms }, { name: 'web' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([expect.objectContaining({ field: 'spec.gratuitousARPIntervalMs', message: expect.stringMatching(message) })]);
  });
});

describe('parseServiceAddresses (status.services)', () => {
  const rules = [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }];
  test('Cluster entries carry no node list; Local ones their eligible nodes, sorted and unique', () => {
    const r = parseServiceAddresses([
      { ip: '10.0.0.200', rules, services: ['a/b'], externalTrafficPolicy: 'Cluster' },
      { ip: '10.0.0.201', rules, services: ['a/c'], externalTrafficPolicy: 'Local', nodes: ['n3', 'n1', 'n3'] },
      { ip: '10.0.0.202', rules, externalTrafficPolicy: 'Local', nodes: [] },
    ], ['10.0.0.100']);
    expect(r.ok && r.value).toEqual([
      { ip: '10.0.0.200', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }] },
      { ip: '10.0.0.201', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], nodes: ['n1', 'n3'] },
      { ip: '10.0.0.202', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIPAndPort' }], nodes: [] },
    ]);
  });
  test.each([
    [{ ip: '10.0.0.201', rules, externalTrafficPolicy: 'Local' }, 'status.services[0].nodes: externalTrafficPolicy Local needs the list of nodes'],
    [{ ip: '10.0.0.201', rules, nodes: ['n1'] }, 'status.services[0].nodes: only externalTrafficPolicy Local restricts the nodes'],
    [{ ip: '10.0.0.201', rules, externalTrafficPolicy: 'Nearest', nodes: ['n1'] }, 'status.services[0].externalTrafficPolicy: must be Cluster or Local, got "Nearest"'],
    [{ ip: '10.0.0.201', rules, externalTrafficPolicy: 'Local', nodes: ['N_1'] }, 'status.services[0].nodes[0]: must be a DNS subdomain'],
    [{ ip: '10.0.0.201', rules, externalTrafficPolicy: 'Local', nodes: 'n1' }, 'status.services[0].nodes: must be a list, got "n1"'],
  ])('refused: %j', (entry, message) => {
    const r = parseServiceAddresses([entry], ['10.0.0.100']);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatErrors(r.errors)).toContain(message);
  });
});
