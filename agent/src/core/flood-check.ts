// The network self-test: do frames sent to the farm's virtual MAC reach this node? Every
// peer's L2 heartbeat goes to the virtual MAC (Flooding mode), so each one is such a probe.
// A peer heard on UDP for a while but never on L2 within the window means the switch does
// not deliver the virtual MAC's frames here: clients' frames for the VIP will not arrive
// either (a vSwitch without promiscuous mode, port security, unknown-unicast flood
// control). Pure; the agent calls it from its loop with what it heard when.
export interface PathTimes {
  /** local time of the first heartbeat heard from this peer on any path */
  since: number;
  udp: number;
  l2: number;
}

export interface FloodCheck {
  /** undefined: nothing to judge yet (no peer heard long enough) */
  floods?: boolean;
  /** peers whose virtual-MAC frames did not arrive here within the window */
  unseen: string[];
}

/** `windowMs`: how long a peer must have been heard (on UDP) without a frame on L2 */
export function checkFlooding(peers: ReadonlyMap<string, PathTimes>, alive: ReadonlySet<string>, now: number, windowMs: number): FloodCheck {
  const unseen: string[] = [];
  let judged = 0;
  for (const [name, t] of peers) {
    if (!alive.has(name) || now - t.since < windowMs || now - t.udp > windowMs) continue;
    judged++;
    if (now - t.l2 > windowMs) unseen.push(name);
  }
  unseen.sort();
  return judged === 0 ? { unseen } : { floods: unseen.length === 0, unseen };
}
