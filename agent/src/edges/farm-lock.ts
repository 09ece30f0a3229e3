// One agent per farm per node. The lock is a listening unix socket in the abstract
// namespace: it belongs to the network namespace (the node, for host-network agents and
// for containers alike, and each node of the netns test bed), the kernel releases it the
// moment the process dies however it dies, and nothing is left on disk to go stale.
import net from 'node:net';

/** Exit status of an agent that found its farm already held on this node. */
export const EXIT_FARM_HELD = 3;

export class FarmHeldError extends Error {
  readonly exitCode = EXIT_FARM_HELD;
}

/** the abstract socket name of a farm (as `ss -xl` shows it, with @ for the leading NUL) */
export function lockName(farm: string): string {
  return `\0vipfarm/${farm}`;
}

export interface FarmLock {
  release(): Promise<void>;
}

export function acquireFarmLock(farm: string): Promise<FarmLock> {
  const server = net.createServer((c) => c.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new FarmHeldError(
          `farm ${farm}: another vipfarm-agent already runs this farm on this node (it holds @vipfarm/${farm}, see ss -xlp); ` +
          'refusing to start, its kernel state is left alone'));
      } else {
        reject(new Error(`farm ${farm}: cannot take the per-node lock @vipfarm/${farm}: ${err.message}`));
      }
    });
    server.listen({ path: lockName(farm) }, () => {
      // the lock must not keep a stopping agent alive
      server.unref();
      resolve({ release: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}
