// Defaults of a farm's optional fields. The CRD's `default:` values must agree with these
// (common/src/farmcluster-types.test.ts checks that), so a farm behaves the same from a
// FarmCluster and from the agent's YAML file.
import { createHash } from 'node:crypto';
import type { FarmConfig } from '../types.js';

export const DEFAULTS = {
  bucketCount: 256,
  // Takeover ~ the threshold (docs/benchmarks.md, failover): 3 intervals of 40 ms, as VRRP's
  // 3 missed adverts, keep it near 150 ms. Safe with a busy event loop or a lossy link
  // because the silence limit stretches by what the sender did (late on its own clock, seq
  // gaps: membership.silenceLimit), silence is judged only after the waiting datagrams were
  // read, and only a stall past the kernel lease makes a node settle again
  // (docs/progress/issue-14-takeover.md). The kernel lease: agent-core defaultLeaseMs (80 ms).
  intervalMs: 40,
  failureThresholdMs: 120,
  heartbeatPort: 7946,
  metricsPort: 9477,
  defaultWeight: 1,
  // MetalLB re-announces after switch FDB aging blackholed VIPs (its #2910); 60 s is well
  // inside the usual 300 s aging and ARP stale times, and costs one frame per VIP a minute.
  gratuitousARPIntervalMs: 60_000,
  checkerIntervalMs: 1000,
  checkerTimeoutMs: 500,
  rise: 2,
  fall: 2,
  checkerHost: '127.0.0.1',
  httpPath: '/',
  httpExpectStatus: 200,
} as const;

/** 02:fa followed by 4 bytes of sha256(name): locally administered unicast, stable per farm. */
export function defaultVirtualMAC(name: string): string {
  const h = createHash('sha256').update(name).digest();
  return ['02', 'fa', ...[0, 1, 2, 3].map((i) => h[i]!.toString(16).padStart(2, '0'))].join(':');
}

/** jhash seed derived from the name, so every node of the farm agrees without configuration. */
export function defaultHashSeed(name: string): number {
  return createHash('sha256').update(`vipfarm-hash-seed:${name}`).digest().readUInt32BE(0);
}

/** Effective weight of a node: its own setting, else the farm's map, else the default. */
export function effectiveWeight(farm: Pick<FarmConfig, 'weights' | 'defaultWeight'>, node: string, own?: number): number {
  return own ?? farm.weights[node] ?? farm.defaultWeight;
}
