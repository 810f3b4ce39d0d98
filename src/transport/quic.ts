// Owns the real transport: QUIC (quinn + rustls, libp2p TLS identities) via the
// native binding of @chainsafe/libp2p-quic, adapted to the Transport /
// Connection contract of ./types.ts, with each QUIC stream exposed as a Duplex.
//
// Binding facts this adapter relies on (measured on @chainsafe/libp2p-quic 2.1.1):
// - The binding is loaded straight from its platform package (see binding.ts).
// - QuinnConfig also requires `receiveBufferSize` / `sendBufferSize` (UDP
//   socket buffers, clamped by the OS); `handshakeTimeout` is accepted but
//   ignored by the binding: a dial to a silent address fails only when the
//   idle timeout fires. We enforce the handshake timeout ourselves.
// - `new Server()` binds synchronously and throws
//   Error('Address already in use (os error 98)', code 'GenericFailure') when
//   the UDP port is taken (by quinn or any other UDP socket) → ERR_ADDRESS_IN_USE.
//   An IPv6 Server socket is V6ONLY; listen('::') therefore binds '::' and
//   '0.0.0.0' on the same port to be dual-stack like Node's net.
// - Server/Client only take IP literals ('invalid IP address syntax'); we
//   resolve host names (e.g. 'localhost') with dns.lookup.
// - A Client is one UDP socket per address family; dialing IPv6 from the IPv4
//   client fails ('invalid remote address'), so we keep one client per family.
// - Stream.read/stopRead share one async mutex, as do write/finishWrite/
//   resetWrite: stopRead() waits behind a pending read(), resetWrite() behind
//   a pending write(). They are only ever fired and forgotten here.
// - A stream becomes visible to the peer (inboundStream) only once the opener
//   writes a byte or finishes it; an empty write does not announce it.
// - Connection.abort() / Server.abort() / Client.abort() close immediately:
//   pending reads reject ('connection lost' / 'closed'), the peer's closed()
//   resolves within about one RTT. Data written but not yet acknowledged is lost.
// - Pending native promises (accept, dial, read) keep the Node event loop
//   alive until they settle; Transport.close() aborts everything so they do.
import { loadQuicBinding } from './binding.js'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { Duplex } from 'node:stream'
import { SwarmError } from '../errors.js'
import type { Identity } from './identity.js'
import type { ByteCounts, Connection, Listener, StreamOptions, Transport } from './types.js'

// ---------------------------------------------------------------- tunables

/** A dial that has not completed the QUIC+TLS handshake by then fails with ERR_DIAL_FAILED. */
export const HANDSHAKE_TIMEOUT_MS = 5_000
/** A connection with no packets from the peer for this long is closed. */
export const IDLE_TIMEOUT_MS = 10_000
/** Keep-alive PING interval; must be well under the idle timeout of both peers. */
export const KEEPALIVE_INTERVAL_MS = 3_000
/** Concurrent bidirectional streams the remote may open; openStream() waits beyond that. */
export const MAX_CONCURRENT_STREAMS = 1024
/**
 * Per-stream receive window. Measured one stream over loopback on a busy 2-core box:
 * 2 MiB ≈ 100-170 MB/s, 4 MiB ≈ 120-200, 16 MiB ≈ 180-250, 32 MiB no better.
 */
export const STREAM_WINDOW_BYTES = 16 * 1024 * 1024
/** Per-connection receive window (all streams together). */
export const CONNECTION_WINDOW_BYTES = 32 * 1024 * 1024
/** UDP socket SO_RCVBUF / SO_SNDBUF request (the kernel clamps to net.core.[rw]mem_max). */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
/** Bytes asked from the native stream per read; small reads are expensive (4 KiB: ~90 vs ~180-250 MB/s). */
export const READ_CHUNK = 256 * 1024
/** A bulk stream's read that returns less than READ_CHUNK / this is "little" (StreamOptions.bulkReadDelayMs). */
const BULK_SMALL_READ_FRACTION = 8
/** Node-side buffering per stream direction before backpressure applies. */
export const STREAM_HIGH_WATER_MARK = 1024 * 1024
/** Small buffered writes are coalesced into native writes of at most this size. */
export const WRITE_COALESCE_BYTES = 256 * 1024
/** Happy-eyeballs delay before trying the next resolved address of a host name. */
export const DIAL_STAGGER_MS = 250

