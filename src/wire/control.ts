// Control messages between two nodes: pure encode/decode functions, no I/O.
//
// Every connection has one control stream. A frame on it is
//   u32 length (of what follows) ‖ u8 type ‖ body
// and the bodies are:
//   HELLO     u16 protocol ‖ 32 nonce                      — first frame each way
//   AUTH      32 mac                                       — HMAC proving the cluster secret; the dialer's
//                                                            first, the listener's only after it (node/auth.ts)
//   SHARES    u16 n ‖ n × (str id ‖ str indexId ‖ 32 root)  — the shares this node replicates
//   SUBSCRIBE str share ‖ str indexId ‖ f64 fromSeq        — "send me your entries after fromSeq"
//   ENTRIES   str share ‖ f64 upTo ‖ u32 n ‖ n × entry     — a batch of the sender's changes (≤ upTo)
//   ROOT      str share ‖ 32 root ‖ u8 settled             — the sender's manifest root (settled: nothing pending)
//   ERROR     str code ‖ str message                       — sent before closing on purpose; the codes
//                                                            CLOSE_STOPPING and CLOSE_DUPLICATE are no fault
//   ACK       str share ‖ str indexId ‖ f64 seq            — "I applied your entries up to seq" (tombstone GC)
//   LISTEN    u16 port                                     — the port this node accepts connections on
//   PEERS     u16 n ‖ n × (str peerId ‖ str ip ‖ u16 port) — other nodes the sender is connected to (peer exchange)
//   FETCH     u32 req ‖ 32 root ‖ f64 size ‖ str name      — "fetch this blob into your store" (put --to, bcast, diffuse)
//   PROGRESS  u32 req ‖ u32 have ‖ u32 total ‖ u8 state ‖ str message
//                                                          — how that fetch goes (state 0 running, 1 done, 2 failed)
//   CANCEL    u32 req                                      — "stop the FETCH I asked for" (Ctrl-C on bcast, put --to, diffuse)
//   HOLDS?    u32 req ‖ u16 n ‖ n × (32 root ‖ f64 size)   — "which of these do you hold, and how much?"
//   HOLDS     u32 req ‖ f64 storeBytes ‖ u16 n ‖ n × (u32 have ‖ bytes bitfield)
//                                                          — verified pieces of each (bitfield only when partial)
// An entry is
//   str path ‖ u8 flags (1 dir, 2 deleted, 4 has data) ‖ f64 size ‖ f64 mtime ‖ 32 root ‖ str by ‖
//   u16 n ‖ n × (str node ‖ f64 counter) ‖ [bytes data]
// where data, for small files, is the whole content inline (the small-file fast path).
import { Reader, Writer } from './codec.js'
import { SwarmError } from '../errors.js'
import type { Entry } from '../model/entry.js'
import { isIP } from 'node:net'
import { printable } from '../model/printable.js'
import { MAX_FILE_SIZE, MAX_VERSION_COMPONENTS, entryProblem, indexIdProblem, peerIdProblem, shareIdProblem } from '../model/rules.js'

/** 2: the dialer proves the secret first, proofs keyed with the scrypt-stretched secret (node/auth.ts). */
export const PROTOCOL_VERSION = 2
export const MAX_CONTROL_FRAME = 64 * 1024 * 1024
/** An ENTRIES frame carries at most one feed batch (BATCH_ENTRIES = 2000) plus headroom. */
const MAX_ENTRIES_PER_FRAME = 10_000
/** Peer exchange names the sender's connected peers, which it keeps to a few hundred at most. */
const MAX_PEERS_PER_FRAME = 1024
/** A node replicates a handful of shares; a list this long is not honest. */
const MAX_SHARES_PER_FRAME = 4096
/**
 * The largest frame accepted before the peer has authenticated. HELLO is 35 bytes and AUTH 33;
 * the rest is room for an ERROR with a short reason. A stranger can make us buffer no more.
 */
export const MAX_HANDSHAKE_FRAME = 512

