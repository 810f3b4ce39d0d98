// Types for the part of `bittorrent-protocol` (v5, ESM, untyped) that src/swarm/ uses: the
// `Wire` class, a streamx Duplex speaking the BitTorrent peer wire protocol. Only what we call
// is declared. Notes on its behaviour that matter to callers:
// - writable side: feed it raw bytes from the peer (`write`); it parses and emits events in a
//   microtask, mostly outside any try/catch. It puts no cap on a message's length and a few
//   messages throw or hang it (see src/swarm/wire-guard.ts) — always attach it with
//   src/swarm/framing.ts's attachWire().
// - readable side: emits the encoded outbound bytes as 'data' (piece payloads are pushed as
//   the caller's own buffer, not copied).
// - `request` callbacks fire with an Error on reject/choke/timeout/cancel/close; `cancel` fires
//   the callback itself ('request was cancelled') before sending the cancel message.
// - `destroy()` never emits 'error'; it ends the stream, fails pending requests, then 'close'.
declare module 'bittorrent-protocol' {
  import { EventEmitter } from 'node:events'

  export interface WireExtension {
    onHandshake? (infoHash: string, peerId: string, extensions: WireHandshakeExtensions): void
    onExtendedHandshake? (handshake: Record<string, unknown>): void
    onMessage? (buf: Uint8Array): void
  }

  export interface WireExtensionConstructor {
    new (wire: Wire): WireExtension
    prototype: { name: string }
  }

  export interface WireHandshakeExtensions {
    dht: boolean
    fast: boolean
    extended: boolean
  }

  export interface WireRequestLike {
    piece: number
    offset: number
    length: number
  }

  export default class Wire extends EventEmitter {
    constructor (type?: string, peEnabled?: number)

    /** remote peer id (hex), set on handshake */
    peerId: string | null
    peerIdBuffer: Uint8Array | null
    amChoking: boolean
    amInterested: boolean
    peerChoking: boolean
    peerInterested: boolean
    /** BEP 6 fast extension negotiated on both sides */
    hasFast: boolean
    peerExtensions: Partial<WireHandshakeExtensions>
    /** name -> number from the peer's extended handshake */
    peerExtendedMapping: Record<string, number>
    /** our outstanding requests */
    requests: WireRequestLike[]
    /** the peer's outstanding requests to us */
    peerRequests: WireRequestLike[]
    readonly destroyed: boolean
    uploaded: number
    downloaded: number

    // stream side
    write (data: Uint8Array): boolean
    end (): this
    destroy (): this

    // protocol
    use (ext: WireExtensionConstructor): void
    handshake (infoHash: Uint8Array | string, peerId: Uint8Array | string, extensions?: { dht?: boolean, fast?: boolean }): void
    choke (): void
    unchoke (): void
    interested (): void
    uninterested (): void
    have (index: number): void
    bitfield (bitfield: Uint8Array): void
    request (index: number, offset: number, length: number, cb: (err: Error | null, buf?: Uint8Array | null) => void): void
    piece (index: number, offset: number, buffer: Uint8Array): void
    cancel (index: number, offset: number, length: number): void
    reject (index: number, offset: number, length: number): void
    extended (ext: string | number, buf: Uint8Array | object): void
    setTimeout (ms: number, unref?: boolean): void
    setKeepAlive (enable: boolean): void

    on (event: 'data', listener: (chunk: Uint8Array) => void): this
    on (event: 'handshake', listener: (infoHash: string, peerId: string, extensions: WireHandshakeExtensions) => void): this
    on (event: 'bitfield', listener: (bits: { buffer: Uint8Array }) => void): this
    on (event: 'have', listener: (index: number) => void): this
    on (event: 'request', listener: (index: number, offset: number, length: number, respond: (err: Error | null, buf?: Uint8Array) => void) => void): this
    on (event: 'cancel' | 'reject', listener: (index: number, offset: number, length: number) => void): this
    on (event: 'choke' | 'unchoke' | 'interested' | 'uninterested' | 'have-all' | 'have-none' | 'timeout' | 'close' | 'end' | 'finish', listener: () => void): this
    on (event: 'error', listener: (err: Error) => void): this
    on (event: string | symbol, listener: (...args: any[]) => void): this
    once (event: string | symbol, listener: (...args: any[]) => void): this
  }
}
