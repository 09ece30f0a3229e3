import * as core from './agent-core.js';
import { encodeHeartbeat, type Heartbeat } from './heartbeat-codec.js';

const CFG: core.CoreConfig = { farm: 'f', bucketCount: 8, intervalMs: 100, failureThresholdMs: 500, leaseMs: 300 };
const KEY = Buffer.alloc(32, 3);

/** each test core's nonce: what a peer's heartbeat echoes */
const NONCE: Record<string, number> = { a: 0xa0a0a0a0, b: 0xb0b0b0b0, c: 0xc0c0c0c0 };

function fresh(name = 'a', peers = ['a', 'b'], now = 1000, nonce = NONCE[name]): core.CoreState {
  return core.createCore({ config: CFG, name, weight: 1, peers: peers.map((n) => ({ name: n, address: n })), now, nonce });
}

/** One agent loop with a kernel that accepts (or refuses) what was decided. */
function loop(s: core.CoreState, now: number, ok = true): core.Applied & { ownership: core.DesiredOwnership; all: core.CoreIntent[] } {
  const d = core.decide(s, now);
  const a = core.applied(d.state, ok, now);
  return { ...a, ownership: d.ownership, all: [...d.intents, ...a.intents] };
}

/** Loops every interval from `from` to `to` (inclusive); the last loop's result. */
function run(s: core.CoreState, from: number, to: number): core.CoreState {
  for (let t = from; t <= to; t += CFG.intervalMs) s = loop(s, t).state;
  return s;
}

function hb(over: Partial<Heartbeat>): Heartbeat {
  return { farm: 'f', node: 'b', incarnation: 500, seq: 1, sentAt: 1000, weight: 1, state: 'ready', viewDigest: 0, bucketCount: 8, held: [], nonce: NONCE.b!, echo: [NONCE.a!], ...over };
}

