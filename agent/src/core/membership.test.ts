import type { Heartbeat } from './heartbeat-codec.js';
import { addPeer, applyHeartbeat, createView, GAP_DECAY, livePeers, lossesToRideOut, memberCounts, removePeer, silenceLimit, tick, type View } from './membership.js';
import { createRng } from './prng.js';

function hb(node: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return { farm: 'web', node, incarnation: 1000, seq: 1, sentAt: 0, weight: 1, state: 'ready', viewDigest: 0, bucketCount: 8, held: [], nonce: 0, echo: [], ...over };
}

describe('membership', () => {
  test('configured peers start unheard and not alive; self is left out', () => {
    const v = createView('n1', [{ name: 'n1', address: '10.0.0.1' }, { name: 'n2', address: '10.0.0.2' }]);
    expect([...v.peers.keys()]).toEqual(['n2']);
    expect(v.peers.get('n2')).toMatchObject({ alive: false, heard: false, address: '10.0.0.2' });
    expect(livePeers(v)).toEqual([]);
  });

  test('first heartbeat: joined; the record follows the message', () => {
    const { view, events } = applyHeartbeat(createView('n1'), hb('n2', { weight: 3, held: [1, 2] }), 50, '10.0.0.2');
    expect(events).toEqual([{ type: 'joined', node: 'n2', incarnation: 1000, weight: 3, state: 'ready', address: '10.0.0.2' }]);
    expect(view.peers.get('n2')).toMatchObject({ alive: true, lastHeardAt: 50, weight: 3, held: [1, 2], seq: 1 });
  });

  test('heartbeats from self are ignored', () => {
    const v = createView('n1');
    expect(applyHeartbeat(v, hb('n1'), 0)).toEqual({ view: v, events: [] });
  });

  test('weight, state and address changes are events; plain refreshes are not', () => {
    let v: View = applyHeartbeat(createView('n1'), hb('n2'), 0, 'a').view;
    const same = applyHeartbeat(v, hb('n2', { seq: 2, held: [3] }), 100, 'a');
    expect(same.events).toEqual([]);
    expect(same.view.peers.get('n2')!.held).toEqual([3]);
    v = same.view;
    const ch = applyHeartbeat(v, hb('n2', { seq: 3, weight: 0, state: 'draining' }), 200, 'b');
    expect(ch.events).toEqual([{ type: 'changed', node: 'n2', weight: { from: 1, to: 0 }, state: { from: 'ready', to: 'draining' }, address: { from: 'a', to: 'b' } }]);
  });

  test('reordered or older messages change nothing', () => {
    const v = applyHeartbeat(createView('n1'), hb('n2', { seq: 5, held: [1] }), 0).view;
    expect(applyHeartbeat(v, hb('n2', { seq: 4, held: [2] }), 10).view).toBe(v);
    expect(applyHeartbeat(v, hb('n2', { seq: 5, held: [2] }), 10).view).toBe(v);
    expect(applyHeartbeat(v, hb('n2', { incarnation: 999, seq: 99 }), 10).view).toBe(v);
  });

  /** n2's heartbeats heard at these local times, sent (its clock) at the same times */
  function heardAt(times: number[], over: Partial<Heartbeat> = {}): View {
    let v: View = createView('n1');
    times.forEach((t, i) => (v = applyHeartbeat(v, hb('n2', { seq: i + 1, sentAt: t, ...over }), t).view));
    return v;
  }

  test.each([
    // [heard at, threshold, interval, limit]
    [[0], 120, 40, 120], // one heartbeat: no gap known yet
    [[0, 40, 80, 120], 120, 40, 120], // on time
    [[0, 39, 80, 121], 120, 40, 121], // 1 ms of jitter: 41 + 80
    [[0, 40, 120], 120, 40, 160], // one lost: 80 + 2 intervals more
    [[0, 40, 220], 120, 40, 240], // a 180 ms gap: 260, capped at twice the threshold
    [[0, 40, 120], 120, undefined, 120], // no interval given: the plain threshold
    [[0, 100, 200, 300], 500, 100, 500],
    [[0, 100, 350], 500, 100, 650],
  ] as const)('silenceLimit after heartbeats at %j (threshold %i, interval %s) = %i', (times, threshold, interval, limit) => {
    const p = heardAt([...times]).peers.get('n2')!;
    expect(silenceLimit(p, threshold, interval)).toBeCloseTo(limit, 6);
  });

  test('the remembered gap decays back towards on-time heartbeats, and starts over with a new incarnation or after a death', () => {
    const times = [0, 40, 120];
    for (let t = 160; t <= 160 + 40 * 200; t += 40) times.push(t);
    let v = heardAt(times);
    const p = v.peers.get('n2')!;
    // 80 decayed 200 times, but never below the last gap (40)
    expect(p.gapMs).toBeCloseTo(Math.max(40, 80 * GAP_DECAY ** 200), 6);
    expect(silenceLimit(p, 120, 40)).toBe(120);
    v = heardAt([0, 40, 120]);
    const restarted = applyHeartbeat(v, hb('n2', { incarnation: 2000, seq: 1 }), 160).view.peers.get('n2')!;
    expect(restarted.gapMs).toBeUndefined();
    const died = tick(v, 400, 120, 40).view;
    expect(died.peers.get('n2')!.alive).toBe(false);
    expect(applyHeartbeat(died, hb('n2', { seq: 9 }), 500).view.peers.get('n2')!.gapMs).toBeUndefined();
  });

  test('a stretched limit delays the death; the plain threshold never comes sooner', () => {
    const v = heardAt([0, 40, 120]);
    // limit 160 after the one lost heartbeat: alive at 120 + 160, dead just after
    expect(tick(v, 120 + 160, 120, 40).events).toEqual([]);
    expect(tick(v, 120 + 161, 120, 40).events).toMatchObject([{ type: 'died', node: 'n2', silentMs: 161 }]);
    // without the interval, the threshold as configured
    expect(tick(v, 120 + 121, 120).events).toMatchObject([{ type: 'died', node: 'n2' }]);
    const onTime = heardAt([0, 40, 80]);
    expect(tick(onTime, 80 + 121, 120, 40).events).toMatchObject([{ type: 'died', node: 'n2' }]);
  });

  test('a gap that spans our own stall is not held against the peer: gaps are on the sender\'s clock', () => {
    let v = heardAt([0, 40]);
    // we were blocked from 50 to 300: the tick at 300 sees the stall
    v = tick({ ...v, lastTickAt: 50 }, 300, 120, 40).view;
    expect(v.awakeSince).toBe(300);
    // its heartbeat of 80 waited in our socket until 301
    v = applyHeartbeat(v, hb('n2', { seq: 3, sentAt: 80 }), 301).view;
    expect(v.peers.get('n2')!.gapMs).toBe(40);
    expect(silenceLimit(v.peers.get('n2')!, 120, 40)).toBe(120);
    // the same for our lateness below the stall rule: read 30 ms late, sent on time
    const late = [0, 40, 110, 120].reduce<View>((w, t, i) => applyHeartbeat(w, hb('n2', { seq: i + 1, sentAt: 40 * i }), t).view, createView('n1'));
    expect(late.peers.get('n2')!.gapMs).toBe(40);
  });

  test('a sender late on its own clock stretches the limit; a sender clock stepped back falls back to the local gap', () => {
    // sent at 0, 40, 130 (90 ms late on its own clock), heard at the same times
    expect(silenceLimit(heardAt([0, 40, 130]).peers.get('n2')!, 120, 40)).toBe(170);
    // its clock went back 10 s between two heartbeats heard 40 ms apart: the local 40 ms
    let v = applyHeartbeat(createView('n1'), hb('n2', { seq: 1, sentAt: 10_000 }), 0).view;
    v = applyHeartbeat(v, hb('n2', { seq: 2, sentAt: 40 }), 40).view;
    expect(v.peers.get('n2')!.gapMs).toBe(40);
    // or jumped 1 h ahead
    v = applyHeartbeat(v, hb('n2', { seq: 3, sentAt: 3_600_000 }), 80).view;
    expect(v.peers.get('n2')!.gapMs).toBe(40);
  });

  test.each([
    [0, 0], [1e-9, 1], [0.001, 2], [0.01, 3], [0.02, 4], [0.1, 6], [0.5, 20], [1, Infinity],
  ] as const)('lossesToRideOut(%f) = %f', (p, k) => {
    expect(lossesToRideOut(p)).toBe(k);
  });

  test('seq gaps (heartbeats lost on every path) raise the loss rate, and the limit rides out as many in a row as that makes likely', () => {
    // 1 of every 10 lost, 200 times, on time otherwise: the rate settles near 0.1
    let v: View = createView('n1');
    let seq = 0;
    for (let i = 0; i < 2000; i++) {
      seq += i % 10 === 9 ? 2 : 1;
      v = applyHeartbeat(v, hb('n2', { seq, sentAt: 40 * seq }), 40 * seq).view;
    }
    const p = v.peers.get('n2')!;
    expect(p.lossRate).toBeGreaterThan(0.07);
    expect(p.lossRate).toBeLessThan(0.13);
    // 0.1^6 = 1e-6: six in a row may go missing, 7 intervals, capped at twice the threshold
    expect(silenceLimit(p, 120, 40)).toBe(240);
    // the gap term alone (one lost: 80 + 200 - 40) says less
    expect(silenceLimit(p, 200, 40)).toBe(7 * 40);
    // lossless again: the rate decays and the limit comes back to the threshold
    for (let i = 0; i < 1000; i++) v = applyHeartbeat(v, hb('n2', { seq: ++seq, sentAt: 40 * seq }), 40 * seq).view;
    expect(v.peers.get('n2')!.lossRate).toBeLessThan(1e-6);
    expect(silenceLimit(v.peers.get('n2')!, 120, 40)).toBe(120);
    // a lossless peer never has a rate; a restart forgets it
    expect(heardAt([0, 40, 80]).peers.get('n2')!.lossRate).toBeUndefined();
    const restarted = applyHeartbeat(applyHeartbeat(createView('n1'), hb('n2', { seq: 1 }), 0).view, hb('n2', { seq: 5 }), 40).view;
    expect(restarted.peers.get('n2')!.lossRate).toBeCloseTo((1 - GAP_DECAY ** 4) * 0.75, 9);
    expect(applyHeartbeat(restarted, hb('n2', { incarnation: 2000, seq: 1 }), 80).view.peers.get('n2')!.lossRate).toBeUndefined();
  });

  test('silence beyond the threshold: died, with the held buckets; not before', () => {
    const v = applyHeartbeat(createView('n1'), hb('n2', { held: [4, 5] }), 1000).view;
    expect(tick(v, 1500, 500).events).toEqual([]);
    expect(tick(v, 1500, 500).view.peers).toBe(v.peers);
    const d = tick(v, 1501, 500);
    expect(d.events).toEqual([{ type: 'died', node: 'n2', silentMs: 501, held: [4, 5] }]);
    expect(d.view.peers.get('n2')).toMatchObject({ alive: false, diedAt: 1501, held: [4, 5] });
    // dying is reported once
    expect(tick(d.view, 3000, 500).events).toEqual([]);
  });

  test('heard again after death with the same incarnation: rejoined, not restarted', () => {
    const v1 = applyHeartbeat(createView('n1'), hb('n2'), 0).view;
    const v2 = tick(v1, 600, 500).view;
    const r = applyHeartbeat(v2, hb('n2', { seq: 9 }), 900);
    expect(r.events).toEqual([{ type: 'rejoined', node: 'n2', incarnation: 1000, restarted: false, deadForMs: 300 }]);
    expect(r.view.peers.get('n2')!.alive).toBe(true);
    expect(r.view.peers.get('n2')!.diedAt).toBeUndefined();
  });

  test('a new incarnation is a rejoin (restart), even if never declared dead', () => {
    const v1 = applyHeartbeat(createView('n1'), hb('n2', { seq: 50, held: [1] }), 0).view;
    const r = applyHeartbeat(v1, hb('n2', { incarnation: 2000, seq: 1, state: 'standby', held: [] }), 100);
    expect(r.events).toEqual([
      { type: 'rejoined', node: 'n2', incarnation: 2000, restarted: true },
      { type: 'changed', node: 'n2', state: { from: 'ready', to: 'standby' } },
    ]);
    expect(r.view.peers.get('n2')!.held).toEqual([]);
  });

  test('created with its start time, an agent blocked right after starting is stalled at its first tick', () => {
    let v = createView('n1', [], 0);
    v = applyHeartbeat(v, hb('n2'), 1).view;
    const first = tick(v, 900, 500);
    expect(first.stalledMs).toBe(900);
    expect(first.events).toEqual([]);
    expect(first.view.awakeSince).toBe(900);
    // without a start time the first tick has nothing to compare with
    expect(tick(applyHeartbeat(createView('n1'), hb('n2'), 1).view, 900, 500).stalledMs).toBeUndefined();
  });

  test('removePeer and memberCounts', () => {
    let v = applyHeartbeat(createView('n1', [{ name: 'n9', address: 'x' }]), hb('n2'), 0).view;
    v = applyHeartbeat(v, hb('n3', { state: 'draining' }), 0).view;
    v = applyHeartbeat(v, hb('n4'), 400).view;
    v = tick(v, 600, 500).view;
    expect(memberCounts(v)).toEqual({ ready: 1, draining: 0, standby: 0, down: 0, dead: 2 });
    expect([...removePeer(v, 'n2').peers.keys()].sort()).toEqual(['n3', 'n4', 'n9']);
  });

  test('addPeer knows a peer before it speaks, keeps the rest of the view, ignores self and known peers', () => {
    const v = tick(applyHeartbeat(createView('n1', [], 0), hb('n2'), 10).view, 20, 500).view;
    const w = addPeer(v, { name: 'n5', address: '10.0.0.5' });
    expect(w.peers.get('n5')).toMatchObject({ address: '10.0.0.5', heard: false, alive: false });
    expect(w.peers.get('n2')).toBe(v.peers.get('n2'));
    expect(w.lastTickAt).toBe(v.lastTickAt);
    expect(addPeer(w, { name: 'n5', address: 'other' })).toBe(w);
    expect(addPeer(w, { name: 'n1', address: 'x' })).toBe(w);
  });

  test('property: alive iff heard within the threshold (counted from our own last stall), random times', () => {
    const rng = createRng(21);
    for (let trial = 0; trial < 40; trial++) {
      let v: View = createView('self');
      const last = new Map<string, number>();
      const alive = new Map<string, boolean>();
      const seq = new Map<string, number>();
      let now = 0;
      let lastTick: number | undefined;
      let awake = -Infinity;
      const threshold = rng.int(50, 500);
      for (let step = 0; step < 300; step++) {
        now += rng.int(0, 60);
        if (rng.next() < 0.6) {
          const node = `p${rng.int(0, 4)}`;
          const s = (seq.get(node) ?? 0) + 1;
          seq.set(node, s);
          v = applyHeartbeat(v, hb(node, { seq: s }), now).view;
          last.set(node, now);
          alive.set(node, true);
        } else {
          const u = tick(v, now, threshold);
          v = u.view;
          const stalled = lastTick !== undefined && now - lastTick > threshold / 2;
          expect(u.stalledMs !== undefined).toBe(stalled);
          if (stalled) awake = now;
          lastTick = now;
          for (const [node, at] of last) {
            if (alive.get(node) && now - Math.max(at, awake) > threshold) alive.set(node, false);
            expect(v.peers.get(node)!.alive).toBe(alive.get(node));
          }
        }
      }
    }
  });

  test('after our own stall, peers are not declared dead until they had a threshold to speak', () => {
    let v = applyHeartbeat(createView('n1'), hb('n2'), 0).view;
    v = tick(v, 100, 500).view;
    // blocked for 2 s: the tick after it must not kill n2, whose heartbeats wait in the socket
    const resumed = tick(v, 2100, 500);
    expect(resumed.stalledMs).toBe(2000);
    expect(resumed.events).toEqual([]);
    // still silent a threshold after resuming: now it is dead
    let w = resumed.view;
    for (const t of [2200, 2300, 2400, 2500, 2600]) {
      const u = tick(w, t, 500);
      expect(u.events).toEqual([]);
      w = u.view;
    }
    expect(tick(w, 2601, 500).events.map((e) => e.type)).toEqual(['died']);
    // heard right after resuming: stays alive
    const heard = applyHeartbeat(resumed.view, hb('n2', { seq: 2 }), 2101).view;
    expect(tick(heard, 2200, 500).view.peers.get('n2')!.alive).toBe(true);
  });
});
