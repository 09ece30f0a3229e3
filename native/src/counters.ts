// Turns the raw per-rule counters (found by their comment) into per-VIP/port figures.
import type { Protocol } from '../../common/src/types.js';

/** 'foreign': a SYN for another node's bucket, dropped before conntrack (chain raw).
 *  Directed mode: 'forward', sent at L2 to the bucket's holder (netdev ingress);
 *  'previous', passed on to the bucket's previous holder (second chance).
 *  Timed handoff: 'hold', a new flow of an owned bucket dropped in its hold interval
 *  (being given away from its instant on, or taken over until its instant). */
export type Stage = 'established' | 'owned' | 'orphan' | 'drop' | 'foreign' | 'forward' | 'previous' | 'hold';

export interface RuleCounter {
  vip: string;
  port: number;
  protocol: Protocol;
  /** forward: sent on to another farm node (Directed mode), counted once, by the sender */
  verdict: 'accept' | 'drop' | 'forward';
  packets: number;
  bytes: number;
}

export interface StageCounter extends Omit<RuleCounter, 'verdict'> {
  stage: Stage;
}

const STAGES: readonly Stage[] = ['established', 'owned', 'orphan', 'drop', 'foreign', 'forward', 'previous', 'hold'];

/** the comment nft_farm.cc puts on each rule; null for anything else */
export function parseComment(comment: string): Omit<StageCounter, 'packets' | 'bytes'> | null {
  const m = /^vipfarm ([0-9a-f.:]+) (\d+) (tcp|udp) (\w+)$/.exec(comment);
  if (m === null || !STAGES.includes(m[4] as Stage)) return null;
  return { vip: m[1], port: Number(m[2]), protocol: m[3] as Protocol, stage: m[4] as Stage };
}

export function stageCounters(raw: { comment: string; packets: number; bytes: number }[]): StageCounter[] {
  const out: StageCounter[] = [];
  for (const r of raw) {
    const parsed = parseComment(r.comment);
    if (parsed !== null) out.push({ ...parsed, packets: r.packets, bytes: r.bytes });
  }
  return out;
}

function verdictOf(stage: Stage): RuleCounter['verdict'] {
  if (stage === 'drop' || stage === 'foreign' || stage === 'hold') return 'drop';
  return stage === 'forward' || stage === 'previous' ? 'forward' : 'accept';
}

/** one accept, one drop (and in Directed mode one forward) entry per VIP x rule, in rule order */
export function aggregateCounters(stages: StageCounter[]): RuleCounter[] {
  const byKey = new Map<string, RuleCounter>();
  for (const s of stages) {
    const verdict = verdictOf(s.stage);
    const key = `${s.vip} ${s.port} ${s.protocol} ${verdict}`;
    const cur = byKey.get(key);
    if (cur === undefined) {
      byKey.set(key, { vip: s.vip, port: s.port, protocol: s.protocol, verdict, packets: s.packets, bytes: s.bytes });
    } else {
      cur.packets += s.packets;
      cur.bytes += s.bytes;
    }
  }
  return [...byKey.values()];
}
