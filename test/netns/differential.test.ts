// Differential test: the same farm loaded with `nft -f` (as DESIGN.md writes it) on one
// node and through the native module on another must give the same kernel bytecode,
// rule for rule, as `nft --debug=netlink list` prints it.
import type { DataplaneFarm, Rule } from '../../common/src/types.js';
import { FARM_MAC } from '../../lab/netns/farm.js';
import { Driver } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

let tb: Testbed;
let driver: Driver | undefined;

beforeAll(() => {
  tb = createTestbed({ nodes: 2, clients: 0 });
});
afterAll(() => {
  driver?.close();
  tb?.destroy();
});

/** the farm as nft text, written independently of nft_farm.cc; each VIP in its family */
function farmToNft(f: DataplaneFarm): string {
  const ipOf = (vip: string): string => (vip.includes(':') ? 'ip6' : 'ip');
  const hashOf = (vip: string, r: Rule): string =>
    `jhash ${ipOf(vip)} saddr${r.affinity === 'ClientIPAndPort' ? ` . ${r.protocol} sport` : ''} mod ${f.bucketCount} seed 0x${f.hashSeed.toString(16)}`;
  const rules: string[] = [];
  // chain raw, before conntrack: SYNs of other nodes' buckets, TCP only
  const raw: string[] = [];
  for (const vip of f.virtualIPs) {
    for (const r of f.rules) {
      const m = `${ipOf(vip)} daddr ${vip} ${r.protocol} dport ${r.port}`;
      const c = (stage: string): string => `comment "vipfarm ${vip} ${r.port} ${r.protocol} ${stage}"`;
      const syn = r.protocol === 'tcp' ? 'tcp flags & (syn|ack) == syn ' : '';
      rules.push(`${m} ct state established,related counter accept ${c('established')}`);
      // timed handoff: the bucket . arrival time in a `hold` interval
      rules.push(`${m} ${syn}${hashOf(vip, r)} . meta time @hold counter drop ${c('hold')}`);
      rules.push(`${m} ${syn}${hashOf(vip, r)} @owned counter accept ${c('owned')}`);
      rules.push(`${m} ${hashOf(vip, r)} @orphan counter accept ${c('orphan')}`);
      rules.push(`${m} counter drop ${c('drop')}`);
      if (r.protocol === 'tcp') {
        raw.push(`${m} ${syn}${hashOf(vip, r)} != @owned counter drop ${c('foreign')}`);
      }
    }
  }
  // after every VIP x rule pair: what no rule covers, per VIP (one echo answerer, then drop)
  // (IPv6: neighbour discovery to the VIP, RS..redirect = 133-137, is never dropped)
  for (const vip of f.virtualIPs) {
    const m = `${ipOf(vip)} daddr ${vip}`;
    const icmp = vip.includes(':') ? 'icmpv6' : 'icmp';
    const c = (stage: string): string => `comment "vipfarm ${vip} ${stage}"`;
    rules.push(`${m} meta iiftype loopback counter accept ${c('local accept')}`);
    if (vip.includes(':')) rules.push(`${m} icmpv6 type 133-137 counter accept ${c('neighbour discovery')}`);
    rules.push(`${m} ${icmp} type echo-request jhash ${ipOf(vip)} saddr mod ${f.bucketCount} seed 0x${f.hashSeed.toString(16)} @owned counter accept ${c('echo owned')}`);
    rules.push(`${m} ${icmp} type echo-request counter drop ${c('echo drop')}`);
    rules.push(`${m} ct state established,related counter accept ${c('other established')}`);
    rules.push(`${m} counter drop ${c('other drop')}`);
  }
    // numgen, not jhash: nft 1.0.6 has no typeof data for jhash (listing such a set crashes);
  // numgen inc mod N is the same 32-bit integer key, and lists and reloads.
  const set = (name: string): string => `  set ${name} {\n    typeof numgen inc mod ${f.bucketCount}\n    flags timeout\n  }\n`;
  const timed = (name: string): string => `  set ${name} {\n    typeof numgen inc mod ${f.bucketCount} . meta time\n    flags interval,timeout\n  }\n`;
  return (
    `table netdev vipfarm_${f.name}_in {\n  chain ingress {\n    type filter hook ingress device ${f.interface} priority -500; policy accept;\n` +
    `    ether daddr ${f.virtualMAC} meta pkttype set host counter comment "vipfarm virtual-mac"\n  }\n}\n` +
    `table inet vipfarm_${f.name} {\n${set('owned')}${set('orphan')}${timed('hold')}  chain pre {\n` +
    `    type filter hook prerouting priority -150; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n` +
    `  chain raw {\n    type filter hook prerouting priority raw; policy accept;\n${raw.map((r) => `    ${r}\n`).join('')}  }\n}\n`
  );
}

