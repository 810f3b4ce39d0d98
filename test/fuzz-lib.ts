// Shared by test/wire-hostile.test.ts, test/fuzz.test.ts and bench/fuzz.ts: a seeded PRNG, an
// in-process Duplex pair (whose far end can refuse to read), an in-memory PieceSource, builders
// for BitTorrent handshakes/messages and control frames, the mutators, and the fuzz targets
// (control decode(), FrameSplitter.push(), serveWire() and Download.addPeer() over duplex pairs).
// A "crash" is what must never happen: a target throwing anything but SwarmError ERR_PROTOCOL
// (codecs), or an uncaught exception / unhandled rejection (wires).
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { isSwarmError, SwarmError } from '../src/errors.js'
import { fileRoot, pieceCount, pieceLayerOf, LEAF_SIZE } from '../src/merkle/bep52.js'
import { Download } from '../src/swarm/download.js'
import { serveWire } from '../src/swarm/serve.js'
import { pieceLength, type PieceSource } from '../src/swarm/source.js'
import { decode, encode, FrameSplitter, type WireEntry } from '../src/wire/control.js'

// ---------------------------------------------------------------- PRNG

/** mulberry32: 32-bit state, good enough spread for fuzzing, fully reproducible from the seed */
export class Rng {
  private s: number
  constructor (seed: number) { this.s = seed >>> 0 }

  next (): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** integer in [0, n) */
  int (n: number): number { return Math.floor(this.next() * n) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] as T }
  u32 (): number { return (this.next() * 4294967296) >>> 0 }

  bytes (n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.int(256)
    return b
  }
}

// ---------------------------------------------------------------- duplex pair

/** one end of an in-process pipe: what one end writes the other reads, with backpressure */
export class PipeEnd extends Duplex {
  other: PipeEnd | null = null
  private held: (() => void) | null = null

  constructor (highWaterMark = 64 * 1024) {
    super({ allowHalfOpen: false, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark })
    this.on('error', () => {}) // a reset pipe must not crash an unobserving test
  }

  override _read (): void {
    const o = this.other
    const cb = o?.held ?? null
    if (o !== null && cb !== null) {
      o.held = null
      cb()
    }
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const o = this.other
    if (o === null || o.destroyed || o.readableEnded) { cb(); return }
    if (o.push(chunk)) cb()
    else this.held = cb // released when the other end reads
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.other?.push(null)
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    const o = this.other
    if (o !== null && !o.destroyed) o.destroy() // like a stream reset: the other end goes too
    cb(err)
  }
}

/** [a, b]: a connected pair. An end nobody reads from stops taking the other end's writes. */
export function duplexPair (highWaterMark?: number): [PipeEnd, PipeEnd] {
  const a = new PipeEnd(highWaterMark)
  const b = new PipeEnd(highWaterMark)
  a.other = b
  b.other = a
  return [a, b]
}

// ---------------------------------------------------------------- content

export function peerIdOf (name: string): Buffer { return createHash('sha1').update(name).digest() }

/** a complete file held in memory */
export class MemSource extends EventEmitter implements PieceSource {
  readonly root: Buffer
  readonly numPieces: number
  readonly layer: Buffer | null

  constructor (readonly data: Buffer, readonly pieceSize: number) {
    super()
    this.root = fileRoot(data)
    this.numPieces = pieceCount(data.length, pieceSize)
    const l = pieceLayerOf(data, pieceSize)
    this.layer = l.length > 0 ? l : null
  }

  get size (): number { return this.data.length }
  get infoHash (): Buffer { return this.root.subarray(0, 20) }
  has (i: number): boolean { return Number.isInteger(i) && i >= 0 && i < this.numPieces }
  complete (): boolean { return true }
  piece (i: number): Buffer { return this.data.subarray(i * this.pieceSize, i * this.pieceSize + pieceLength(i, this.size, this.pieceSize)) }
  async readPiece (i: number): Promise<Buffer> {
    if (!this.has(i)) throw new SwarmError('ERR_BAD_ARGUMENT', `piece ${i} is outside the file`)
    return this.piece(i)
  }

