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
    case 7: { if (b.length > 0) { const i = at(); b.fill(rng.int(256), i, i + 1 + rng.int(32)) } return b }
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
