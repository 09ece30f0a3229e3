import { createHmac } from 'node:crypto';
import {
  checkReplay,
  createReplayGuard,
  decodeHeartbeat,
  encodeHeartbeat,
  MAX_ECHOES,
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
    nonce: 0x1234abcd,
    echo: [7, 0xffffffff],
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
    nonce: rng.int(0, 0xffffffff),
    echo: Array.from({ length: rng.pick([0, 1, 2, 63, 64]) }, () => rng.int(0, 0xffffffff)),
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
    const msg = sample({
      farm: 'f'.repeat(40), node: 'n'.repeat(253), bucketCount: 4096, held: Array.from({ length: 4096 }, (_, i) => i),
      echo: Array.from({ length: MAX_ECHOES }, (_, i) => 0xffffffff - i),
    });
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
    expect([...reasons].sort()).toEqual(['bad_mac', 'malformed', 'version', 'wrong_farm']);
  });

  test('invalid UTF-8 names and set padding bits are malformed even with a valid tag', () => {
    // build by hand with the right tag, so only the structural checks can reject them
    const body = encodeHeartbeat(sample({ bucketCount: 4, held: [] }), key);
    const b1 = Buffer.from(body.subarray(0, body.length - 32));
    const bitmapAt = 4 + 1 + 3 + 1 + 2 + 24 + 8; // after 'web', 'n1', the u64s, weight, digest, count
    expect(b1[bitmapAt]).toBe(0);
    b1[bitmapAt] = 0x10; // bit 4 of a 4-bucket bitmap
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
    expect(() => encodeHeartbeat(sample({ nonce: 2 ** 32 }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ echo: [-1] }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ echo: Array.from({ length: MAX_ECHOES + 1 }, () => 1) }), key)).toThrow(RangeError);
  });

  test('nonce and echo are covered by the tag', () => {
    const buf = encodeHeartbeat(sample(), key);
    const echoAt = buf.length - 32 - 2 - 8; // the first of the two echoes; the nonce is 5 bytes before
    for (const at of [echoAt - 5, echoAt - 2, echoAt, echoAt + 7]) {
      const copy = Buffer.from(buf);
      copy[at]! ^= 0x01;
      expect(decodeHeartbeat(copy, key, 'web')).toEqual({ ok: false, reason: 'bad_mac' });
    }
  });

  test('a heartbeat of another wire version is told apart (version 1 had no nonce and echo)', () => {
    const buf = encodeHeartbeat(sample(), key);
    for (const v of [1, 3, 255]) {
      const copy = Buffer.from(buf);
      copy[2] = v;
      expect(decodeHeartbeat(copy, key, 'web')).toEqual({ ok: false, reason: 'version' });
    }
    // a version-1 layout (no nonce, echo count or extension length), signed with the right key
    const v1 = Buffer.from(buf.subarray(0, buf.length - 32 - (4 + 1 + 4 * 2 + 2)));
    v1[2] = 1;
    const signed = Buffer.concat([v1, createHmac('sha256', key).update(v1).digest()]);
    expect(decodeHeartbeat(signed, key, 'web')).toEqual({ ok: false, reason: 'version' });
    // short garbage with the magic stays malformed
    expect(decodeHeartbeat(Buffer.from('VF\x01hello'), key, 'web')).toEqual({ ok: false, reason: 'malformed' });
  });

  /** `buf` (written with `extLen` extension bytes) re-signed with `ext` as its extension */
  const withExtension = (buf: Buffer, extLen: number, ext: Buffer): Buffer => {
    const head = Buffer.from(buf.subarray(0, buf.length - 32 - extLen));
    head.writeUInt16BE(ext.length, head.length - 2);
    const body = Buffer.concat([head, ext]);
    return Buffer.concat([body, createHmac('sha256', key).update(body).digest()]);
  };

  test('a later sender\'s appended extension bytes are skipped, but signed', () => {
    const buf = encodeHeartbeat(sample(), key);
    const ours = buf.subarray(buf.length - 32 - 4, buf.length - 32);
    const signed = withExtension(buf, 4, Buffer.concat([ours, Buffer.alloc(12), Buffer.from([1, 2, 3])]).subarray(0, 4 + 3));
    expect(decodeHeartbeat(signed, key, 'web')).toEqual({ ok: true, msg: sample() });
    const tampered = Buffer.from(signed);
    tampered[signed.length - 33]! ^= 1;
    expect(decodeHeartbeat(tampered, key, 'web')).toEqual({ ok: false, reason: 'bad_mac' });
    // an extension length running past the tag is malformed
    const long = Buffer.from(signed);
    long.writeUInt16BE(200, signed.length - 32 - 7 - 2);
    expect(decodeHeartbeat(long, key, 'web')).toEqual({ ok: false, reason: 'malformed' });
  });

  test('sub-millisecond sentAt and a timed handoff round-trip in the extension (to the µs)', () => {
    const msg = sample({ sentAt: 1_764_000_000_500.123456, giving: { atMs: 1_764_000_000_550.25, digest: 0xabcdef01 } });
    const d = decodeHeartbeat(encodeHeartbeat(msg, key), key, 'web');
    if (!d.ok) throw new Error(d.reason);
    expect(d.msg.sentAt).toBeCloseTo(msg.sentAt, 5);
    expect(d.msg.giving).toEqual({ atMs: 1_764_000_000_550.25, digest: 0xabcdef01 });
    expect({ ...d.msg, sentAt: 0, giving: undefined }).toEqual({ ...msg, sentAt: 0, giving: undefined });
    // the instant is floored to the µs (earlier, the giver's safe side), not rounded up
    const g = decodeHeartbeat(encodeHeartbeat(sample({ giving: { atMs: 1000.0019, digest: 5 } }), key), key, 'web');
    expect(g.ok && g.msg.giving?.atMs).toBe(1000.001);
    // refused: a zero digest, an instant that is no time
    expect(() => encodeHeartbeat(sample({ giving: { atMs: 10, digest: 0 } }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ giving: { atMs: NaN, digest: 1 } }), key)).toThrow(RangeError);
    expect(() => encodeHeartbeat(sample({ sentAt: -1 }), key)).toThrow(RangeError);
  });

  test('an older sender (no extension) is heard: whole-ms sentAt, no handoff', () => {
    const buf = encodeHeartbeat(sample({ giving: { atMs: 5, digest: 5 } }), key);
    const old = withExtension(buf, 16, Buffer.alloc(0));
    expect(decodeHeartbeat(old, key, 'web')).toEqual({ ok: true, msg: sample() });
    // only the fraction: a sender with sub-ms time and no handoff
    const frac = withExtension(buf, 16, Buffer.from([0, 0x07, 0xa1, 0x20])); // 500000 ns
    const d = decodeHeartbeat(frac, key, 'web');
    expect(d.ok && d.msg.sentAt).toBe(sample().sentAt + 0.5);
    expect(d.ok && d.msg.giving).toBeUndefined();
    // a fraction of a whole ms or more is no fraction: malformed
    expect(decodeHeartbeat(withExtension(buf, 16, Buffer.from([0, 0x0f, 0x42, 0x40])), key, 'web')).toEqual({ ok: false, reason: 'malformed' });
    // a handoff with digest 0 is malformed
    expect(decodeHeartbeat(withExtension(buf, 16, Buffer.alloc(16)), key, 'web')).toEqual({ ok: false, reason: 'malformed' });
  });

  test('what this version writes fits what an older receiver accepts (extension <= 128 bytes)', () => {
    const buf = encodeHeartbeat(sample({ sentAt: 1.5, giving: { atMs: 3.25, digest: 9 } }), key);
    // the extension length sits right before the 16 appended bytes
    expect(buf.readUInt16BE(buf.length - 32 - 16 - 2)).toBe(16);
  });
});

