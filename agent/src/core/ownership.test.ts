import { assignBuckets, currentOwners, type Member } from './assignment.js';
import type { Heartbeat } from './heartbeat-codec.js';
import { applyHeartbeat, createView, tick, type View } from './membership.js';
import { advertisedState, assignmentMembers, createAssignmentCache, decideOwnership, tableDigest, type OwnershipInput } from './ownership.js';
import { createRng } from './prng.js';

const B = 16;
const T = 500;

function hb(node: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return { farm: 'f', node, incarnation: 1, seq: 1, sentAt: 0, weight: 1, state: 'ready', viewDigest: 0, bucketCount: B, held: [], nonce: 0, echo: [], ...over };
}

function viewWith(self: string, peers: Array<Partial<Heartbeat> & { node: string }>, now = 10_000): View {
  let v = createView(self);
  for (const p of peers) v = applyHeartbeat(v, hb(p.node, p), now).view;
  return v;
}

/** The digest a peer advertises for these members and claims (nothing held by default). */
function viewDigest(members: readonly Member[], bucketCount: number, claims: Array<{ name: string; held: readonly number[] }> = []): number {
  return tableDigest(assignBuckets(members, bucketCount, currentOwners(members, bucketCount, claims)));
}

function input(over: Partial<OwnershipInput> & { view: View }): OwnershipInput {
  return {
    self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [] },
    bucketCount: B,
    now: 10_000,
    failureThresholdMs: T,
    ...over,
  };
}

