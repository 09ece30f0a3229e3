// Child process run inside a node's namespace: drives the native data plane from
// JSON-lines commands on stdin ({id, op, args}) and answers {id, ok, result|error}.
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ArpResponder, bindVips, NftDataplane, realtimeMs, releaseInterface, unbindVips } from '../../../native/src/index.js';

const dp = new NftDataplane();
let arp: ArpResponder | undefined;

type Handler = (...args: never[]) => unknown;

/** [bucket, ip] pairs (a bucket twice: one address per family) -> bucket -> addresses */
function byBucket(pairs: [number, string][]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const [b, ip] of pairs) out.set(b, [...(out.get(b) ?? []), ip]);
  return out;
}

const ops: Record<string, Handler> = {
  ping: () => 'pong',
  apply: (farm: Parameters<NftDataplane['apply']>[0]) => dp.apply(farm),
  setBuckets: (name: string, b: number[], lease: number) => dp.setBuckets(name, b, lease),
  setBucketsAndForwarding: (name: string, b: number[], lease: number, owners: [number, string][], nodeMacs: string[], previous: [number, string][] = []) =>
    dp.setBucketsAndForwarding(name, b, lease, { owners: new Map(owners), nodeMacs, previous: byBucket(previous) }),
  setOrphans: (name: string, b: number[], lease: number) => dp.setOrphans(name, b, lease),
  setBucketsAndHandoff: (name: string, b: number[], lease: number, giving: { bucket: number; atMs: number }[], taking: { bucket: number; atMs: number }[]) =>
    dp.setBucketsAndHandoff(name, b, lease, giving, taking),
  getHolds: (name: string) => dp.getHolds(name),
  realtimeMs: () => realtimeMs(),
  getBuckets: (name: string, set: 'owned' | 'orphan') => dp.getBuckets(name, set),
  setServiceBuckets: (name: string, ip: string, b: number[], lease: number) => dp.setServiceBuckets(name, ip, b, lease),
  getServiceBuckets: (name: string, ip: string) => dp.getServiceBuckets(name, ip),
  counters: (name: string) => dp.counters(name),
  stageCounters: (name: string) => dp.stageCounters(name),
  remove: (name: string) => dp.remove(name),
  bindVips: (name: string, iface: string, vips: string[]) => bindVips(name, iface, vips),
  unbindVips: (name: string, iface: string, vips: string[]) => unbindVips(name, iface, vips),
  releaseInterface: (name: string, iface: string) => releaseInterface(name, iface),
  arpStart: (opts: { iface: string; vips: string[]; mac: string; ownMac?: boolean }, slots?: number[]) => {
    arp?.stop();
    arp = new ArpResponder(opts);
    if (slots !== undefined) arp.setAnswerSlots(slots);
    arp.start();
  },
  arpSetSlots: (slots: number[] | null) => arp?.setAnswerSlots(slots),
  arpAnnounce: (slots: number[]) => arp?.announce(slots),
  arpGratuitous: () => arp?.sendGratuitous(),
  arpStats: () => arp?.stats(),
  arpStop: () => {
    arp?.stop();
    arp?.stop(); // twice on purpose: must be harmless
  },
  /** for the bench: time each setBuckets call of the list inside this process */
  timeSetBuckets: (name: string, lists: number[][], lease: number) =>
    lists.map((l) => {
      const t0 = process.hrtime.bigint();
      dp.setBuckets(name, l, lease);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    }),
  /** for the bench: time `times` runs of a command (e.g. nft -f) from inside the namespace */
  timeExec: (argv: string[], times: number) =>
    Array.from({ length: times }, () => {
      const t0 = process.hrtime.bigint();
      execFileSync(argv[0], argv.slice(1), { stdio: 'ignore' });
      return Number(process.hrtime.bigint() - t0) / 1e6;
    }),
};

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let id: unknown = null;
  try {
    const msg = JSON.parse(line) as { id: unknown; op: string; args?: unknown[] };
    id = msg.id;
    const fn = ops[msg.op];
    if (fn === undefined) throw new Error(`unknown op ${msg.op}`);
    const result = (fn as (...a: unknown[]) => unknown)(...(msg.args ?? []));
    process.stdout.write(JSON.stringify({ id, ok: true, result: result ?? null }) + '\n');
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stdout.write(JSON.stringify({ id, ok: false, error: { message: e.message, code: e.code ?? null, name: e.name } }) + '\n');
  }
});
rl.on('close', () => {
  arp?.stop();
  process.exit(0);
});
