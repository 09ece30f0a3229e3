// Transports of heartbeats. UDP: one socket, unicast to every peer. L2 (frame-transport.ts):
// one frame to the virtual MAC on the farm interface, the clients' own path. A peer heard
// on any path is alive; authenticity and replay checks live in the codec, these only move
// bytes.
import dgram from 'node:dgram';
import net from 'node:net';
import type { FarmConfig } from '../../../common/src/types.js';

export type HeartbeatPath = 'udp' | 'l2';

/** Where the L2 heartbeats go: the farm interface and the destination MAC. */
export interface HeartbeatLink {
  iface: string;
  destination: string;
}

/**
 * Where a farm's L2 heartbeats go. The virtual MAC in the flooded mode (never a frame
 * source, so always flooded); a mode in which the virtual MAC is not flooded (Directed)
 * must send them to the broadcast address instead, and only this function changes.
 */
export function heartbeatLink(farm: Pick<FarmConfig, 'interface' | 'virtualMAC'>): HeartbeatLink {
  return { iface: farm.interface, destination: farm.virtualMAC };
}

export interface HeartbeatTransport {
  /** `from`: the sender's IP address (udp) or MAC (l2) */
  start(onMessage: (buf: Buffer, from: string, path: HeartbeatPath) => void): Promise<void>;
  /** sends one heartbeat to every peer; returns how many datagrams/frames left */
  send(buf: Buffer, addresses: string[]): number;
  /** the farm interface or virtual MAC changed (live reconfiguration) */
  relink?(link: HeartbeatLink): void;
  /** safe to call when not started, or twice */
  stop(): Promise<void>;
}

export class UdpTransport implements HeartbeatTransport {
  private socket?: dgram.Socket;

  constructor(
    private readonly port: number,
    private readonly bindAddress = '0.0.0.0',
    private readonly onSendError: (err: Error, to: string) => void = () => {},
  ) {}

  start(onMessage: (buf: Buffer, from: string, path: HeartbeatPath) => void): Promise<void> {
    // No reuseAddr: a port another process holds (another farm by mistake) must fail
    // clearly, not split the heartbeats between two sockets. The address family is the
    // bind address's: an IPv6 farm binds '::'.
    const socket = dgram.createSocket({ type: net.isIPv6(this.bindAddress) ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => onMessage(msg, rinfo.address, 'udp'));
    return new Promise((resolve, reject) => {
      const refuse = (err: Error): void => reject(new Error(`heartbeat port ${this.port}: ${err.message}`));
      socket.once('error', refuse);
      socket.bind(this.port, this.bindAddress, () => {
        socket.off('error', refuse);
        // Late socket errors (ICMP unreachable on some kernels) must not kill the agent.
        socket.on('error', (err) => this.onSendError(err, '*'));
        resolve();
      });
    });
  }

  send(buf: Buffer, addresses: string[]): number {
    const socket = this.socket;
    if (!socket) return 0;
    for (const to of addresses) {
      socket.send(buf, this.port, to, (err) => {
        if (err) this.onSendError(err, to);
      });
    }
    return addresses.length;
  }

  stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}

/** Every heartbeat on every path; what arrives on any of them goes to the one receiver. */
export class MultiPathTransport implements HeartbeatTransport {
  constructor(private readonly paths: readonly HeartbeatTransport[]) {}

  async start(onMessage: (buf: Buffer, from: string, path: HeartbeatPath) => void): Promise<void> {
    // a path that cannot start fails the agent's start, which then stops them all
    for (const p of this.paths) await p.start(onMessage);
  }

  send(buf: Buffer, addresses: string[]): number {
    let n = 0;
    for (const p of this.paths) n += p.send(buf, addresses);
    return n;
  }

  relink(link: HeartbeatLink): void {
    for (const p of this.paths) p.relink?.(link);
  }

  async stop(): Promise<void> {
    await Promise.all(this.paths.map((p) => p.stop()));
  }
}
