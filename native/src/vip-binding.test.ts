import { keysToRestore, originalsFor, sysctlPlan, type SavedSysctls } from './vip-binding.js';

describe('sysctlPlan', () => {
  it('sets arp_ignore=1, arp_announce=2, rp_filter=0 on the interface and on all', () => {
    const plan = Object.fromEntries(sysctlPlan('eth1'));
    expect(plan).toEqual({
      'net/ipv4/conf/eth1/arp_ignore': '1',
      'net/ipv4/conf/eth1/arp_announce': '2',
      'net/ipv4/conf/eth1/rp_filter': '0',
      'net/ipv4/conf/all/arp_ignore': '1',
      'net/ipv4/conf/all/arp_announce': '2',
      'net/ipv4/conf/all/rp_filter': '0',
    });
  });
});

describe('several farms in one namespace', () => {
  const keys = (dev: string): string[] => sysctlPlan(dev).map(([k]) => k);
  const farmA: SavedSysctls = {
    iface: 'eth0',
    values: Object.fromEntries(keys('eth0').map((k) => [k, k.endsWith('rp_filter') ? '2' : '0'])),
  };

  it('the first farm saves the current values', () => {
    const current = Object.fromEntries(keys('eth0').map((k) => [k, 'x']));
    expect(originalsFor(keys('eth0'), current, [])).toEqual(current);
  });

  it('a second farm saves the originals the first one saw, not the farm-mode values', () => {
    const current = Object.fromEntries(keys('eth1').map((k) => [k, 'farm-mode']));
    const b = originalsFor(keys('eth1'), current, [farmA]);
    expect(b['net/ipv4/conf/all/rp_filter']).toBe('2');
    expect(b['net/ipv4/conf/all/arp_ignore']).toBe('0');
    // eth1 was not touched by farm A: its current value is the original
    expect(b['net/ipv4/conf/eth1/arp_ignore']).toBe('farm-mode');
  });

  it('unbinding restores only what no other bound farm relies on', () => {
    const farmB: SavedSysctls = { iface: 'eth1', values: Object.fromEntries(keys('eth1').map((k) => [k, '0'])) };
    expect(keysToRestore(farmB, [farmA]).sort()).toEqual(keys('eth1').filter((k) => k.includes('/eth1/')).sort());
    expect(keysToRestore(farmA, []).sort()).toEqual(keys('eth0').sort());
    const sameIface: SavedSysctls = { iface: 'eth0', values: { ...farmA.values } };
    expect(keysToRestore(sameIface, [farmA])).toEqual([]);
  });
});
