// Answers ARP for the VIPs with the virtual MAC (AF_PACKET socket, polled by libuv on
// the JS thread's loop: no busy loop, no blocking) and sends gratuitous ARP on start.
import { native, type NativeArpResponder } from './load.js';
import { checkIface, checkMac, checkVips } from './validate.js';

export interface ArpStats {
  requests: number;
  replies: number;
  gratuitous: number;
  sendErrors: number;
}

export class ArpResponder {
  private readonly impl: NativeArpResponder;

  constructor(opts: { iface: string; vips: string[]; mac: string }) {
    const op = 'ArpResponder';
    const iface = checkIface(op, opts.iface);
    const vips = checkVips(op, opts.vips);
    const mac = checkMac(op, opts.mac);
    this.impl = new (native().ArpResponder)(iface, vips, mac);
  }

  /** opens the socket, starts answering, sends one gratuitous ARP per VIP; idempotent */
  start(): void {
    this.impl.start();
  }

  sendGratuitous(): void {
    this.impl.sendGratuitous();
  }

  /** closes the socket; safe to call twice */
  stop(): void {
    this.impl.stop();
  }

  stats(): ArpStats {
    return this.impl.stats();
  }
}
