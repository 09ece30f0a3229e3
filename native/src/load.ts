// Loads the compiled addon once, on first use, so pure modules (validation) import
// without it. VIPFARM_NATIVE overrides the path (e.g. a debug build).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What binding.cc exports; every argument was validated by the TS wrapper. */
export interface NativeBinding {
  nftApply(farm: {
    name: string;
    interface: string;
    virtualIPs: string[];
    virtualMAC: string;
    rules: { port: number; protocol: string; affinity: string }[];
    /** ownedSet/orphanSet: the IP's own bucket sets (externalTrafficPolicy Local) */
    services?: { ip: string; rules: { port: number; protocol: string; affinity: string }[]; ownedSet?: string; orphanSet?: string }[];
    bucketCount: number;
    hashSeed: number;
    mode?: string;
  }): void;
  nftSetElems(farm: string, set: string, buckets: number[], leaseMs: number): void;
  nftSetOwnedAndForwarding(farm: string, owned: number[], leaseMs: number, forward: [number, string][], nodeMacs: string[], previous: [number, string][]): void;
  /** holds: [bucket, fromTick, toTick, timeoutMs] (ticks of 1024 ns since the epoch,
   *  CLOCK_REALTIME); null leaves the hold set as it is */
  nftSetOwnedAndHold(farm: string, owned: number[], leaseMs: number, holds: [number, number, number, number][] | null): void;
  nftGetHolds(farm: string): [number, number, number][];
  /** CLOCK_REALTIME in µs (the kernel's `meta time`, what Date.now() reads in ms) */
  realtimeUs(): number;
  nftGetElems(farm: string, set: string): number[];
  nftCounters(farm: string): { comment: string; packets: number; bytes: number }[];
  nftRuleCounts(farm: string): { inet: number; netdev: number };
  nftRemove(farm: string): void;
  addrAdd(ifname: string, ip: string, prefix: number): void;
  addrDel(ifname: string, ip: string, prefix: number): void;
  neighbours(ifname: string): { ip: string; mac: string }[];
  ArpResponder: new (iface: string, vips: string[], mac: string) => NativeArpResponder;
  FrameSocket: new (iface: string, ethertype: number, dst: string, onFrame: (payload: Buffer, source: string, receivedAt?: number) => void) => NativeFrameSocket;
}

export interface NativeFrameSocket {
  start(): void;
  send(payload: Buffer): boolean;
  stop(): void;
  stats(): { sent: number; received: number; sendErrors: number; socketErrors: number };
}

export interface NativeArpResponder {
  start(): void;
  sendGratuitous(): void;
  stop(): void;
  setAnswerSlots(slots: number[] | null): void;
  announce(slots: number[]): number;
  stats(): { requests: number; replies: number; gratuitous: number; sendErrors: number; notMine: number; announcements: number };
}

let binding: NativeBinding | undefined;

export function nativePath(): string {
  // dist/native/src/load.js -> <repo>/native/build/Release/vipfarm_native.node
  return process.env.VIPFARM_NATIVE ?? fileURLToPath(new URL('../../../native/build/Release/vipfarm_native.node', import.meta.url));
}

export function native(): NativeBinding {
  if (binding === undefined) {
    const require = createRequire(import.meta.url);
    try {
      binding = require(nativePath()) as NativeBinding;
    } catch (err) {
      throw new Error(`loading the vipfarm native module from ${nativePath()} (run scripts/setup.sh)`, { cause: err });
    }
  }
  return binding;
}
