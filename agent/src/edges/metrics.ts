// The agent's Prometheus metrics and its HTTP endpoint (/metrics, /healthz, /readyz).
import http from 'node:http';
import client from 'prom-client';
import type { MemberState } from '../../../common/src/types.js';

export interface PacketCounter {
  vip: string;
  port: number;
  protocol: string;
  verdict: 'accept' | 'drop' | 'forward';
  packets: number;
  bytes: number;
}

export class AgentMetrics {
  readonly registry = new client.Registry();
  readonly members = new client.Gauge({ name: 'vipfarm_members', help: 'Farm members in this agent\'s view, by state', labelNames: ['state'], registers: [this.registry] });
  readonly bucketsOwned = new client.Gauge({ name: 'vipfarm_buckets_owned', help: 'Buckets this node accepts new connections for', registers: [this.registry] });
  readonly bucketsOrphan = new client.Gauge({ name: 'vipfarm_buckets_orphan', help: 'Buckets of dead nodes this node answers with RST for a while', registers: [this.registry] });
  readonly bucketOwners = new client.Gauge({ name: 'vipfarm_bucket_owner_share', help: 'Buckets assigned per node in this agent\'s view', labelNames: ['owner'], registers: [this.registry] });
  readonly heartbeatsSent = new client.Counter({ name: 'vipfarm_heartbeats_sent_total', help: 'Heartbeat datagrams and frames sent to peers', registers: [this.registry] });
  readonly heartbeatsReceived = new client.Counter({ name: 'vipfarm_heartbeats_received_total', help: 'Authentic heartbeats received, by path (udp, l2); a heartbeat heard on both paths counts on each', labelNames: ['path'], registers: [this.registry] });
  readonly networkFloods = new client.Gauge({ name: 'vipfarm_network_floods', help: 'Network self-test (Flooding mode): 1 when frames to the virtual MAC reach this node (every peer\'s L2 heartbeat arrives), 0 when they do not (use mode: Directed), -1 until judged (or in Directed mode)', registers: [this.registry] });
  readonly peersHeard = new client.Gauge({ name: 'vipfarm_peers_heard', help: 'Peers heard within the failure threshold, by heartbeat path (udp, l2)', labelNames: ['path'], registers: [this.registry] });
  readonly heartbeatsRejected = new client.Counter({ name: 'vipfarm_heartbeats_rejected_total', help: 'Heartbeats dropped, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly failovers = new client.Counter({ name: 'vipfarm_failovers_total', help: 'Peers declared dead whose buckets were taken over', registers: [this.registry] });
  readonly failoverDuration = new client.Histogram({
    name: 'vipfarm_failover_duration_seconds',
    help: 'From a dead peer\'s last heartbeat until this node accepted its buckets',
    buckets: [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5],
    registers: [this.registry],
  });
  readonly failoverPhase = new client.Histogram({
    name: 'vipfarm_failover_phase_seconds',
    help: 'A takeover in phases: detect (dead peer\'s last heartbeat until declared dead), agree (declared dead until its buckets were accepted here), program (the kernel batch that accepted them)',
    labelNames: ['phase'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1],
    registers: [this.registry],
  });
  readonly kernelRestores = new client.Counter({ name: 'vipfarm_kernel_restores_total', help: 'Times kernel state was found removed under the agent and put back, by what (nft_inet, nft_netdev, vip)', labelNames: ['what'], registers: [this.registry] });
  readonly stalls = new client.Counter({ name: 'vipfarm_loop_stalls_total', help: 'Times the agent loop was blocked for over half the failure threshold', registers: [this.registry] });
  readonly checkerUp = new client.Gauge({ name: 'vipfarm_checker_up', help: '1 when the application checker is healthy', labelNames: ['checker'], registers: [this.registry] });
  readonly nodeReady = new client.Gauge({ name: 'vipfarm_node_ready', help: '1 when this node serves its share of the farm', registers: [this.registry] });
  readonly serviceBuckets = new client.Gauge({ name: 'vipfarm_service_buckets_owned', help: 'Buckets of a Service IP with externalTrafficPolicy Local this node accepts new connections for', labelNames: ['ip'], registers: [this.registry] });
  readonly packets = new client.Counter({ name: 'vipfarm_packets_total', help: 'Packets to the VIPs accepted or dropped by this node\'s filter, or forwarded to another node (Directed mode: to the bucket\'s owner or previous holder)', labelNames: ['vip', 'port', 'protocol', 'verdict'], registers: [this.registry] });
  readonly bytes = new client.Counter({ name: 'vipfarm_bytes_total', help: 'Bytes to the VIPs accepted or dropped by this node\'s filter, or forwarded to another node (Directed mode)', labelNames: ['vip', 'port', 'protocol', 'verdict'], registers: [this.registry] });

  constructor(farm: string, node: string, private readonly readCounters: () => PacketCounter[] = () => []) {
    this.registry.setDefaultLabels({ farm, node });
  }

  /** 'dead': peers declared dead and not heard since */
  setMembers(byState: Partial<Record<MemberState | 'dead', number>>): void {
    for (const s of ['ready', 'draining', 'standby', 'down', 'dead'] as const) this.members.set({ state: s }, byState[s] ?? 0);
  }

  setServiceBuckets(held: ReadonlyMap<string, readonly number[]>): void {
    this.serviceBuckets.reset();
    for (const [ip, buckets] of held) this.serviceBuckets.set({ ip }, buckets.length);
  }

  setOwners(assignment: string[]): void {
    this.bucketOwners.reset();
    const counts = new Map<string, number>();
    for (const o of assignment) if (o) counts.set(o, (counts.get(o) ?? 0) + 1);
    for (const [owner, n] of counts) this.bucketOwners.set({ owner }, n);
  }

  /** The kernel keeps the real counters; copy them in at scrape time. */
  private syncPacketCounters(): void {
    let rows: PacketCounter[];
    try {
      rows = this.readCounters();
    } catch {
      return; // a scrape must not fail because the tables are being replaced
    }
    this.packets.reset();
    this.bytes.reset();
    for (const r of rows) {
      const labels = { vip: r.vip, port: String(r.port), protocol: r.protocol, verdict: r.verdict };
      this.packets.inc(labels, r.packets);
      this.bytes.inc(labels, r.bytes);
    }
  }

  async render(): Promise<string> {
    this.syncPacketCounters();
    return this.registry.metrics();
  }
}

export interface HealthSource {
  /** the process loop is alive */
  live(): boolean;
  /** the node serves its share (data plane programmed, checkers healthy, state ready or standby) */
  ready(): { ready: boolean; reason: string };
}

/**
 * host omitted: every address of the node, of both families ('::' where the node has IPv6,
 * else 0.0.0.0). '0.0.0.0' alone left an IPv6-only node's kubelet probing the pod (hostNetwork:
 * the node's IPv6 address) into a refused connection: never Ready, restarted by liveness.
 */
export function startMetricsServer(metrics: AgentMetrics, health: HealthSource, port: number, host?: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      metrics.render().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (path === '/healthz') {
      const ok = health.live();
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'loop stalled\n');
    } else if (path === '/readyz') {
      const r = health.ready();
      res.writeHead(r.ready ? 200 : 503).end(`${r.reason}\n`);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => resolve(server));
  });
}
