// Owns the in-process transport for deterministic tests: transports on one
// MemoryNetwork listen on fake ports and dial each other with dial('mem', port);
// streams are in-memory Duplex pairs. Semantics mirror quic.ts:
// - the remote sees a stream only after the opener writes a byte or ends it;
// - inbound streams are queued until onStream() sets a handler;
// - end() is a FIN: the peer's readable ends, our readable stays open;
// - destroying a stream before both directions finished fails the peer's
//   stream with ERR_CLOSED ('stream reset by peer' / 'stream stopped by peer');
// - close() on either connection end closes both: unfinished streams fail
//   with ERR_CLOSED, `closed` resolves on both ends;
// - Listener.close() closes the connections it accepted; Transport.close()
//   closes everything; a port in use → ERR_ADDRESS_IN_USE; nobody listening → ERR_DIAL_FAILED.
// - at most `maxConcurrentStreams` streams opened by the remote are alive at once (QUIC's
//   stream limit, MAX_CONCURRENT_STREAMS in quic.ts): openStream() waits beyond that, and a slot
//   comes back when the receiving end of a stream is gone (both directions done, or reset).
// The dial host is not checked (use 'mem'); remoteAddress is 'mem:<port>'.
import { Duplex } from 'node:stream'
import { SwarmError } from '../errors.js'
import type { ByteCounts, Connection, Listener, Transport } from './types.js'

export interface MemoryTransportOptions {
  /** Streams the remote may have open towards this transport at once (quic.ts: maxConcurrentStreams). */
  maxConcurrentStreams?: number
}

export interface MemoryNetwork {
  transport (peerId: string, options?: MemoryTransportOptions): Transport
}

/** Node-side buffering per stream direction, like quic.ts. */
const MEM_HIGH_WATER_MARK = 1024 * 1024
/** Same default as MAX_CONCURRENT_STREAMS in quic.ts (not imported: that module loads the native binding). */
export const MEM_MAX_CONCURRENT_STREAMS = 1024
/** Fake port numbers handed out for listen(…, 0) and for dialers. */
const FIRST_EPHEMERAL_PORT = 49152

const noop = (): void => {}

// ---------------------------------------------------------------- stream pair

class MemStream extends Duplex {
  #other: MemStream | undefined
  #pendingWrite: ((err?: Error | null) => void) | undefined
  #finSent = false
  #announced = false
  /** the peer stopped reading before our FIN: further writes fail (like QUIC STOP_SENDING) */
  #writeStopped = false
  /** handed to user code (returned by openStream or given to the onStream handler) */
  delivered = false
  /** the byte counts of the connection this end belongs to */
  bytes: ByteCounts = { sent: 0, received: 0 }
  readonly #announce: (s: MemStream) => void
  readonly #onGone: (s: MemStream) => void

  constructor (announce: (s: MemStream) => void, onGone: (s: MemStream) => void) {
    super({ allowHalfOpen: true, readableHighWaterMark: MEM_HIGH_WATER_MARK, writableHighWaterMark: MEM_HIGH_WATER_MARK })
    this.#announce = announce
    this.#onGone = onGone
    this.on('error', noop) // as in quic.ts: unobserved stream errors never crash the process
  }

  static pair (announceA: (s: MemStream) => void, goneA: (s: MemStream) => void, goneB: (s: MemStream) => void): [MemStream, MemStream] {
    const a = new MemStream(announceA, goneA)
    const b = new MemStream(noop, goneB)
    a.#other = b
    b.#other = a
    a.delivered = true
    b.#announced = true
    return [a, b]
  }

  /** end() was called and the peer's FIN was received (see QuicStream.complete) */
  get complete (): boolean {
    const other = this.#other
    return this.writableEnded && other !== undefined && other.#finSent
  }

  #activate (): void {
    if (this.#announced) return
    this.#announced = true
    const other = this.#other
    if (other !== undefined) this.#announce(other)
  }

