// One outbound wire of a Download, as the Download sees it: which pieces that peer holds (its
// bitfield and haves), which requests are outstanding on it, what it refused or sent bad. It only
// wraps the wire, one method per outbound message kind; it decides nothing (download.ts does).
import type Wire from 'bittorrent-protocol'
import { LayerAssembler, sendLayerRequest } from './layer.js'

type RequestCallback = (err: Error | null, buf?: Uint8Array | null) => void

export class Peer {
  readonly bits: Uint8Array
  readonly inflight = new Set<number>()
  readonly badPieces = new Set<number>()
  /** Pieces this peer refused once, and until when we ask others for them first (see REFUSED_WAIT_MS). */
  readonly refusedUntil = new Map<number, number>()
  bad = 0
  layer: LayerAssembler | null = null
  closed = false
  close: (err?: Error) => void = () => {}

  constructor (readonly label: string, readonly wire: Wire, numPieces: number) {
    this.bits = new Uint8Array(Math.ceil(numPieces / 8))
  }

  has (i: number): boolean { return (this.bits[i >> 3] & (0x80 >> (i & 7))) !== 0 }
  set (i: number): void { this.bits[i >> 3] |= 0x80 >> (i & 7) }
  clear (i: number): void { this.bits[i >> 3] &= ~(0x80 >> (i & 7)) }

  // ---- outbound, one method per message kind
  sendHandshake (infoHash: Buffer, peerId: Buffer): void { this.wire.handshake(infoHash, peerId, { fast: true }) }
  sendInterested (): void { this.wire.interested() }
  sendRequest (index: number, length: number, cb: RequestCallback): void { this.wire.request(index, 0, length, cb) }
  sendCancel (index: number, length: number): void { this.wire.cancel(index, 0, length) }
  sendLayerRequest (): void { sendLayerRequest(this.wire) }
}

