// UDP transport of heartbeats: one socket, unicast to every peer. Authenticity and replay
// checks live in the codec; this only moves bytes.
import dgram from 'node:dgram';
import net from 'node:net';

export interface HeartbeatTransport {
  start(onMessage: (buf: Buffer, from: string) => void): Promise<void>;
  send(buf: Buffer, addresses: string[]): void;
  stop(): Promise<void>;
}

export class UdpTransport implements HeartbeatTransport {
  private socket?: dgram.Socket;

  constructor(
    private readonly port: number,
    private readonly bindAddress = '0.0.0.0',
    private readonly onSendError: (err: Error, to: string) => void = () => {},
  ) {}

  start(onMessage: (buf: Buffer, from: string) => void): Promise<void> {
    // No reuseAddr: a port another process holds (another farm by mistake) must fail
    // clearly, not split the heartbeats between two sockets. The address family is the
    // bind address's: an IPv6 farm binds '::'.
    const socket = dgram.createSocket({ type: net.isIPv6(this.bindAddress) ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => onMessage(msg, rinfo.address));
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

  send(buf: Buffer, addresses: string[]): void {
    const socket = this.socket;
    if (!socket) return;
    for (const to of addresses) {
      socket.send(buf, this.port, to, (err) => {
        if (err) this.onSendError(err, to);
      });
    }
  }

  stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}
