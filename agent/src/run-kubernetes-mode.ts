// Kubernetes mode: the farm is a FarmCluster, peers are the farm's agent pods, the key is
// the farm's Secret. The agent starts once it has a valid spec; later spec changes
// re-program the kernel live; an invalid change is logged and the running config kept.
import os from 'node:os';
import { createLogger, type Logger } from '../../common/src/log.js';
import { effectiveWeight, formatErrors, parseFarmSpec } from '../../common/src/farm-config.js';
import type { FarmConfig, PeerSpec } from '../../common/src/types.js';
import type { Agent, AgentIdentity } from './agent.js';
import type { AgentCliOptions } from './cli.js';
import { KubernetesFarmSource, loadKubeConfig, type FarmObject } from './edges/k8s-source.js';
import { statusNeedsWrite, type MemberStatus } from './core/member-status.js';
import { installSignalHandlers } from './signals.js';
import { startAgent } from './start-agent.js';

const STATUS_REFRESH_MS = 30_000;
const STATUS_CHECK_MS = 1000;

async function retry<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<T> {
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      return await fn();
    } catch (err) {
      log.warn(`${what} failed, retrying`, { event: 'retry', what, error: (err as Error).message, delayMs: delay });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export async function runKubernetesMode(o: AgentCliOptions): Promise<void> {
  const farmName = o.farm!;
  const namespace = o.namespace!;
  const nodeName = o.node ?? os.hostname();
  const log = createLogger('agent', { farm: farmName, node: nodeName });
  log.level = o.logLevel;
  const source = new KubernetesFarmSource(loadKubeConfig(), namespace, farmName, nodeName, log);
  const key = await retry(log, 'reading the heartbeat Secret', () => source.readKey());

  let farm: FarmConfig | undefined;
  let peers: PeerSpec[] = [];
  let agent: Agent | undefined;
  let firstFarm: () => void = () => {};
  const haveFarm = new Promise<void>((r) => (firstFarm = r));

  const identity = (f: FarmConfig): AgentIdentity => ({
    name: nodeName,
    address: process.env.HOST_IP ?? peers.find((p) => p.name === nodeName)?.address ?? '0.0.0.0',
    weight: effectiveWeight(f, nodeName),
  });

  const apply = (a: Agent, f: FarmConfig): void => {
    try {
      a.reconfigure({ farm: f, self: identity(f) });
    } catch (err) {
      // The tables are replaced atomically: a refused program leaves the running one.
      log.error('re-programming the farm failed, keeping the running config', { event: 'reconfigure_error', error: (err as Error).message });
    }
  };

  await source.start({
    onFarm: (obj: FarmObject) => {
      const r = parseFarmSpec(obj.spec, { name: farmName });
      if (!r.ok) {
        log.error('FarmCluster spec invalid, keeping the running config', { event: 'spec_invalid', errors: formatErrors(r.errors) });
        return;
      }
      if (farm && JSON.stringify(farm) === JSON.stringify(r.value)) return;
      farm = r.value;
      if (agent) apply(agent, farm);
      firstFarm();
    },
    onFarmDeleted: () => log.warn('FarmCluster deleted; waiting for the DaemonSet to stop this agent', { event: 'farm_deleted' }),
    onPeers: (p) => {
      peers = p;
      agent?.setPeers(p);
    },
  });
  await haveFarm;
  const cfg = farm!;
  const started = await startAgent({
    farm: cfg, self: identity(cfg), peers, key, log,
    onEvent: (type, reason, message) => void source.recordEvent(type, reason, message),
  });
  agent = started.agent;
  const server = started.server;
  // a spec change that arrived while the agent was starting
  if (farm !== cfg) apply(agent, farm!);

  // Status: only this node's entry, only when it changed; the API server being away
  // never touches the data plane.
  let last: MemberStatus | undefined;
  const running = agent;
  const statusTimer = setInterval(() => {
    const entry = running.status();
    if (!statusNeedsWrite(last, entry, STATUS_REFRESH_MS)) return;
    source.writeStatus(entry).then(
      () => (last = entry),
      (err: Error) => log.warn('status write failed', { event: 'status_error', error: err.message }),
    );
  }, STATUS_CHECK_MS);

  installSignalHandlers({
    agent: running, log, server, drainTimeoutSec: o.drainTimeoutSec, stopTimeoutSec: o.stopTimeoutSec,
    beforeExit: async () => {
      clearInterval(statusTimer);
      await source.writeStatus({ ...running.status(), ready: false, state: 'down', buckets: 0, bucketRanges: '' }).catch(() => {});
      await source.stop();
    },
  });
}
