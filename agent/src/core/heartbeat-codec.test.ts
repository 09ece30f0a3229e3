import { createHmac } from 'node:crypto';
import {
  checkReplay,
  createReplayGuard,
  decodeHeartbeat,
  encodeHeartbeat,
  MAX_HEARTBEAT_BYTES,
  pruneReplayGuard,
  type Heartbeat,
} from './heartbeat-codec.js';
import { createRng, type Rng } from './prng.js';

const key = Buffer.from('0123456789abcdef0123456789abcdef');
const otherKey = Buffer.from('fedcba9876543210fedcba9876543210');

function sample(over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    farm: 'web',
    node: 'n1',
    incarnation: 1_764_000_000_000,
    seq: 42,
    sentAt: 1_764_000_000_500,
    weight: 3,
    state: 'ready',
    viewDigest: 0xdeadbeef,
    bucketCount: 256,
    held: [0, 7, 8, 100, 255],
    ...over,
  };
}

function randomHeartbeat(rng: Rng): Heartbeat {
  const bucketCount = rng.pick([0, 1, 2, 7, 8, 9, 256, 1024, 4096]);
  const held = [];
  for (let b = 0; b < bucketCount; b++) if (rng.next() < 0.3) held.push(b);
  const name = (len: number): string => Array.from({ length: len }, () => rng.pick(['a', 'z', '0', '-', '.', 'é'])).join('');
  return {
    farm: name(rng.int(1, 40)),
    node: name(rng.int(1, 60)),
    incarnation: rng.int(0, 2 ** 50),
    seq: rng.int(0, 2 ** 40),
    sentAt: rng.int(0, 2 ** 50),
    weight: rng.int(0, 65535),
    state: rng.pick(['ready', 'draining', 'standby', 'down'] as const),
    viewDigest: rng.int(0, 0xffffffff),
    bucketCount,
    held,
  };
}

describe('encode/decode', () => {
  test('round trip of a typical heartbeat', () => {
    const buf = encodeHeartbeat(sample(), key);
    expect(decodeHeartbeat(buf, key, 'web')).toEqual({ ok: true, msg: sample() });
  });

  test('round trip of random heartbeats (seeded)', () => {
    const rng = createRng(7);
    for (let i = 0; i < 300; i++) {
      const msg = randomHeartbeat(rng);
      const buf = encodeHeartbeat(msg, key);
      expect(buf.length).toBeLessThanOrEqual(MAX_HEARTBEAT_BYTES);
      expect(decodeHeartbeat(buf, key, msg.farm)).toEqual({ ok: true, msg });
    }
  });

  test('largest heartbeat fits one unfragmented datagram', () => {
    const msg = sample({ farm: 'f'.repeat(40), node: 'n'.repeat(253), bucketCount: 4096, held: Array.from({ length: 4096 }, (_, i) => i) });
    const buf = encodeHeartbeat(msg, key);
    expect(buf.length).toBeLessThanOrEqual(1400);
    expect(decodeHeartbeat(buf, key, msg.farm)).toEqual({ ok: true, msg });
  });

  test('held order and duplicates do not matter on the wire', () => {
    const a = encodeHeartbeat(sample({ held: [5, 1, 5] }), key);
    const r = decodeHeartbeat(a, key, 'web');
    expect(r.ok && r.msg.held).toEqual([1, 5]);
  });

  test('wrong key is bad_mac, wrong farm is wrong_farm', () => {
    const buf = encodeHeartbeat(sample(), key);
    expect(decodeHeartbeat(buf, otherKey, 'web')).toEqual({ ok: false, reason: 'bad_mac' });
    expect(decodeHeartbeat(buf, key, 'db')).toEqual({ ok: false, reason: 'wrong_farm' });
  });

  test('every single-bit flip is rejected', () => {
    const buf = encodeHeartbeat(sample({ bucketCount: 16, held: [1, 2] }), key);
    for (let i = 0; i < buf.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(buf);
        copy[i]! ^= 1 << bit;
        const r = decodeHeartbeat(copy, key, 'web');
        expect(r.ok).toBe(false);
      }
    }
  });

  test('every truncation and extension is malformed', () => {
    const buf = encodeHeartbeat(sample(), key);
    for (let len = 0; len < buf.length; len++) {
      expect(decodeHeartbeat(buf.subarray(0, len), key, 'web')).toEqual({ ok: false, reason: 'malformed' });
    }
    expect(decodeHeartbeat(Buffer.concat([buf, Buffer.from([0])]), key, 'web')).toEqual({ ok: false, reason: 'malformed' });
  });

  test('fuzz: random buffers never throw and never pass', () => {
    const rng = createRng(99);
    const valid = encodeHeartbeat(sample(), key);
    const reasons = new Set<string>();
    for (let i = 0; i < 20000; i++) {
      let buf: Buffer;
      if (i % 3 === 0) {
        buf = Buffer.alloc(rng.int(0, 1600));
        for (let j = 0; j < buf.length; j++) buf[j] = rng.int(0, 255);
      } else {
        // mutate a valid packet: keeps the magic often, so the parser's depths are reached
        buf = Buffer.from(valid);
        const edits = rng.int(1, 4);
        for (let e = 0; e < edits; e++) buf[rng.int(0, buf.length - 1)] = rng.int(0, 255);
        if (rng.next() < 0.3) buf = buf.subarray(0, rng.int(0, buf.length));
      }
      const r = decodeHeartbeat(buf, key, 'web');
      if (r.ok) {
        // only an edit that changed nothing may pass
        expect(buf.equals(valid)).toBe(true);
      } else reasons.add(r.reason);
    }
    expect([...reasons].sort()).toEqual(['bad_mac', 'malformed', 'wrong_farm']);
  });

  test('invalid UTF-8 names and set padding bits are malformed even with a valid tag', () => {
    // build by hand with the right tag, so only the structural checks can reject them
    const body = encodeHeartbeat(sample({ bucketCount: 4, held: [] }), key);
    const b1 = Buffer.from(body.subarray(0, body.length - 32));
    b1[b1.length - 1] = 0x10; // bit 4 of a 4-bucket bitmap
    const forged = Buffer.concat([b1, createHmac('sha256', key).update(b1).digest()]);
    expect(decodeHeartbeat(forged, key, 'web')).toEqual({ ok: false, reason: 'malformed' });
    const b2 = Buffer.from(body.subarray(0, body.length - 32));
    b2[5] = 0xff; // first byte of the farm name: not UTF-8
    const forged2 = Buffer.concat([b2, createHmac('sha256', key).update(b2).digest()]);
    expect(decodeHeartbeat(forged2, key, 'web')).toEqual({ ok: false, reason: 'malformed' });
  });

  test('encode refuses messages no peer could accept', () => {
    expect(() => encodeHeartbeat(sample({ held: [256] }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ weight: -1 }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ node: '' }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ seq: 2 ** 60 }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ bucketCount: 8192 }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ viewDigest: 2 ** 32 }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ state: 'bogus' as never }), key)).toThrow(RangeError);
  });
});