/** ERROR code of a node that is stopping cleanly: its peers report "peer stopped", not a stream error. */
export const CLOSE_STOPPING = 'STOPPING'
/** ERROR code of a connection closed because another one joins the same two nodes (both dialed). */
export const CLOSE_DUPLICATE = 'DUPLICATE'

export const MSG = { HELLO: 1, AUTH: 2, SHARES: 3, SUBSCRIBE: 4, ENTRIES: 5, ROOT: 6, ERROR: 7, ACK: 8, LISTEN: 9, PEERS: 10, FETCH: 11, PROGRESS: 12, HOLDS_QUERY: 13, HOLDS: 14, CANCEL: 15 } as const
/** A holdings query names at most this many blobs (mget of a big prefix is split into several). */
export const MAX_HOLDS_PER_FRAME = 4096
/** Reasons and names in job messages are for logs and progress lines: cut to this. */
const MAX_JOB_TEXT = 1024

export type FetchState = 'running' | 'done' | 'failed'
const FETCH_STATES: FetchState[] = ['running', 'done', 'failed']
export interface BlobRef { root: Buffer, size: number }
export interface Holding { have: number, bitfield: Buffer }

export interface ShareInfo { id: string, indexId: string, root: Buffer }
export interface WireEntry { entry: Entry, data?: Buffer }
/** A node as peer exchange names it: its PeerId and where it accepts connections (an IP literal). */
export interface PeerAddress { peerId: string, ip: string, port: number }
/**
 * An entry whose values break the rules (model/rules.ts): dropped alone, with the reason to log.
 * Failing the whole frame instead would stop the share between two nodes for good, since the
 * sender would send the same batch again on every reconnect.
 */
export interface RejectedEntry { path: string, problem: string }

export type ControlMessage =
  | { type: 'hello', protocol: number, nonce: Buffer }
  | { type: 'auth', mac: Buffer }
  | { type: 'shares', shares: ShareInfo[] }
  | { type: 'subscribe', share: string, indexId: string, fromSeq: number }
  | { type: 'entries', share: string, upTo: number, entries: WireEntry[], rejected: RejectedEntry[] }
  | { type: 'root', share: string, root: Buffer, settled: boolean }
  | { type: 'error', code: string, message: string }
  | { type: 'ack', share: string, indexId: string, seq: number }
  | { type: 'listen', port: number }
  | { type: 'peers', peers: PeerAddress[] }
  | { type: 'fetch', req: number, root: Buffer, size: number, name: string }
  | { type: 'progress', req: number, have: number, total: number, state: FetchState, message: string }
  | { type: 'holds-query', req: number, blobs: BlobRef[] }
  | { type: 'cancel', req: number }
  | { type: 'holds', req: number, storeBytes: number, holdings: Holding[] }

/** The messages of the distribution jobs (jobs/remote.ts). */
export type JobMessage = Extract<ControlMessage, { type: 'fetch' | 'progress' | 'cancel' | 'holds-query' | 'holds' }>

function frame (type: number, body: (w: Writer) => void, sizeHint = 256): Buffer {
  const w = new Writer(sizeHint).u32(0).u8(type)
  body(w)
  const out = w.done()
  out.writeUInt32BE(out.length - 4, 0)
  return out
}

function writeEntry (w: Writer, { entry: e, data }: WireEntry): void {
  w.str(e.path)
  w.u8((e.type === 'dir' ? 1 : 0) | (e.deleted ? 2 : 0) | (data !== undefined ? 4 : 0))
  w.f64(e.size).f64(e.mtime).raw(e.root).str(e.by)
  const keys = Object.keys(e.version)
  w.u16(keys.length)
  for (const k of keys) w.str(k).f64(e.version[k]!)
  if (data !== undefined) w.bytes(data)
}