  async pieceLayer (): Promise<Buffer | null> { return this.layer }
}

/** a small multi-piece file: cheap to verify inline, big enough for a piece layer */
export function smallSource (rng: Rng, pieces = 4): MemSource {
  return new MemSource(rng.bytes(pieces * LEAF_SIZE - 100), LEAF_SIZE)
}

// ---------------------------------------------------------------- BitTorrent wire bytes

export const BT_PROTOCOL = Buffer.from('\x13BitTorrent protocol', 'latin1')
/** reserved bytes announcing BEP 10 (extended) and BEP 6 (fast) */
export const RESERVED_EXT_FAST = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0x04])
export const RESERVED_EXT = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0])

export const ID = {
  CHOKE: 0, UNCHOKE: 1, INTERESTED: 2, UNINTERESTED: 3, HAVE: 4, BITFIELD: 5, REQUEST: 6, PIECE: 7, CANCEL: 8,
  PORT: 9, SUGGEST: 0x0d, HAVE_ALL: 0x0e, HAVE_NONE: 0x0f, REJECT: 0x10, ALLOWED_FAST: 0x11, EXTENDED: 20
} as const

export function btHandshake (infoHash: Buffer, peerId: Buffer, reserved: Buffer = RESERVED_EXT_FAST): Buffer {
  return Buffer.concat([BT_PROTOCOL, reserved, infoHash, peerId])
}

/** a length-prefixed frame around an arbitrary body */
export function btFrame (body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

/** id, then each number as u32, then the payload */
export function btMessage (id: number, ints: number[] = [], payload: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(1 + 4 * ints.length + payload.length)
  body[0] = id
  ints.forEach((v, i) => body.writeUInt32BE(v >>> 0, 1 + 4 * i))
  payload.copy(body, 1 + 4 * ints.length)
  return btFrame(body)
}

export function btExtended (extId: number, payload: Buffer | string): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload
  return btFrame(Buffer.concat([Buffer.of(ID.EXTENDED, extId), p]))
}

/** the extended handshake an honest swarm peer sends (swarm_layer is extension 1) */
export const HONEST_EXT_HANDSHAKE = 'd1:md11:swarm_layeri1eee'

// ---------------------------------------------------------------- mutators

const INTERESTING_BYTES = [0, 1, 0x13, 0x14, 0x7f, 0x80, 0xfe, 0xff, 0x64, 0x6c, 0x69, 0x65, 0x3a] // incl. bencode d l i e :
const INTERESTING_U32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x4000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]

/** one random edit of buf (a new buffer; buf is not changed) */
export function mutate (rng: Rng, buf: Buffer): Buffer {
  const b = Buffer.from(buf)
  const at = (): number => rng.int(Math.max(1, b.length))
  switch (rng.int(9)) {
    case 0: { if (b.length > 0) { const i = at(); b[i] = (b[i] as number) ^ (1 << rng.int(8)) } return b }
    case 1: { if (b.length > 0) b[at()] = rng.pick(INTERESTING_BYTES); return b }
    case 2: { if (b.length >= 4) b.writeUInt32BE(rng.pick(INTERESTING_U32), rng.int(b.length - 3)); return b }
    case 3: return b.subarray(0, rng.int(b.length + 1)) // truncate
    case 4: { const i = at(); return Buffer.concat([b.subarray(0, i), rng.bytes(1 + rng.int(16)), b.subarray(i)]) } // insert
    case 5: { const i = at(); return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + rng.int(16))]) } // delete
    case 6: { const i = at(); const j = at(); return Buffer.concat([b.subarray(0, i), b.subarray(j), b.subarray(i)]) } // splice with itself
    case 7: { if (b.length > 0) { const i = at(); b.fill(rng.int(256), i, Math.min(b.length, i + 1 + rng.int(32))) } return b }
    default: { const n = 1 + rng.int(4); for (let k = 0; k < n && b.length > 0; k++) b[at()] = rng.int(256); return b }
  }
}

