// Signals: SIGUSR1 drains and leaves; SIGTERM/SIGINT drain briefly, then remove the kernel
// state; a second stop signal skips what is left of the drain; SIGHUP reloads the config.
// In Kubernetes mode SIGTERM first asks whether this is a rollout (core/exit-plan.ts): then
// the agent hands its buckets over and leaves the kernel state to the next agent.
import type http from 'node:http';
import type { Logger } from '../../common/src/log.js';
import type { Agent } from './agent.js';
import type { ExitPlan } from './core/exit-plan.js';

export interface SignalOptions {
  agent: Agent;
  log: Logger;
  server: http.Server;
  drainTimeoutSec: number;
  stopTimeoutSec: number;
  /** SIGHUP; throws to keep the running config */
  reload?: () => void;
  /** extra cleanup before exit (watches, status) */
  beforeExit?: () => Promise<void>;
  /** SIGTERM: whether the next agent on this node takes over the kernel state */
  exitPlan?: () => Promise<ExitPlan>;
}

/** How long SIGTERM waits for the API server's answer before it removes everything. */
const PLAN_TIMEOUT_MS = 3000;

async function planFor(o: SignalOptions, signal: string): Promise<ExitPlan> {
  const leave = (reason: string): ExitPlan => ({ keepKernelState: false, reason });
  if (signal !== 'SIGTERM' || !o.exitPlan) return leave(`${signal}: leaving the farm`);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      o.exitPlan(),
      new Promise<ExitPlan>((r) => (timer = setTimeout(() => r(leave('the API server did not answer in time')), PLAN_TIMEOUT_MS))),
    ]);
  } catch (err) {
    return leave(`cannot tell whether this is a rollout: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

export function installSignalHandlers(o: SignalOptions): void {
  let stopping = false;
  let skip: (() => void) | undefined;
  const leave = async (signal: string, drainSec: number): Promise<void> => {
    if (stopping) {
      o.log.warn('second signal: skipping the rest of the drain', { event: 'signal', signal });
      skip?.();
      return;
    }
    stopping = true;
    const plan = await planFor(o, signal);
    o.log.info(plan.keepKernelState ? 'handing over to the next agent' : 'leaving the farm', {
      event: 'signal', signal, drainSec, kernelState: plan.keepKernelState ? 'kept' : 'removed', reason: plan.reason,
    });
    const skipped = new Promise<void>((r) => (skip = r));
    // a rollout does not wait for established connections: they stay on this node's kernel
    if (plan.keepKernelState) await Promise.race([o.agent.handOver(drainSec * 1000), skipped]);
    else await Promise.race([o.agent.drain(drainSec * 1000), skipped]);
    await o.beforeExit?.().catch(() => {});
    let code = 0;
    try {
      await o.agent.stop({ keepKernelState: plan.keepKernelState });
    } catch (err) {
      o.log.error('could not remove the kernel state', { event: 'stop_error', error: (err as Error).message });
      code = 1;
    }
    o.server.close();
    o.server.closeAllConnections();
    process.exit(code);
  };
  process.on('SIGTERM', () => void leave('SIGTERM', o.stopTimeoutSec));
  process.on('SIGINT', () => void leave('SIGINT', o.stopTimeoutSec));
  process.on('SIGUSR1', () => void leave('SIGUSR1', o.drainTimeoutSec));
  process.on('SIGHUP', () => {
    if (!o.reload) return;
    try {
      o.reload();
    } catch (err) {
      o.log.error('reload refused, keeping the running config', { event: 'reload_error', error: (err as Error).message });
    }
  });
}
