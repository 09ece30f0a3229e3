import { MAX_ECHOES } from './heartbeat-codec.js';
import { createEchoTable, echoesToSend, learnNonce, pruneEchoes, type EchoTable } from './echo-table.js';
import { createRng } from './prng.js';

function learnAll(t: EchoTable, n: number, at = (i: number) => i): EchoTable {
  for (let i = 0; i < n; i++) t = learnNonce(t, { node: `n${i}`, incarnation: 1, nonce: 1000 + i }, at(i)).table;
  return t;
}

describe('echo table', () => {
  test('a new nonce is learned once; the same one again is not news', () => {
    let t = createEchoTable();
    const a = learnNonce(t, { node: 'b', incarnation: 5, nonce: 7 }, 100);
    expect(a.learned).toBe(true);
    t = a.table;
    const again = learnNonce(t, { node: 'b', incarnation: 5, nonce: 7 }, 200);
    expect(again.learned).toBe(false);
    expect(again.table.version).toBe(t.version);
    expect(again.table.peers.get('b')).toEqual({ incarnation: 5, nonce: 7, since: 100, at: 200 });
    const restarted = learnNonce(again.table, { node: 'b', incarnation: 6, nonce: 8 }, 300);
    expect(restarted.learned).toBe(true);
    expect(restarted.table.version).toBe(t.version + 1);
    expect(learnNonce(restarted.table, { node: 'b', incarnation: 5, nonce: 7 }, 400)).toEqual({ table: restarted.table, learned: false });
  });

  test('small farms echo everyone, newest first', () => {
    const t = learnAll(createEchoTable(), 5);
    expect(echoesToSend(t, 1)).toEqual([1004, 1003, 1002, 1001, 1000]);
  });

  test('a large farm: the newest half every time, every other peer within a few heartbeats', () => {
    const n = 300;
    const t = learnAll(createEchoTable(), n);
    const seen = new Set<number>();
    const rounds = Math.ceil((n - MAX_ECHOES / 2) / (MAX_ECHOES / 2));
    for (let seq = 1; seq <= rounds; seq++) {
      const e = echoesToSend(t, seq);
      expect(e).toHaveLength(MAX_ECHOES);
      expect(new Set(e).size).toBe(MAX_ECHOES);
      expect(e.slice(0, MAX_ECHOES / 2)).toEqual(Array.from({ length: MAX_ECHOES / 2 }, (_, i) => 1000 + n - 1 - i));
      for (const x of e) seen.add(x);
    }
    expect(seen.size).toBe(n);
  });

  test('property: random farm sizes, every nonce echoed within ceil(rest / half) consecutive heartbeats from any start', () => {
    const rng = createRng(5);
    for (let trial = 0; trial < 40; trial++) {
      const n = rng.int(1, 400);
      const t = learnAll(createEchoTable(), n, () => rng.int(0, 50));
      const start = rng.int(0, 10_000);
      const half = MAX_ECHOES / 2;
      const rounds = n <= MAX_ECHOES ? 1 : Math.ceil((n - half) / half);
      const seen = new Set<number>();
      for (let seq = start; seq < start + rounds; seq++) for (const x of echoesToSend(t, seq)) seen.add(x);
      expect(seen.size).toBe(n);
    }
  });

  test('prune forgets peers not heard for keepMs', () => {
    let t = learnNonce(createEchoTable(), { node: 'old', incarnation: 1, nonce: 1 }, 0).table;
    t = learnNonce(t, { node: 'new', incarnation: 1, nonce: 2 }, 900).table;
    const p = pruneEchoes(t, 1000, 500);
    expect([...p.peers.keys()]).toEqual(['new']);
    expect(p.version).toBeGreaterThan(t.version);
    expect(pruneEchoes(p, 1000, 500)).toBe(p);
  });
});