/** a few stacked mutations */
export function mutateMany (rng: Rng, buf: Buffer): Buffer {
  let b = buf
  const n = 1 + rng.int(3)
  for (let i = 0; i < n; i++) b = mutate(rng, b)
  return b
}

/** cuts buf into random chunks (what a socket may deliver) */
export function chunked (rng: Rng, buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  let pos = 0
  while (pos < buf.length) {
    const n = rng.chance(0.5) ? 1 + rng.int(8) : 1 + rng.int(buf.length)
    out.push(buf.subarray(pos, pos + n))
    pos += n
  }
  return out
}

/** a temp folder removed by the returned function */
export function tempDir (): { dir: string, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-fuzz-'))
  return { dir, remove: () => { rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }) } }
}

// ---------------------------------------------------------------- control frames

const STRING_PARTS = ['a', 'share', 'docs/readme.md', 'é', '😀', '\u0000', '..', '/', ' ', 'ünï', 'x'.repeat(40)]

function randomString (rng: Rng): string {
  let s = ''
  const n = rng.int(4)
  for (let i = 0; i < n; i++) s += rng.pick(STRING_PARTS)
  return s
}

function randomEntry (rng: Rng): WireEntry {
  const version: Record<string, number> = {}
  const nv = rng.int(4)
  for (let i = 0; i < nv; i++) version[randomString(rng) + String(i)] = rng.int(1000)
  const data = rng.chance(0.3) ? rng.bytes(rng.int(40)) : undefined
  return {
    entry: {
      path: randomString(rng) + 'f',
      type: rng.chance(0.2) ? 'dir' : 'file',
      deleted: rng.chance(0.2),
      size: data?.length ?? rng.int(1 << 20),
      mtime: 1_700_000_000_000 + rng.int(1e9),
      root: rng.bytes(32),
      version,
      by: randomString(rng)
    },
    data
  }
}

/** one valid control frame (length prefix included), any type */
export function validControlFrame (rng: Rng): Buffer {
  switch (rng.int(7)) {
    case 0: return encode.hello(rng.bytes(32))
    case 1: return encode.auth(rng.bytes(32))
    case 2: return encode.shares(Array.from({ length: rng.int(3) }, () => ({ id: randomString(rng), indexId: randomString(rng), root: rng.bytes(32) })))
    case 3: return encode.subscribe(randomString(rng), randomString(rng), rng.int(1e6))
    case 4: return encode.entries(randomString(rng), rng.int(1e6), Array.from({ length: rng.int(4) }, () => randomEntry(rng)))
    case 5: return encode.root(randomString(rng), rng.bytes(32), rng.chance(0.5))
    default: return encode.error(randomString(rng), randomString(rng))
  }
}

/** a control frame as the fuzzer feeds it: random bytes, a mutated valid frame, or (rarely) a valid one */
function controlInput (rng: Rng): Buffer {
  const r = rng.next()
  if (r < 0.2) return rng.bytes(rng.int(rng.chance(0.9) ? 48 : 600))
  const valid = validControlFrame(rng)
  return r < 0.95 ? mutateMany(rng, valid) : valid
}

// ---------------------------------------------------------------- bencode for extended handshakes

const BENCODE_KEYS = ['m', 'v', 'p', 'swarm_layer', 'ut_pex', 'toString', 'valueOf', '__proto__', 'constructor', '\uFEFFm', '']

function benString (s: Buffer | string): string {
  const b = typeof s === 'string' ? Buffer.from(s) : s
  return `${b.length}:${b.toString('latin1')}`
}

