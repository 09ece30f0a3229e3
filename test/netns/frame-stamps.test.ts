// The L2 heartbeat socket hands each frame over with the kernel's receive time
// (SO_TIMESTAMPNS): when the frame arrived, not when a busy event loop read it. The timed
// handoff's clock bound (membership clockAheadBound) is built from these samples, and the
// taker's read latency in it was the gap that lost SYNs in a planned handoff.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLines } from '../../lab/netns/procs.js';
import { createTestbed, type Testbed } from '../../lab/netns/testbed.js';

const HELPER = fileURLToPath(new URL('../../lab/netns/helpers/frame-stamps.js', import.meta.url));
const DST = '02:00:5e:10:99:01';
let tb: Testbed;

beforeAll(() => {
  tb = createTestbed({ nodes: 2, clients: 0 });
});
afterAll(() => tb?.destroy());

interface Stamp { seq: number; sentAt: number; receivedAt: number | null; readAt: number }

test('each frame carries its kernel receive time: after the send, before the read, without the reader\'s lateness', async () => {
  const [a, b] = tb.nodes;
  const recv = new JsonLines(tb.spawn(b!.netns, [process.execPath, HELPER, 'recv', b!.iface, DST, '3000', '15'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await recv.waitFor((l) => l.listening === true, 5000, 'receiver listening');
  const send = new JsonLines(tb.spawn(a!.netns, [process.execPath, HELPER, 'send', a!.iface, DST, '100', '7'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await send.waitFor((l) => typeof l.sent === 'number', 10_000, 'frames sent');
  const done = await recv.waitFor((l) => typeof l.done === 'number', 10_000, 'receiver done');
  const got = recv.lines.filter((l) => typeof l.seq === 'number') as unknown as Stamp[];
  expect(done.done).toBe(got.length);
  expect(got.length).toBeGreaterThanOrEqual(95);
  // one clock (CLOCK_REALTIME) in every namespace: the three instants are comparable
  for (const g of got) {
    expect(g.receivedAt).not.toBeNull();
    expect(g.receivedAt!).toBeGreaterThanOrEqual(g.sentAt);
    expect(g.receivedAt!).toBeLessThanOrEqual(g.readAt);
  }
  const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
  const p50 = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)]!;
  const wire = got.map((g) => g.receivedAt! - g.sentAt);
  const read = got.map((g) => g.readAt - g.sentAt);
  // The reader blocks its loop 15 ms at a time, so a frame waits ~7 ms on average to be
  // read; the kernel's time does not include that wait.
  expect(p50(read)).toBeGreaterThan(2);
  expect(p50(wire)).toBeLessThan(p50(read) / 2);
  expect(p50(wire)).toBeLessThan(2);
}, 30_000);