/** A well-formed entry, or why its values could not have come from an honest node (the rest of the batch still counts). */
function readEntry (r: Reader): WireEntry | { rejected: string, path: string } {
  const path = r.str()
  const flags = r.u8()
  const size = r.f64()
  const mtime = r.f64()
  const root = Buffer.from(r.raw(32))
  const by = r.str()
  const n = r.u16()
  if (n > MAX_VERSION_COMPONENTS) throw new SwarmError('ERR_PROTOCOL', 'version vector too long')
  const version: Record<string, number> = Object.create(null)
  for (let i = 0; i < n; i++) {
    const k = r.str()
    if (version[k] !== undefined) throw new SwarmError('ERR_PROTOCOL', 'node named twice in a version vector')
    version[k] = r.f64()
  }
  if ((flags & ~7) !== 0) throw new SwarmError('ERR_PROTOCOL', 'unknown entry flags')
  const entry: Entry = { path, type: (flags & 1) !== 0 ? 'dir' : 'file', deleted: (flags & 2) !== 0, size, mtime, root, version: { ...version }, by }
  const data = (flags & 4) === 0 ? undefined : r.bytes()
  const problem = entryProblem(entry) ?? (data !== undefined && (data.length !== size || entry.type !== 'file' || entry.deleted) ? 'inline data that does not fit its entry' : null)
  if (problem !== null) return { rejected: problem, path }
  return data === undefined ? { entry } : { entry, data: Buffer.from(data) }
}

export const encode = {
  hello: (nonce: Buffer) => frame(MSG.HELLO, w => w.u16(PROTOCOL_VERSION).raw(nonce)),
  auth: (mac: Buffer) => frame(MSG.AUTH, w => w.raw(mac)),
  shares: (shares: ShareInfo[]) => frame(MSG.SHARES, w => {
    w.u16(shares.length)
    for (const s of shares) w.str(s.id).str(s.indexId).raw(s.root)
  }),
  subscribe: (share: string, indexId: string, fromSeq: number) => frame(MSG.SUBSCRIBE, w => w.str(share).str(indexId).f64(fromSeq)),
  entries: (share: string, upTo: number, entries: WireEntry[]) => {
    let hint = 64
    for (const e of entries) hint += 128 + e.entry.path.length + (e.data?.length ?? 0)
    return frame(MSG.ENTRIES, w => {
      w.str(share).f64(upTo).u32(entries.length)
      for (const e of entries) writeEntry(w, e)
    }, hint)
  },
  root: (share: string, root: Buffer, settled: boolean) => frame(MSG.ROOT, w => w.str(share).raw(root).u8(settled ? 1 : 0)),
  error: (code: string, message: string) => frame(MSG.ERROR, w => w.str(code).str(message)),
  ack: (share: string, indexId: string, seq: number) => frame(MSG.ACK, w => w.str(share).str(indexId).f64(seq)),
  listen: (port: number) => frame(MSG.LISTEN, w => w.u16(port)),
  peers: (peers: PeerAddress[]) => frame(MSG.PEERS, w => {
    w.u16(peers.length)
    for (const p of peers) w.str(p.peerId).str(p.ip).u16(p.port)
  }),
  fetch: (req: number, root: Buffer, size: number, name: string) => frame(MSG.FETCH, w => w.u32(req).raw(root).f64(size).str(name.slice(0, MAX_JOB_TEXT))),
  progress: (req: number, have: number, total: number, state: FetchState, message = '') =>
    frame(MSG.PROGRESS, w => w.u32(req).u32(have).u32(total).u8(FETCH_STATES.indexOf(state)).str(message.slice(0, MAX_JOB_TEXT))),
  cancel: (req: number) => frame(MSG.CANCEL, w => w.u32(req)),
  holdsQuery: (req: number, blobs: BlobRef[]) => frame(MSG.HOLDS_QUERY, w => {
    w.u32(req).u16(blobs.length)
    for (const b of blobs) w.raw(b.root).f64(b.size)
  }, 16 + blobs.length * 40),
  holds: (req: number, storeBytes: number, holdings: Holding[]) => frame(MSG.HOLDS, w => {
    w.u32(req).f64(storeBytes).u16(holdings.length)
    for (const h of holdings) w.u32(h.have).bytes(h.bitfield)
  }, 16 + holdings.reduce((n, h) => n + 8 + h.bitfield.length, 0))
}

