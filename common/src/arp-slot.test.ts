import { ARP_SLOTS, arpSlotOf, arpSlotsOf, reannouncement } from './arp-slot.js';

describe('arpSlotOf', () => {
  it('is Knuth multiplicative hashing of the host-order address, top 8 bits', () => {
    // 10.0.0.1 = 0x0a000001; 0x0a000001 * 2654435761 mod 2^32 = 0x883779b1 -> 0x88
    expect(arpSlotOf('10.0.0.1')).toBe(0x88);
    expect(arpSlotOf('0.0.0.0')).toBe(0);
  });
  it('spreads neighbouring addresses over many slots', () => {
    const slots = new Set(Array.from({ length: 250 }, (_, i) => arpSlotOf(`192.168.1.${i + 1}`)));
    expect(slots.size).toBeGreaterThan(150);
    for (const s of slots) expect(s).toBeLessThan(ARP_SLOTS);
  });
  it('rejects what is not an IPv4 or IPv6 address', () => {
    expect(() => arpSlotOf('10.0.0')).toThrow(/invalid IPv4/);
    expect(() => arpSlotOf('fd00::1::2')).toThrow(/invalid IPv6/);
  });
  it('folds an IPv6 address to 32 bits (XOR of its words) before hashing', () => {
    // fd00:0:0:0:0:0:0:1 -> 0xfd000000 ^ 0 ^ 0 ^ 0x00000001 = 0xfd000001
    expect(arpSlotOf('fd00::1')).toBe(Math.imul(0xfd000001, 2654435761) >>> 24);
    // only the XOR counts: the address whose words are 0x0a000001 and three zeros is 10.0.0.1's slot
    expect(arpSlotOf('a00:1::')).toBe(arpSlotOf('10.0.0.1'));
    expect(arpSlotOf('::')).toBe(0);
    const slots = new Set(Array.from({ length: 250 }, (_, i) => arpSlotOf(`fd00:0:7::${(i + 1).toString(16)}`)));
    expect(slots.size).toBeGreaterThan(150);
  });
});

describe('arpSlotsOf', () => {
  it('gives every slot to exactly one ready node, whatever order the list is in', () => {
    const ready = ['n3', 'n1', 'n2'];
    const shares = ['n1', 'n2', 'n3'].map((n) => arpSlotsOf(n, ready));
    expect(shares.map((s) => s.length)).toEqual([86, 85, 85]);
    expect(new Set(shares.flat()).size).toBe(ARP_SLOTS);
    expect(arpSlotsOf('n2', ['n2', 'n1', 'n3', 'n1'])).toEqual(shares[1]);
  });
  it('gives nothing to a node that is not ready', () => {
    expect(arpSlotsOf('n4', ['n1', 'n2'])).toEqual([]);
  });
});

describe('reannouncement (Directed: who re-points requesters when a node leaves)', () => {
  it('nothing when no node left the ready set (start, a join, the same set)', () => {
    expect(reannouncement('n1', [], ['n1', 'n2'])).toEqual({ left: false, broadcast: false });
    expect(reannouncement('n1', ['n1', 'n2'], ['n1', 'n2', 'n3'])).toEqual({ left: false, broadcast: false });
    expect(reannouncement('n1', ['n1', 'n2'], ['n2', 'n1'])).toEqual({ left: false, broadcast: false });
  });
  it('a node gone: every survivor re-announces, exactly one of them broadcasts', () => {
    for (const gone of ['n1', 'n2', 'n3']) {
      const after = ['n1', 'n2', 'n3'].filter((n) => n !== gone);
      const r = after.map((n) => reannouncement(n, ['n1', 'n2', 'n3'], after));
      expect(r.every((x) => x.left)).toBe(true);
      expect(r.filter((x) => x.broadcast)).toHaveLength(1);
    }
  });
  it('the broadcaster answers the lowest slot of the first node gone', () => {
    // n2 of [n1,n2,n3] has slots 1,4,7..; among [n1,n3] slot 1 is n3's (odd)
    expect(reannouncement('n3', ['n1', 'n2', 'n3'], ['n1', 'n3'])).toEqual({ left: true, broadcast: true });
    expect(reannouncement('n1', ['n1', 'n2', 'n3'], ['n1', 'n3'])).toEqual({ left: true, broadcast: false });
    // two gone at once: n2 (sorted first) decides; n4 survives alone
    expect(reannouncement('n4', ['n1', 'n2', 'n3', 'n4'], ['n4'])).toEqual({ left: true, broadcast: true });
  });
  it('a node that is not ready itself announces nothing', () => {
    expect(reannouncement('n3', ['n1', 'n2', 'n3'], ['n1'])).toEqual({ left: false, broadcast: false });
  });
});
