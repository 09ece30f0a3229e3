// Transports of heartbeats. UDP: one socket, unicast to every peer. L2 (frame-transport.ts):
// one frame to the virtual MAC on the farm interface, the clients' own path. A peer heard
// on any path is alive; authenticity and replay checks live in the codec, these only move
// bytes.
import { BROADCAST_MAC } from '../../../native/src/index.js';
import dgram from 'node:dgram';
import { canonicalIP, type IPFamily } from '../../../common/src/config/syntax.js';
import type { FarmConfig } from '../../../common/src/types.js';

export type HeartbeatPath = 'udp' | 'l2';

/** Where the L2 heartbeats go: the farm interface and the destination MAC. */
export interface HeartbeatLink {
  iface: string;
  destination: string;
}

/**
 * Where a farm's L2 heartbeats go. The virtual MAC in Flooding mode (never a frame
 * source, so flooded exactly where the clients' frames are). In Directed mode the virtual
 * MAC is not flooded, so they go to broadcast: one frame still reaches every node, and
 * switches that do not flood unknown unicast still flood broadcast (ARP needs it).
 */
export function heartbeatLink(farm: Pick<FarmConfig, 'interface' | 'virtualMAC' | 'mode'>): HeartbeatLink {
  return { iface: farm.interface, destination: farm.mode === 'Directed' ? BROADCAST_MAC : farm.virtualMAC };
}

/** `from`: the sender's IP address (udp) or MAC (l2). `receivedAt`: the kernel's receive
 *  time (realtime ms), where the path knows it (l2: SO_TIMESTAMPNS; Node's UDP sockets do
 *  not expose it): a clock sample without our own read latency (membership.ts). */
export type HeartbeatHandler = (buf: Buffer, from: string, path: HeartbeatPath, receivedAt?: number) => void;

export interface HeartbeatTransport {
  start(onMessage: HeartbeatHandler): Promise<void>;
  /** sends one heartbeat to every peer; returns how many datagrams/frames left */
  send(buf: Buffer, addresses: string[]): number;
  /** the farm interface or virtual MAC changed (live reconfiguration) */
  relink?(link: HeartbeatLink): void;
  /** safe to call when not started, or twice */
  stop(): Promise<void>;
}

/** The wildcard a family's heartbeat socket binds by default. */
export const ANY_ADDRESS: Record<IPFamily, string> = { ipv4: '0.0.0.0', ipv6: '::' };

/**
 * Heartbeats over UDP in one address family, the family of the node's address (a
 * v6-only cluster's nodes have only IPv6 ones): the same code for both, the family
 * decides the socket type and the wildcard.
 */
export class UdpTransport implements HeartbeatTransport {
  private socket?: dgram.Socket;

  constructor(
    private readonly port: number,
    private readonly family: IPFamily = 'ipv4',
    private readonly onSendError: (err: Error, to: string) => void = () => {},
    private readonly bindAddress = ANY_ADDRESS[family],
  ) {}

  start(onMessage: HeartbeatHandler): Promise<void> {
    // No reuseAddr: a port another process holds (another farm by mistake) must fail
    // clearly, not split the heartbeats between two sockets. ipv6Only: an IPv6 farm's
    // socket does not also take IPv4 heartbeats as ::ffff:a.b.c.d.
    const socket = dgram.createSocket({ type: this.family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: this.family === 'ipv6' });
    this.socket = socket;
    // Peers are known by their canonical address text (the config parser's), whatever
    // text the kernel hands back.
    socket.on('message', (msg, rinfo) => onMessage(msg, canonicalIP(rinfo.address) ?? rinfo.address, 'udp'));
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

  async start(onMessage: HeartbeatHandler): Promise<void> {
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