describe('decideOwnership', () => {
  test('alone and past startup: owns and acquires everything', () => {
    const d = decideOwnership(input({ view: createView('a') }));
    expect(d.owned).toEqual([...Array(B).keys()]);
    expect(d.acquired).toEqual(d.owned);
    expect(d.advertise).toBe('ready');
    expect(d.phase).toBe('running');
  });

  test('startup: advertises standby, acquires nothing, keeps nothing it was not assigned', () => {
    const d = decideOwnership(input({ view: createView('a'), now: 100, self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [] } }));
    expect(d.owned).toEqual([]);
    expect(d.advertise).toBe('standby');
    expect(d.phase).toBe('startup');
    expect(advertisedState('ready', 0, T, T)).toBe('ready');
    expect(advertisedState('draining', 0, 10, T)).toBe('draining');
  });

  test('two nodes with no holders: each takes exactly its assignment', () => {
    const view = viewWith('a', [{ node: 'b' }]);
    const d = decideOwnership(input({ view }));
    const expected = assignBuckets([{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }], B);
    expect(d.assignment).toEqual(expected);
    expect(d.owned).toEqual(expected.flatMap((o, b) => (o === 'a' ? [b] : [])));
    expect(d.owned).toHaveLength(8);
  });

  test('release before acquire: held buckets assigned elsewhere go at once; claimed ones wait', () => {
    const all = [...Array(B).keys()];
    const view = viewWith('a', [{ node: 'b', held: all }]);
    const d = decideOwnership(input({ view, self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: all } }));
    const mine = d.assignment.flatMap((o, b) => (o === 'a' ? [b] : []));
    expect(d.owned).toEqual(mine); // held, so kept even though b claims them too (partition heal)
    expect(d.released).toEqual(all.filter((b) => !mine.includes(b)));

    const fresh = decideOwnership(input({ view, self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [] } }));
    expect(fresh.owned).toEqual([]);
    // b holds everything: the table keeps b's share with b and gives a the rest, all claimed by b
    const mineFresh = fresh.assignment.flatMap((o, b) => (o === 'a' ? [b] : []));
    expect(mineFresh).toHaveLength(B / 2);
    expect(fresh.waiting.map((w) => w.bucket)).toEqual(mineFresh);
    expect(fresh.waiting[0]!.holders).toEqual(['b']);
  });

  test('a dead holder no longer blocks; its buckets are orphans for orphanHoldMs', () => {
    let view = viewWith('a', [{ node: 'b', held: [...Array(B).keys()] }], 1000);
    view = tick(view, 1000 + T + 1, T).view;
    const d = decideOwnership(input({ view, now: 1000 + T + 1 }));
    expect(d.owned).toHaveLength(B);
    expect(d.orphans).toEqual(d.owned);
    const later = decideOwnership(input({ view, now: 1000 + T + 1 + 10_000 }));
    expect(later.owned).toHaveLength(B);
    expect(later.orphans).toEqual([]);
    expect(decideOwnership(input({ view, now: 1000 + T + 1 + 100, orphanHoldMs: 50 })).orphans).toEqual([]);
  });

  test('orphans only on the side that still hears at least as many nodes as it lost lately', () => {
    // peers' held buckets split into disjoint thirds/fifths so each one's orphans are visible
    const share = (i: number, n: number): number[] => [...Array(B).keys()].filter((b) => b % n === i);
    const cases: Array<{ name: string; alive: string[]; dead: string[]; orphans: boolean }> = [
      { name: '3 nodes, one peer lost (we are the two)', alive: ['b'], dead: ['c'], orphans: true },
      { name: '3 nodes, both peers lost (we are the one cut off)', alive: [], dead: ['b', 'c'], orphans: false },
      { name: '2 nodes, the peer lost (a tie keeps them)', alive: [], dead: ['b'], orphans: true },
      { name: '5 nodes, we are the two of a 2/3 split', alive: ['b'], dead: ['c', 'd', 'e'], orphans: false },
      { name: '5 nodes, we are the three of a 2/3 split', alive: ['b', 'c'], dead: ['d', 'e'], orphans: true },
      { name: '4 nodes, a 2/2 split', alive: ['b'], dead: ['c', 'd'], orphans: true },
    ];
    for (const c of cases) {
      const names = [...c.alive, ...c.dead];
      let view = viewWith('a', names.map((node, i) => ({ node, held: share(i + 1, names.length + 1) })), 1000);
      // the dead stop at 1000; the living keep talking
      for (const node of c.alive) view = applyHeartbeat(view, hb(node, { seq: 2, held: share(names.indexOf(node) + 1, names.length + 1) }), 1000 + T).view;
      view = tick(view, 1000 + T + 1, T).view;
      const d = decideOwnership(input({ view, now: 1000 + T + 2 }));
      const deadHeld = c.dead.flatMap((node) => share(names.indexOf(node) + 1, names.length + 1)).filter((b) => d.owned.includes(b)).sort((x, y) => x - y);
      expect({ case: c.name, orphans: d.orphans.filter((b) => deadHeld.includes(b)).length > 0 }).toEqual({ case: c.name, orphans: c.orphans });
      if (!c.orphans) expect({ case: c.name, orphans: d.orphans }).toEqual({ case: c.name, orphans: [] });
    }
  });

  test('standby, draining and down peers weigh 0, so I take their share once released', () => {
    for (const state of ['standby', 'draining', 'down'] as const) {
      const view = viewWith('a', [{ node: 'b', state }]);
      expect(decideOwnership(input({ view })).owned).toHaveLength(B);
    }
  });

  test('self weight 0 or not ready: owns nothing, releases everything', () => {
    const view = viewWith('a', [{ node: 'b' }]);
    const all = [...Array(B).keys()];
    for (const self of [
      { name: 'a', weight: 0, state: 'ready' as const, startedAt: 0, held: all },
      { name: 'a', weight: 1, state: 'draining' as const, startedAt: 0, held: all },
    ]) {
      const d = decideOwnership(input({ view, self }));
      expect(d.owned).toEqual([]);
      expect(d.released).toEqual(all);
    }
  });

  test('weights shape the split', () => {
    const view = viewWith('a', [{ node: 'b', weight: 3 }]);
    expect(decideOwnership(input({ view })).owned).toHaveLength(4);
  });

  test('out-of-range claims are ignored', () => {
    const view = viewWith('a', [{ node: 'b', held: [-1, B, 99] }]);
    expect(decideOwnership(input({ view })).owned).toHaveLength(8);
  });

  test('acquisition waits until every live peer advertises my view digest', () => {
    const members = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }];
    const mine = viewDigest(members, B);
    const agreeing = viewWith('a', [{ node: 'b', viewDigest: mine }]);
    expect(decideOwnership(input({ view: agreeing })).owned).toHaveLength(8);
    const other = viewWith('a', [{ node: 'b', viewDigest: mine ^ 1 }]);
    const d = decideOwnership(input({ view: other }));
    expect(d.owned).toEqual([]);
    expect(d.disagreeing).toEqual(['b']);
    expect(d.waiting.every((w) => w.holders.length === 0)).toBe(true);
    expect(d.carry).toEqual({ disagreeingSince: { b: 10_000 } });
    // held buckets are all kept meanwhile (releases wait for agreement too)
    const held = decideOwnership(input({ view: other, self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [...Array(B).keys()] } }));
    expect(held.owned).toHaveLength(B);
    expect(held.deferred).toHaveLength(8);
    expect(held.released).toEqual([]);
  });

  test('a held bucket assigned elsewhere is kept while views disagree (no flapping on heal), released once they agree', () => {
    const all = [...Array(B).keys()];
    const self = { name: 'a', weight: 1, state: 'ready' as const, startedAt: 0, held: all };
    for (const peerHeld of [all, []]) {
      const d = decideOwnership(input({ view: viewWith('a', [{ node: 'b', held: peerHeld, viewDigest: 777 }]), self }));
      expect(d.owned).toEqual(all);
      expect(d.released).toEqual([]);
      expect(d.deferred).toHaveLength(8);
    }
    const members = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }];
    const agreed = decideOwnership(input({ view: viewWith('a', [{ node: 'b', held: all, viewDigest: viewDigest(members, B, [{ name: 'a', held: all }, { name: 'b', held: all }]) }]), self }));
    expect(agreed.released).toHaveLength(8);
    expect(agreed.deferred).toEqual([]);
    // a node leaving releases at once, agreement or not
    const leaving = decideOwnership(input({ view: viewWith('a', [{ node: 'b', viewDigest: 777 }]), self: { ...self, state: 'draining' } }));
    expect(leaving.owned).toEqual([]);
    expect(leaving.released).toEqual(all);
  });

  test('a persistent dissenter among agreeing peers stops blocking; a majority of dissenters never does', () => {
    const members = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }, { name: 'd', weight: 1 }];
    const mine = viewDigest(members, B);
    const minority = viewWith('a', [{ node: 'b', viewDigest: 12345 }, { node: 'c', viewDigest: mine }, { node: 'd', viewDigest: mine }]);
    const m0 = decideOwnership(input({ view: minority, now: 10_000 }));
    expect(m0.owned).toEqual([]);
    expect(decideOwnership(input({ view: minority, now: 10_000 + 2 * T, carry: m0.carry })).owned.length).toBeGreaterThan(0);
    const majority = viewWith('a', [{ node: 'b', viewDigest: 12345 }, { node: 'c', viewDigest: 12345 }, { node: 'd', viewDigest: mine }]);
    const j0 = decideOwnership(input({ view: majority, now: 10_000 }));
    expect(decideOwnership(input({ view: majority, now: 10_000 + 100 * T, carry: j0.carry })).owned).toEqual([]);
  });

  test('a lone peer disagreeing for agreementTimeoutMs on end is a majority: it keeps blocking', () => {
    const view = viewWith('a', [{ node: 'b', viewDigest: 12345 }]);
    const first = decideOwnership(input({ view, now: 10_000 }));
    expect(first.owned).toEqual([]);
    const before = decideOwnership(input({ view, now: 10_000 + 2 * T - 1, carry: first.carry }));
    expect(before.owned).toEqual([]);
    expect(before.carry).toEqual(first.carry);
    const after = decideOwnership(input({ view, now: 10_000 + 2 * T, carry: first.carry }));
    expect(after.owned).toEqual([]);
    // with agreeing peers around, b is overruled but a peer that only just started to disagree blocks
    const five = [{ name: 'a', weight: 1 }, ...['b', 'c', 'd', 'e'].map((name) => ({ name, weight: 1 }))];
    const agree = viewDigest(five, B);
    const others = viewWith('a', [{ node: 'b', viewDigest: 12345 }, { node: 'c', viewDigest: 999 }, { node: 'd', viewDigest: agree }, { node: 'e', viewDigest: agree }]);
    const d = decideOwnership(input({ view: others, now: 10_000 + 2 * T, carry: first.carry }));
    expect(d.owned).toEqual([]);
    expect(d.carry).toEqual({ disagreeingSince: { b: 10_000, c: 10_000 + 2 * T } });
    const later = decideOwnership(input({ view: others, now: 10_000 + 4 * T, carry: d.carry }));
    expect(later.owned).toEqual([]); // b and c both persistent now: 2 of 4 is not a minority
    const fewer = viewWith('a', [{ node: 'b', viewDigest: 12345 }, { node: 'd', viewDigest: viewDigest(five.filter((m) => m.name !== 'c'), B) }, { node: 'e', viewDigest: viewDigest(five.filter((m) => m.name !== 'c'), B) }]);
    expect(decideOwnership(input({ view: fewer, now: 10_000 + 2 * T, carry: first.carry })).owned.length).toBeGreaterThan(0);
    // agreeing once resets that peer's clock
    const members = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }];
    const agreed = decideOwnership(input({ view: viewWith('a', [{ node: 'b', viewDigest: viewDigest(members, B) }]), now: 10_000 + 3 * T, carry: first.carry }));
    expect(agreed.carry).toEqual({});
  });

  test('after our own stall, nothing is acquired for a settle time and until every live peer was heard again', () => {
    let view = viewWith('a', [{ node: 'b' }], 1000);
    view = tick(tick(view, 1000, T).view, 3000, T).view; // stalled 2 s
    expect(view.awakeSince).toBe(3000);
    expect(decideOwnership(input({ view, now: 3000 })).owned).toEqual([]);
    // what we held is kept meanwhile, including what is now assigned to b
    const kept = decideOwnership(input({ view, now: 3000, self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [...Array(B).keys()] } }));
    expect(kept.owned).toHaveLength(B);
    expect(kept.deferred).toHaveLength(8);
    // a heartbeat read right after resuming may have queued up during the stall: not enough
    const queued = applyHeartbeat(view, hb('b', { seq: 2 }), 3001).view;
    expect(decideOwnership(input({ view: queued, now: 3000 + T })).owned).toEqual([]);
    const heard = applyHeartbeat(queued, hb('b', { seq: 3 }), 3000 + T).view;
    expect(decideOwnership(input({ view: heard, now: 3000 + T })).owned).toHaveLength(8);
  });

  test('after a stall that cost us our buckets, advertise standby until we may acquire: peers keep our share meanwhile', () => {
    let view = viewWith('a', [{ node: 'b' }], 1000);
    view = tick(tick(view, 1000, T).view, 3000, T).view; // stalled 2 s: the kernel lease dropped everything
    const resuming = decideOwnership(input({ view, now: 3000 }));
    expect(resuming.advertise).toBe('standby');
    expect(resuming.phase).toBe('resuming');
    expect(resuming.owned).toEqual([]);
    // b, hearing us standby, computes an assignment without us: it keeps every bucket
    const bView = viewWith('b', [{ node: 'a', state: resuming.advertise, viewDigest: resuming.viewDigest }], 3001);
    const b = decideOwnership(input({ view: bView, now: 3001, self: { name: 'b', weight: 1, state: 'ready', startedAt: 0, held: [...Array(B).keys()] } }));
    expect(b.owned).toHaveLength(B);
    expect(b.released).toEqual([]);
    // settled and heard b again: ready, and the usual handoff (b releases, then we acquire)
    const heard = applyHeartbeat(view, hb('b', { seq: 3, held: [...Array(B).keys()] }), 3000 + T).view;
    const settled = decideOwnership(input({ view: heard, now: 3000 + T }));
    expect(settled.advertise).toBe('ready');
    expect(settled.phase).toBe('running');
    expect(settled.owned).toEqual([]);
    expect(settled.waiting).toHaveLength(8);
    // a stall that left our buckets in the kernel (shorter than the lease) keeps us ready
    const kept = decideOwnership(input({ view, now: 3000, self: { name: 'a', weight: 1, state: 'ready', startedAt: 0, held: [1, 2] } }));
    expect(kept.advertise).toBe('ready');
  });

  test('after our own stall, even alone in our view, wait before taking anything (the dead may be alive)', () => {
    let view = viewWith('a', [{ node: 'b' }], 1000);
    view = tick(view, 1600, T).view; // b declared dead
    view = tick(view, 3000, T).view; // then we stall
    expect(decideOwnership(input({ view, now: 3000 })).owned).toEqual([]);
    expect(decideOwnership(input({ view, now: 3000 + T - 1 })).owned).toEqual([]);
    expect(decideOwnership(input({ view, now: 3000 + T })).owned).toHaveLength(B);
    expect(decideOwnership(input({ view, now: 3000 + 50, stallSettleMs: 50 })).owned).toHaveLength(B);
  });

  test('a peer that sends no digest (0) is left out of the agreement check', () => {
    expect(decideOwnership(input({ view: viewWith('a', [{ node: 'b', viewDigest: 0 }]) })).owned).toHaveLength(8);
  });

  test('digest: a hash of the table, equal for equal inputs whatever the order, different otherwise, never 0', () => {
    const view = viewWith('a', [{ node: 'b' }, { node: 'c', weight: 2 }, { node: 'd', state: 'standby' }]);
    const m = assignmentMembers(view, { name: 'a', weight: 1, advertise: 'ready' });
    expect(viewDigest(m, B)).toBe(viewDigest([...m].reverse(), B));
    expect(viewDigest(m, B)).toBe(viewDigest(m.filter((x) => x.name !== 'd'), B)); // weight 0 is not an input
    expect(viewDigest(m, B)).not.toBe(viewDigest(m, 2 * B));
    expect(viewDigest(m, B)).not.toBe(viewDigest(m.map((x) => (x.name === 'c' ? { ...x, weight: 3 } : x)), B));
    expect(tableDigest([])).not.toBe(0);
    // what the nodes hold is an input: the same members with other holders give another table
    const held = assignBuckets(m, B).flatMap((o, b) => (o === 'a' ? [b] : []));
    const swapped = [{ name: 'b', held }];
    expect(viewDigest(m, B, swapped)).not.toBe(viewDigest(m, B));
    expect(decideOwnership(input({ view: viewWith('a', [{ node: 'b', held }, { node: 'c', weight: 2 }, { node: 'd', state: 'standby' }]) })).viewDigest).toBe(viewDigest(m, B, swapped));
  });

  test('the cache gives the same answers', () => {
    const cache = createAssignmentCache(2);
    const rng = createRng(5);
    for (let i = 0; i < 30; i++) {
      const peers = Array.from({ length: rng.int(0, 5) }, (_, j) => ({ node: `p${j}`, weight: rng.int(0, 3) }));
      const view = viewWith('a', peers);
      expect(decideOwnership(input({ view, cache }))).toEqual(decideOwnership(input({ view })));
    }
  });

  test('property: nodes sharing one view never own the same bucket', () => {
    const rng = createRng(17);
    for (let trial = 0; trial < 200; trial++) {
      const n = rng.int(1, 8);
      const names = Array.from({ length: n }, (_, i) => `n${i}`);
      // random held sets that are already disjoint (the invariant being kept)
      const holder = Array.from({ length: B }, () => (rng.next() < 0.7 ? rng.pick(names) : ''));
      const weights = names.map(() => rng.int(0, 3));
      const states = names.map(() => rng.pick(['ready', 'ready', 'ready', 'standby', 'draining'] as const));
      const heldOf = (name: string): number[] => holder.flatMap((h, b) => (h === name ? [b] : []));
      const owners = new Map<number, string>();
      const assignments: string[][] = [];
      for (let i = 0; i < n; i++) {
        const view = viewWith(
          names[i]!,
          names.flatMap((p, j) => (j === i ? [] : [{ node: p, weight: weights[j], state: states[j], held: heldOf(p) }])),
        );
        const d = decideOwnership(input({ view, self: { name: names[i]!, weight: weights[i]!, state: states[i]!, startedAt: 0, held: heldOf(names[i]!) } }));
        for (const b of d.owned) {
          expect(owners.get(b)).toBeUndefined();
          owners.set(b, names[i]!);
        }
        assignments.push(d.assignment);
      }
      // the same view from every node's seat gives the same assignment
      for (const a of assignments) expect(a).toEqual(assignments[0]);
    }
  });
});
