// Heartbeats as Ethernet frames on the farm interface, to the virtual MAC: the switch
// floods them exactly where it floods the clients' frames for the VIP, so a peer heard
// this way can be reached by clients, whatever happens to the UDP heartbeat path (a
// firewall rule on its port, a broken heartbeat VLAN). Same authenticated payload as UDP.
import { FrameSocket } from '../../../native/src/index.js';
import type { HeartbeatHandler, HeartbeatLink, HeartbeatTransport } from './transport.js';

export class FrameTransport implements HeartbeatTransport {
  private socket?: FrameSocket;
  private onMessage?: HeartbeatHandler;

  constructor(
    private link: HeartbeatLink,
    private readonly onError: (err: Error, where: string) => void = () => {},
  ) {}

  start(onMessage: HeartbeatHandler): Promise<void> {
    this.onMessage = onMessage;
    this.open();
    return Promise.resolve();
  }

  /** One frame whatever the number of peers: it reaches every node the clients reach. */
  send(buf: Buffer): number {
    const s = this.socket;
    if (!s) return 0;
    try {
      return s.send(buf) ? 1 : 0;
    } catch (err) {
      this.onError(err as Error, this.link.iface);
      return 0;
    }
  }

  relink(link: HeartbeatLink): void {
    if (link.iface === this.link.iface && link.destination === this.link.destination) return;
    this.link = link;
    if (!this.socket) return;
    this.socket.stop();
    this.socket = undefined;
    this.open();
  }

  stop(): Promise<void> {
    this.socket?.stop();
    this.socket = undefined;
    return Promise.resolve();
  }

  private open(): void {
    const s = new FrameSocket({
      iface: this.link.iface,
      destination: this.link.destination,
      onFrame: (payload, source, receivedAt) => {
        try {
          this.onMessage?.(payload, source, 'l2', receivedAt);
        } catch (err) {
          this.onError(err as Error, source);
        }
      },
    });
    s.start();
    this.socket = s;
  }
}