/** bytecode listing without handles (they differ between two loads) */
function bytecode(netns: string, what: string[]): string {
  return tb
    .exec(netns, ['nft', '--debug=netlink', 'list', ...what])
    .split('\n')
    .map((l) => l.replace(/^((?:inet|netdev) vipfarm_\S+ (?:pre|raw|ingress))( \d+)+$/, '$1'))
    .join('\n');
}

const FAMILIES = {
  ipv4: () => [tb.vip(0), tb.vip(1)],
  ipv6: () => [tb.vip6(0), tb.vip6(1)],
  'dual-stack': () => [tb.vip(0), tb.vip6(0)],
};

test.each(Object.keys(FAMILIES) as (keyof typeof FAMILIES)[])('%s: native apply == nft -f of the same farm, expression for expression', async (family) => {
  const vips = FAMILIES[family]();
  const farm: DataplaneFarm = {
    name: 'tf',
    interface: 'eth0',
    virtualIPs: vips,
    virtualMAC: FARM_MAC,
    rules: [
      { port: 80, protocol: 'tcp', affinity: 'ClientIP' },
      { port: 443, protocol: 'tcp', affinity: 'ClientIPAndPort' },
      { port: 53, protocol: 'udp', affinity: 'ClientIP' },
      { port: 5353, protocol: 'udp', affinity: 'ClientIPAndPort' },
    ],
    bucketCount: 1024,
    hashSeed: 0xbeef,
  };
  const [cliNode, nativeNode] = tb.nodes;
  for (const n of tb.nodes) tb.exec(n.netns, ['nft', 'flush', 'ruleset']);
  tb.exec(cliNode.netns, ['nft', '-f', '-'], farmToNft(farm));
  driver ??= Driver.start(tb, nativeNode);
  await driver.call('apply', farm);

  for (const what of [['chain', 'inet', 'vipfarm_tf', 'pre'], ['chain', 'inet', 'vipfarm_tf', 'raw'], ['chain', 'netdev', 'vipfarm_tf_in', 'ingress']]) {
    const cli = bytecode(cliNode.netns, what);
    const native = bytecode(nativeNode.netns, what);
    // the listing is real bytecode, not an empty string on both sides
    expect(cli).toMatch(what[1] === 'inet' ? /\[ hash reg 1 = jhash\(reg 2, (8|20), 0xbeef\) % mod 1024 \]/ : /\[ meta set pkttype with reg 1 \]/);
    if (what[3] === 'raw') expect(cli).toMatch(/\[ lookup reg 1 set owned 0x1 \]/);
    expect(native).toEqual(cli);
  }
  const inet = bytecode(nativeNode.netns, ['chain', 'inet', 'vipfarm_tf', 'pre']);
  // each family hashes its own source address: 4 bytes at +12, or 16 at +8 (ClientIPAndPort: + the port)
  const v6 = vips.filter((v) => v.includes(':')).length;
  expect(inet.includes('[ payload load 16b @ network header + 8 => reg 2 ]')).toBe(v6 > 0);
  expect(inet.includes('[ hash reg 1 = jhash(reg 2, 20, 0xbeef) % mod 1024 ]')).toBe(v6 > 0);
  expect(inet.includes('[ payload load 4b @ network header + 12 => reg 2 ]')).toBe(v6 < 2);
  // ICMPv6 neighbour discovery accepted (range 133..137) once per IPv6 VIP, before any drop
  expect((inet.match(/\[ cmp gte reg 1 0x00000085 \]\n\s*\[ cmp lte reg 1 0x00000089 \]/g) ?? []).length).toBe(v6);
  // and the human-readable listing matches too, sets included
  const listing = (ns: string): string => tb.exec(ns, ['nft', 'list', 'table', 'inet', 'vipfarm_tf']);
  expect(listing(nativeNode.netns)).toEqual(listing(cliNode.netns));
  expect(listing(nativeNode.netns)).toContain('typeof numgen inc mod 1024');
  expect(listing(nativeNode.netns)).toContain('typeof numgen inc mod 1024 . meta time');
  expect((listing(nativeNode.netns).match(/comment "vipfarm /g) ?? []).length).toBe(2 * 4 * 5 + 2 * 5 + v6 + 2 * 2);

  // Host firewall tools save and restore the whole ruleset: what vipfarm leaves must reload.
  await driver.call('setBuckets', farm.name, [0, 5, 1023], 600_000);
  const ns = nativeNode.netns;
  // with a handoff under way: bucket 5 given away from T, 7 taken over from T
  const T = Date.now() + 3_600_000;
  await driver.call('setBucketsAndHandoff', farm.name, [0, 5, 1023], 600_000, [{ bucket: 5, atMs: T }], [{ bucket: 7, atMs: T }]);
  const saved = tb.exec(ns, ['nft', 'list', 'ruleset']);
  // 7 is owned already, held until T
  expect(saved).toMatch(/elements = \{ 0 timeout 10m expires \S+, 5 timeout 10m expires \S+,\s+7 timeout 10m expires \S+, 1023 timeout 10m/);
  // nft prints the instants in local time, to the second: check the elements are there
  expect(saved).toMatch(/set hold \{[^}]*elements = \{ 5 \. "[^"]+"-"[^"]+"[^}]*7 \. "[^"]+"-"[^"]+"/);
  tb.exec(ns, ['nft', 'flush', 'ruleset']);
  expect(tb.exec(ns, ['nft', 'list', 'ruleset'])).toBe('');
  tb.exec(ns, ['nft', '-f', '-'], saved);
  const noExpiry = (t: string): string => t.replace(/ expires \S+?(?=[,\s}])/g, '');
  expect(noExpiry(tb.exec(ns, ['nft', 'list', 'ruleset']))).toEqual(noExpiry(saved));
  await driver.call('remove', farm.name);
});

/** node 0's IPv6 address as the second chance would know it (this bed is IPv4; nft takes any address) */
const HOLDER6 = 'fd00:99::2';

test('Directed mode: the forwarding map and node set list and reload too (nft list ruleset > f; nft -f f)', async () => {
  const nativeNode = tb.nodes[1];
  const farm: DataplaneFarm = {
    name: 'td', interface: 'eth0', virtualIPs: [tb.vip(2), tb.vip6(2)], virtualMAC: FARM_MAC,
    rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }], bucketCount: 64, hashSeed: 7, mode: 'Directed',
  };
  driver ??= Driver.start(tb, nativeNode);
  await driver.call('apply', farm);
  await driver.call('setBucketsAndForwarding', farm.name, [0, 1], 600_000, [[2, tb.nodes[0].mac], [63, tb.nodes[0].mac]], tb.nodes.map((n) => n.mac),
    [[1, tb.nodes[0].ip], [1, HOLDER6]]);
  // one address per family and bucket; a link-local next hop is refused (dup needs a global one)
  await expect(driver.call('setBucketsAndForwarding', farm.name, [0, 1], 600_000, [], [], [[1, HOLDER6], [1, 'fd00:99::3']])).rejects.toThrow(/two ipv6 previous holders/);
  await expect(driver.call('setBucketsAndForwarding', farm.name, [0, 1], 600_000, [], [], [[1, 'fe80::2']])).rejects.toThrow(/previous holder of bucket 1/);
  const ns = nativeNode.netns;
  const saved = tb.exec(ns, ['nft', 'list', 'ruleset']);
  // second chance: bucket 1 came from node 0; its leftovers go on there, each family's
  // packets to that family's address (table ip and table ip6 of the same name)
  expect(saved).toContain('typeof numgen inc mod 64 : ip daddr');
  expect(saved).toContain('typeof numgen inc mod 64 : ip6 daddr');
  expect(saved).toContain('table ip vipfarm_td_prev');
  expect(saved).toContain('table ip6 vipfarm_td_prev');
  expect(saved).toMatch(new RegExp(`1 timeout 10m expires \\S+ : ${HOLDER6}`));
  expect(saved).toMatch(new RegExp(`ip6 daddr ${tb.vip6(2)} tcp dport 80 tcp flags != syn / syn,ack ct state ! established,related counter packets 0 bytes 0 dup to jhash ip6 saddr mod 64 seed 0x7 map @previous device "eth0" drop`));
  expect(saved).toMatch(new RegExp(`1 timeout 10m expires \\S+ : ${tb.nodes[0].ip.replace(/\./g, '\\.')}`));
  expect(saved).toMatch(new RegExp(`ip daddr ${tb.vip(2)} tcp dport 80 tcp flags != syn / syn,ack ct state ! established,related counter packets 0 bytes 0 dup to jhash ip saddr mod 64 seed 0x7 map @previous device "eth0" drop`));
  expect(saved).toContain('typeof numgen inc mod 64 : ether daddr');
  expect(saved).toMatch(new RegExp(`63 timeout 10m expires \\S+ : ${tb.nodes[0].mac}`));
  // one forwarding rule per family, each matching its own header (IPv6: ethertype 0x86dd, daddr at +24)
  expect(saved).toMatch(new RegExp(`ip daddr ${tb.vip(2)} tcp dport 80 ether saddr != @nodes ether daddr set jhash ip saddr mod 64 seed 0x7 map @forward`));
  expect(saved).toMatch(new RegExp(`ip6 daddr ${tb.vip6(2)} tcp dport 80 ether saddr != @nodes ether daddr set jhash ip6 saddr mod 64 seed 0x7 map @forward`));
  tb.exec(ns, ['nft', 'flush', 'ruleset']);
  tb.exec(ns, ['nft', '-f', '-'], saved);
  const noExpiry = (t: string): string => t.replace(/ expires \S+?(?=[,\s}:])/g, '');
  expect(noExpiry(tb.exec(ns, ['nft', 'list', 'ruleset']))).toEqual(noExpiry(saved));
  await driver.call('remove', farm.name);
});