/** a random bencoded value (as a latin1 string), biased towards the shapes the Wire trips on */
export function randomBencode (rng: Rng, depth = 0): string {
  const r = rng.int(depth > 3 ? 3 : 6)
  if (r === 0) return `i${rng.pick([0, 1, 255, 256, -1, 2 ** 40, rng.int(300)])}e`
  if (r === 1) return benString(rng.chance(0.5) ? rng.pick(BENCODE_KEYS) : rng.bytes(rng.int(6)))
  if (r === 2) return rng.chance(0.05) ? 'l'.repeat(3000) + 'e'.repeat(3000) : `i${rng.int(10)}e`
  if (r === 3) return 'l' + Array.from({ length: rng.int(3) }, () => randomBencode(rng, depth + 1)).join('') + 'e'
  return 'd' + Array.from({ length: rng.int(4) }, () => benString(rng.pick(BENCODE_KEYS)) + randomBencode(rng, depth + 1)).join('') + 'e'
}

/** an extended handshake: a dict whose m is random (sometimes a valid mapping) */
export function randomExtendedHandshake (rng: Rng): Buffer {
  const m = rng.chance(0.3) ? `d11:swarm_layeri${rng.int(3)}ee` : randomBencode(rng, 1)
  return btExtended(0, `d1:m${m}${rng.chance(0.3) ? '1:v' + randomBencode(rng, 1) : ''}e`)
}

// ---------------------------------------------------------------- the piece wire's corpora

/** CHUNK messages carrying the whole layer, then NONE */
function layerMessages (layer: Buffer | null): Buffer[] {
  const out = [btExtended(1, Buffer.of(2))]
  if (layer === null) return out
  const msg = Buffer.alloc(9 + layer.length)
  msg[0] = 1
  msg.writeUInt32BE(layer.length, 1)
  msg.writeUInt32BE(0, 5)
  layer.copy(msg, 9)
  out.push(btExtended(1, msg))
  return out
}

function commonMessages (src: MemSource): Buffer[] {
  const n = src.numPieces
  return [
    Buffer.alloc(4), // keep-alive
    btMessage(ID.CHOKE), btMessage(ID.UNCHOKE), btMessage(ID.INTERESTED), btMessage(ID.UNINTERESTED),
    btMessage(ID.HAVE, [n - 1]), btMessage(ID.HAVE_ALL), btMessage(ID.HAVE_NONE),
    btMessage(ID.BITFIELD, [], Buffer.alloc(Math.ceil(n / 8), 0xff)),
    btFrame(Buffer.of(ID.PORT, 0x1a, 0xe1)), btMessage(ID.SUGGEST, [0]), btMessage(ID.ALLOWED_FAST, [1]),
    btExtended(0, HONEST_EXT_HANDSHAKE), btExtended(0, 'd1:md11:swarm_layeri1e6:ut_pexi2ee1:v4:testl1:ai1eee')
  ]
}

/** what a downloader sends a server */
function serveCorpus (src: MemSource): Buffer[] {
  const out = commonMessages(src)
  for (let i = 0; i < src.numPieces; i++) {
    const len = src.piece(i).length
    out.push(btMessage(ID.REQUEST, [i, 0, len]), btMessage(ID.CANCEL, [i, 0, len]), btMessage(ID.REQUEST, [i, 100, 1000]))
  }
  out.push(btExtended(1, Buffer.of(0)), btMessage(ID.PIECE, [0, 0], src.piece(0).subarray(0, 64)), btMessage(ID.REJECT, [0, 0, 16384]))
  return out
}

/** what a holder sends a downloader */
function downloadCorpus (src: MemSource): Buffer[] {
  const out = commonMessages(src)
  for (let i = 0; i < src.numPieces; i++) {
    const p = src.piece(i)
    out.push(btMessage(ID.PIECE, [i, 0], p), btMessage(ID.REJECT, [i, 0, p.length]), btMessage(ID.HAVE, [i]))
  }
  out.push(...layerMessages(src.layer), btMessage(ID.REQUEST, [0, 0, 16384]))
  return out
}

// ---------------------------------------------------------------- running the targets

export type Target = 'decode' | 'splitter' | 'serve' | 'download'
export const TARGETS: readonly Target[] = ['decode', 'splitter', 'serve', 'download']

