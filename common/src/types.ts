// Shared types of vipfarm. The FarmCluster spec's own types are generated from the CRD
// (./farmcluster-types.ts); FarmConfig is what the parser (./config/) turns a spec into
// after validation and defaulting. Every part (native, agent, operator) speaks these types.
import type { FarmClusterSpecChecker, FarmClusterSpecRule, FarmClusterStatusMember } from './farmcluster-types.js';

import type { AddressRange } from './address-pool.js';

/** One load-balanced port on every VIP of the farm (the CRD's rule, defaults applied). */
export type Rule = FarmClusterSpecRule;
export type Protocol = Rule['protocol'];
export type Affinity = Rule['affinity'];

/**
 * How frames for the VIPs reach the nodes. Flooding: ARP answers name the virtual MAC,
 * which the switch floods to every node (it never learns it). Directed: ARP answers name
 * one node's own MAC (spread by requester) and that node forwards, at L2, the frames of
 * buckets another node owns; for networks that do not flood an unknown unicast MAC.
 */
export type FarmMode = 'Flooding' | 'Directed';
export const FARM_MODES: readonly FarmMode[] = ['Flooding', 'Directed'];

export interface ServiceIPRules {
  ip: string;
  rules: Rule[];
  /**
   * externalTrafficPolicy Local: the nodes with a ready endpoint of the Service(s) behind the
   * IP (rendered by the operator from EndpointSlices). Only these own the IP's buckets, in
   * an assignment of their own (own kernel sets). Absent: Cluster, every ready node serves
   * it with the farm's buckets.
   */
  nodes?: string[];
}

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
  /**
   * LoadBalancer Service IPs, each with its own ports (rendered by the operator from the
   * Services, see docs/architecture.md); served with the same buckets as the virtualIPs.
   */
  services?: ServiceIPRules[];
  /** Number of hash buckets, a power of two (2..4096). */
  bucketCount: number;
  /** jhash seed; the same on every node of a farm. */
  hashSeed: number;
  /** absent: Flooding */
  mode?: FarmMode;
  /** Milliseconds between unasked announcements of the VIPs (Flooding: gratuitous ARP /
   *  unsolicited NA with the virtual MAC; Directed: unicast to this node's requesters);
   *  0 or absent: none. */
  gratuitousARPIntervalMs?: number;
}

export type CheckerType = FarmClusterSpecChecker['type'];

interface CheckerCommon {
  name: string;
  intervalMs: number;
  timeoutMs: number;
  /** consecutive successes to become healthy */
  rise: number;
  /** consecutive failures to become unhealthy */
  fall: number;
}

export interface TcpCheckerConfig extends CheckerCommon {
  type: 'tcp';
  host: string;
  port: number;
}

export interface HttpCheckerConfig extends CheckerCommon {
  type: 'http';
  host: string;
  port: number;
  path: string;
  expectStatus: number;
  bodyContains?: string;
}

export interface ExecCheckerConfig extends CheckerCommon {
  type: 'exec';
  /** argv, run without a shell; exit status 0 = healthy */
  command: string[];
}

/** A validated, defaulted checker: each type has its own fields only. */
export type CheckerConfig = TcpCheckerConfig | HttpCheckerConfig | ExecCheckerConfig;

export interface PeerSpec {
  name: string;
  address: string;
  /** the node's addresses of the other family (Kubernetes mode, from its pod's
   *  status.hostIPs): where Directed mode's second chance sends that family's packets */
  otherAddresses?: string[];
}

/** Validated, defaulted farm. */
export interface FarmConfig extends DataplaneFarm {
  /** always set by the parser (default 60000) */
  gratuitousARPIntervalMs: number;
  heartbeat: { intervalMs: number; failureThresholdMs: number; port: number };
  checkers: CheckerConfig[];
  weights: Record<string, number>;
  defaultWeight: number;
  metricsPort: number;
  /** Service type=LoadBalancer: the pool the operator allocates from (empty: none) */
  loadBalancer: { addresses: AddressRange[]; servicesWithoutClass: boolean };
}

export type MemberState = NonNullable<FarmClusterStatusMember['state']>;

/** One validation problem, naming the field path (e.g. "spec.rules[1].port"). */
export interface FieldError {
  field: string;
  message: string;
}
