// The one table of farm values, valid and invalid, that every validator of a farm is tested
// against: the CRD's CEL and OpenAPI rules on a real API server (test/operator/crd.test.ts),
// the shared parser (./validation-cases.test.ts) and the native wrapper's checks
// (native/src/validate.test.ts). A rule decided in ./syntax.ts and mirrored in the CRD
// cannot drift without one of the three failing on a row here.

/** A FarmCluster spec that every validator accepts; each case replaces top-level fields of it. */
export const BASE_SPEC = {
  virtualIPs: ['10.99.0.100'],
  interface: 'eth0',
  rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }],
} as const;

export interface ValidationCase {
  /** Short and unique; also part of the FarmCluster's name on the API server. */
  label: string;
  /** Top-level spec fields replacing those of BASE_SPEC. */
  spec?: Record<string, unknown>;
  /** The farm's name (metadata.name); a name derived from the label when absent. */
  name?: string;
  /** Absent: valid everywhere. Else where the parser reports it and what the API server says. */
  refused?: {
    /** Field of the parser's error, e.g. "spec.virtualMAC" (native names it without "spec."). */
    field: string;
    /** Text the API server's refusal contains (the CEL message, or the field for OpenAPI checks). */
    apiServer: string;
  };
}

const MAC = (virtualMAC: string): Record<string, unknown> => ({ virtualMAC });
const IFACE = (iface: string): Record<string, unknown> => ({ interface: iface });
const VIP = (...virtualIPs: string[]): Record<string, unknown> => ({ virtualIPs });
const BUCKETS = (bucketCount: number): Record<string, unknown> => ({ bucketCount });
const SEED = (hashSeed: number): Record<string, unknown> => ({ hashSeed });
const RULES = (...ports: [number, string?, string?][]): Record<string, unknown> => ({
  rules: ports.map(([port, protocol = 'tcp', affinity = 'ClientIP']) => ({ port, protocol, affinity })),
});

const refusedMAC = (label: string, mac: string, apiServer: string): ValidationCase => ({
  label, spec: MAC(mac), refused: { field: 'spec.virtualMAC', apiServer },
});
const refusedIface = (label: string, iface: string, apiServer = 'interface must be a Linux interface name'): ValidationCase => ({
  label, spec: IFACE(iface), refused: { field: 'spec.interface', apiServer },
});
const refusedVIP = (label: string, ip: string, apiServer: string): ValidationCase => ({
  label, spec: VIP(ip), refused: { field: 'spec.virtualIPs[0]', apiServer },
});
const V6_FORM = 'must be an IPv6 address in hex groups';
const V6_UNICAST = 'must be a unicast IPv6 address';
const HOST_FORM = 'host must be an IPv4 or IPv6 address or a host name';
const V6_HOST_FORM = 'an IPv6 host must be hex groups without brackets';
const V6_HOST_UNICAST = 'an IPv6 host must be ::1 or a unicast address';
const BUCKET_MSG = 'bucketCount must be a power of two between 2 and 4096';

