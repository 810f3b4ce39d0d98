// The serving side of the piece exchange: answers one inbound wire from a PieceSource.
// On the peer's handshake it looks the content up by infoHash (unknown → stream destroyed),
// handshakes back, sends its bitfield, unchokes the peer once interested, answers requests
// (whole pieces or sub-ranges, bounds-checked, read on demand with at most MAX_READS_PER_WIRE
// reads in flight and paused while the stream's send buffer is full), answers swarm_layer
// requests (the layer's chunks paced by the same send buffer), and forwards the source's later
// 'have' events so a partial holder serves at once. Whatever else a peer makes us send (rejects,
// haves) is bounded by attachWire's cap on bytes queued for a peer that does not read.
import type { Duplex } from 'node:stream'
import Wire from 'bittorrent-protocol'
import { SwarmError } from '../errors.js'
import { PIECE_SIZE } from '../merkle/bep52.js'
import { FrameGuard, MAX_QUEUED_SEND_BYTES, attachWire, maxFrameFor } from './framing.js'
import { isLayerRequest, sendLayerChunk, sendLayerNone, useLayerExtension } from './layer.js'
import { pieceLength, type PieceSource } from './source.js'

/** concurrent piece reads per wire */
export const MAX_READS_PER_WIRE = 16
/** requests queued beyond this are refused (a well-behaved downloader keeps PIPELINE_DEPTH) */
export const MAX_QUEUED_REQUESTS = 256
/** stop starting reads while this much is waiting in the stream's write buffer */
export const SEND_HIGH_WATER = 4 * 1024 * 1024
/** layer requests a peer may make on one wire before it is dropped */
export const MAX_LAYER_REQUESTS = 4

/** bytes a peer may leave unread before it is dropped: twice what an honest reader can see queued */
export function sendLimitFor (pieceSize: number): number {
  return Math.max(MAX_QUEUED_SEND_BYTES, 2 * (SEND_HIGH_WATER + MAX_READS_PER_WIRE * pieceSize))
}

export interface ServeOptions {
  /** our 20-byte wire peer id */
  peerId: Buffer
  /** content by infoHash (first 20 bytes of its root) */
  lookup: (infoHash: Buffer) => PieceSource | undefined | Promise<PieceSource | undefined>
  /** called with each piece block handed to the wire (upload accounting) */
  onUpload?: (root: Buffer, bytes: number) => void
  /** called once when the wire is gone, with the reason if it was an error */
  onClose?: (err?: Error) => void
  /** drop the peer once this many bytes wait unread for it (default: sendLimitFor the content's piece size) */
  maxQueuedSendBytes?: number
}

interface Pending {
  index: number
  offset: number
  length: number
  respond: (err: Error | null, buf?: Uint8Array) => void
  cancelled: boolean
}

export function serveWire (stream: Duplex, opts: ServeOptions): Wire {
  if (opts.peerId.length !== 20) throw new SwarmError('ERR_BAD_ARGUMENT', 'peerId must be 20 bytes')
  return new ServeConn(stream, opts).wire
}

class ServeConn {
  readonly wire = new Wire()
  private readonly guard = new FrameGuard(maxFrameFor(PIECE_SIZE, 0))
  private readonly close: (err?: Error) => void
  private source: PieceSource | null = null
  private closed = false
  private readonly queue: Pending[] = []
  private reading = 0
  private cache: { index: number, data: Promise<Buffer> } | null = null
  private layerRequests = 0
  /** Pieces this wire's peer was refused once by super-seeding (the next ask is served). */
  private readonly refusedOnce = new Set<number>()
  private layerOut: { layer: Buffer, off: number } | null = null // the piece layer being sent
  private layerTick = false // a look at the send buffer is scheduled for the layer
  private readonly onSourceHave = (index: number): void => { this.sendHave(index) }

