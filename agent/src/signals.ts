// Signals: SIGUSR1 drains and leaves; SIGTERM/SIGINT drain briefly, then remove the kernel
// state; a second stop signal skips what is left of the drain; SIGHUP reloads the config.
import type http from 'node:http';
import type { Logger } from '../../common/src/log.js';
import type { Agent } from './agent.js';

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
    o.log.info('leaving the farm', { event: 'signal', signal, drainSec });
    await Promise.race([
      o.agent.drain(drainSec * 1000),
      new Promise<void>((r) => (skip = r)),
    ]);
    await o.beforeExit?.().catch(() => {});
    let code = 0;
    try {
      await o.agent.stop();
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
