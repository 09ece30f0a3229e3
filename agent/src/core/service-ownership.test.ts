import * as core from './agent-core.js';
import type { Heartbeat } from './heartbeat-codec.js';
import { createRng } from './prng.js';
import { decideServiceOwnership, localServicesKey, type LocalService } from './service-ownership.js';

const IP = '10.0.0.201';
const members = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }];

describe('decideServiceOwnership', () => {
  test('only the listed nodes own the IP\'s buckets, all of them between them', () => {
    const input = { services: [{ ip: IP, nodes: ['a', 'b'] }], members, bucketCount: 16, held: new Map(), mayAcquire: true };
    const [a] = decideServiceOwnership({ ...input, self: 'a' });
    const [b] = decideServiceOwnership({ ...input, self: 'b' });
    const [c] = decideServiceOwnership({ ...input, self: 'c' });
    expect(c!.owned).toEqual([]);
    expect([...a!.owned, ...b!.owned].sort((x, y) => x - y)).toEqual([...Array(16).keys()]);
    expect(a!.owned.length).toBe(8);
    expect(a!.assignment.filter((o) => o === 'c')).toEqual([]);
  });

  test('released at once when no longer mine; acquired only while acquisitions are allowed', () => {
    const held = new Map([[IP, [...Array(16).keys()]]]);
    const [alone] = decideServiceOwnership({ services: [{ ip: IP, nodes: ['a', 'b'] }], self: 'a', members, bucketCount: 16, held, mayAcquire: false });
    expect(alone!.released).toHaveLength(8);
    expect(alone!.owned).toHaveLength(8);
    const [waits] = decideServiceOwnership({ services: [{ ip: IP, nodes: ['a', 'b'] }], self: 'b', members, bucketCount: 16, held: new Map(), mayAcquire: false });
    expect(waits!.owned).toEqual([]);
    expect(waits!.waiting).toHaveLength(8);
  });

  test('no ready node listed: nobody owns anything (a node without weight does not count)', () => {
    const [r] = decideServiceOwnership({ services: [{ ip: IP, nodes: ['c'] }], self: 'c', members: [...members.slice(0, 2), { name: 'c', weight: 0 }], bucketCount: 8, held: new Map(), mayAcquire: true });
    expect(r!.owned).toEqual([]);
    expect(r!.assignment.every((o) => o === '')).toBe(true);
  });

  test('the digest input is canonical: order of IPs and nodes does not matter, the lists do', () => {
    expect(localServicesKey([{ ip: '10.0.0.2', nodes: ['b', 'a'] }, { ip: '10.0.0.1', nodes: [] }])).toBe(localServicesKey([{ ip: '10.0.0.1', nodes: [] }, { ip: '10.0.0.2', nodes: ['a', 'b'] }]));
    expect(localServicesKey([{ ip: '10.0.0.1', nodes: ['a'] }])).not.toBe(localServicesKey([{ ip: '10.0.0.1', nodes: ['a', 'b'] }]));
    expect(localServicesKey([])).toBe('');
  });
});

// Three agents' cores with a lossless network of random delays; the operator's node list
// reaches each agent at its own random moment (as a watch event would). Whatever the
// order, two nodes never hold one bucket of the Local IP at once, and once all have the
// list the IP is served in full by exactly the listed nodes.
describe('Local Service handoff between real cores', () => {
  const CFG: core.CoreConfig = { farm: 'f', bucketCount: 32, intervalMs: 100, failureThresholdMs: 500, leaseMs: 300 };
  const names = ['a', 'b', 'c'];
  const withNodes = (nodes: string[]): core.CoreConfig => ({ ...CFG, localServices: [{ ip: IP, nodes }] as LocalService[] });

  function simulate(seed: number, from: string[], to: string[]): { maxOwners: number; final: Record<string, number[]>; gapMs: number } {
    const rng = createRng(seed);
    const rnd = (): number => rng.next();
    let now = 1000;
    const states = new Map(names.map((n) => [n, core.createCore({ config: withNodes(from), name: n, weight: 1, peers: names.map((p) => ({ name: p, address: p })), now })]));
    const inflight: { at: number; to: string; msg: Heartbeat }[] = [];
    const nextLoop = new Map(names.map((n) => [n, now + rnd() * 100]));
    const switchAt = new Map(names.map((n) => [n, 3000 + rnd() * 400]));
    let maxOwners = 0;
    let unownedSince: number | undefined;
    let gapMs = 0;
    const check = (): void => {
      const count = new Array<number>(CFG.bucketCount).fill(0);
      for (const s of states.values()) for (const b of s.serviceHeld.get(IP) ?? []) count[b]!++;
      maxOwners = Math.max(maxOwners, ...count);
      if (now > 3000) {
        const hole = count.some((c) => c === 0);
        if (hole && unownedSince === undefined) unownedSince = now;
        if (!hole && unownedSince !== undefined) {
          gapMs = Math.max(gapMs, now - unownedSince);
          unownedSince = undefined;
        }
      }
    };
    while (now < 6000) {
      // the earliest of: a delivery, a loop, a node list arriving
      const events: { at: number; run: () => void }[] = [];
      for (const [n, at] of nextLoop) {
        events.push({
          at,
          run: () => {
            const d = core.decide(states.get(n)!, now);
            const a = core.applied(d.state, true, now);
            states.set(n, a.state);
            if (a.heartbeat) for (const p of names) if (p !== n) inflight.push({ at: now + 0.2 + rnd() * 20, to: p, msg: a.heartbeat });
            nextLoop.set(n, now + CFG.intervalMs);
          },
        });
      }
      for (const m of inflight) {
        events.push({
          at: m.at,
          run: () => {
            inflight.splice(inflight.indexOf(m), 1);
            const r = core.receiveHeartbeat(states.get(m.to)!, m.msg, m.msg.node, now);
            states.set(m.to, r.state);
            // a loop now, as the agent schedules one
            if (r.decideNow) nextLoop.set(m.to, Math.min(nextLoop.get(m.to)!, now));
          },
        });
      }
      for (const [n, at] of switchAt) {
        events.push({
          at,
          run: () => {
            switchAt.delete(n);
            states.set(n, core.reconfigure(states.get(n)!, withNodes(to), 1));
            nextLoop.set(n, now);
          },
        });
      }
      events.sort((x, y) => x.at - y.at);
      const e = events[0]!;
      now = Math.max(now, e.at);
      e.run();
      check();
    }
    const final = Object.fromEntries([...states].map(([n, s]) => [n, [...(s.serviceHeld.get(IP) ?? [])]]));
    return { maxOwners, final, gapMs };
  }

  test.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i: a pod lands on c (nodes a,b -> a,b,c), then leaves c', (seed) => {
    const grow = simulate(seed, ['a', 'b'], ['a', 'b', 'c']);
    expect(grow.maxOwners).toBe(1);
    expect(grow.final.c!.length).toBeGreaterThan(5);
    expect([...grow.final.a!, ...grow.final.b!, ...grow.final.c!].sort((x, y) => x - y)).toEqual([...Array(32).keys()]);
    // a moved bucket is unowned for about a heartbeat exchange, not for long
    expect(grow.gapMs).toBeLessThan(300);
    const shrink = simulate(seed + 100, ['a', 'b', 'c'], ['a', 'b']);
    expect(shrink.maxOwners).toBe(1);
    expect(shrink.final.c).toEqual([]);
    expect([...shrink.final.a!, ...shrink.final.b!].sort((x, y) => x - y)).toEqual([...Array(32).keys()]);
  });
});