/** A blob size as the rules allow one (model/rules.ts MAX_FILE_SIZE). */
function blobSize (r: Reader): number {
  const n = r.f64()
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_FILE_SIZE) throw new SwarmError('ERR_PROTOCOL', 'bad blob size')
  return n
}

function shareId (r: Reader): string {
  const s = r.str()
  const problem = shareIdProblem(s)
  if (problem !== null) throw new SwarmError('ERR_PROTOCOL', `bad share id: ${problem}`)
  return s
}

function indexId (r: Reader): string {
  const s = r.str()
  if (indexIdProblem(s) !== null) throw new SwarmError('ERR_PROTOCOL', 'bad index id')
  return s
}

/** Sequence numbers are counts of changes: non-negative safe integers. */
function seq (r: Reader): number {
  const n = r.f64()
  if (!Number.isSafeInteger(n) || n < 0) throw new SwarmError('ERR_PROTOCOL', 'bad sequence number')
  return n
}

/** The only message types a peer may send before it has authenticated. */
export function isHandshakeType (type: number | undefined): boolean {
  return type === MSG.HELLO || type === MSG.AUTH || type === MSG.ERROR
}

/** Decodes one frame body (type byte + body, without the length prefix). */
export function decode (body: Buffer): ControlMessage {
  const r = new Reader(body)
  const type = r.u8()
  let msg: ControlMessage
  switch (type) {
    case MSG.HELLO: msg = { type: 'hello', protocol: r.u16(), nonce: Buffer.from(r.raw(32)) }; break
    case MSG.AUTH: msg = { type: 'auth', mac: Buffer.from(r.raw(32)) }; break
    case MSG.SHARES: {
      const n = r.u16()
      if (n > MAX_SHARES_PER_FRAME) throw new SwarmError('ERR_PROTOCOL', 'too many shares in one frame')
      const shares: ShareInfo[] = []
      for (let i = 0; i < n; i++) shares.push({ id: shareId(r), indexId: indexId(r), root: Buffer.from(r.raw(32)) })
      msg = { type: 'shares', shares }
      break
    }
    case MSG.SUBSCRIBE: msg = { type: 'subscribe', share: shareId(r), indexId: indexId(r), fromSeq: seq(r) }; break
    case MSG.ENTRIES: {
      const share = shareId(r)
      const upTo = seq(r)
      const n = r.u32()
      if (n > MAX_ENTRIES_PER_FRAME) throw new SwarmError('ERR_PROTOCOL', 'too many entries in one frame')
      const entries: WireEntry[] = []
      const rejected: RejectedEntry[] = []
      for (let i = 0; i < n; i++) {
        const e = readEntry(r)
        if ('rejected' in e) rejected.push({ path: e.path, problem: e.rejected }); else entries.push(e)
      }
      msg = { type: 'entries', share, upTo, entries, rejected }
      break
    }
    case MSG.ROOT: msg = { type: 'root', share: shareId(r), root: Buffer.from(r.raw(32)), settled: r.u8() === 1 }; break
    case MSG.ERROR: msg = { type: 'error', code: r.str(), message: r.str() }; break
    case MSG.ACK: msg = { type: 'ack', share: shareId(r), indexId: indexId(r), seq: seq(r) }; break
    case MSG.LISTEN: msg = { type: 'listen', port: r.u16() }; break
    case MSG.PEERS: {
      const n = r.u16()
      if (n > MAX_PEERS_PER_FRAME) throw new SwarmError('ERR_PROTOCOL', 'too many peers in one frame')
      const peers: PeerAddress[] = []
      for (let i = 0; i < n; i++) {
        const p = { peerId: r.str(), ip: r.str(), port: r.u16() }
        if (peerIdProblem(p.peerId) !== null || isIP(p.ip) === 0 || p.port === 0) throw new SwarmError('ERR_PROTOCOL', 'bad peer address')
        peers.push(p)
      }
      msg = { type: 'peers', peers }
      break
    }
    case MSG.FETCH: msg = { type: 'fetch', req: r.u32(), root: Buffer.from(r.raw(32)), size: blobSize(r), name: printable(r.str(), MAX_JOB_TEXT) }; break
    case MSG.PROGRESS: {
      const m = { req: r.u32(), have: r.u32(), total: r.u32(), state: FETCH_STATES[r.u8()], message: printable(r.str(), MAX_JOB_TEXT) }
      if (m.state === undefined || m.have > m.total) throw new SwarmError('ERR_PROTOCOL', 'bad progress')
      msg = { type: 'progress', ...m, state: m.state }
      break
    }
    case MSG.CANCEL: msg = { type: 'cancel', req: r.u32() }; break
    case MSG.HOLDS_QUERY: {
      const req = r.u32()
      const n = r.u16()
      if (n > MAX_HOLDS_PER_FRAME) throw new SwarmError('ERR_PROTOCOL', 'too many blobs in one query')
      const blobs: BlobRef[] = []
      for (let i = 0; i < n; i++) blobs.push({ root: Buffer.from(r.raw(32)), size: blobSize(r) })
      msg = { type: 'holds-query', req, blobs }
      break
    }
    case MSG.HOLDS: {
      const req = r.u32()
      const storeBytes = r.f64()
      if (!Number.isSafeInteger(storeBytes) || storeBytes < 0) throw new SwarmError('ERR_PROTOCOL', 'bad store size')
      const n = r.u16()
      if (n > MAX_HOLDS_PER_FRAME) throw new SwarmError('ERR_PROTOCOL', 'too many holdings in one frame')
      const holdings: Holding[] = []
      for (let i = 0; i < n; i++) holdings.push({ have: r.u32(), bitfield: Buffer.from(r.bytes()) })
      msg = { type: 'holds', req, storeBytes, holdings }
      break
    }
    default: throw new SwarmError('ERR_PROTOCOL', `unknown control message type ${type}`)
  }
  r.end()
  return msg
}

