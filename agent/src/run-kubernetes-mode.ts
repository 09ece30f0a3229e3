// Kubernetes mode: the farm is a FarmCluster, peers are the farm's agent pods, the key is
// the farm's Secret. The agent starts once it has a valid spec; later spec changes
// re-program the kernel live. A change the parser or the kernel refuses leaves the running
// config serving, shows in this node's status.members entry (configRefused), and a
// kernel refusal is retried with backoff until it is accepted or the spec changes.
import os from 'node:os';
import { createLogger, type Logger } from '../../common/src/log.js';
import { canonicalIP, effectiveWeight, formatErrors, ipFamilyOf, parseFarmSpec, parseServiceAddresses } from '../../common/src/config/index.js';
import type { FarmConfig, PeerSpec } from '../../common/src/types.js';
import type { Agent, AgentIdentity } from './agent.js';
import type { AgentCliOptions } from './cli.js';
import { KubernetesFarmSource, loadKubeConfig, type FarmObject } from './edges/k8s-source.js';
import { statusNeedsWrite, type MemberStatus } from './core/member-status.js';
import { configApplied, configRefused, configSeen, configStatus, retryDue, type ConfigTrack, type Seen } from './core/config-track.js';
import { installSignalHandlers } from './signals.js';
import { startAgent } from './start-agent.js';
import { FarmHeldError } from './edges/farm-lock.js';
import { exitPlan } from './core/exit-plan.js';

// lastHeartbeat is a liveness stamp: the CRD promises a rewrite at least this often.
const STATUS_REFRESH_MS = 30_000;