export interface QuicOptions {
  handshakeTimeoutMs: number
  idleTimeoutMs: number
  keepAliveIntervalMs: number
  maxConcurrentStreams: number
  streamWindowBytes: number
  connectionWindowBytes: number
  socketBufferBytes: number
  readChunk: number
}

export const DEFAULT_QUIC_OPTIONS: Readonly<QuicOptions> = Object.freeze({
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  idleTimeoutMs: IDLE_TIMEOUT_MS,
  keepAliveIntervalMs: KEEPALIVE_INTERVAL_MS,
  maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
  streamWindowBytes: STREAM_WINDOW_BYTES,
  connectionWindowBytes: CONNECTION_WINDOW_BYTES,
  socketBufferBytes: SOCKET_BUFFER_BYTES,
  readChunk: READ_CHUNK
})

// ---------------------------------------------------------------- binding

/** The part of the native binding we use (its own typings are `any`). */
interface NapiConfigInit {
  privateKeyProto: Uint8Array
  handshakeTimeout: number
  maxIdleTimeout: number
  keepAliveInterval: number
  maxConcurrentStreamLimit: number
  maxStreamData: number
  maxConnectionData: number
  receiveBufferSize: number
  sendBufferSize: number
}
interface NapiQuinnConfig { readonly __brand?: 'QuinnConfig' }
interface NapiStream {
  id (): string
  /** null at end of stream; rejects on reset / connection loss */
  read (maxBytes: number): Promise<Uint8Array | null>
  write (data: Uint8Array): Promise<void>
  finishWrite (): Promise<void>
  resetWrite (): Promise<void>
  stopRead (): Promise<void>
}
interface NapiConnection {
  inboundStream (): Promise<NapiStream>
  outboundStream (): Promise<NapiStream>
  abort (): void
  closed (): Promise<void>
  /** '/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooW…' */
  remoteMultiaddr (): string
  rtt (): number
  id (): string
}
interface NapiServer {
  inboundConnection (): Promise<NapiConnection>
  port (): number
  abort (): Promise<void>
}
interface NapiClient {
  outboundConnection (ip: string, port: number): Promise<NapiConnection>
  abort (): void
}
interface NapiBinding {
  QuinnConfig: new (init: NapiConfigInit) => NapiQuinnConfig
  Server: new (config: NapiQuinnConfig, ip: string, port: number) => NapiServer
  Client: new (config: NapiQuinnConfig, family: 0 | 1) => NapiClient
}

const napi = loadQuicBinding() as NapiBinding

// ---------------------------------------------------------------- helpers

function nativeMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function isSwarm (err: unknown): err is SwarmError {
  return err instanceof SwarmError
}

/** Maps a native stream/connection failure to ERR_CLOSED with a readable cause. */
function streamError (err: unknown): SwarmError {
  if (isSwarm(err)) return err
  const msg = nativeMessage(err)
  let what = `stream failed: ${msg}`
  if (/reset by peer/.test(msg)) what = 'stream reset by peer'
  else if (/stopped by peer/.test(msg)) what = 'stream stopped by peer'
  else if (/connection lost|closed|timed out/.test(msg)) what = `connection closed (${msg})`
  return new SwarmError('ERR_CLOSED', what, { cause: err })
}

function formatHostPort (host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

function unmapV4 (ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return m?.[1] ?? ip
}

function parseRemoteMultiaddr (ma: string): { host: string, port: number, peerId: string } {
  // /ip4/<ip>/udp/<port>/quic-v1/p2p/<peerId>
  const parts = ma.split('/')
  const ip = parts[2]
  const port = Number(parts[4])
  const p2p = parts.indexOf('p2p')
  const peerId = p2p > 0 ? parts[p2p + 1] : undefined
  if ((parts[1] !== 'ip4' && parts[1] !== 'ip6') || ip === undefined || !Number.isInteger(port) || peerId === undefined || peerId === '') {
    throw new SwarmError('ERR_PROTOCOL', `unexpected remote address from QUIC binding: ${ma}`)
  }
  return { host: unmapV4(ip), port, peerId }
}

function checkPort (port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `${what}: port must be an integer 0-65535, got ${String(port)}`)
  }
}