export const VALIDATION_CASES: readonly ValidationCase[] = [
  // --- valid
  { label: 'base' },
  { label: 'mac-02', spec: MAC('02:fa:00:00:00:01') },
  { label: 'mac-upper', spec: MAC('02:FA:00:00:00:01') },
  { label: 'mac-06', spec: MAC('06:00:00:00:00:00') },
  { label: 'mac-0a', spec: MAC('0a:11:22:33:44:55') },
  { label: 'mac-fe', spec: MAC('fe:ff:ff:ff:ff:ff') },
  { label: 'iface-vlan', spec: IFACE('veth-n1.100') },
  { label: 'iface-15', spec: IFACE('abcdefghijklmno') },
  { label: 'iface-at', spec: IFACE('veth_a@if2') },
  { label: 'iface-plus', spec: IFACE('br+x') },
  { label: 'vip-low', spec: VIP('1.0.0.1') },
  { label: 'vip-high', spec: VIP('223.255.255.254') },
  { label: 'vip-two', spec: VIP('10.99.0.100', '192.168.1.1') },
  { label: 'vip6', spec: VIP('2001:db8::100') },
  { label: 'vip6-full', spec: VIP('2001:0db8:0000:0000:0000:0000:0000:0100') },
  { label: 'vip6-upper', spec: VIP('2001:DB8::A') },
  { label: 'vip6-ula', spec: VIP('fd00:0:99::100') },
  { label: 'vip6-seven-groups', spec: VIP('1:2:3:4:5:6:7::') },
  { label: 'vip6-nat64', spec: VIP('64:ff9b::a63:64') },
  { label: 'vip6-two', spec: VIP('2001:db8::100', '2001:db8::101') },
  { label: 'vip-dual-stack', spec: VIP('10.99.0.100', '2001:db8::100', '10.99.0.101') },
  { label: 'buckets-2', spec: BUCKETS(2) },
  { label: 'buckets-4096', spec: BUCKETS(4096) },
  { label: 'seed-0', spec: SEED(0) },
  { label: 'seed-max', spec: SEED(4294967295) },
  { label: 'port-max', spec: RULES([65535, 'tcp', 'ClientIPAndPort']) },
  { label: 'tcp-and-udp', spec: RULES([53, 'tcp'], [53, 'udp']) },
  { label: 'name-40', name: 'a'.repeat(40) },
  { label: 'heartbeat', spec: { heartbeat: { intervalMs: 200, failureThresholdMs: 401 } } },
  {
    label: 'checkers',
    spec: {
      checkers: [
        { name: 'a', type: 'tcp', port: 1 },
        { name: 'b', type: 'http', port: 8080, path: '/healthz', expectStatus: 204 },
        { name: 'c', type: 'exec', command: ['true'] },
      ],
    },
  },
  { label: 'weights', spec: { weights: { 'node-1.example': 0 } } },
  { label: 'mode-directed', spec: { mode: 'Directed' } },
  { label: 'mode-flooding', spec: { mode: 'Flooding' } },
  { label: 'garp-off', spec: { gratuitousARPIntervalMs: 0 } },
  { label: 'garp-min', spec: { gratuitousARPIntervalMs: 1000 } },
  { label: 'garp-max', spec: { gratuitousARPIntervalMs: 3_600_000 } },
  ...[999, 1, -1, 3_600_001].map((ms): ValidationCase => ({
    label: `garp-refused-${ms}`, spec: { gratuitousARPIntervalMs: ms },
    refused: { field: 'spec.gratuitousARPIntervalMs', apiServer: 'gratuitousARPIntervalMs must be 0 (off) or between 1000 and 3600000' },
  })),
  { label: 'mode-lowercase', spec: { mode: 'directed' }, refused: { field: 'spec.mode', apiServer: 'Unsupported value' } },
  { label: 'pool', spec: { addresses: ['10.99.1.0/28', '10.99.0.200-10.99.0.210'], servicesWithoutClass: true } },
  { label: 'pool6', spec: { virtualIPs: ['2001:db8::100'], addresses: ['2001:db8:1::/120', '2001:db8::200-2001:DB8::2ff', 'fd00::5'] } },
  { label: 'pool-dual', spec: { virtualIPs: ['10.99.0.100', '2001:db8::100'], addresses: ['10.99.1.0/28', '2001:db8:1::/112'] } },
  { label: 'pool6-full', spec: { addresses: ['2001:0db8:0000:0000:0000:0000:0000:0200-2001:0db8:0000:0000:0000:0000:0000:02ff'] } },

  // --- the virtual MAC: unicast and locally administered, everywhere
  refusedMAC('mac-global', '00:11:22:33:44:55', 'virtualMAC must be a locally administered MAC'),
  refusedMAC('mac-global-04', '04:00:00:00:00:01', 'virtualMAC must be a locally administered MAC'),
  refusedMAC('mac-zero', '00:00:00:00:00:00', 'virtualMAC must be a locally administered MAC'),
  refusedMAC('mac-multicast', '03:fa:00:00:00:01', 'virtualMAC must be a unicast MAC'),
  refusedMAC('mac-ipv4-mcast', '01:00:5e:00:00:01', 'virtualMAC must be a unicast MAC'),
  refusedMAC('mac-broadcast', 'ff:ff:ff:ff:ff:ff', 'virtualMAC must be a unicast MAC'),
  refusedMAC('mac-short', '02:fa:00:00:01', 'virtualMAC must be a MAC address'),
  refusedMAC('mac-dashes', '02-fa-00-00-00-01', 'virtualMAC must be a MAC address'),
  refusedMAC('mac-hex', '02:fa:00:00:00:0g', 'virtualMAC must be a MAC address'),

  // --- the interface name
  refusedIface('iface-colon', 'eth0:1'),
  refusedIface('iface-slash', 'eth/0'),
  refusedIface('iface-space', 'eth 0'),
  refusedIface('iface-tab', 'eth\t0'),
  refusedIface('iface-dot', '.'),
  refusedIface('iface-dotdot', '..'),
  refusedIface('iface-unicode', 'éth0'),
  refusedIface('iface-16', 'abcdefghijklmnop', 'spec.interface'),
  refusedIface('iface-empty', '', 'spec.interface'),

  // --- virtual IPs
  refusedVIP('vip-octet', '10.99.0.300', 'must be an IPv4 address in dotted-quad form'),
  refusedVIP('vip-leading-zero', '10.0.0.01', 'must be an IPv4 address in dotted-quad form'),
  refusedVIP('vip-three', '10.0.1', 'must be an IPv4 address in dotted-quad form'),
  refusedVIP('vip-zero-net', '0.1.2.3', 'must be a unicast IPv4 address'),
  refusedVIP('vip-loopback', '127.0.0.5', 'must be a unicast IPv4 address'),
  refusedVIP('vip-multicast', '224.0.0.1', 'must be a unicast IPv4 address'),
  refusedVIP('vip-broadcast', '255.255.255.255', 'must be a unicast IPv4 address'),
  refusedVIP('vip6-unspecified', '::', V6_UNICAST),
  refusedVIP('vip6-unspecified-full', '0:0:0:0:0:0:0:0', V6_UNICAST),
  refusedVIP('vip6-loopback', '::1', V6_UNICAST),
  refusedVIP('vip6-link-local', 'fe80::1', V6_UNICAST),
  refusedVIP('vip6-link-local-high', 'febf::1', V6_UNICAST),
  refusedVIP('vip6-multicast', 'ff02::1', V6_UNICAST),
  refusedVIP('vip6-multicast-global', 'ff0e::101', V6_UNICAST),
  refusedVIP('vip6-compatible', '::a63:64', V6_UNICAST),
  refusedVIP('vip6-mapped', '::ffff:a63:64', V6_FORM),
  refusedVIP('vip6-mapped-dotted', '::ffff:10.99.0.100', V6_FORM),
  refusedVIP('vip6-embedded-dotted', '64:ff9b::10.99.0.100', V6_FORM),
  refusedVIP('vip6-zone', 'fe80::1%eth0', V6_FORM),
  refusedVIP('vip6-two-gaps', '2001:db8::1::2', V6_FORM),
  refusedVIP('vip6-seven', '2001:db8:0:0:0:0:1', V6_FORM),
  refusedVIP('vip6-nine', '2001:db8:0:0:0:0:0:0:1', V6_FORM),
  refusedVIP('vip6-long-group', '2001:db8::10000', V6_FORM),
  refusedVIP('vip6-hex', '2001:db8::g', V6_FORM),
  refusedVIP('vip6-bracket', '[2001:db8::1]', V6_FORM),
  refusedVIP('vip6-prefix', '2001:db8::1/128', V6_FORM),
  refusedVIP('vip6-40', '2001:0db8:0000:0000:0000:0000:0000:00001', 'spec.virtualIPs[0]'),
  {
    label: 'vip6-duplicate-text',
    spec: VIP('2001:db8::1', '2001:DB8:0::1'),
    refused: { field: 'spec.virtualIPs[1]', apiServer: 'virtualIPs must not repeat an address' },
  },
  {
    label: 'vip6-duplicate-full',
    spec: VIP('10.0.0.1', '2001:db8::1', '2001:0db8:0:0:0:0:0:0001'),
    refused: { field: 'spec.virtualIPs[2]', apiServer: 'virtualIPs must not repeat an address' },
  },
  { label: 'vip-duplicate', spec: VIP('10.0.0.1', '10.0.0.1'), refused: { field: 'spec.virtualIPs[1]', apiServer: 'Duplicate value' } },
  { label: 'vip-none', spec: VIP(), refused: { field: 'spec.virtualIPs', apiServer: 'spec.virtualIPs' } },

  // --- buckets and seed
  { label: 'buckets-100', spec: BUCKETS(100), refused: { field: 'spec.bucketCount', apiServer: BUCKET_MSG } },
  { label: 'buckets-8192', spec: BUCKETS(8192), refused: { field: 'spec.bucketCount', apiServer: BUCKET_MSG } },
  { label: 'buckets-1', spec: BUCKETS(1), refused: { field: 'spec.bucketCount', apiServer: BUCKET_MSG } },
  { label: 'buckets-0', spec: BUCKETS(0), refused: { field: 'spec.bucketCount', apiServer: BUCKET_MSG } },
  { label: 'seed-negative', spec: SEED(-1), refused: { field: 'spec.hashSeed', apiServer: 'spec.hashSeed' } },
  { label: 'seed-2-32', spec: SEED(4294967296), refused: { field: 'spec.hashSeed', apiServer: 'spec.hashSeed' } },

  // --- rules
  { label: 'port-zero', spec: RULES([0]), refused: { field: 'spec.rules[0].port', apiServer: 'port must be between 1 and 65535' } },
  { label: 'port-70000', spec: RULES([70000]), refused: { field: 'spec.rules[0].port', apiServer: 'port must be between 1 and 65535' } },
  { label: 'protocol-sctp', spec: RULES([80, 'sctp']), refused: { field: 'spec.rules[0].protocol', apiServer: 'Unsupported value: "sctp"' } },
  { label: 'affinity-none', spec: RULES([80, 'tcp', 'None']), refused: { field: 'spec.rules[0].affinity', apiServer: 'Unsupported value: "None"' } },
  {
    label: 'rule-duplicate',
    spec: RULES([80, 'tcp', 'ClientIP'], [80, 'tcp', 'ClientIPAndPort']),
    refused: { field: 'spec.rules[1]', apiServer: 'each port and protocol may appear only once' },
  },
  { label: 'rules-none', spec: { rules: [] }, refused: { field: 'spec.rules', apiServer: 'spec.rules' } },

  // --- the farm's name (kernel objects are named after it)
  { label: 'name-41', name: 'a'.repeat(41), refused: { field: 'metadata.name', apiServer: 'metadata.name must be a DNS label of at most 40 characters' } },
  { label: 'name-dot', name: 'web.x', refused: { field: 'metadata.name', apiServer: 'metadata.name must be a DNS label of at most 40 characters' } },

  // --- heartbeat and checkers (not the kernel's business)
  {
    label: 'threshold',
    spec: { heartbeat: { intervalMs: 200, failureThresholdMs: 300 } },
    refused: { field: 'spec.heartbeat.failureThresholdMs', apiServer: 'failureThresholdMs must be greater than 2 * heartbeat.intervalMs' },
  },
  {
    label: 'threshold-default-interval',
    spec: { heartbeat: { failureThresholdMs: 80 } },
    refused: { field: 'spec.heartbeat.failureThresholdMs', apiServer: 'failureThresholdMs must be greater than 2 * heartbeat.intervalMs' },
  },
  {
    label: 'checker-port',
    spec: { checkers: [{ name: 'web', type: 'tcp' }] },
    refused: { field: 'spec.checkers[0].port', apiServer: 'tcp and http checkers need a port' },
  },
  {
    label: 'checker-exec',
    spec: { checkers: [{ name: 'x', type: 'exec' }] },
    refused: { field: 'spec.checkers[0].command', apiServer: 'exec checkers need a command' },
  },
  {
    label: 'checker-dup',
    spec: { checkers: [{ name: 'a', type: 'tcp', port: 1 }, { name: 'a', type: 'tcp', port: 2 }] },
    refused: { field: 'spec.checkers[1].name', apiServer: 'names must be unique' },
  },
  {
    label: 'checker-timeout',
    spec: { checkers: [{ name: 'a', type: 'tcp', port: 1, intervalMs: 1000, timeoutMs: 1000 }] },
    refused: { field: 'spec.checkers[0].timeoutMs', apiServer: 'timeoutMs must be less than intervalMs' },
  },
  {
    label: 'checker-http-field-on-tcp',
    spec: { checkers: [{ name: 'a', type: 'tcp', port: 1, path: '/x' }] },
    refused: { field: 'spec.checkers[0].path', apiServer: 'path, expectStatus and bodyContains are only for http checkers' },
  },

  // checker hosts: IPv4, IPv6 (no brackets; loopback ::1 too) or a host name
  ...[['127.0.0.1'], ['::1'], ['fd00::5'], ['FD00:0:0::5'], ['2001:db8:0:0:0:0:0:7'], ['app.internal'], ['localhost']].map(([host]) => ({
    label: `checker-host-${host!.replace(/[^0-9a-zA-Z]+/g, '-').toLowerCase()}`, spec: { checkers: [{ name: 'a', type: 'http', port: 8080, host }] },
  })),
  ...([
    ['v4-short', '1.2.3', HOST_FORM],
    ['v4-leading-zero', '10.0.0.01', HOST_FORM],
    ['underscore', 'app_1', HOST_FORM],
    ['v6-brackets', '[::1]', V6_HOST_FORM],
    ['v6-zone', 'fe80::1%eth0', V6_HOST_FORM],
    ['v6-dotted', '::ffff:127.0.0.1', V6_HOST_FORM],
    ['v6-two-gaps', 'fd00::1::2', V6_HOST_FORM],
    ['v6-mapped', '::ffff:7f00:1', V6_HOST_FORM],
    ['v6-unspecified', '::', V6_HOST_UNICAST],
    ['v6-compatible', '::5', V6_HOST_UNICAST],
    ['v6-link-local', 'fe80::1', V6_HOST_UNICAST],
    ['v6-multicast', 'ff02::1', V6_HOST_UNICAST],
  ] as const).map(([label, host, apiServer]): ValidationCase => ({
    label: `checker-host-${label}`, spec: { checkers: [{ name: 'a', type: 'tcp', port: 1, host }] }, refused: { field: 'spec.checkers[0].host', apiServer },
  })),

  // --- LoadBalancer address pool (the operator's business)
  {
    label: 'pool-syntax',
    spec: { addresses: ['10.99.0.200..10.99.0.210'] },
    refused: { field: 'spec.addresses[0]', apiServer: 'must be an IPv4 address, a range 10.0.0.200-10.0.0.220 or a CIDR' },
  },
  {
    label: 'pool-prefix',
    spec: { addresses: ['10.99.1.0/33'] },
    refused: { field: 'spec.addresses[0]', apiServer: 'must be an IPv4 address, a range 10.0.0.200-10.0.0.220 or a CIDR' },
  },
  ...['2001:db8::1..2001:db8::2', '2001:db8::/129', '10.99.0.200-2001:db8::1', '2001:db8::1-10.99.0.200', 'fe80::1%eth0', '::ffff:10.0.0.0/120', '2001:db8::/120-2001:db8::1:0', '2001:db8::g']
    .map((entry, i): ValidationCase => ({ label: `pool6-syntax-${i}`, spec: { addresses: [entry] }, refused: { field: 'spec.addresses[0]', apiServer: 'must be an IPv6 address, a range' } })),
  { label: 'pool-empty', spec: { addresses: [] }, refused: { field: 'spec.addresses', apiServer: 'spec.addresses: Invalid value' } },
  {
    label: 'unclassed-no-pool',
    spec: { servicesWithoutClass: true },
    refused: { field: 'spec.servicesWithoutClass', apiServer: 'spec.servicesWithoutClass needs spec.addresses' },
  },
];

/** The FarmCluster name a case is created under on the API server. */
export function caseName(c: ValidationCase): string {
  return c.name ?? `case-${c.label}`;
}

/** The spec a case stands for. */
export function caseSpec(c: ValidationCase): Record<string, unknown> {
  return { ...BASE_SPEC, ...c.spec };
}
