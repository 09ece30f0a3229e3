// What both modes do once they know the farm: build the agent on the real kernel, UDP and
// HTTP edges, claim the metrics port, start, and undo everything if the start fails.
import type http from 'node:http';
import { ipFamilyOf } from '../../common/src/config/syntax.js';
import type { Logger } from '../../common/src/log.js';
import type { FarmConfig, PeerSpec } from '../../common/src/types.js';
import { Agent, type AgentDeps, type AgentIdentity } from './agent.js';
import { acquireFarmLock } from './edges/farm-lock.js';
import { AgentMetrics, startMetricsServer } from './edges/metrics.js';
import { NativeDatapath } from './edges/native-datapath.js';
import { FrameTransport } from './edges/frame-transport.js';
import { heartbeatLink, MultiPathTransport, UdpTransport } from './edges/transport.js';
import { tcpKernelProbe } from './edges/kernel-probe.js';
import { realtimeMs } from '../../native/src/index.js';

/** How long a dead peer's kernel has to answer: for a node that is really gone, its
 *  clients' connections are reset this much later than without the probe. */
const KERNEL_PROBE_TIMEOUT_MS = 250;


/** VIPFARM_HANDOFF_LEAD_MS: the timed handoff's lead (ownership.ts); unset or 0: off, a
 *  planned release is immediate as before. */
export function handoffLeadFromEnv(env: NodeJS.ProcessEnv, log?: Logger): number {
  const raw = env.VIPFARM_HANDOFF_LEAD_MS;
  if (raw === undefined || raw === '') return 0;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0 || v > 5000) {
    log?.warn('VIPFARM_HANDOFF_LEAD_MS ignored: not an integer 0..5000', { event: 'config', value: raw });
    return 0;
  }
  return v;
}

export interface StartOptions {
  farm: FarmConfig;
  self: AgentIdentity;
  peers: PeerSpec[];
  key: Buffer;
  log: Logger;
  onEvent?: AgentDeps['onEvent'];
}

export async function startAgent(o: StartOptions): Promise<{ agent: Agent; server: http.Server }> {
  const { farm } = o;
  // Before anything else: a second agent of this farm on this node must not touch the
  // first one's heartbeat port, tables or VIPs, not even to clean up after its failed start.
  const lock = await acquireFarmLock(farm.name);
  try {
    return await startLocked(o);
  } catch (err) {
    // a failed start leaves nothing behind, the lock included: Kubernetes mode retries it
    await lock.release();
    throw err;
  }
}

async function startLocked(o: StartOptions): Promise<{ agent: Agent; server: http.Server }> {
  const { farm, log } = o;
  const datapath = new NativeDatapath();
  const metrics = new AgentMetrics(farm.name, o.self.name, () => datapath.counters());
  // heartbeats in this node's address family
  const family = ipFamilyOf(o.self.address);
  const sendError = (err: Error, to: string): void => void log.debug('heartbeat send failed', { event: 'send_error', to, error: err.message });
  // UDP to every peer and one L2 frame on the clients' path: a cut UDP path alone
  // (firewall, heartbeat VLAN) then changes nothing (docs/architecture.md, "Partitions").
  const transport = new MultiPathTransport([
    new UdpTransport(farm.heartbeat.port, family, sendError),
    new FrameTransport(heartbeatLink(farm), sendError),
  ]);
  // a dead peer whose kernel answers on the metrics port (any answer, a refusal too) is a
  // stopped agent on a live node: its connections are not reset (docs/operations.md)
  const probeKernel = tcpKernelProbe(farm.metricsPort, KERNEL_PROBE_TIMEOUT_MS);
  const agent = new Agent({
    farm, self: o.self, peers: o.peers, key: o.key, datapath, transport, metrics, log, onEvent: o.onEvent, probeKernel,
    // the kernel's clock with µs: timed handoffs are programmed on it (meta time)
    now: realtimeMs,
    handoffLeadMs: handoffLeadFromEnv(process.env, log),
  });
  // The port first: a taken port must fail before the kernel is touched.
  const server = await startMetricsServer(metrics, agent, farm.metricsPort).catch((err: Error) => {
    throw new Error(`metrics port ${farm.metricsPort}: ${err.message}`);
  });
  try {
    await agent.start();
  } catch (err) {
    // Leave nothing half-applied behind.
    await agent.stop().catch(() => {});
    server.close();
    throw err;
  }
  return { agent, server };
}