type ParsedSpec = { ok: true; farm: FarmConfig } | { ok: false; message: string };
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
  // This node's address (the downward API's status.hostIP: a v6-only node's is IPv6) sets
  // the heartbeat family; peers are taken in that family from their pods.
  const hostIP = process.env.HOST_IP === undefined ? undefined : canonicalIP(process.env.HOST_IP);
  const source = new KubernetesFarmSource(loadKubeConfig(), namespace, farmName, nodeName, log, hostIP === undefined ? undefined : ipFamilyOf(hostIP));
  const key = await retry(log, 'reading the heartbeat Secret', () => source.readKey());

  // What the watch delivered last (seen) is kept apart from what the kernel runs (applied):
  // a spec the kernel refused is retried, and this node's status entry says why.
  let track: ConfigTrack<ParsedSpec> = {};
  let peers: PeerSpec[] = [];
  let agent: Agent | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  /** wakes the start-up wait when a spec arrives */
  let wake: () => void = () => {};

  const identity = (f: FarmConfig): AgentIdentity => ({
    name: nodeName,
    address: hostIP ?? peers.find((p) => p.name === nodeName)?.address ?? '0.0.0.0',
    weight: effectiveWeight(f, nodeName),
  });

  /** Program what was seen; on a refusal keep the running config and retry later. */
  const applySeen = (): void => {
    const seen = track.seen;
    if (!seen || !agent) return;
    const r = seen.value;
    if (!r.ok) {
      track = configRefused(track, 'SpecInvalid', r.message, Date.now());
      log.error('FarmCluster spec invalid, keeping the running config', { event: 'spec_invalid', generation: seen.generation, errors: r.message });
      return;
    }
    try {
      agent.reconfigure({ farm: r.farm, self: identity(r.farm) });
      track = configApplied(track);
      log.info('farm applied', { event: 'config_applied', generation: seen.generation });
    } catch (err) {
      // The kernel refused: its tables are replaced atomically, the running farm serves on.
      const message = (err as Error).message;
      track = configRefused(track, 'KernelRefused', message, Date.now());
      log.error('the kernel refused the farm, keeping the running config', {
        event: 'reconfigure_error', generation: seen.generation, error: message,
        attempts: track.refused?.attempts, retryInMs: (track.refused?.retryAt ?? 0) - Date.now(),
      });
      scheduleRetry();
    }
  };

  const scheduleRetry = (): void => {
    if (retryTimer || !track.refused) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (retryDue(track, Date.now())) applySeen();
      else scheduleRetry();
    }, Math.max(0, track.refused.retryAt - Date.now()));
  };

  /**
   * Starts the agent on the first spec this node can run. Until then nothing of the farm
   * is in the kernel (startAgent undoes a half start), this node's status entry says what
   * was refused, and the start is retried with backoff or as soon as the spec changes.
   */
  const startWhenAccepted = async (): Promise<{ started: Awaited<ReturnType<typeof startAgent>>; first: Seen<ParsedSpec> }> => {
    let written: MemberStatus | undefined;
    for (;;) {
      const seen = track.seen;
      if (!seen) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      if (seen.value.ok) {
        const cfg = seen.value.farm;
        try {
          const started = await startAgent({
            farm: cfg, self: identity(cfg), peers, key, log,
            onEvent: (type, reason, message) => void source.recordEvent(type, reason, message),
          });
          return { started, first: seen };
        } catch (err) {
          // another agent of this farm runs on this node: leave (exit 3), do not retry
          if (err instanceof FarmHeldError) throw err;
          const message = (err as Error).message;
          track = configRefused(track, 'StartFailed', message, Date.now());
          log.error('could not start on this spec, retrying', { event: 'start_error', generation: seen.generation, error: message, attempts: track.refused?.attempts });
        }
      } else if (track.refused?.generation !== seen.generation) {
        track = configRefused(track, 'SpecInvalid', seen.value.message, Date.now());
        log.error('FarmCluster spec invalid, waiting for a valid one', { event: 'spec_invalid', generation: seen.generation, errors: seen.value.message });
      }
      const entry: MemberStatus = {
        node: nodeName, ready: false, state: 'down', weight: 0, buckets: 0, bucketRanges: '', peersReady: 0, checkers: [],
        lastHeartbeat: new Date().toISOString(), ...configStatus(track),
      };
      if (statusNeedsWrite(written, entry, STATUS_REFRESH_MS)) {
        await source.writeStatus(entry).then(
          () => (written = entry),
          (err: Error) => log.warn('status write failed', { event: 'status_error', error: err.message }),
        );
      }
      // until another spec arrives, or the retry of a failed start is due
      await new Promise<void>((r) => {
        const refused = track.refused;
        const retry = refused?.reason === 'StartFailed' ? setTimeout(r, Math.max(0, refused.retryAt - Date.now())) : undefined;
        wake = () => {
          clearTimeout(retry);
          r();
        };
      });
      wake = () => {};
    }
  };

  await source.start({
    onFarm: (obj: FarmObject) => {
      const generation = obj.metadata?.generation ?? 0;
      const r = parseFarmSpec(obj.spec, { name: farmName });
      // The Service IPs come rendered by the operator (status.services), checked by the same parser.
      const services = r.ok ? parseServiceAddresses(obj.status?.services, r.value.virtualIPs) : undefined;
      const value: ParsedSpec = !r.ok
        ? { ok: false, message: formatErrors(r.errors) }
        : services?.ok
          ? { ok: true, farm: { ...r.value, services: services.value } }
          : { ok: false, message: formatErrors(services?.ok === false ? services.errors : []) };
      const key = value.ok ? JSON.stringify(value.farm) : `invalid:${JSON.stringify([obj.spec, obj.status?.services])}`;
      const s = configSeen(track, { value, generation, key });
      track = s.track;
      if (s.apply) {
        applySeen();
        wake();
      }
    },
    onFarmDeleted: () => log.warn('FarmCluster deleted; waiting for the DaemonSet to stop this agent', { event: 'farm_deleted' }),
    onPeers: (p) => {
      peers = p;
      agent?.setPeers(p);
    },
  });
  const { started, first } = await startWhenAccepted();
  agent = started.agent;
  const server = started.server;
  // the kernel runs the first spec; one that arrived while the agent was starting is next
  const latest = configSeen({ applied: first }, track.seen!);
  track = latest.track;
  if (latest.apply) applySeen();

  // Status: only this node's entry, only when it changed; the API server being away
  // never touches the data plane.
  let last: MemberStatus | undefined;
  const running = agent;
  const statusTimer = setInterval(() => {
    const entry: MemberStatus = { ...running.status(), ...configStatus(track) };
    if (!statusNeedsWrite(last, entry, STATUS_REFRESH_MS)) return;
    source.writeStatus(entry).then(
      () => (last = entry),
      (err: Error) => log.warn('status write failed', { event: 'status_error', error: err.message }),
    );
  }, STATUS_CHECK_MS);

  installSignalHandlers({
    agent: running, log, server, drainTimeoutSec: o.drainTimeoutSec, stopTimeoutSec: o.stopTimeoutSec,
    exitPlan: async () => exitPlan(await source.exitFacts(process.env.POD_NAME)),
    beforeExit: async () => {
      clearInterval(statusTimer);
      clearTimeout(retryTimer);
      await source.writeStatus({ ...running.status(), ready: false, state: 'down', buckets: 0, bucketRanges: '' }).catch(() => {});
      await source.stop();
    },
  });
}