const noop = (): void => {}

// ---------------------------------------------------------------- stream

/**
 * A QUIC bidirectional stream as a Node Duplex.
 * Readable: reads `readChunk` bytes per native call, stops when push() says
 * so and resumes on _read. Writable: each write awaits the native write
 * (small buffered chunks are coalesced); end() sends FIN. destroy() before
 * both directions finished resets our send side and stops our receive side;
 * such streams fail on the peer with ERR_CLOSED. Native failures surface as
 * an 'error' of SwarmError ERR_CLOSED (a no-op 'error' listener is always
 * attached, so an unobserved stream fails quietly instead of crashing).
 */
class QuicStream extends Duplex {
  readonly #native: NapiStream
  readonly #readChunk: number
  readonly #onGone: (s: QuicStream) => void
  #reading = false
  #wantRead = false
  #readEnded = false
  /** See StreamOptions.bulkReadDelayMs. */
  bulkReadDelayMs = 0
  /** The connection's byte counts, which this stream adds to. */
  readonly #bytes: ByteCounts

  constructor (native: NapiStream, readChunk: number, bytes: ByteCounts, onGone: (s: QuicStream) => void) {
    super({ allowHalfOpen: true, readableHighWaterMark: STREAM_HIGH_WATER_MARK, writableHighWaterMark: STREAM_HIGH_WATER_MARK })
    this.#native = native
    this.#readChunk = readChunk
    this.#bytes = bytes
    this.#onGone = onGone
    // A peer that resets a stream or drops the connection must not crash the
    // process through an unhandled 'error': errors still reach every listener
    // (and pipeline / finished / for-await); `errored` keeps the reason.
    this.on('error', noop)
  }

  /**
   * The peer's FIN was received and end() was called: the user is done with
   * this stream, so a connection teardown destroys it quietly (an unflushed
   * end() still shows as a premature close to finished()/pipeline()).
   */
  get complete (): boolean {
    return this.#readEnded && this.writableEnded
  }

  override _read (): void {
    this.#wantRead = true
    if (!this.#reading) void this.#pump()
  }

  async #pump (): Promise<void> {
    this.#reading = true
    try {
      while (this.#wantRead && !this.destroyed) {
        this.#wantRead = false
        const chunk = await this.#native.read(this.#readChunk)
        if (this.destroyed) return
        if (chunk === null) {
          this.#readEnded = true
          this.push(null)
          return
        }
        this.#bytes.received += chunk.byteLength
        // _read() re-entered during push() sets #wantRead again
        if (this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) this.#wantRead = true
        if (this.bulkReadDelayMs > 0 && chunk.byteLength < this.#readChunk / BULK_SMALL_READ_FRACTION && this.#wantRead) {
          await new Promise(resolve => setTimeout(resolve, this.bulkReadDelayMs))
        }
      }
    } catch (err) {
      if (!this.destroyed) this.destroy(streamError(err))
    } finally {
      this.#reading = false
    }
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#native.write(chunk).then(() => { this.#bytes.sent += chunk.length; cb() }, (err: unknown) => cb(streamError(err)))
  }