describe('ReplayGuard', () => {
  const now = 1_764_000_000_500;
  const skew = 5000;
  const hb = (over: Partial<Heartbeat>) => sample({ sentAt: now, ...over });

  test('accepts growing seq, rejects equal or lower as replay', () => {
    let g = createReplayGuard();
    const a = checkReplay(g, hb({ seq: 1 }), now, skew);
    expect(a.ok).toBe(true);
    g = (a as { guard: typeof g }).guard;
    expect(checkReplay(g, hb({ seq: 1 }), now, skew)).toEqual({ ok: false, reason: 'replay' });
    expect(checkReplay(g, hb({ seq: 0 }), now, skew)).toEqual({ ok: false, reason: 'replay' });
    expect(checkReplay(g, hb({ seq: 5 }), now, skew).ok).toBe(true);
  });

  test('a newer incarnation resets seq; an older one is stale', () => {
    let g = createReplayGuard();
    const a = checkReplay(g, hb({ incarnation: 100, seq: 50 }), now, skew);
    g = a.ok ? a.guard : g;
    const b = checkReplay(g, hb({ incarnation: 200, seq: 1 }), now, skew);
    expect(b.ok).toBe(true);
    g = b.ok ? b.guard : g;
    expect(checkReplay(g, hb({ incarnation: 100, seq: 51 }), now, skew)).toEqual({ ok: false, reason: 'stale' });
  });

  test('nodes are independent', () => {
    let g = createReplayGuard();
    const a = checkReplay(g, hb({ node: 'n1', seq: 10 }), now, skew);
    g = a.ok ? a.guard : g;
    expect(checkReplay(g, hb({ node: 'n2', seq: 1 }), now, skew).ok).toBe(true);
  });

  test('sentAt outside the skew window is stale, inside is fine', () => {
    const g = createReplayGuard();
    expect(checkReplay(g, hb({ sentAt: now - skew - 1 }), now, skew)).toEqual({ ok: false, reason: 'stale' });
    expect(checkReplay(g, hb({ sentAt: now + skew + 1 }), now, skew)).toEqual({ ok: false, reason: 'stale' });
    expect(checkReplay(g, hb({ sentAt: now - skew }), now, skew).ok).toBe(true);
    expect(checkReplay(g, hb({ sentAt: now + skew }), now, skew).ok).toBe(true);
  });

  test('the guard is not mutated by a check', () => {
    const g = createReplayGuard();
    checkReplay(g, hb({ seq: 1 }), now, skew);
    expect(g.nodes.size).toBe(0);
  });

  test('property: a random delivery order accepts exactly the strictly newer messages', () => {
    const rng = createRng(11);
    for (let trial = 0; trial < 50; trial++) {
      const sent = Array.from({ length: 30 }, (_, i) => ({ node: 'n1', incarnation: 1 + Math.floor(i / 10), seq: i % 10, sentAt: now }));
      const delivered = rng.shuffle([...sent, ...sent.slice(0, 10)]);
      let g = createReplayGuard();
      let newest: { incarnation: number; seq: number } | undefined;
      for (const m of delivered) {
        const v = checkReplay(g, m, now, skew);
        const newer = !newest || m.incarnation > newest.incarnation || (m.incarnation === newest.incarnation && m.seq > newest.seq);
        expect(v.ok).toBe(newer);
        if (v.ok) {
          g = v.guard;
          newest = m;
        }
      }
    }
  });

  test('prune forgets silent nodes only', () => {
    let g = createReplayGuard();
    for (const [node, at] of [['old', now - 60_000], ['new', now]] as const) {
      const v = checkReplay(g, hb({ node, sentAt: at }), at, skew);
      if (v.ok) g = v.guard;
    }
    const pruned = pruneReplayGuard(g, now, 30_000);
    expect([...pruned.nodes.keys()]).toEqual(['new']);
    expect(pruneReplayGuard(pruned, now, 30_000)).toBe(pruned);
  });
});