describe('agent core', () => {
  test('alone: standby during the startup grace, then every bucket, claimed only once the kernel took it', () => {
    let s = fresh('a', ['a']);
    let r = loop(s, 1000);
    expect(r.heartbeat?.state).toBe('standby');
    expect(r.ownership.owned).toEqual([]);
    s = run(r.state, 1100, 1400);
    r = loop(s, 1500);
    expect(r.ownership).toEqual({ owned: [0, 1, 2, 3, 4, 5, 6, 7], orphans: [], giving: [], taking: [], leaseMs: 300, services: [] });
    expect(r.heartbeat).toMatchObject({ state: 'ready', held: [0, 1, 2, 3, 4, 5, 6, 7], seq: 6 });
    expect(r.all.map((i) => i.kind)).toEqual(['state', 'buckets']);
  });

  test('a kernel that refuses the sets: the heartbeat keeps claiming the previous ones, the next loop tries again', () => {
    let s = run(fresh('a', ['a']), 1000, 1400);
    const refused = loop(s, 1500, false);
    expect(refused.ownership.owned).toHaveLength(8);
    expect(refused.heartbeat?.held).toEqual([]);
    expect(refused.all.some((i) => i.kind === 'buckets')).toBe(false);
    s = refused.state;
    const again = loop(s, 1600);
    expect(again.heartbeat?.held).toHaveLength(8);
  });

  test('a loop between ticks sends a heartbeat only with news; the timer\'s loops always do', () => {
    const s = run(fresh('a', ['a']), 1000, 1600);
    const between = core.applied(core.decide(s, 1650).state, true, 1650, false);
    expect(between.heartbeat).toBeUndefined();
    expect(between.state.seq).toBe(s.seq);
    expect(core.applied(core.decide(s, 1650).state, true, 1650, true).heartbeat).toMatchObject({ seq: s.seq + 1 });
    const drained = core.applied(core.decide(core.setDraining(s, true), 1650).state, true, 1650, false);
    expect(drained.heartbeat).toMatchObject({ state: 'draining', held: [] });
  });

  test('a loop later than the lease forgets what was held (the kernel dropped it)', () => {
    let s = run(fresh('a', ['a']), 1000, 1600);
    expect(s.held).toHaveLength(8);
    const d = core.decide(s, 1600 + 301);
    expect(d.intents.some((i) => i.kind === 'stall')).toBe(true);
    // after a stall, acquire nothing for a while: it re-claims nothing from memory
    expect(d.ownership.owned).toEqual([]);
  });

  test('heartbeats: a peer joining asks for a loop now; own heartbeats, other farms, other bucket counts and replays are refused', () => {
    const s = fresh();
    const join = core.receiveDatagram(s, encodeHeartbeat(hb({}), KEY), KEY, '10.0.0.2', 1000);
    expect('rejected' in join).toBe(false);
    const j = join as core.Received;
    expect(j.accepted).toBe(true);
    expect(j.decideNow).toBe(true);
    expect(j.intents).toEqual([{ kind: 'membership', event: expect.objectContaining({ type: 'joined', node: 'b' }) }]);
    // the same heartbeat again (its copy on the other heartbeat path): a duplicate, taken no further
    const dup = core.receiveDatagram(j.state, encodeHeartbeat(hb({}), KEY), KEY, undefined, 1001);
    expect(dup).toMatchObject({ accepted: false, duplicate: true, node: 'b', decideNow: false, intents: [] });
    expect(dup.state).toBe(j.state);
    // ... except that a copy with the kernel's receive time gives a tighter clock sample
    const lagOf = (st: core.CoreState): number => st.view.peers.get('b')!.lags!.at(-1)!.lag;
    const stamped = core.receiveDatagram(j.state, encodeHeartbeat(hb({}), KEY), KEY, undefined, 1001, 1000 - 0.5);
    expect(stamped).toMatchObject({ accepted: false, duplicate: true, decideNow: false, intents: [] });
    expect(lagOf(stamped.state)).toBeLessThan(lagOf(j.state));
    expect(lagOf(stamped.state)).toBeCloseTo(1000 - 0.5 - hb({}).sentAt, 9);
    // far behind the last one taken: a replay
    const later = core.receiveDatagram(j.state, encodeHeartbeat(hb({ seq: 1 + core.DUPLICATE_WINDOW + 1 }), KEY), KEY, '10.0.0.2', 1002) as core.Received;
    expect(later.accepted).toBe(true);
    expect(core.receiveDatagram(later.state, encodeHeartbeat(hb({}), KEY), KEY, '10.0.0.2', 1003)).toMatchObject({ rejected: 'replay' });
    expect(core.receiveDatagram(s, encodeHeartbeat(hb({ bucketCount: 16 }), KEY), KEY, 'x', 1000)).toMatchObject({ rejected: 'bucket_count' });
    expect(core.receiveDatagram(s, encodeHeartbeat(hb({ farm: 'g' }), KEY), KEY, 'x', 1000)).toMatchObject({ rejected: 'wrong_farm' });
    expect(core.receiveDatagram(s, encodeHeartbeat(hb({}), Buffer.alloc(32, 4)), KEY, 'x', 1000)).toMatchObject({ rejected: 'bad_mac' });
    const own = core.receiveDatagram(s, encodeHeartbeat(hb({ node: 'a' }), KEY), KEY, 'x', 1000);
    expect(own).toMatchObject({ accepted: false, decideNow: false });
  });

  test('a steady heartbeat (same claims, nothing pending) does not ask for a loop', () => {
    let s = core.receiveHeartbeat(fresh(), hb({ seq: 1 }), 'b', 1000).state;
    s = loop(s, 1000).state;
    const r = core.receiveHeartbeat(s, hb({ seq: 2, sentAt: 1100 }), 'b', 1100);
    expect(r).toMatchObject({ accepted: true, decideNow: false, intents: [] });
  });

  test('a dead peer: silence is due after the threshold, its buckets are taken and the failover reported once', () => {
    let s = fresh();
    // b serves everything, then goes silent
    s = core.receiveHeartbeat(s, hb({ held: [0, 1, 2, 3, 4, 5, 6, 7], viewDigest: 0 }), 'b', 1000).state;
    for (let t = 1000; t <= 1500; t += 100) s = loop(s, t).state;
    expect(core.nextSilenceAt(s)).toBe(1500);
    expect(core.silenceDue(s, 1500)).toBe(false);
    expect(core.silenceDue(s, 1501)).toBe(true);
    const r = loop(s, 1510);
    expect(r.all.find((i) => i.kind === 'membership')).toMatchObject({ event: { type: 'died', node: 'b' } });
    expect(r.ownership.owned).toHaveLength(8);
    expect(r.ownership.orphans).toHaveLength(8);
    // alone with b, nobody to agree with: declared and taken in the same loop
    expect(r.all.find((i) => i.kind === 'failover')).toEqual({ kind: 'failover', peer: 'b', buckets: 8, sinceLastHeartbeatMs: 510, detectMs: 510, agreeMs: 0 });
    expect(loop(r.state, 1600).all.some((i) => i.kind === 'failover')).toBe(false);
  });

  test('a dead peer whose kernel is probed: its buckets are taken at once, orphans only once its kernel is found silent', () => {
    let s = core.createCore({ config: { ...CFG, probeDeadKernels: true }, name: 'a', weight: 1, peers: [{ name: 'a', address: 'a' }, { name: 'b', address: 'b' }], now: 1000, nonce: NONCE.a });
    s = core.receiveHeartbeat(s, hb({ held: [0, 1, 2, 3, 4, 5, 6, 7] }), 'b', 1000).state;
    for (let t = 1000; t <= 1500; t += 100) s = loop(s, t).state;
    let r = loop(s, 1510);
    expect(r.all.find((i) => i.kind === 'membership')).toMatchObject({ event: { type: 'died', node: 'b' } });
    expect(r.ownership.owned).toHaveLength(8);
    // probing: no orphan set yet
    expect(r.ownership.orphans).toEqual([]);
    // its kernel answers (a hung agent): still none, its connections are its own
    const hung = core.peerKernel(r.state, 'b', true);
    expect(loop(hung, 1600).ownership.orphans).toEqual([]);
    // the node went down meanwhile: the orphans are served for what is left of the hold
    r = loop(core.peerKernel(hung, 'b', false), 1700);
    expect(r.ownership.orphans).toHaveLength(8);
    // a live peer's kernel verdict changes nothing
    const alive = core.receiveHeartbeat(fresh(), hb({}), 'b', 1000).state;
    expect(core.peerKernel(alive, 'b', true)).toBe(alive);
  });

  test('a failover waiting for a survivor to agree reports the wait as agreeMs', () => {
    let s = fresh('a', ['a', 'b', 'c']);
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    s = core.receiveHeartbeat(s, hb({ node: 'b', held: all }), 'b', 1000).state;
    s = core.receiveHeartbeat(s, hb({ node: 'c', incarnation: 600 }), 'c', 1000).state;
    for (let t = 1000; t <= 1500; t += 100) {
      s = loop(s, t).state;
      s = core.receiveHeartbeat(s, hb({ node: 'c', incarnation: 600, seq: t, sentAt: t, viewDigest: s.decision!.viewDigest }), 'c', t).state;
    }
    const oldDigest = s.decision!.viewDigest;
    let r = loop(s, 1510);
    expect(r.all.some((i) => i.kind === 'membership' && i.event.type === 'died')).toBe(true);
    // c still advertises the view with b: a takes nothing yet
    expect(r.ownership.owned).toEqual([]);
    expect(r.state.decision!.disagreeing).toEqual(['c']);
    const newDigest = r.state.decision!.viewDigest;
    expect(newDigest).not.toBe(oldDigest);
    const heard = core.receiveHeartbeat(r.state, hb({ node: 'c', incarnation: 600, seq: 1600, sentAt: 1514, viewDigest: newDigest }), 'c', 1514);
    expect(heard.decideNow).toBe(true);
    r = loop(heard.state, 1514);
    expect(r.ownership.owned.length).toBeGreaterThan(0);
    expect(r.all.find((i) => i.kind === 'failover')).toMatchObject({ peer: 'b', detectMs: 510, agreeMs: 4, sinceLastHeartbeatMs: 514 });
  });

  test('kernel leases run from the periodic loop: a loop in between programs what is left, one that finds them run out renews them and sends', () => {
    const s = run(fresh('a', ['a']), 1000, 1600);
    expect(core.decide(s, 1700).ownership.leaseMs).toBe(300);
    expect(core.decide(s, 1700).renews).toBe(true);
    const between = core.decide(s, 1640, false);
    expect(between).toMatchObject({ renews: false, ownership: { leaseMs: 260 } });
    expect(between.state.leaseFrom).toBe(1600);
    // the timer is 350 ms late: the lease ran out at 1900; this loop renews it, so it must send
    const late = core.decide(s, 1950, false);
    expect(late.renews).toBe(true);
    expect(late.ownership.leaseMs).toBe(300);
    // and what the kernel dropped meanwhile is not claimed from memory
    expect(late.state.held).toEqual([]);
    expect(core.applied(late.state, true, 1950, late.renews).heartbeat).toBeDefined();
    // at least 1 ms: the kernel refuses 0
    expect(core.decide(s, 1899.5, false).ownership.leaseMs).toBe(1);
  });

  test('drain and failing checkers take the share away; weight 0 is standby', () => {
    let s = run(fresh('a', ['a']), 1000, 1600);
    expect(loop(core.setDraining(s, true), 1700)).toMatchObject({ ownership: { owned: [] }, heartbeat: { state: 'draining', held: [] } });
    expect(loop(core.setCheckersHealthy(s, false), 1700)).toMatchObject({ ownership: { owned: [] }, heartbeat: { state: 'down' } });
    expect(loop(core.setWeight(s, 0), 1700)).toMatchObject({ ownership: { owned: [] }, heartbeat: { state: 'standby', weight: 0 } });
  });

  test('reconfigure: another bucket count is a new table (nothing held); the same keeps the claims', () => {
    let s = run(fresh('a', ['a']), 1000, 1600);
    expect(core.reconfigure(s, { ...CFG, intervalMs: 50 }, 2).held).toHaveLength(8);
    const bigger = core.reconfigure(s, { ...CFG, bucketCount: 16 }, 1);
    expect(bigger.held).toEqual([]);
    expect(loop(bigger, 1700).ownership.owned).toHaveLength(16);
  });

  test('stop: after the kernel state is removed the goodbye claims nothing', () => {
    let s = run(fresh('a', ['a']), 1000, 1600);
    const bye = core.goodbye(core.removed(s), 1650);
    expect(bye.heartbeat).toMatchObject({ state: 'down', held: [], seq: 8 });
  });

  test('handover: complete only once this node holds nothing and live peers claim every bucket', () => {
    // a holds everything, b is alive with nothing
    let s = core.receiveHeartbeat(fresh(), hb({ held: [] }), 'b', 1000).state;
    s = { ...s, held: [0, 1, 2, 3] };
    expect(core.peersHoldAll(s)).toBe(false);
    s = core.removed(s);
    expect(core.peersHoldAll(s)).toBe(false);
    s = core.receiveHeartbeat(s, hb({ held: [0, 1, 2, 3, 4, 5, 6], seq: 2, sentAt: 1100 }), 'b', 1100).state;
    expect(core.peersHoldAll(s)).toBe(false);
    s = core.receiveHeartbeat(s, hb({ held: [0, 1, 2, 3, 4, 5, 6, 7], seq: 3, sentAt: 1200 }), 'b', 1200).state;
    expect(core.peersHoldAll(s)).toBe(true);
    // a dead peer's claims do not count
    s = run(s, 1300, 2000);
    expect(s.view.peers.get('b')?.alive).toBe(false);
    expect(core.peersHoldAll(core.removed(s))).toBe(false);
  });

  test('peers: removed ones are forgotten, new ones known before they speak', () => {
    let s = core.receiveHeartbeat(fresh(), hb({}), 'b', 1000).state;
    s = core.setPeers(s, [{ name: 'a', address: 'a' }, { name: 'c', address: 'c' }]);
    expect([...s.view.peers.keys()]).toEqual(['c']);
    expect(core.setPeers(s, [{ name: 'c', address: 'c' }])).toBe(s);
  });

  describe('replay across restarts (nonce echo)', () => {
    /** delivers every datagram of `from`'s heartbeat to `to` */
    function deliver(to: core.CoreState, msg: Heartbeat, now: number): core.Received | core.Rejected {
      return core.receiveDatagram(to, encodeHeartbeat(msg, KEY), KEY, msg.node, now);
    }

    test('heartbeats of a peer captured before our start are no_echo: dropped, the peer stays unheard, we take everything', () => {
      // b's heartbeats as they were before a's restart: they echo a's previous nonce
      const captured = Array.from({ length: 10 }, (_, i) => hb({ seq: 100 + i, sentAt: 900 + 10 * i, held: [0, 1, 2, 3], echo: [0x01020304] }));
      let s = fresh('a', ['a', 'b'], 1000);
      let t = 1000;
      for (; t <= 1700; t += 100) {
        for (const m of captured) {
          const r = deliver(s, { ...m, sentAt: t }, t);
          expect(r).toMatchObject({ rejected: 'no_echo' });
          s = r.state;
        }
        s = loop(s, t).state;
      }
      expect(s.view.peers.get('b')?.heard).toBe(false);
      expect(s.held).toHaveLength(8);
      // what b's restarted heartbeats would need is learned: a's heartbeats echo b's nonce
      expect(loop(s, t).heartbeat?.echo).toEqual([NONCE.b]);
    });

    test('a peer that echoes us is taken; one that restarts is taken at once, before it echoes us', () => {
      let s = fresh();
      const first = deliver(s, hb({ seq: 5 }), 1000) as core.Received;
      expect(first.accepted).toBe(true);
      s = first.state;
      // b restarted: a new incarnation and nonce; it has not heard a yet
      const restarted = deliver(s, hb({ incarnation: 2000, seq: 1, nonce: 0xb1b1b1b1, echo: [] }), 1100) as core.Received;
      expect(restarted).toMatchObject({ accepted: true, decideNow: true });
      expect(restarted.intents).toEqual([{ kind: 'membership', event: expect.objectContaining({ type: 'rejoined', node: 'b', restarted: true }) }]);
      // and a's next heartbeat, even between ticks, echoes the new nonce
      const l = loop(restarted.state, 1100);
      expect(l.heartbeat?.echo).toEqual([0xb1b1b1b1]);
      // b's previous incarnation replayed now: stale
      expect(deliver(l.state, hb({ seq: 6, sentAt: 1100 }), 1100)).toMatchObject({ rejected: 'stale' });
    });

    test('cold start of two cores: the handshake takes one exchange each way, with no wait for a tick', () => {
      let a = fresh('a', ['a', 'b'], 1000);
      let b = fresh('b', ['a', 'b'], 1000);
      // a's first heartbeat: echoes nobody
      let la = loop(a, 1000);
      a = la.state;
      expect(la.heartbeat?.echo).toEqual([]);
      const atB = deliver(b, la.heartbeat!, 1001);
      expect(atB).toMatchObject({ rejected: 'no_echo', answer: true });
      b = atB.state;
      // b answers between ticks (periodic = false): its echo is news
      const d = core.decide(b, 1002);
      const lb = core.applied(d.state, true, 1002, false);
      b = lb.state;
      expect(lb.heartbeat?.echo).toEqual([NONCE.a]);
      const atA = deliver(a, lb.heartbeat!, 1003) as core.Received;
      expect(atA).toMatchObject({ accepted: true, decideNow: true, node: 'b' });
      a = atA.state;
      la = { ...la, ...core.applied(core.decide(a, 1004).state, true, 1004, false) };
      a = la.state;
      expect(la.heartbeat?.echo).toEqual([NONCE.b]);
      const back = deliver(b, la.heartbeat!, 1005) as core.Received;
      expect(back).toMatchObject({ accepted: true, node: 'a' });
      // a's first heartbeat (no echo) again, now that b knows a: an old copy, not taken
      expect(deliver(back.state, { ...loop(fresh('a', ['a', 'b'], 1000), 1000).heartbeat! }, 1007)).toMatchObject({ accepted: false, duplicate: true });
    });

    test('a no_echo heartbeat asks for an answer only the first time its nonce is seen', () => {
      let s = fresh();
      const r1 = deliver(s, hb({ echo: [] }), 1000);
      expect(r1).toMatchObject({ rejected: 'no_echo', answer: true });
      s = r1.state;
      expect(deliver(s, hb({ seq: 2, echo: [] }), 1001)).toMatchObject({ rejected: 'no_echo', answer: false });
      // an older incarnation's nonce does not replace the newer one
      const older = deliver(s, hb({ incarnation: 400, nonce: 0x40404040, echo: [] }), 1002);
      expect(older).toMatchObject({ rejected: 'no_echo', answer: false });
      expect(older.state.echoes.peers.get('b')?.nonce).toBe(NONCE.b);
    });
  });
});
