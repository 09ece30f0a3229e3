// The peers' nonces this agent echoes in its heartbeats (see checkReplay in
// heartbeat-codec.ts): one per peer, from the newest incarnation heard, learned from any
// authenticated heartbeat whose time and incarnation pass the replay window (a peer that
// has not heard us yet cannot echo us, and it needs our echo just the same). Pure data.
import { MAX_ECHOES, type Heartbeat } from './heartbeat-codec.js';

export interface EchoEntry {
  incarnation: number;
  nonce: number;
  /** local time this nonce was first heard (newest are echoed first) */
  since: number;
  /** local time it was last heard */
  at: number;
}

export interface EchoTable {
  readonly peers: ReadonlyMap<string, EchoEntry>;
  /** grows when a nonce is learned: a heartbeat with the new echo is news */
  readonly version: number;
}

export function createEchoTable(): EchoTable {
  return { peers: new Map(), version: 0 };
}

/** Note the nonce of `msg`'s sender; `learned` when it is new (a peer started). A nonce of
 *  an older incarnation than the one known is ignored (a replay of a previous one). */
export function learnNonce(t: EchoTable, msg: Pick<Heartbeat, 'node' | 'incarnation' | 'nonce'>, now: number): { table: EchoTable; learned: boolean } {
  const e = t.peers.get(msg.node);
  if (e && msg.incarnation < e.incarnation) return { table: t, learned: false };
  const learned = !e || e.nonce !== msg.nonce || e.incarnation !== msg.incarnation;
  const peers = new Map(t.peers);
  peers.set(msg.node, { incarnation: msg.incarnation, nonce: msg.nonce, since: learned ? now : e.since, at: now });
  return { table: { peers, version: learned ? t.version + 1 : t.version }, learned };
}

/** Forget peers not heard for `keepMs`. */
export function pruneEchoes(t: EchoTable, now: number, keepMs: number): EchoTable {
  const peers = new Map([...t.peers].filter(([, e]) => now - e.at <= keepMs));
  return peers.size === t.peers.size ? t : { peers, version: t.version + 1 };
}

/**
 * The echo of the heartbeat numbered `seq`: every nonce, newest first, when they fit;
 * in a larger farm the newest half of the room (a peer that just started needs its echo
 * at once) and the others in turns, so each is echoed every few heartbeats.
 */
export function echoesToSend(t: EchoTable, seq: number): number[] {
  const all = [...t.peers.values()].sort((a, b) => b.since - a.since || a.nonce - b.nonce).map((e) => e.nonce);
  if (all.length <= MAX_ECHOES) return all;
  const newest = MAX_ECHOES / 2;
  const rest = all.slice(newest);
  const turn = (seq * (MAX_ECHOES - newest)) % rest.length;
  const out = all.slice(0, newest);
  for (let i = 0; i < MAX_ECHOES - newest; i++) out.push(rest[(turn + i) % rest.length]!);
  return out;
}