  constructor (private readonly stream: Duplex, private readonly opts: ServeOptions) {
    const wire = this.wire
    useLayerExtension(wire, {
      onReady: () => {},
      onMessage: (msg) => { this.guarded(() => this.onLayerMessage(msg)) }
    })
    this.close = attachWire(stream, wire, this.guard, (err) => { this.onClosed(err) }, () => this.sendLimit())
    wire.once('handshake', (infoHash: string) => {
      this.onHandshake(infoHash).catch((err: unknown) => { this.close(err as Error) })
    })
    wire.on('interested', () => { this.guarded(() => { if (this.source !== null) this.sendUnchoke() }) })
    wire.on('request', (index, offset, length, respond) => {
      this.guarded(() => this.onRequest(index, offset, length, respond))
    })
    wire.on('cancel', (index, offset, length) => { this.onCancel(index, offset, length) })
    stream.on('drain', () => { this.pump() })
  }

  /** our handlers run inside the wire's parser: never let one throw into it */
  private guarded (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.close(err instanceof SwarmError ? err : new SwarmError('ERR_PROTOCOL', (err as Error).message, { cause: err }))
    }
  }

  private async onHandshake (infoHashHex: string): Promise<void> {
    const infoHash = Buffer.from(infoHashHex, 'hex')
    let source: PieceSource | undefined
    try {
      source = await this.opts.lookup(infoHash)
    } catch (err) {
      this.close(err as Error)
      return
    }
    if (this.closed) return
    if (source === undefined || !source.root.subarray(0, 20).equals(infoHash)) {
      this.close() // content unknown here
      return
    }
    this.source = source
    source.retain?.()
    this.guard.maxFrame = maxFrameFor(source.pieceSize, source.numPieces)
    this.guarded(() => {
      this.sendHandshake(infoHash)
      this.sendBitfield(source)
      source.on('have', this.onSourceHave)
      if (this.wire.peerInterested) this.sendUnchoke()
    })
  }

  private sendLimit (): number {
    return this.opts.maxQueuedSendBytes ?? sendLimitFor(this.source?.pieceSize ?? PIECE_SIZE)
  }

  // ---- inbound

  private onRequest (index: number, offset: number, length: number, respond: Pending['respond']): void {
    const src = this.source
    if (src === null || this.closed) { respond(new Error('no content')); return }
    // the wire decodes these as signed 32-bit: anything >= 2^31 arrives negative
    const inFile = index >= 0 && index < src.numPieces && offset >= 0
    const plen = inFile ? pieceLength(index, src.size, src.pieceSize) : 0
    if (!inFile || length <= 0 || length > src.pieceSize || offset + length > plen || !src.has(index)) {
      this.sendReject({ index, offset, length, respond, cancelled: false }, 'request outside the file or not held')
      return
    }
    if (this.queue.length >= MAX_QUEUED_REQUESTS) {
      this.sendReject({ index, offset, length, respond, cancelled: false }, 'too many outstanding requests')
      return
    }
    // Super-seeding: a piece already handed out is refused once; asked again, it is served (the
    // downloader found nobody else to get it from).
    if (offset === 0 && src.claimUpload !== undefined && !this.refusedOnce.has(index) && !src.claimUpload(index)) {
      this.refusedOnce.add(index)
      this.sendReject({ index, offset, length, respond, cancelled: false }, 'already handed out: fetch it from a peer first')
      return
    }
    this.queue.push({ index, offset, length, respond, cancelled: false })
    this.pump()
  }

  private onCancel (index: number, offset: number, length: number): void {
    for (const p of this.queue) {
      if (p.index === index && p.offset === offset && p.length === length) p.cancelled = true
    }
  }

  private onLayerMessage (msg: Buffer): void {
    const src = this.source
    if (src === null || !isLayerRequest(msg)) return
    if (++this.layerRequests > MAX_LAYER_REQUESTS) throw new SwarmError('ERR_PROTOCOL', 'peer keeps asking for the piece layer')
    src.pieceLayer().then(
      (layer) => { this.guarded(() => { if (layer !== null && layer.length > 0) this.sendLayer(layer); else this.sendLayerNone() }) },
      () => { this.guarded(() => this.sendLayerNone()) }
    )
  }

  // ---- reading pieces

  private backpressured (): boolean {
    // only wait when 'drain' is sure to come
    return this.stream.writableLength >= SEND_HIGH_WATER && this.stream.writableNeedDrain
  }

  private pump (): void {
    this.pumpLayer()
    while (!this.closed && this.reading < MAX_READS_PER_WIRE && this.queue.length > 0 && !this.backpressured()) {
      const p = this.queue.shift() as Pending
      if (p.cancelled) continue
      this.reading++
      this.read(p).then(
        (buf) => {
          this.reading--
          if (this.closed) return
          this.sendPiece(p, buf)
          this.pump()
        },
        (err: Error) => {
          this.reading--
          if (this.closed) return
          this.sendReject(p, err.message)
          this.pump()
        }
      )
    }
  }

  /**
   * Sends layer chunks up to SEND_HIGH_WATER. The wire hands its output to the stream a
   * microtask later, so the send buffer is looked at again after that ('drain' also pumps).
   */
  private pumpLayer (): void {
    const out = this.layerOut
    if (out === null || this.closed) return
    this.guarded(() => {
      let budget = SEND_HIGH_WATER - this.stream.writableLength
      while (budget > 0 && out.off < out.layer.length) {
        const next = sendLayerChunk(this.wire, out.layer, out.off)
        budget -= next - out.off
        out.off = next
      }
    })
    if (out.off >= out.layer.length || this.closed) {
      this.layerOut = null
      return
    }
    if (this.layerTick) return
    this.layerTick = true
    setImmediate(() => {
      this.layerTick = false
      if (!this.backpressured()) this.pump()
    })
  }

  private async read (p: Pending): Promise<Buffer> {
    const src = this.source as PieceSource
    const whole = p.offset === 0 && p.length === pieceLength(p.index, src.size, src.pieceSize)
    let data: Promise<Buffer>
    if (whole) {
      data = src.readPiece(p.index)
    } else {
      // sub-range requests usually come in runs over one piece: keep the last piece read
      if (this.cache === null || this.cache.index !== p.index) {
        const c = { index: p.index, data: src.readPiece(p.index) }
        c.data.catch(() => { if (this.cache === c) this.cache = null })
        this.cache = c
      }
      data = this.cache.data
    }
    const buf = await data
    return whole ? buf : buf.subarray(p.offset, p.offset + p.length)
  }

  // ---- outbound, one method per message kind

  private sendHandshake (infoHash: Buffer): void {
    this.wire.handshake(infoHash, this.opts.peerId, { fast: true })
  }

  private sendBitfield (src: PieceSource): void {
    const n = src.numPieces
    if (n === 0) return
    const bits = new Uint8Array(Math.ceil(n / 8))
    if (src.complete()) {
      bits.fill(0xff)
      if (n % 8 !== 0) bits[bits.length - 1] = (0xff << (8 - n % 8)) & 0xff
    } else {
      for (let i = 0; i < n; i++) if (src.has(i)) bits[i >> 3] |= 0x80 >> (i & 7)
    }
    this.wire.bitfield(bits)
  }

  private sendUnchoke (): void {
    this.wire.unchoke()
  }

  private sendHave (index: number): void {
    if (!this.closed) this.wire.have(index)
  }

  private sendPiece (p: Pending, buf: Buffer): void {
    p.respond(null, buf) // the wire drops it if the peer cancelled meanwhile
    if (this.source !== null) this.opts.onUpload?.(this.source.root, buf.length)
  }

  /** BEP 6 reject (the wire sends it when fast is negotiated; otherwise the request just goes unanswered) */
  private sendReject (p: Pending, why: string): void {
    p.respond(new Error(why))
  }

  /** starts sending the layer (pumpLayer sends the chunks); a repeated request while it is under way is ignored */
  private sendLayer (layer: Buffer): void {
    if (this.closed || this.layerOut !== null) return
    this.layerOut = { layer, off: 0 }
    this.pumpLayer()
  }

  private sendLayerNone (): void {
    if (!this.closed) sendLayerNone(this.wire)
  }

  private onClosed (err?: Error): void {
    this.closed = true
    this.source?.off('have', this.onSourceHave)
    this.source?.release?.()
    this.queue.length = 0
    this.cache = null
    this.layerOut = null
    this.opts.onClose?.(err)
  }
}
