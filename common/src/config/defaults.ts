// Defaults of a farm's optional fields. The CRD's `default:` values must agree with these
// (common/src/farmcluster-types.test.ts checks that), so a farm behaves the same from a
// FarmCluster and from the agent's YAML file.
import { createHash } from 'node:crypto';
import type { FarmConfig } from '../types.js';

export const DEFAULTS = {
  bucketCount: 256,
  // Takeover ~ the threshold (docs/benchmarks.md, failover). 4 intervals, not VRRP's 3: at
  // 40/120 a loaded node's late loop counts as a stall several times a second and a returning
  // node never settles (docs/progress/issue-14-takeover.md); 40/120 stays an explicit choice
  // until the detector tolerates that. The kernel lease: agent-core defaultLeaseMs.
  intervalMs: 50,
  failureThresholdMs: 200,
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
