// Shared types of vipfarm. The FarmSpec mirrors the FarmCluster CRD's spec (crds/) and
// the agent's standalone YAML; FarmConfig is what parseFarm() turns a spec into after
// validation and defaulting. Every part (native, agent, operator) speaks these types.

import type { AddressRange } from './address-pool.js';

export type Protocol = 'tcp' | 'udp';
export type Affinity = 'ClientIP' | 'ClientIPAndPort';

/** One load-balanced port on every VIP of the farm. */
export interface Rule {
  port: number;
  protocol: Protocol;
  affinity: Affinity;
}

/**
 * How frames for the VIPs reach the nodes. Flooding: ARP answers name the virtual MAC,
 * which the switch floods to every node (it never learns it). Directed: ARP answers name
 * one node's own MAC (spread by requester) and that node forwards, at L2, the frames of
 * buckets another node owns; for networks that do not flood an unknown unicast MAC.
 */
export type FarmMode = 'Flooding' | 'Directed';
export const FARM_MODES: readonly FarmMode[] = ['Flooding', 'Directed'];

/** What the kernel needs: consumed by native/ apply() and remove(). */
export interface DataplaneFarm {
  /** Farm name: lowercase DNS label; kernel objects are named after it. */
  name: string;
  /** Farm interface (receives the flooded frames for the virtual MAC). */
  interface: string;
  /** IPv4 VIPs, dotted quad. */
  virtualIPs: string[];
  /** Locally administered unicast MAC, lowercase aa:bb:cc:dd:ee:ff. */
  virtualMAC: string;
  rules: Rule[];
  /** Number of hash buckets, a power of two (2..4096). */
  bucketCount: number;
  /** jhash seed; the same on every node of a farm. */
  hashSeed: number;
  /** absent: Flooding */
  mode?: FarmMode;
}

export type CheckerType = 'tcp' | 'http' | 'exec';

export interface CheckerSpec {
  name: string;
  type: CheckerType;
  /** tcp, http: host defaults to 127.0.0.1. */
  host?: string;
  port?: number;
  /** http */
  path?: string;
  expectStatus?: number;
  bodyContains?: string;
  /** exec: argv, exit status 0 = healthy */
  command?: string[];
  intervalMs?: number;
  timeoutMs?: number;
  /** consecutive successes to become healthy */
  rise?: number;
  /** consecutive failures to become unhealthy */
  fall?: number;
}

export interface HeartbeatSpec {
  intervalMs?: number;
  /** silence after which a peer is declared dead; must exceed intervalMs */
  failureThresholdMs?: number;
  /** UDP port of heartbeats */
  port?: number;
}

export interface PeerSpec {
  name: string;
  address: string;
}

/** spec of a FarmCluster, and the body of the agent's YAML (plus the standalone part). */
export interface FarmSpec {
  virtualIPs: string[];
  interface: string;
  virtualMAC?: string;
  rules: Rule[];
  bucketCount?: number;
  hashSeed?: number;
  heartbeat?: HeartbeatSpec;
  checkers?: CheckerSpec[];
  /** per-node weights by node name; absent nodes weigh defaultWeight */
  weights?: Record<string, number>;
  defaultWeight?: number;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  agent?: { image?: string; resources?: unknown; metricsPort?: number };
  /** LoadBalancer address pool: "10.0.0.200", "10.0.0.200-10.0.0.220", "10.0.1.0/28" */
  addresses?: string[];
  /** also serve type=LoadBalancer Services without spec.loadBalancerClass (default false) */
  servicesWithoutClass?: boolean;
}

export interface CheckerConfig extends Required<Pick<CheckerSpec, 'name' | 'type' | 'intervalMs' | 'timeoutMs' | 'rise' | 'fall'>> {
  host: string;
  port?: number;
  path?: string;
  expectStatus?: number;
  bodyContains?: string;
  command?: string[];
}

/** Validated, defaulted farm. */
export interface FarmConfig extends DataplaneFarm {
  heartbeat: { intervalMs: number; failureThresholdMs: number; port: number };
  checkers: CheckerConfig[];
  weights: Record<string, number>;
  defaultWeight: number;
  metricsPort: number;
  /** Service type=LoadBalancer: the pool the operator allocates from (empty: none) */
  loadBalancer: { addresses: AddressRange[]; servicesWithoutClass: boolean };
}

export type MemberState = 'ready' | 'draining' | 'standby' | 'down';

/** One validation problem, naming the field path (e.g. "spec.rules[1].port"). */
export interface FieldError {
  field: string;
  message: string;
}