/**
 * Splits a byte stream into frame bodies. Push chunks in; complete frames come out.
 * A frame longer than `limit` is a protocol error, refused from its length prefix (never
 * buffered). The limit starts small (MAX_HANDSHAKE_FRAME) and is raised by the session once the
 * peer has authenticated; next() hands out one frame at a time so that the raise applies to the
 * very next frame, even one that arrived in the same chunk as the AUTH.
 */
export class FrameSplitter {
  private chunks: Buffer[] = []
  private have = 0

  constructor (public limit = MAX_CONTROL_FRAME) {}

  /** Adds a chunk and returns every complete frame (under the current limit). */
  push (chunk: Buffer): Buffer[] {
    this.add(chunk)
    const out: Buffer[] = []
    for (let f = this.next(); f !== null; f = this.next()) out.push(f)
    return out
  }

  add (chunk: Buffer): void {
    this.chunks.push(chunk)
    this.have += chunk.length
  }

  /** The next complete frame body, or null if more bytes are needed; throws on a frame over the limit. */
  next (): Buffer | null {
    if (this.have < 4) return null
    const len = this.peek(4).readUInt32BE(0)
    if (len > this.limit || len === 0) throw new SwarmError('ERR_PROTOCOL', `control frame of ${len} bytes refused (limit ${this.limit})`)
    if (this.have < 4 + len) return null
    return this.take(4 + len).subarray(4)
  }

  private peek (n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!
    const b = Buffer.concat(this.chunks)
    this.chunks = [b]
    return b
  }

  private take (n: number): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
    const out = b.subarray(0, n)
    const rest = b.subarray(n)
    this.chunks = rest.length > 0 ? [rest] : []
    this.have -= n
    return out
  }
}
