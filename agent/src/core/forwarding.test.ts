import { describe, expect, it } from '@jest/globals';
import { planForwarding, type ForwardingPeer } from './forwarding.js';

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
