// Owns the byte path between a peer's Duplex (QUIC stream, TCP socket) and a bittorrent-protocol
// Wire: FrameGuard tracks the 68-byte handshake and then the 4-byte length prefixes, refuses any
// frame larger than maxFrame before buffering it (the Wire itself would buffer a 4 GiB message
// forever), and hands the Wire only whole frames — so the Wire never has a partial message
// buffered and never re-concatenates (a frame split over socket chunks is joined exactly once
// here; runs of whole frames inside one chunk are passed through as a zero-copy subarray).
// attachWire() plumbs stream <-> guard <-> checker <-> wire (wire-guard.ts owns what the wire may
// be handed and keeps its parser from throwing into the process), caps what we queue for a peer
// that does not read, and tears stream and wire down together.
import type { Duplex } from 'node:stream'
import type Wire from 'bittorrent-protocol'
import { SwarmError, isSwarmError } from '../errors.js'
import { HANDSHAKE_LENGTH, PSTRLEN, WireChecker, guardWire } from './wire-guard.js'

export { HANDSHAKE_LENGTH }
/** headroom above the largest legitimate payload (piece or bitfield) for headers and slack */
export const FRAME_SLACK = 64 * 1024
/**
 * a peer that leaves this much of what we sent it unread is dropped: twice what serve.ts can have
 * queued for an honest reader (SEND_HIGH_WATER + MAX_READS_PER_WIRE pieces of PIECE_SIZE)
 */
export const MAX_QUEUED_SEND_BYTES = 16 * 1024 * 1024

/** the largest frame a peer may send for content with this geometry */
export function maxFrameFor (pieceSize: number, numPieces: number): number {
  return Math.max(pieceSize, Math.ceil(numPieces / 8)) + FRAME_SLACK
}

export class FrameGuard {
  maxFrame: number
  private handshakeDone = false
  private parts: Buffer[] = []
  private partsLen = 0
  private unitLen = -1 // length of the unit being gathered; -1 while its length prefix is incomplete

  constructor (maxFrame: number) {
    this.maxFrame = maxFrame
  }

  /** Bytes from the peer in; whole units (handshake or frames) out. Throws ERR_PROTOCOL. */
  push (chunk: Buffer): Buffer[] {
    const out: Buffer[] = []
    const end = chunk.length
    let pos = 0
    if (this.partsLen > 0) {
      pos = this.fillPending(chunk, out)
      if (this.partsLen > 0) return out // still incomplete, chunk fully consumed
    }
    const start = pos
    while (pos < end) {
      if (!this.handshakeDone) {
        if (chunk[pos] !== PSTRLEN) throw new SwarmError('ERR_PROTOCOL', 'peer did not send a BitTorrent handshake')
        if (pos + HANDSHAKE_LENGTH > end) break
        this.handshakeDone = true
        pos += HANDSHAKE_LENGTH
        continue
      }
      if (pos + 4 > end) break
      const len = chunk.readUInt32BE(pos)
      this.check(len)
      if (pos + 4 + len > end) break
      pos += 4 + len
    }
    if (pos > start) out.push(chunk.subarray(start, pos))
    if (pos < end) {
      this.parts.push(chunk.subarray(pos))
      this.partsLen = end - pos
      this.computeUnitLen()
    }
    return out
  }

  private check (len: number): void {
    if (len > this.maxFrame) {
      throw new SwarmError('ERR_PROTOCOL', `peer announced a ${len}-byte frame (limit ${this.maxFrame})`)
    }
  }

  private computeUnitLen (): void {
    if (!this.handshakeDone) {
      if (this.parts[0][0] !== PSTRLEN) throw new SwarmError('ERR_PROTOCOL', 'peer did not send a BitTorrent handshake')
      this.unitLen = HANDSHAKE_LENGTH
      return
    }
    if (this.partsLen < 4) return
    const head = this.parts[0].length >= 4 ? this.parts[0] : Buffer.concat(this.parts, this.partsLen)
    const len = head.readUInt32BE(0)
    this.check(len)
    this.unitLen = 4 + len
  }

  /** continue the pending unit from the start of chunk; returns the position after what was used */
  private fillPending (chunk: Buffer, out: Buffer[]): number {
    let pos = 0
    for (;;) {
      const need = this.unitLen === -1 ? 4 - this.partsLen : this.unitLen - this.partsLen
      const take = Math.min(need, chunk.length - pos)
      if (take > 0) {
        this.parts.push(chunk.subarray(pos, pos + take))
        this.partsLen += take
        pos += take
      }
      if (this.unitLen === -1) {
        if (this.partsLen < 4) return pos
        this.computeUnitLen()
        continue
      }
      if (this.partsLen < this.unitLen) return pos
      out.push(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partsLen))
      this.handshakeDone = true
      this.parts = []
      this.partsLen = 0
      this.unitLen = -1
      return pos
    }
  }
}

/**
 * Connects stream and wire through guard and a WireChecker. Everything the wire emits goes to the
 * stream; when either side closes, the guard or checker trips, the wire's parser throws, or more
 * than maxQueued() bytes wait in the stream's write buffer, both are torn down and onClose runs
 * once (with the error, if any). The wire's own backpressure is not used: it parses synchronously.
 */
export function attachWire (stream: Duplex, wire: Wire, guard: FrameGuard, onClose: (err?: Error) => void,
  maxQueued: () => number = () => MAX_QUEUED_SEND_BYTES): (err?: Error) => void {
  const checker = new WireChecker()
  let closed = false
  const close = (err?: Error): void => {
    if (closed) return
    closed = true
    stream.off('data', onData)
    if (!stream.destroyed) stream.destroy(err)
    wire.destroy()
    onClose(err)
  }
  const onData = (chunk: Buffer): void => {
    if (closed) return
    let units: Buffer[]
    try {
      units = guard.push(chunk)
      for (const u of units) checker.check(u)
    } catch (err) {
      close(isSwarmError(err) ? err : new SwarmError('ERR_PROTOCOL', (err as Error).message, { cause: err }))
      return
    }
    for (const u of units) wire.write(u)
  }
  guardWire(wire, close, () => closed)
  stream.on('data', onData)
  stream.on('error', (err: Error) => close(err))
  stream.on('end', () => close())
  stream.on('close', () => close())
  wire.on('data', (d: Uint8Array) => {
    if (closed || stream.destroyed) return
    stream.write(d)
    const limit = maxQueued()
    if (stream.writableLength > limit) {
      close(new SwarmError('ERR_PROTOCOL', `peer is not reading: ${stream.writableLength} bytes queued for it (limit ${limit})`))
    }
  })
  wire.on('error', (err: Error) => close(err))
  wire.on('close', () => close())
  return close
}