  override _writev (chunks: Array<{ chunk: Buffer, encoding: BufferEncoding }>, cb: (err?: Error | null) => void): void {
    const batches: Buffer[] = []
    let group: Buffer[] = []
    let groupBytes = 0
    for (const { chunk } of chunks) {
      if (groupBytes > 0 && groupBytes + chunk.length > WRITE_COALESCE_BYTES) {
        batches.push(group.length === 1 ? group[0] as Buffer : Buffer.concat(group, groupBytes))
        group = []
        groupBytes = 0
      }
      group.push(chunk)
      groupBytes += chunk.length
    }
    if (group.length > 0) batches.push(group.length === 1 ? group[0] as Buffer : Buffer.concat(group, groupBytes))
    const run = async (): Promise<void> => { for (const b of batches) { await this.#native.write(b); this.#bytes.sent += b.length } }
    run().then(() => cb(), (err: unknown) => cb(streamError(err)))
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.#native.finishWrite().then(() => cb(), (err: unknown) => cb(streamError(err)))
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    // Fire and forget: these queue behind a pending native read/write (see header).
    if (!this.writableFinished) this.#native.resetWrite().catch(noop)
    if (!this.#readEnded) this.#native.stopRead().catch(noop)
    this.#onGone(this)
    cb(err)
  }
}

// ---------------------------------------------------------------- connection

class QuicConnection implements Connection {
  readonly localPeerId: string
  readonly remotePeerId: string
  readonly remoteAddress: string
  readonly direction: 'inbound' | 'outbound'
  readonly closed: Promise<void>
  readonly bytes: ByteCounts = { sent: 0, received: 0 }
  readonly #native: NapiConnection
  readonly #readChunk: number
  readonly #streams = new Set<QuicStream>()
  readonly #queue: Duplex[] = []
  readonly #onGone: (c: QuicConnection) => void
  #handler: ((stream: Duplex) => void) | undefined
  #isClosed = false
  #resolveClosed: () => void = noop

  constructor (native: NapiConnection, localPeerId: string, direction: 'inbound' | 'outbound', readChunk: number, onGone: (c: QuicConnection) => void) {
    const remote = parseRemoteMultiaddr(native.remoteMultiaddr())
    this.#native = native
    this.localPeerId = localPeerId
    this.remotePeerId = remote.peerId
    this.remoteAddress = formatHostPort(remote.host, remote.port)
    this.direction = direction
    this.#readChunk = readChunk
    this.#onGone = onGone
    this.closed = new Promise<void>(resolve => { this.#resolveClosed = resolve })
    native.closed().then(() => this.#teardown('closed by peer or timed out'), (err: unknown) => this.#teardown(nativeMessage(err)))
    void this.#acceptLoop()
  }

  get isClosed (): boolean { return this.#isClosed }

  /** quinn's smoothed round-trip estimate, in milliseconds; undefined once the connection is gone. */
  rttMs (): number | undefined {
    if (this.#isClosed) return undefined
    try { return this.#native.rtt() } catch { return undefined }
  }

  async openStream (opts: StreamOptions = {}): Promise<Duplex> {
    if (this.#isClosed) throw new SwarmError('ERR_CLOSED', `connection to ${this.remotePeerId} is closed`)
    let native: NapiStream
    try {
      native = await this.#native.outboundStream() // waits while the remote's stream limit is reached
    } catch (err) {
      throw new SwarmError('ERR_CLOSED', `cannot open stream to ${this.remotePeerId}: ${nativeMessage(err)}`, { cause: err })
    }
    if (this.#isClosed) {
      native.resetWrite().catch(noop)
      throw new SwarmError('ERR_CLOSED', `connection to ${this.remotePeerId} is closed`)
    }
    const stream = this.#wrap(native)
    if ((opts.bulkReadDelayMs ?? 0) > 0) stream.bulkReadDelayMs = opts.bulkReadDelayMs!
    return stream
  }

  onStream (handler: (stream: Duplex) => void): void {
    this.#handler = handler
    while (this.#queue.length > 0) this.#deliver(this.#queue.shift() as Duplex)
  }

  close (reason?: string): void {
    if (this.#isClosed) return
    this.#native.abort()
    this.#teardown(reason ?? 'closed locally')
  }

  #wrap (native: NapiStream): QuicStream {
    const s = new QuicStream(native, this.#readChunk, this.bytes, gone => { this.#streams.delete(gone) })
    this.#streams.add(s)
    return s
  }

  #deliver (stream: Duplex): void {
    const handler = this.#handler
    if (handler === undefined) { this.#queue.push(stream); return }
    try {
      handler(stream)
    } catch (err) {
      stream.destroy(err instanceof Error ? err : new Error(String(err)))
    }
  }

  async #acceptLoop (): Promise<void> {
    while (!this.#isClosed) {
      let native: NapiStream
      try {
        native = await this.#native.inboundStream()
      } catch {
        return // the connection is gone; closed() settles and tears down
      }
      if (this.#isClosed) { native.resetWrite().catch(noop); native.stopRead().catch(noop); return }
      this.#deliver(this.#wrap(native))
    }
  }

  #teardown (reason: string): void {
    if (this.#isClosed) return
    this.#isClosed = true
    // Queued streams were never handed out (nobody listens for 'error'): destroy them quietly.
    for (const s of this.#queue.splice(0)) s.destroy()
    for (const s of [...this.#streams]) {
      if (s.complete) s.destroy()
      else s.destroy(new SwarmError('ERR_CLOSED', `connection to ${this.remotePeerId} closed: ${reason}`))
    }
    this.#streams.clear()
    this.#onGone(this)
    this.#resolveClosed()
  }
}

// ---------------------------------------------------------------- transport

class QuicListener implements Listener {
  readonly host: string
  readonly port: number
  readonly #servers: NapiServer[]
  readonly #connections = new Set<QuicConnection>()
  readonly #onGone: (l: QuicListener) => void
  #closing: Promise<void> | undefined

  constructor (host: string, port: number, servers: NapiServer[], onGone: (l: QuicListener) => void) {
    this.host = host
    this.port = port
    this.#servers = servers
    this.#onGone = onGone
  }

  get isClosed (): boolean { return this.#closing !== undefined }

  track (conn: QuicConnection): void {
    this.#connections.add(conn)
    void conn.closed.then(() => this.#connections.delete(conn))
  }

  async close (): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = (async () => {
        this.#onGone(this)
        for (const c of [...this.#connections]) c.close('listener closed')
        // Server.abort() closes the endpoint (and every connection on it), waits idle, unbinds.
        await Promise.all(this.#servers.map(async s => { await s.abort().catch(noop) }))
      })()
    }
    await this.#closing
  }
}

class QuicTransport implements Transport {
  readonly peerId: string
  readonly #options: QuicOptions
  readonly #config: NapiQuinnConfig
  readonly #clients = new Map<4 | 6, NapiClient>()
  readonly #listeners = new Set<QuicListener>()
  readonly #connections = new Set<QuicConnection>()
  #closing: Promise<void> | undefined

  constructor (identity: Identity, options: QuicOptions) {
    this.peerId = identity.peerId
    this.#options = options
    try {
      this.#config = new napi.QuinnConfig({
        privateKeyProto: identity.privateKeyProto,
        handshakeTimeout: options.handshakeTimeoutMs,
        maxIdleTimeout: options.idleTimeoutMs,
        keepAliveInterval: options.keepAliveIntervalMs,
        maxConcurrentStreamLimit: options.maxConcurrentStreams,
        maxStreamData: options.streamWindowBytes,
        maxConnectionData: options.connectionWindowBytes,
        receiveBufferSize: options.socketBufferBytes,
        sendBufferSize: options.socketBufferBytes
      })
    } catch (err) {
      throw new SwarmError('ERR_BAD_ARGUMENT', `invalid QUIC configuration or identity: ${nativeMessage(err)}`, { cause: err })
    }
  }

  #checkOpen (): void {
    if (this.#closing !== undefined) throw new SwarmError('ERR_CLOSED', 'transport is closed')
  }

  #adopt (native: NapiConnection, direction: 'inbound' | 'outbound'): QuicConnection {
    const conn = new QuicConnection(native, this.peerId, direction, this.#options.readChunk, c => { this.#connections.delete(c) })
    if (!conn.isClosed) this.#connections.add(conn)
    return conn
  }

  async listen (host: string, port: number, onConnection: (conn: Connection) => void): Promise<Listener> {
    this.#checkOpen()
    checkPort(port, `listen ${host}`)
    const ip = await resolveListenHost(host)
    this.#checkOpen()
    const servers = bindServers(this.#config, ip, port)
    const boundPort = (servers[0] as NapiServer).port()
    const listener = new QuicListener(ip, boundPort, servers, l => { this.#listeners.delete(l) })
    this.#listeners.add(listener)
    for (const server of servers) void this.#acceptLoop(server, listener, onConnection)
    return listener
  }

  async #acceptLoop (server: NapiServer, listener: QuicListener, onConnection: (conn: Connection) => void): Promise<void> {
    while (!listener.isClosed) {
      let native: NapiConnection
      try {
        native = await server.inboundConnection()
      } catch (err) {
        if (listener.isClosed || /server closed/.test(nativeMessage(err))) return
        await new Promise(resolve => setImmediate(resolve)) // a failed incoming handshake; keep accepting
        continue
      }
      if (listener.isClosed) { native.abort(); return }
      let conn: QuicConnection
      try {
        conn = this.#adopt(native, 'inbound')
      } catch {
        native.abort()
        continue
      }
      listener.track(conn)
      try {
        onConnection(conn)
      } catch {
        conn.close('connection handler threw')
      }
    }
  }

  async dial (host: string, port: number): Promise<Connection> {
    this.#checkOpen()
    checkPort(port, `dial ${host}`)
    if (port === 0) throw new SwarmError('ERR_BAD_ARGUMENT', `dial ${host}: port 0 is not dialable`)
    let addresses: string[]
    if (isIP(host) !== 0) {
      addresses = [host]
    } else {
      try {
        const found = await lookup(host, { all: true })
        addresses = orderForDial(found.map(a => a.address))
      } catch (err) {
        throw new SwarmError('ERR_DIAL_FAILED', `dial ${host}:${port} failed: cannot resolve host (${(err as NodeJS.ErrnoException).code ?? nativeMessage(err)})`, { cause: err })
      }
      if (addresses.length === 0) throw new SwarmError('ERR_DIAL_FAILED', `dial ${host}:${port} failed: host has no address`)
    }
    const native = await this.#dialAny(host, addresses, port)
    if (this.#closing !== undefined) { native.abort(); throw new SwarmError('ERR_CLOSED', 'transport is closed') }
    try {
      return this.#adopt(native, 'outbound')
    } catch (err) {
      native.abort()
      throw err
    }
  }

  /** Tries the addresses one after another, DIAL_STAGGER_MS apart, first handshake wins. */
  async #dialAny (host: string, addresses: string[], port: number): Promise<NapiConnection> {
    if (addresses.length === 1) return await this.#dialOne(addresses[0] as string, port, host)
    return await new Promise<NapiConnection>((resolve, reject) => {
      let done = false
      let failed = 0
      let lastErr: unknown
      const timers: Array<ReturnType<typeof setTimeout>> = []
      addresses.forEach((addr, i) => {
        const start = (): void => {
          if (done) return
          this.#dialOne(addr, port, host).then(conn => {
            if (done) { conn.abort(); return }
            done = true
            timers.forEach(t => clearTimeout(t))
            resolve(conn)
          }, (err: unknown) => {
            lastErr = err
            if (++failed === addresses.length && !done) {
              done = true
              reject(isSwarm(err) && err.code === 'ERR_CLOSED'
                ? err
                : new SwarmError('ERR_DIAL_FAILED', `dial ${host}:${port} failed for ${addresses.join(', ')}: ${nativeMessage(lastErr)}`, { cause: lastErr }))
            }
          })
        }
        if (i === 0) start()
        else timers.push(setTimeout(start, DIAL_STAGGER_MS * i))
      })
    })
  }

  async #dialOne (ip: string, port: number, host: string): Promise<NapiConnection> {
    const target = host === ip ? formatHostPort(ip, port) : `${formatHostPort(host, port)} (${ip})`
    const family: 4 | 6 = isIP(ip) === 6 ? 6 : 4
    this.#checkOpen() // close() may have run while we resolved the host: never re-create a client
    let client = this.#clients.get(family)
    if (client === undefined) {
      try {
        client = new napi.Client(this.#config, family === 4 ? 0 : 1)
      } catch (err) {
        throw new SwarmError('ERR_DIAL_FAILED', `dial ${target} failed: no IPv${family} socket (${nativeMessage(err)})`, { cause: err })
      }
      this.#clients.set(family, client)
    }
    const attempt = client.outboundConnection(ip, port)
    const timeoutMs = this.#options.handshakeTimeoutMs
    return await new Promise<NapiConnection>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        settled = true
        reject(new SwarmError('ERR_DIAL_FAILED', `dial ${target} failed: no QUIC handshake within ${timeoutMs} ms`))
      }, timeoutMs)
      attempt.then(conn => {
        clearTimeout(timer)
        if (settled) { conn.abort(); return } // too late: the caller has given up
        settled = true
        resolve(conn)
      }, (err: unknown) => {
        clearTimeout(timer)
        if (settled) return
        settled = true
        if (this.#closing !== undefined) reject(new SwarmError('ERR_CLOSED', 'transport is closed', { cause: err }))
        else reject(new SwarmError('ERR_DIAL_FAILED', `dial ${target} failed: ${nativeMessage(err)}`, { cause: err }))
      })
    })
  }

  async close (): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = (async () => {
        for (const c of [...this.#connections]) c.close('transport closed')
        for (const client of this.#clients.values()) client.abort() // also fails pending dials
        this.#clients.clear()
        await Promise.all([...this.#listeners].map(async l => { await l.close() }))
      })()
    }
    await this.#closing
  }
}

async function resolveListenHost (host: string): Promise<string> {
  if (isIP(host) !== 0) return host
  try {
    return (await lookup(host)).address
  } catch (err) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `cannot listen on ${host}: cannot resolve host (${(err as NodeJS.ErrnoException).code ?? nativeMessage(err)})`, { cause: err })
  }
}

function listenError (ip: string, port: number, err: unknown): SwarmError {
  const msg = nativeMessage(err)
  const where = formatHostPort(ip, port)
  if (/os error (98|48|10048)\b|address already in use|EADDRINUSE/i.test(msg)) {
    return new SwarmError('ERR_ADDRESS_IN_USE', `cannot listen on udp ${where}: port already in use`, { cause: err })
  }
  if (/os error (99|49|10049)\b|cannot assign requested address|EADDRNOTAVAIL/i.test(msg)) {
    return new SwarmError('ERR_BAD_ARGUMENT', `cannot listen on udp ${where}: address not available on this machine`, { cause: err })
  }
  return new SwarmError('ERR_BAD_ARGUMENT', `cannot listen on udp ${where}: ${msg}`, { cause: err })
}

function bindServer (config: NapiQuinnConfig, ip: string, port: number): NapiServer {
  try {
    return new napi.Server(config, ip, port)
  } catch (err) {
    throw listenError(ip, port, err)
  }
}

/** One server, or for '::' an IPv6-only plus an IPv4 server on the same port. */
function bindServers (config: NapiQuinnConfig, ip: string, port: number): NapiServer[] {
  if (ip !== '::') return [bindServer(config, ip, port)]
  for (let attempt = 0; ; attempt++) {
    const v6 = bindServer(config, '::', port)
    try {
      return [v6, bindServer(config, '0.0.0.0', v6.port())]
    } catch (err) {
      v6.abort().catch(noop)
      // port 0 picked a v6 port that is taken on v4: pick again
      if (port !== 0 || attempt >= 8 || !(isSwarm(err) && err.code === 'ERR_ADDRESS_IN_USE')) throw err
    }
  }
}

/** IPv4 first, then alternate families (one dial per address, deduplicated). */
function orderForDial (addresses: string[]): string[] {
  const unique = [...new Set(addresses.map(unmapV4))]
  const v4 = unique.filter(a => isIP(a) === 4)
  const v6 = unique.filter(a => isIP(a) === 6)
  const out: string[] = []
  for (let i = 0; i < Math.max(v4.length, v6.length); i++) {
    if (i < v4.length) out.push(v4[i] as string)
    if (i < v6.length) out.push(v6[i] as string)
  }
  return out
}

/** A QUIC transport for `identity`. No sockets are opened until listen() or dial(). */
export function createQuicTransport (identity: Identity, options?: Partial<QuicOptions>): Transport {
  return new QuicTransport(identity, { ...DEFAULT_QUIC_OPTIONS, ...options })
}