  override _read (): void {
    const other = this.#other
    if (other === undefined) return
    const cb = other.#pendingWrite
    if (cb !== undefined) {
      other.#pendingWrite = undefined
      cb()
    }
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#activate()
    const other = this.#other
    if (other === undefined || other.destroyed || this.#writeStopped) {
      cb(new SwarmError('ERR_CLOSED', 'stream stopped by peer'))
      return
    }
    this.bytes.sent += chunk.length
    other.bytes.received += chunk.length
    // copy: the writer may reuse its buffer once the callback ran
    if (other.push(Buffer.from(chunk))) cb()
    else this.#pendingWrite = cb
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.#activate()
    const other = this.#other
    this.#finSent = true
    if (other === undefined || other.destroyed || this.#writeStopped) {
      cb() // as with QUIC, ending a stream the peer stopped reading is not an error
      return
    }
    other.push(null)
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    const pending = this.#pendingWrite
    this.#pendingWrite = undefined
    const other = this.#other
    if (other !== undefined && !other.destroyed) {
      // Our send side never finished → the peer's reads fail; our receive side
      // stopped before the peer's FIN → the peer's writes fail.
      if (!this.#announced) {
        other.destroy() // the peer never heard of it
      } else if (!this.#finSent) {
        other.destroy(new SwarmError('ERR_CLOSED', 'stream reset by peer')) // unread data is discarded, as with RESET_STREAM
      } else if (!other.#finSent) {
        // the peer keeps reading what we sent; only its writing fails
        other.#writeStopped = true
        const blocked = other.#pendingWrite
        other.#pendingWrite = undefined
        if (blocked !== undefined) blocked(new SwarmError('ERR_CLOSED', 'stream stopped by peer'))
      }
    }
    this.#onGone(this)
    cb(err)
    if (pending !== undefined) pending(err ?? new SwarmError('ERR_CLOSED', 'stream destroyed'))
  }
}

// ---------------------------------------------------------------- connection

class MemConnection implements Connection {
  readonly localPeerId: string
  readonly remotePeerId: string
  readonly remoteAddress: string
  readonly direction: 'inbound' | 'outbound'
  readonly closed: Promise<void>
  readonly bytes: ByteCounts = { sent: 0, received: 0 }
  peer: MemConnection | undefined
  readonly #streams = new Set<MemStream>()
  readonly #queue: MemStream[] = []
  #handler: ((stream: Duplex) => void) | undefined
  #isClosed = false
  #resolveClosed: () => void = noop
  readonly #onGone: (c: MemConnection) => void
  /** Streams we opened whose receiving end (at the peer) still exists, and openers waiting for a slot. */
  #opened = 0
  readonly #slotWaiters: Array<() => void> = []
  /** How many streams the peer lets us have open at once (its transport's maxConcurrentStreams). */
  readonly #streamLimit: number

