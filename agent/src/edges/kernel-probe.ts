// Is a dead peer's node still up? A TCP connection attempt to its agents' metrics port:
// the kernel answers it whatever the agent does (SYN-ACK into the listen backlog of a
// stopped process, RST once the process is gone), a node that is down or cut off does not.
// Only "answers" means something: a firewall that drops the probe looks like a dead node,
// which is what the farm assumed before it probed.
import { connect } from 'node:net';

export type KernelProbe = (address: string) => Promise<boolean>;

export function tcpKernelProbe(port: number, timeoutMs: number): KernelProbe {
  return (address) => new Promise((resolve) => {
    const sock = connect({ host: address, port });
    const done = (answers: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answers);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}
