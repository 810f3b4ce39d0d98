// The piece-layer transfer: a BEP 10 extension named `swarm_layer`. The downloader sends
// REQUEST; the server answers with the concatenated 32-byte piece hashes in CHUNK messages
// (each well under any MAX_FRAME, in order, with the total length and the chunk's offset), or
// NONE when it has no layer to give. The downloader assembles the chunks and checks the whole
// layer against the root (verifyPieceLayer) before using it — that check is the caller's. The
// server sends the chunks as the stream drains (serve.ts), not all at once.
//
//   REQUEST  [0]
//   CHUNK    [1][u32 total][u32 offset][bytes]
//   NONE     [2]
import type Wire from 'bittorrent-protocol'
import { SwarmError } from '../errors.js'

export const LAYER_EXT = 'swarm_layer'
/** layer bytes per extended message; the smallest MAX_FRAME is 16 KiB + 64 KiB */
export const LAYER_CHUNK_SIZE = 32 * 1024

const REQUEST = 0
const CHUNK = 1
const NONE = 2

export interface LayerHandlers {
  /** the peer's extended handshake arrived and it speaks swarm_layer: messages may be sent */
  onReady (): void
  onMessage (msg: Buffer): void
}

/** registers the extension on a wire; call before the wire's handshake is sent */
export function useLayerExtension (wire: Wire, handlers: LayerHandlers): void {
  class SwarmLayer {
    declare name: string
    onExtendedHandshake (): void { handlers.onReady() }
    onMessage (buf: Uint8Array): void {
      handlers.onMessage(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength))
    }
  }
  SwarmLayer.prototype.name = LAYER_EXT
  wire.use(SwarmLayer)
}

export function peerSpeaksLayer (wire: Wire): boolean {
  return wire.peerExtendedMapping[LAYER_EXT] !== undefined
}

export function isLayerRequest (msg: Buffer): boolean {
  return msg.length === 1 && msg[0] === REQUEST
}

export function sendLayerRequest (wire: Wire): void {
  wire.extended(LAYER_EXT, Buffer.of(REQUEST))
}

export function sendLayerNone (wire: Wire): void {
  wire.extended(LAYER_EXT, Buffer.of(NONE))
}

/** sends the CHUNK of layer starting at off; returns where the next one starts (the sender paces them) */
export function sendLayerChunk (wire: Wire, layer: Buffer, off: number): number {
  const end = Math.min(off + LAYER_CHUNK_SIZE, layer.length)
  const msg = Buffer.allocUnsafe(9 + end - off)
  msg[0] = CHUNK
  msg.writeUInt32BE(layer.length, 1)
  msg.writeUInt32BE(off, 5)
  layer.copy(msg, 9, off, end)
  wire.extended(LAYER_EXT, msg)
  return end
}

/** Downloader side: gathers CHUNK messages into the layer of the expected length. */
export class LayerAssembler {
  private readonly buf: Buffer
  private got = 0

  constructor (readonly expected: number) {
    this.buf = Buffer.alloc(expected)
  }

  /** the whole layer once complete, 'none' if the peer has none, null while incomplete; throws ERR_PROTOCOL */
  push (msg: Buffer): Buffer | 'none' | null {
    if (msg.length === 1 && msg[0] === NONE) return 'none'
    if (msg.length < 9 || msg[0] !== CHUNK) throw new SwarmError('ERR_PROTOCOL', 'malformed swarm_layer message')
    const total = msg.readUInt32BE(1)
    const off = msg.readUInt32BE(5)
    const data = msg.subarray(9)
    if (total !== this.expected) throw new SwarmError('ERR_PROTOCOL', `peer sent a ${total}-byte piece layer, expected ${this.expected}`)
    if (off !== this.got || data.length === 0 || off + data.length > total) {
      throw new SwarmError('ERR_PROTOCOL', 'swarm_layer chunk out of order or out of range')
    }
    data.copy(this.buf, off)
    this.got += data.length
    return this.got === this.expected ? this.buf : null
  }
}