  constructor (localPeerId: string, remotePeerId: string, remoteAddress: string, direction: 'inbound' | 'outbound', streamLimit: number, onGone: (c: MemConnection) => void) {
    this.#streamLimit = streamLimit
    this.localPeerId = localPeerId
    this.remotePeerId = remotePeerId
    this.remoteAddress = remoteAddress
    this.direction = direction
    this.#onGone = onGone
    this.closed = new Promise<void>(resolve => { this.#resolveClosed = resolve })
  }

  get isClosed (): boolean { return this.#isClosed }

  async openStream (): Promise<Duplex> {
    // Like QUIC: wait while the peer's limit on concurrent streams is reached.
    while (!this.#isClosed && this.#opened >= this.#streamLimit) await new Promise<void>(resolve => this.#slotWaiters.push(resolve))
    const peer = this.peer
    if (this.#isClosed || peer === undefined) throw new SwarmError('ERR_CLOSED', `connection to ${this.remotePeerId} is closed`)
    this.#opened++
    const [local, remote] = MemStream.pair(
      s => peer.#inbound(s),
      s => { this.#streams.delete(s) },
      s => { peer.#streams.delete(s); this.#releaseSlot() })
    this.#streams.add(local)
    peer.#streams.add(remote)
    local.bytes = this.bytes
    remote.bytes = peer.bytes
    return local
  }

  #releaseSlot (): void {
    this.#opened--
    this.#slotWaiters.shift()?.()
  }

  onStream (handler: (stream: Duplex) => void): void {
    this.#handler = handler
    while (this.#queue.length > 0) this.#deliver(this.#queue.shift() as MemStream)
  }

  close (reason?: string): void {
    if (this.#isClosed) return
    const why = reason ?? 'closed locally'
    this.#teardown(why)
    const peer = this.peer
    if (peer !== undefined) peer.#teardown('closed by peer')
  }

  #inbound (s: MemStream): void {
    if (this.#isClosed) return
    // asynchronous like a network: the opener's first write returns before the peer hears of it
    process.nextTick(() => { if (!this.#isClosed && !s.destroyed) this.#deliver(s) })
  }

  #deliver (s: MemStream): void {
    const handler = this.#handler
    if (handler === undefined) { this.#queue.push(s); return }
    s.delivered = true
    try {
      handler(s)
    } catch (err) {
      s.destroy(err instanceof Error ? err : new Error(String(err)))
    }
  }

  #teardown (reason: string): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#queue.splice(0)
    for (const s of [...this.#streams]) {
      // streams user code never saw are destroyed quietly (nobody listens for 'error')
      if (!s.delivered || s.complete) s.destroy()
      else s.destroy(new SwarmError('ERR_CLOSED', `connection to ${this.remotePeerId} closed: ${reason}`))
    }
    this.#streams.clear()
    for (const wake of this.#slotWaiters.splice(0)) wake()
    this.#onGone(this)
    this.#resolveClosed()
  }
}

// ---------------------------------------------------------------- transport

interface MemListenerEntry {
  transport: MemTransport
  listener: MemListener
  onConnection: (conn: Connection) => void
}

class MemListener implements Listener {
  readonly host: string
  readonly port: number
  readonly #connections = new Set<MemConnection>()
  readonly #onClose: (l: MemListener) => void
  #closed = false

  constructor (host: string, port: number, onClose: (l: MemListener) => void) {
    this.host = host
    this.port = port
    this.#onClose = onClose
  }

  get isClosed (): boolean { return this.#closed }

  track (conn: MemConnection): void {
    this.#connections.add(conn)
    void conn.closed.then(() => this.#connections.delete(conn))
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#onClose(this)
    for (const c of [...this.#connections]) c.close('listener closed')
  }
}

class MemNetworkState {
  readonly listeners = new Map<number, MemListenerEntry>()
  #nextPort = FIRST_EPHEMERAL_PORT

  allocatePort (): number {
    while (this.listeners.has(this.#nextPort)) this.#nextPort++
    return this.#nextPort++
  }
}

class MemTransport implements Transport {
  readonly peerId: string
  readonly #net: MemNetworkState
  readonly #listeners = new Set<MemListener>()
  readonly #connections = new Set<MemConnection>()
  #closed = false
  #dialPort: number | undefined
  readonly #maxConcurrentStreams: number

  constructor (net: MemNetworkState, peerId: string, options: MemoryTransportOptions) {
    this.#net = net
    this.peerId = peerId
    this.#maxConcurrentStreams = options.maxConcurrentStreams ?? MEM_MAX_CONCURRENT_STREAMS
  }

  #checkOpen (): void {
    if (this.#closed) throw new SwarmError('ERR_CLOSED', 'transport is closed')
  }

  async listen (host: string, port: number, onConnection: (conn: Connection) => void): Promise<Listener> {
    this.#checkOpen()
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new SwarmError('ERR_BAD_ARGUMENT', `listen ${host}: port must be an integer 0-65535, got ${String(port)}`)
    if (port !== 0 && this.#net.listeners.has(port)) throw new SwarmError('ERR_ADDRESS_IN_USE', `cannot listen on mem:${port}: port already in use`)
    const actual = port === 0 ? this.#net.allocatePort() : port
    const listener = new MemListener(host, actual, l => {
      if (this.#net.listeners.get(l.port)?.listener === l) this.#net.listeners.delete(l.port)
      this.#listeners.delete(l)
    })
    this.#net.listeners.set(actual, { transport: this, listener, onConnection })
    this.#listeners.add(listener)
    return listener
  }

  async dial (host: string, port: number): Promise<Connection> {
    this.#checkOpen()
    await Promise.resolve() // always asynchronous
    this.#checkOpen()
    const entry = this.#net.listeners.get(port)
    if (entry === undefined || entry.listener.isClosed || entry.transport.#closed) {
      throw new SwarmError('ERR_DIAL_FAILED', `dial ${host}:${port} failed: nobody listening`)
    }
    this.#dialPort ??= this.#net.allocatePort()
    const remote = entry.transport
    const outbound = new MemConnection(this.peerId, remote.peerId, `mem:${port}`, 'outbound', remote.#maxConcurrentStreams, c => { this.#connections.delete(c) })
    const inbound = new MemConnection(remote.peerId, this.peerId, `mem:${this.#dialPort}`, 'inbound', this.#maxConcurrentStreams, c => { remote.#connections.delete(c) })
    outbound.peer = inbound
    inbound.peer = outbound
    this.#connections.add(outbound)
    remote.#connections.add(inbound)
    entry.listener.track(inbound)
    try {
      entry.onConnection(inbound)
    } catch {
      inbound.close('connection handler threw')
    }
    return outbound
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const c of [...this.#connections]) c.close('transport closed')
    await Promise.all([...this.#listeners].map(async l => { await l.close() }))
  }
}

/** A fresh, isolated in-process network. */
export function createMemoryNetwork (): MemoryNetwork {
  const net = new MemNetworkState()
  return { transport: (peerId: string, options: MemoryTransportOptions = {}) => new MemTransport(net, peerId, options) }
}
