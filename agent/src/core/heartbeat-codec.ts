// Heartbeat wire format and its replay window. Binary and compact so a 4096-bucket bitmap
// still fits one unfragmented UDP datagram; HMAC-SHA256 under the farm key over every
// byte before the tag. Decoding never throws: garbage from the network is a reason, not
// an exception, and nothing is trusted before the tag checks out.
//
// Layout (big endian):
//   0  'V' 'F'             magic
//   2  u8 version (2; 1 had no nonce, echo or extension length)
//   3  u8 state            0 ready, 1 draining, 2 standby, 3 down
//   4  u8 farm length F,   F bytes farm name (UTF-8)
//      u8 node length N,   N bytes node name (UTF-8)
//      u64 incarnation     ms at the sender's start
//      u64 seq             monotonic per incarnation
//      u64 sentAt          sender's wall clock, ms
//      u16 weight
//      u32 viewDigest      hash of the sender's assignment table (see ownership.ts)
//      u16 bucketCount     bitmap of ceil(bucketCount / 8) bytes follows, bit b = bucket b
//      u32 nonce           random per incarnation of the sender
//      u8 echo count E,    E x u32: nonces of the peers the sender hears (see checkReplay)
//      u16 extension length X, X bytes of fields appended without a new version (a rolling
//                          update keeps hearing it: a receiver reads the ones it knows, by
//                          length, and skips the rest). Known, in this order:
//        u32 sentAtNs      ns past sentAt's millisecond (0..999999): sub-ms send time, so a
//                          receiver can bound the clock skew tightly (ownership.ts)
//        u64 giveAtUs      timed handoff: the sender stops taking new flows for the buckets
//        u32 giveDigest    it holds that the table of this digest gives to others, at this
//                          instant of its clock (µs since the epoch); absent: none
//      32 bytes HMAC-SHA256(key, everything above)
import { createHmac, timingSafeEqual } from 'node:crypto';
import { LIMITS } from '../../../common/src/config/syntax.js';
import type { MemberState } from '../../../common/src/types.js';

export interface Heartbeat {
  farm: string;
  node: string;
  /** ms at the sender's start; a new one means the node restarted */
  incarnation: number;
  seq: number;
  sentAt: number;
  weight: number;
  state: MemberState;
  /** digest of the members and weights the sender's assignment is computed from;
   *  0 = not given (an older sender): receivers then leave it out of the agreement check */
  viewDigest: number;
  bucketCount: number;
  /** buckets the sender holds (accepts new connections for), ascending */
  held: number[];
  /** drawn at the sender's start (uint32): the value its peers echo */
  nonce: number;
  /** the nonces of the peers the sender hears, newest first (at most MAX_ECHOES): proof to
   *  a peer that this heartbeat was sent after the peer's own start */
  echo: number[];
  /** timed handoff under way: at `atMs` (the sender's clock, µs precision) the sender
   *  stops taking new flows for every bucket it holds that the table of `digest` gives to
   *  another node, and releases them (see ownership.ts) */
  giving?: { atMs: number; digest: number };
}

export type DecodeResult =
  | { ok: true; msg: Heartbeat }
  | { ok: false; reason: 'malformed' | 'version' | 'bad_mac' | 'wrong_farm' };

const MAGIC0 = 0x56; // 'V'
const MAGIC1 = 0x46; // 'F'
const VERSION = 2;
const MAC_LEN = 32;
export const MAX_NAME_BYTES = 253;
export const MAX_BUCKETS = LIMITS.bucketCountMax;
/** Echoes one heartbeat carries; a larger farm's are sent in turns (agent-core echoesToSend). */
export const MAX_ECHOES = 64;
/** Room for appended fields: what an older receiver accepts (version 2 from session 15 on). */
const MAX_EXTENSION_BYTES = 128;
/** The appended fields this version writes: sentAtNs, then giveAtUs and giveDigest. */
const EXT_SENT_NS = 4;
const EXT_GIVING = EXT_SENT_NS + 8 + 4;
const STATES: readonly MemberState[] = ['ready', 'draining', 'standby', 'down'];
const FIXED = 4 + 1 + 1 + 8 + 8 + 8 + 2 + 4 + 2 + 4 + 1 + 2 + MAC_LEN;
/** The largest this version writes: well inside one unfragmented datagram or frame. */
export const MAX_HEARTBEAT_BYTES = FIXED + 2 * MAX_NAME_BYTES + MAX_BUCKETS / 8 + 4 * MAX_ECHOES + EXT_GIVING;
/** The largest accepted (with a later version's appended fields). */
const MAX_ACCEPTED_BYTES = MAX_HEARTBEAT_BYTES + MAX_EXTENSION_BYTES;

function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / 2 ** 32), off);
  buf.writeUInt32BE(v % 2 ** 32, off + 4);
}