describe('ReplayGuard', () => {
  const now = 1_764_000_000_500;
  const skew = 5000;
  const me = 0xabcd0001;
  const hb = (over: Partial<Heartbeat>) => sample({ sentAt: now, echo: [5, me], ...over });

  test('accepts growing seq, rejects equal or lower as replay', () => {
    let g = createReplayGuard();
    const a = checkReplay(g, hb({ seq: 1 }), now, skew, me);
    expect(a.ok).toBe(true);
    g = (a as { guard: typeof g }).guard;
    expect(checkReplay(g, hb({ seq: 1 }), now, skew, me)).toEqual({ ok: false, reason: 'replay' });
    expect(checkReplay(g, hb({ seq: 0 }), now, skew, me)).toEqual({ ok: false, reason: 'replay' });
    expect(checkReplay(g, hb({ seq: 5 }), now, skew, me).ok).toBe(true);
  });

  test('a newer incarnation resets seq; an older one is stale', () => {
    let g = createReplayGuard();
    const a = checkReplay(g, hb({ incarnation: 100, seq: 50 }), now, skew, me);
    g = a.ok ? a.guard : g;
    const b = checkReplay(g, hb({ incarnation: 200, seq: 1 }), now, skew, me);
    expect(b.ok).toBe(true);
    g = b.ok ? b.guard : g;
    expect(checkReplay(g, hb({ incarnation: 100, seq: 51 }), now, skew, me)).toEqual({ ok: false, reason: 'stale' });
  });

  test('nodes are independent', () => {
    let g = createReplayGuard();
    const a = checkReplay(g, hb({ node: 'n1', seq: 10 }), now, skew, me);
    g = a.ok ? a.guard : g;
    expect(checkReplay(g, hb({ node: 'n2', seq: 1 }), now, skew, me).ok).toBe(true);
  });

  test('sentAt outside the skew window is stale, inside is fine', () => {
    const g = createReplayGuard();
    expect(checkReplay(g, hb({ sentAt: now - skew - 1 }), now, skew, me)).toEqual({ ok: false, reason: 'stale' });
    expect(checkReplay(g, hb({ sentAt: now + skew + 1 }), now, skew, me)).toEqual({ ok: false, reason: 'stale' });
    expect(checkReplay(g, hb({ sentAt: now - skew }), now, skew, me).ok).toBe(true);
    expect(checkReplay(g, hb({ sentAt: now + skew }), now, skew, me).ok).toBe(true);
  });

  test('the guard is not mutated by a check', () => {
    const g = createReplayGuard();
    checkReplay(g, hb({ seq: 1 }), now, skew, me);
    expect(g.nodes.size).toBe(0);
  });

  test('property: a random delivery order accepts exactly the strictly newer messages', () => {
    const rng = createRng(11);
    for (let trial = 0; trial < 50; trial++) {
      const sent = Array.from({ length: 30 }, (_, i) => ({ node: 'n1', incarnation: 1 + Math.floor(i / 10), seq: i % 10, sentAt: now, echo: [me] }));
      const delivered = rng.shuffle([...sent, ...sent.slice(0, 10)]);
      let g = createReplayGuard();
      let newest: { incarnation: number; seq: number } | undefined;
      for (const m of delivered) {
        const v = checkReplay(g, m, now, skew, me);
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
      const v = checkReplay(g, hb({ node, sentAt: at }), at, skew, me);
      if (v.ok) g = v.guard;
    }
    const pruned = pruneReplayGuard(g, now, 30_000);
    expect([...pruned.nodes.keys()]).toEqual(['new']);
    expect(pruneReplayGuard(pruned, now, 30_000)).toBe(pruned);
  });

  test('the first heartbeat taken from a node must echo our nonce; later ones need not', () => {
    let g = createReplayGuard();
    // captured before our start: it echoes the nonce of our previous incarnation
    expect(checkReplay(g, hb({ seq: 7, echo: [5, 0x1111] }), now, skew, me)).toEqual({ ok: false, reason: 'no_echo' });
    expect(checkReplay(g, hb({ seq: 8, echo: [] }), now, skew, me)).toEqual({ ok: false, reason: 'no_echo' });
    const v = checkReplay(g, hb({ seq: 9, echo: [me] }), now, skew, me);
    expect(v.ok).toBe(true);
    g = v.ok ? v.guard : g;
    // newer than one proved fresh: fresh too (the peer may not list us when its farm is large)
    expect(checkReplay(g, hb({ seq: 10, echo: [] }), now, skew, me).ok).toBe(true);
    expect(checkReplay(g, hb({ incarnation: now, seq: 1, echo: [] }), now, skew, me).ok).toBe(true);
    // older than it, whatever it echoes
    expect(checkReplay(g, hb({ seq: 8, echo: [me] }), now, skew, me)).toEqual({ ok: false, reason: 'replay' });
    // a pruned node must prove itself again
    const pruned = pruneReplayGuard(g, now + 60_000, 30_000);
    expect(checkReplay(pruned, hb({ seq: 11, echo: [], sentAt: now + 60_000 }), now + 60_000, skew, me)).toEqual({ ok: false, reason: 'no_echo' });
  });

  test('property: after a restart no heartbeat sent before it is ever taken, every later one in order is', () => {
    const rng = createRng(23);
    for (let trial = 0; trial < 50; trial++) {
      // node n1 sends 40 heartbeats; we restart (new nonce) after the first `cut`
      const cut = rng.int(0, 39);
      const oldNonce = rng.int(0, 0xffffffff);
      const newNonce = (oldNonce + 1 + rng.int(0, 1000)) >>> 0;
      const sent = Array.from({ length: 40 }, (_, i) => ({ node: 'n1', incarnation: 1 + Math.floor(i / 15), seq: i % 15, sentAt: now, echo: i < cut ? [oldNonce] : [newNonce], late: i >= cut }));
      const delivered = rng.shuffle([...sent, ...sent]);
      let g = createReplayGuard();
      let newest: { incarnation: number; seq: number } | undefined;
      for (const m of delivered) {
        const v = checkReplay(g, m, now, skew, newNonce);
        if (!m.late) expect(v.ok).toBe(false);
        const newer = !newest || m.incarnation > newest.incarnation || (m.incarnation === newest.incarnation && m.seq > newest.seq);
        if (m.late) expect(v.ok).toBe(newer);
        if (v.ok) {
          g = v.guard;
          newest = m;
        }
      }
    }
  });
});
