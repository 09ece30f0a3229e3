// The L2 heartbeat socket: Ethernet frames of one EtherType to one destination MAC on the
// farm interface (AF_PACKET, polled by libuv on the JS thread's loop). Received frames to
// that destination are handed to onFrame with the kernel's receive time; what they carry is
// the caller's business.
import { native, type NativeFrameSocket } from './load.js';
import { checkFrameDestination, checkIface, DataplaneInputError } from './validate.js';

/** IEEE 802 local experimental EtherType 1; the farm's L2 heartbeats use it by default. */
export const HEARTBEAT_ETHERTYPE = 0x88b5;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
/** Largest payload of one frame (an untagged 1500-byte MTU). */
export const MAX_FRAME_PAYLOAD = 1500;

export interface FrameStats {
  sent: number;
  received: number;
  sendErrors: number;
  socketErrors: number;
}

/** `receivedAt`: when the kernel received the frame (SO_TIMESTAMPNS), CLOCK_REALTIME in ms
 *  with a µs fraction, the clock of realtimeMs(); undefined if the kernel gave none. */
export type FrameHandler = (payload: Buffer, source: string, receivedAt?: number) => void;

export class FrameSocket {
  private readonly impl: NativeFrameSocket;

  constructor(opts: { iface: string; destination: string; ethertype?: number; onFrame: FrameHandler }) {
    const op = 'FrameSocket';
    const iface = checkIface(op, opts.iface);
    const dst = checkFrameDestination(op, opts.destination);
    const ethertype = opts.ethertype ?? HEARTBEAT_ETHERTYPE;
    if (!Number.isInteger(ethertype) || ethertype < 0x0600 || ethertype > 0xffff) {
      throw new DataplaneInputError(`${op}: EtherType ${ethertype} must be from 0x0600 to 0xffff`);
    }
    this.impl = new (native().FrameSocket)(iface, ethertype, dst, opts.onFrame);
  }

  /** opens the socket and starts receiving; idempotent */
  start(): void {
    this.impl.start();
  }

  /** one frame; false when the kernel refused it (counted in sendErrors) */
  send(payload: Buffer): boolean {
    return this.impl.send(payload);
  }

  /** closes the socket; safe to call twice */
  stop(): void {
    this.impl.stop();
  }

  stats(): FrameStats {
    return this.impl.stats();
  }
}