function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off) * 2 ** 32 + buf.readUInt32BE(off + 4);
}

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

function checkSafeInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`heartbeat ${name} must be a non-negative safe integer, got ${v}`);
}

/** What a sender fills in; viewDigest defaults to 0 (not given), nonce to 0, echo to none. */
export type HeartbeatInput = Omit<Heartbeat, 'viewDigest' | 'nonce' | 'echo'> & { viewDigest?: number; nonce?: number; echo?: number[] };

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** Encode and sign. Throws RangeError on a message no peer could accept (a bug in the caller). */
export function encodeHeartbeat(input: HeartbeatInput, key: Buffer): Buffer {
  const msg: Heartbeat = { ...input, viewDigest: input.viewDigest ?? 0, nonce: input.nonce ?? 0, echo: input.echo ?? [] };
  const farm = Buffer.from(msg.farm, 'utf8');
  const node = Buffer.from(msg.node, 'utf8');
  if (farm.length === 0 || farm.length > MAX_NAME_BYTES) throw new RangeError(`heartbeat farm name must be 1..${MAX_NAME_BYTES} bytes`);
  if (node.length === 0 || node.length > MAX_NAME_BYTES) throw new RangeError(`heartbeat node name must be 1..${MAX_NAME_BYTES} bytes`);
  checkNumbers(msg);
  const state = STATES.indexOf(msg.state);
  if (state < 0) throw new RangeError(`heartbeat state unknown: ${String(msg.state)}`);
  const bitmapLen = Math.ceil(msg.bucketCount / 8);
  const extLen = msg.giving ? EXT_GIVING : EXT_SENT_NS;
  const bodyLen = FIXED - MAC_LEN + farm.length + node.length + bitmapLen + 4 * msg.echo.length + extLen;
  const buf = Buffer.alloc(bodyLen + MAC_LEN);
  let off = 0;
  buf[off++] = MAGIC0;
  buf[off++] = MAGIC1;
  buf[off++] = VERSION;
  buf[off++] = state;
  buf[off++] = farm.length;
  off += farm.copy(buf, off);
  buf[off++] = node.length;
  off += node.copy(buf, off);
  writeU64(buf, off, msg.incarnation);
  writeU64(buf, off + 8, msg.seq);
  const sentMs = Math.floor(msg.sentAt);
  writeU64(buf, off + 16, sentMs);
  off += 24;
  buf.writeUInt16BE(msg.weight, off);
  buf.writeUInt32BE(msg.viewDigest, off + 2);
  buf.writeUInt16BE(msg.bucketCount, off + 6);
  off += 8;
  for (const b of msg.held) {
    if (!Number.isInteger(b) || b < 0 || b >= msg.bucketCount) throw new RangeError(`heartbeat held bucket ${b} outside 0..${msg.bucketCount - 1}`);
    buf[off + (b >> 3)]! |= 1 << (b & 7);
  }
  off += bitmapLen;
  buf.writeUInt32BE(msg.nonce, off);
  buf[off + 4] = msg.echo.length;
  off += 5;
  for (const e of msg.echo) {
    buf.writeUInt32BE(e, off);
    off += 4;
  }
  buf.writeUInt16BE(extLen, off);
  off += 2;
  buf.writeUInt32BE(Math.min(999_999, Math.round((msg.sentAt - sentMs) * 1e6)), off);
  off += 4;
  if (msg.giving) {
    writeU64(buf, off, Math.floor(msg.giving.atMs * 1000));
    buf.writeUInt32BE(msg.giving.digest, off + 8);
    off += 12;
  }
  mac(key, buf.subarray(0, off)).copy(buf, off);
  return buf;
}

function checkNumbers(msg: Heartbeat): void {
  checkSafeInt('incarnation', msg.incarnation);
  checkSafeInt('seq', msg.seq);
  checkTimes(msg);
  if (!Number.isInteger(msg.weight) || msg.weight < 0 || msg.weight > 0xffff) throw new RangeError(`heartbeat weight must be 0..65535, got ${msg.weight}`);
  if (!Number.isInteger(msg.bucketCount) || msg.bucketCount < 0 || msg.bucketCount > MAX_BUCKETS) {
    throw new RangeError(`heartbeat bucketCount must be 0..${MAX_BUCKETS}, got ${msg.bucketCount}`);
  }
  if (!isU32(msg.viewDigest)) throw new RangeError(`heartbeat viewDigest must be a uint32, got ${msg.viewDigest}`);
  if (!isU32(msg.nonce)) throw new RangeError(`heartbeat nonce must be a uint32, got ${msg.nonce}`);
  if (msg.echo.length > MAX_ECHOES) throw new RangeError(`heartbeat echo must hold at most ${MAX_ECHOES} nonces, got ${msg.echo.length}`);
  for (const e of msg.echo) if (!isU32(e)) throw new RangeError(`heartbeat echo must hold uint32 nonces, got ${e}`);
}