export interface Crash { target: Target, input: string, error: string }

export interface FuzzReport {
  inputs: Record<Target, number>
  /** things that must never happen */
  crashes: Crash[]
  /** peer messages that threw inside the Wire and were caught by guardWire (a gap in WireChecker) */
  parserThrows: Crash[]
  sessions: { serve: number, download: number }
  /** sessions our side closed because of what the peer sent */
  peerDropped: number
  /** of those, peers dropped for leaving more than FUZZ_SEND_CAP unread */
  notReading: number
  /** downloads the fuzzer drove to completion with valid pieces */
  downloadsCompleted: number
  /** the largest partial message ever left buffered inside a serving Wire */
  maxWireBuffered: number
  /** the largest write buffer seen on our side of a session (FUZZ_SEND_CAP + one message at most) */
  maxQueued: number
}

const MAX_HEX = 512
/** how guardWire (src/swarm/wire-guard.ts) words an error it caught inside the Wire's parser */
const PARSER_THROW = 'peer message failed in the wire'

function hex (b: Buffer): string {
  return b.length <= MAX_HEX ? b.toString('hex') : `${b.subarray(0, MAX_HEX).toString('hex')}…(${b.length} bytes)`
}

function stackOf (err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

/** runs fn on input; anything thrown but SwarmError ERR_PROTOCOL is a crash */
export function runCodec (target: Target, input: Buffer, fn: () => void, crashes: Crash[]): void {
  try {
    fn()
  } catch (err) {
    if (!isSwarmError(err, 'ERR_PROTOCOL')) crashes.push({ target, input: hex(input), error: stackOf(err) })
  }
}

function fuzzDecode (rng: Rng, crashes: Crash[]): void {
  const frame = controlInput(rng)
  const body = rng.chance(0.8) && frame.length >= 4 ? frame.subarray(4) : frame
  runCodec('decode', body, () => { decode(body) }, crashes)
}

function fuzzSplitter (rng: Rng, crashes: Crash[]): void {
  const stream = Buffer.concat(Array.from({ length: 1 + rng.int(3) }, () => rng.chance(0.7) ? validControlFrame(rng) : controlInput(rng)))
  runCodec('splitter', stream, () => {
    const s = new FrameSplitter()
    for (const c of chunked(rng, stream)) for (const body of s.push(c)) runCodec('decode', body, () => { decode(body) }, crashes)
  }, crashes)
}

interface Session {
  ours: PipeEnd
  theirs: PipeEnd
  closed: boolean
  err: unknown
  recent: Buffer[]
  count: number
  wire: unknown
  /** share of this session's inputs that are mutated or random (varies so some sessions go deep) */
  noise: number
  /** valid messages sent first, in order (a holder's honest opening) */
  script: Buffer[]
}

/** inputs written between two turns of the event loop */
const BATCH = 8
/** a session is ended after this many inputs even if nobody closed it */
const MAX_SESSION_INPUTS = 64
/** a Download is replaced after this many sessions (fresh state) */
const SESSIONS_PER_DOWNLOAD = 40

const NOISE_LEVELS = [0.01, 0.05, 0.2, 0.5]
/** sessions whose peer never reads what we send */
const NON_READERS = 0.1
/** the send cap in fuzzed sessions: small, so peers that never read hit it within a session */
export const FUZZ_SEND_CAP = 32 * 1024

function newSession (rng: Rng, script: Buffer[]): Session {
  const reads = !rng.chance(NON_READERS)
  const [ours, theirs] = duplexPair(reads ? undefined : 1024) // a non-reader's end takes in little
  theirs.on('data', () => {}) // the hostile peer reads everything…
  if (!reads) theirs.pause() // …or nothing
  return { ours, theirs, closed: false, err: undefined, recent: [], count: 0, wire: null, noise: rng.pick(NOISE_LEVELS), script: [...script] }
}

/** Drives all four targets from one seed. Install, run, then read the report. */
export class Fuzzer {
  readonly report: FuzzReport = {
    inputs: { decode: 0, splitter: 0, serve: 0, download: 0 },
    crashes: [],
    parserThrows: [],
    sessions: { serve: 0, download: 0 },
    peerDropped: 0,
    notReading: 0,
    downloadsCompleted: 0,
    maxWireBuffered: 0,
    maxQueued: 0
  }

  private readonly rng: Rng
  private readonly src: MemSource
  private readonly serveMsgs: Buffer[]
  private readonly downloadMsgs: Buffer[]
  private readonly holderScript: Buffer[]
  private readonly downloaderScript = [btExtended(0, HONEST_EXT_HANDSHAKE), btMessage(ID.INTERESTED)]
  private serve: Session | null = null
  private dlSession: Session | null = null
  private dl: Download | null = null
  private dlSessions = 0
  private current: Session | null = null
  private currentTarget: Target = 'decode'
  private readonly onUncaught = (err: unknown): void => {
    this.report.crashes.push({ target: this.currentTarget, input: (this.current?.recent ?? []).map(hex).join(' '), error: stackOf(err) })
  }

  constructor (seed: number, private readonly partPath: string) {
    this.rng = new Rng(seed)
    this.src = smallSource(this.rng)
    this.serveMsgs = serveCorpus(this.src)
    this.downloadMsgs = downloadCorpus(this.src)
    this.holderScript = [btExtended(0, HONEST_EXT_HANDSHAKE), btMessage(ID.BITFIELD, [], Buffer.alloc(Math.ceil(this.src.numPieces / 8), 0xff)), btMessage(ID.UNCHOKE)]
  }

  /** count inputs spread over the targets (decode 40%, splitter 30%, serve 15%, download 15%) */
  async run (count: number, onProgress?: (done: number) => void): Promise<FuzzReport> {
    process.on('uncaughtException', this.onUncaught)
    process.on('unhandledRejection', this.onUncaught)
    try {
      let sinceYield = 0
      for (let i = 0; i < count; i++) {
        const r = this.rng.next()
        if (r < 0.4) this.step('decode')
        else if (r < 0.7) this.step('splitter')
        else {
          this.step(r < 0.85 ? 'serve' : 'download')
          if (++sinceYield >= BATCH) {
            sinceYield = 0
            await turn()
          }
        }
        if (onProgress !== undefined && (i & 0xffff) === 0) onProgress(i)
      }
      await this.finish()
    } finally {
      process.off('uncaughtException', this.onUncaught)
      process.off('unhandledRejection', this.onUncaught)
    }
    return this.report
  }

  private step (target: Target): void {
    this.currentTarget = target
    this.report.inputs[target]++
    if (target === 'decode') fuzzDecode(this.rng, this.report.crashes)
    else if (target === 'splitter') fuzzSplitter(this.rng, this.report.crashes)
    else if (target === 'serve') this.stepServe()
    else this.stepDownload()
  }

  // ---- serveWire()

  private stepServe (): void {
    let s = this.serve
    if (s === null || s.closed || s.count >= MAX_SESSION_INPUTS) {
      if (s !== null) this.endSession(s)
      s = this.openServe()
    }
    this.feed(s, this.serveMsgs)
  }

  private openServe (): Session {
    const s = newSession(this.rng, this.downloaderScript)
    const src = this.src
    s.wire = serveWire(s.ours, {
      peerId: peerIdOf('fuzz-srv'),
      lookup: (ih) => ih.equals(src.infoHash) ? src : undefined,
      onClose: (err) => { this.onSessionClosed(s, err) },
      maxQueuedSendBytes: FUZZ_SEND_CAP
    })
    this.serve = s
    this.report.sessions.serve++
    this.handshake(s)
    return s
  }

  // ---- Download.addPeer()

  private stepDownload (): void {
    let s = this.dlSession
    if (s === null || s.closed || s.count >= MAX_SESSION_INPUTS) {
      if (s !== null) this.endSession(s)
      s = this.openDownloadPeer()
    }
    this.feed(s, this.downloadMsgs)
  }

  private download (): Download {
    if (this.dl !== null && this.dlSessions < SESSIONS_PER_DOWNLOAD) return this.dl
    this.dl?.abort()
    const src = this.src
    const dl = new Download({ root: src.root, size: src.size, pieceSize: src.pieceSize, partPath: this.partPath, peerId: peerIdOf('fuzz-dl'), maxQueuedSendBytes: FUZZ_SEND_CAP, layer: this.rng.chance(0.5) ? src.layer : undefined })
    dl.on('peer-error', () => {})
    dl.start().then(() => { this.report.downloadsCompleted++ }, () => {})
    this.dl = dl
    this.dlSessions = 0
    return dl
  }

  private openDownloadPeer (): Session {
    const dl = this.download()
    this.dlSessions++
    const s = newSession(this.rng, this.holderScript)
    s.ours.once('close', () => { this.onSessionClosed(s, s.ours.errored ?? undefined) })
    this.handshake(s)
    dl.addPeer(s.ours, `fuzz-${this.report.sessions.download}`)
    this.dlSession = s
    this.report.sessions.download++
    return s
  }

  // ---- sessions

  /** the first input of a session: its handshake, rarely mutated */
  private handshake (s: Session): void {
    const hs = btHandshake(this.src.infoHash, peerIdOf('fuzz-peer'), this.rng.chance(0.9) ? RESERVED_EXT_FAST : this.rng.bytes(8))
    this.write(s, this.rng.chance(0.05) ? mutateMany(this.rng, hs) : hs)
  }

  /** one input: the session's next scripted or a random valid message, a mutated one, or random bytes */
  private feed (s: Session, corpus: Buffer[]): void {
    const valid = s.script.shift() ?? this.rng.pick(corpus)
    let input = valid
    if (this.rng.chance(s.noise)) {
      const r = this.rng.next()
      input = r < 0.2 ? this.rng.bytes(1 + this.rng.int(64)) : r < 0.4 ? randomExtendedHandshake(this.rng) : mutateMany(this.rng, valid)
    }
    this.write(s, input)
  }

  private write (s: Session, input: Buffer): void {
    this.current = s
    s.count++
    s.recent.push(input)
    if (s.recent.length > BATCH * 2) s.recent.shift()
    if (s.closed || s.theirs.destroyed) return
    const parts = this.rng.chance(0.2) ? chunked(this.rng, input) : [input]
    for (const p of parts) s.theirs.write(p)
    this.report.maxQueued = Math.max(this.report.maxQueued, s.ours.writableLength)
  }

  private onSessionClosed (s: Session, err: unknown): void {
    if (s.closed) return
    s.closed = true
    s.err = err
    if (err === undefined) return
    this.report.peerDropped++
    if (isSwarmError(err) && err.message.startsWith('peer is not reading')) this.report.notReading++
    if (isSwarmError(err) && err.message.startsWith(PARSER_THROW)) {
      this.report.parserThrows.push({ target: this.currentTarget, input: s.recent.map(hex).join(' '), error: stackOf(err.cause) })
    }
  }

  private endSession (s: Session): void {
    const buffered = (s.wire as { _bufferSize?: number } | null)?._bufferSize ?? 0
    this.report.maxWireBuffered = Math.max(this.report.maxWireBuffered, buffered)
    s.theirs.destroy()
  }

  private async finish (): Promise<void> {
    for (const s of [this.serve, this.dlSession]) if (s !== null) this.endSession(s)
    this.dl?.abort()
    await turn()
    await turn()
  }
}

function turn (): Promise<void> { return new Promise(resolve => setImmediate(resolve)) }

export function mib (bytes: number): number { return bytes / (1024 * 1024) }

/** a full garbage collection (for heap-growth figures), without needing --expose-gc on the command line */
export function forceGc (): void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
}
