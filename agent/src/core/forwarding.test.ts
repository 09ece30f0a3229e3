import { describe, expect, it } from '@jest/globals';
import { holderAddresses, planForwarding, type ForwardingPeer } from './forwarding.js';

const peer = (name: string, held: number[], alive = true): ForwardingPeer => ({ name, alive, held });

describe('planForwarding', () => {
  it('forwards every bucket it does not own to the assigned node when nobody claims it', () => {
    const p = planForwarding({ self: 'a', owned: [0], assignment: ['a', 'b', 'c', ''], peers: [peer('b', []), peer('c', [])] });
    expect([...p.forward]).toEqual([[1, 'b'], [2, 'c']]);
    expect(p.previous.size).toBe(0);
  });

  it('forwards to the current holder, not to the new owner that waits for it (handoff)', () => {
    // bucket 1 is assigned to c now, b still holds it
    const p = planForwarding({ self: 'a', owned: [0], assignment: ['a', 'c', 'c'], peers: [peer('b', [1]), peer('c', [2])] });
    expect(p.forward.get(1)).toBe('b');
    expect(p.forward.get(2)).toBe('c');
  });

  it('never forwards to a dead node, nor to itself', () => {
    const p = planForwarding({ self: 'a', owned: [], assignment: ['b', 'a', 'c'], peers: [peer('b', [0], false), peer('c', [2])] });
    expect([...p.forward]).toEqual([[2, 'c']]);
  });

  it('remembers the holder of a bucket it then acquires, while the holder lives', () => {
    let p = planForwarding({ self: 'a', owned: [], assignment: ['a', 'b'], peers: [peer('b', [0, 1])] });
    expect(p.forward.get(0)).toBe('b');
    // b released 0, a not yet acquired: still remembered
    p = planForwarding({ self: 'a', owned: [], assignment: ['a', 'b'], peers: [peer('b', [1])], carry: p.carry });
    p = planForwarding({ self: 'a', owned: [0], assignment: ['a', 'b'], peers: [peer('b', [1])], carry: p.carry });
    expect([...p.previous]).toEqual([[0, 'b']]);
    // kept across refreshes
    for (let i = 0; i < 3; i++) p = planForwarding({ self: 'a', owned: [0], assignment: ['a', 'b'], peers: [peer('b', [1])], carry: p.carry });
    expect([...p.previous]).toEqual([[0, 'b']]);
    // the previous holder dies: its connections died with it
    p = planForwarding({ self: 'a', owned: [0, 1], assignment: ['a', 'a'], peers: [peer('b', [1], false)], carry: p.carry });
    expect(p.previous.size).toBe(0);
  });

  it('drops the second chance when the bucket leaves, and takes the new holder when it comes back', () => {
    let p = planForwarding({ self: 'a', owned: [], assignment: ['b'], peers: [peer('b', [0]), peer('c', [])] });
    p = planForwarding({ self: 'a', owned: [0], assignment: ['a'], peers: [peer('b', []), peer('c', [])], carry: p.carry });
    expect(p.previous.get(0)).toBe('b');
    p = planForwarding({ self: 'a', owned: [], assignment: ['c'], peers: [peer('b', []), peer('c', [])], carry: p.carry });
    expect(p.previous.size).toBe(0);
    expect(p.forward.get(0)).toBe('c');
    p = planForwarding({ self: 'a', owned: [], assignment: ['a'], peers: [peer('b', []), peer('c', [0])], carry: p.carry });
    p = planForwarding({ self: 'a', owned: [0], assignment: ['a'], peers: [peer('b', []), peer('c', [])], carry: p.carry });
    expect(p.previous.get(0)).toBe('c');
  });

  it('gives no second chance to a peer that still claims the bucket (two holders: partition)', () => {
    let p = planForwarding({ self: 'a', owned: [], assignment: ['b'], peers: [peer('b', [0])] });
    p = planForwarding({ self: 'a', owned: [0], assignment: ['a'], peers: [peer('b', [0])], carry: p.carry });
    expect(p.previous.size).toBe(0);
    expect(p.forward.has(0)).toBe(false);
  });

  it('a bucket nobody ever held has no previous holder (cold start)', () => {
    const p = planForwarding({ self: 'a', owned: [0, 1], assignment: ['a', 'a'], peers: [peer('b', [])] });
    expect(p.previous.size).toBe(0);
  });
});

describe('holderAddresses (where the second chance sends a previous holder\'s packets)', () => {
  const mac = '02:00:00:00:00:02';
  const neigh = [
    { ip: 'fe80::2', mac },                       // link-local: dup needs a global next hop
    { ip: 'fd00:0:1::2', mac },
    { ip: 'fd00:0:1::3', mac: '02:00:00:00:00:03' },
    { ip: '10.0.0.2', mac },
  ];
  const v4 = new Set(['ipv4'] as const);
  const v6 = new Set(['ipv6'] as const);
  const dual = new Set(['ipv4', 'ipv6'] as const);

  it.each([
    ['IPv4 heartbeats, IPv4 VIPs', '10.0.0.2', v4, ['10.0.0.2']],
    ['IPv6 heartbeats, IPv6 VIPs (canonical text)', 'FD00:0:1:0::2', v6, ['fd00:0:1::2']],
    ['IPv4 heartbeats, dual-stack VIPs: the IPv6 address of the same MAC', '10.0.0.2', dual, ['10.0.0.2', 'fd00:0:1::2']],
    ['IPv6 heartbeats, dual-stack VIPs: the IPv4 address of the same MAC', 'fd00:0:1::2', dual, ['10.0.0.2', 'fd00:0:1::2']],
    ['IPv4 heartbeats, IPv6 VIPs only', '10.0.0.2', v6, ['fd00:0:1::2']],
  ])('%s', (_what, address, families, want) => {
    expect(holderAddresses({ address }, mac, neigh, families).sort()).toEqual(want);
  });

  it('gives no other-family address without the peer\'s MAC, or when only a link-local one is known', () => {
    expect(holderAddresses({ address: '10.0.0.2' }, undefined, neigh, dual)).toEqual(['10.0.0.2']);
    expect(holderAddresses({ address: '10.0.0.2' }, mac, [{ ip: 'fe80::2', mac }], dual)).toEqual(['10.0.0.2']);
    // another node's entry is never taken
    expect(holderAddresses({ address: '10.0.0.9' }, '02:00:00:00:00:09', neigh, v6)).toEqual([]);
  });

  it('takes the address the peer is known by (Kubernetes hostIPs) before the neighbour table', () => {
    const peer = { address: '10.0.0.2', otherAddresses: ['FD00:0:2::2'] };
    expect(holderAddresses(peer, mac, neigh, dual).sort()).toEqual(['10.0.0.2', 'fd00:0:2::2']);
    // without any neighbour entry or MAC too: nodes that never talked IPv6 to each other
    expect(holderAddresses(peer, undefined, [], dual).sort()).toEqual(['10.0.0.2', 'fd00:0:2::2']);
    // a link-local or other-family entry in the list is no next hop
    expect(holderAddresses({ address: '10.0.0.2', otherAddresses: ['fe80::2', '10.0.0.7'] }, undefined, [], dual)).toEqual(['10.0.0.2']);
  });
});