/** sentAt and the handoff instant: ms that fit the wire (whole ms, and µs, as safe integers) */
function checkTimes(msg: Heartbeat): void {
  const ms = (v: number, scale: number): boolean => Number.isFinite(v) && v >= 0 && Number.isSafeInteger(Math.floor(v * scale));
  if (!ms(msg.sentAt, 1)) throw new RangeError(`heartbeat sentAt must be a non-negative number of ms, got ${msg.sentAt}`);
  if (!msg.giving) return;
  if (!ms(msg.giving.atMs, 1000)) throw new RangeError(`heartbeat giving.atMs must be ms since the epoch, got ${msg.giving.atMs}`);
  if (!isU32(msg.giving.digest) || msg.giving.digest === 0) throw new RangeError(`heartbeat giving.digest must be a non-zero uint32, got ${msg.giving.digest}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A heartbeat of another wire version: same magic, a plausible length. */
function otherVersion(buf: Buffer): boolean {
  return buf.length >= FIXED && buf[0] === MAGIC0 && buf[1] === MAGIC1 && buf[2] !== VERSION;
}

function parse(buf: Buffer): { msg: Heartbeat; bodyLen: number } | undefined {
  if (buf.length < FIXED + 2 || buf.length > MAX_ACCEPTED_BYTES) return undefined;
  if (buf[0] !== MAGIC0 || buf[1] !== MAGIC1 || buf[2] !== VERSION) return undefined;
  const state = STATES[buf[3]!];
  if (!state) return undefined;
  let off = 4;
  const farmLen = buf[off++]!;
  if (farmLen === 0 || off + farmLen + 1 > buf.length) return undefined;
  const farmBytes = buf.subarray(off, off + farmLen);
  off += farmLen;
  const nodeLen = buf[off++]!;
  if (nodeLen === 0 || off + nodeLen + 32 + MAC_LEN > buf.length) return undefined;
  const nodeBytes = buf.subarray(off, off + nodeLen);
  off += nodeLen;
  const incarnation = readU64(buf, off);
  const seq = readU64(buf, off + 8);
  const sentAt = readU64(buf, off + 16);
  off += 24;
  const weight = buf.readUInt16BE(off);
  const viewDigest = buf.readUInt32BE(off + 2);
  const bucketCount = buf.readUInt16BE(off + 6);
  off += 8;
  if (bucketCount > MAX_BUCKETS) return undefined;
  const bitmapLen = Math.ceil(bucketCount / 8);
  const bitmapAt = off;
  const tail = parseTail(buf, off + bitmapLen);
  if (!tail) return undefined;
  if (![incarnation, seq, sentAt].every(Number.isSafeInteger)) return undefined;
  let farm: string;
  let node: string;
  try {
    farm = utf8.decode(farmBytes);
    node = utf8.decode(nodeBytes);
  } catch {
    return undefined;
  }
  const held = parseBitmap(buf.subarray(bitmapAt, bitmapAt + bitmapLen), bucketCount);
  if (!held) return undefined;
  const { nonce, echo, end, ext } = tail;
  const msg: Heartbeat = { farm, node, incarnation, seq, sentAt, weight, state, viewDigest, bucketCount, held, nonce, echo };
  return parseExtension(msg, ext) ? { msg, bodyLen: end } : undefined;
}

/** the appended fields this version knows, into msg; false when they are malformed */
function parseExtension(msg: Heartbeat, ext: Buffer): boolean {
  if (ext.length >= EXT_SENT_NS) {
    const ns = ext.readUInt32BE(0);
    if (ns > 999_999) return false;
    msg.sentAt += ns / 1e6;
  }
  if (ext.length >= EXT_GIVING) {
    const atUs = readU64(ext, EXT_SENT_NS);
    const digest = ext.readUInt32BE(EXT_SENT_NS + 8);
    if (!Number.isSafeInteger(atUs) || digest === 0) return false;
    msg.giving = { atMs: atUs / 1000, digest };
  }
  return true;
}

/** nonce, echo and extension, from `off` to the tag, which must come right after */
function parseTail(buf: Buffer, off: number): { nonce: number; echo: number[]; end: number; ext: Buffer } | undefined {
  if (off + 5 + 2 + MAC_LEN > buf.length) return undefined;
  const nonce = buf.readUInt32BE(off);
  const echoCount = buf[off + 4]!;
  off += 5;
  if (echoCount > MAX_ECHOES || off + 4 * echoCount + 2 + MAC_LEN > buf.length) return undefined;
  const echo: number[] = [];
  for (let i = 0; i < echoCount; i++, off += 4) echo.push(buf.readUInt32BE(off));
  const extLen = buf.readUInt16BE(off);
  const ext = buf.subarray(off + 2, off + 2 + extLen);
  off += 2 + extLen;
  if (extLen > MAX_EXTENSION_BYTES || off + MAC_LEN !== buf.length) return undefined;
  return { nonce, echo, end: off, ext };
}

function parseBitmap(bitmap: Buffer, bucketCount: number): number[] | undefined {
  const held: number[] = [];
  for (let i = 0; i < bitmap.length; i++) {
    const byte = bitmap[i]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if (!(byte & (1 << bit))) continue;
      const b = i * 8 + bit;
      if (b >= bucketCount) return undefined; // padding bits must be clear
      held.push(b);
    }
  }
  return held;
}

/**
 * Check and decode. 'wrong_farm' is judged before the tag so that two farms sharing a port
 * by mistake are told apart from forgery in the metrics; the farm name is not a secret.
 * 'version': an agent of another wire version (not authenticated: its layout is unknown).
 */
export function decodeHeartbeat(buf: Buffer, key: Buffer, farm: string): DecodeResult {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(buf);
  } catch {
    parsed = undefined;
  }
  if (!parsed) return { ok: false, reason: otherVersion(buf) ? 'version' : 'malformed' };
  if (parsed.msg.farm !== farm) return { ok: false, reason: 'wrong_farm' };
  const expected = mac(key, buf.subarray(0, parsed.bodyLen));
  const got = buf.subarray(parsed.bodyLen);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return { ok: false, reason: 'bad_mac' };
  return { ok: true, msg: parsed.msg };
}

// ---------------------------------------------------------------------------------------
// Replay window. Pure data: the runtime keeps the latest guard and swaps it on accept.
//
// A window in memory cannot know what was sent before its own start, so the first
// heartbeat taken from a node must prove it was sent after that start: it echoes the
// nonce this incarnation drew (its sender heard us first). Every later one is newer than
// a heartbeat already proved fresh (a higher seq, or a higher incarnation, since
// incarnations grow), so the window alone tells it from a replay. A heartbeat captured
// before a restart echoes the old nonce: 'no_echo', never accepted; a captured one that
// echoes the current nonce was accepted already: 'replay' or 'stale'.

export interface ReplayGuard {
  /** newest (incarnation, seq) accepted per node, and the local time it was accepted */
  readonly nodes: ReadonlyMap<string, { incarnation: number; seq: number; at: number }>;
}

export type ReplayVerdict = { ok: true; guard: ReplayGuard } | { ok: false; reason: 'replay' | 'stale' | 'no_echo' };

export function createReplayGuard(): ReplayGuard {
  return { nodes: new Map() };
}

/**
 * Accept a decoded heartbeat at local time `now` or say why not: 'stale' when sentAt is
 * more than maxSkewMs from now (clocks are NTP-synced; this bounds how long a captured
 * packet stays useful) or the incarnation is older than the newest seen from that node,
 * 'replay' when seq does not grow within the incarnation, 'no_echo' when nothing was
 * taken from that node yet and its echo lacks `selfNonce` (this incarnation's nonce).
 */
export function checkReplay(
  guard: ReplayGuard,
  msg: Pick<Heartbeat, 'node' | 'incarnation' | 'seq' | 'sentAt' | 'echo'>,
  now: number,
  maxSkewMs: number,
  selfNonce: number,
): ReplayVerdict {
  if (Math.abs(msg.sentAt - now) > maxSkewMs) return { ok: false, reason: 'stale' };
  const last = guard.nodes.get(msg.node);
  if (last) {
    if (msg.incarnation < last.incarnation) return { ok: false, reason: 'stale' };
    if (msg.incarnation === last.incarnation && msg.seq <= last.seq) return { ok: false, reason: 'replay' };
  } else if (!msg.echo.includes(selfNonce)) return { ok: false, reason: 'no_echo' };
  const nodes = new Map(guard.nodes);
  nodes.set(msg.node, { incarnation: msg.incarnation, seq: msg.seq, at: now });
  return { ok: true, guard: { nodes } };
}

/**
 * Forget nodes not accepted for `forgetAfterMs`: a node whose clock stepped back before a
 * restart (a lower incarnation) can come back then; its next heartbeat must echo our
 * nonce again, as after our own start.
 */
export function pruneReplayGuard(guard: ReplayGuard, now: number, forgetAfterMs: number): ReplayGuard {
  let changed = false;
  const nodes = new Map(guard.nodes);
  for (const [node, e] of guard.nodes) {
    if (now - e.at > forgetAfterMs) {
      nodes.delete(node);
      changed = true;
    }
  }
  return changed ? { nodes } : guard;
}
