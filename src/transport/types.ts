// Owns the transport contract shared by every other module: Connection,
// Listener and Transport. Implemented by quic.ts (real QUIC) and memory.ts
// (in-process, deterministic tests). Nothing here has behaviour.
import type { Duplex } from 'node:stream'

export interface Connection {
  readonly localPeerId: string
  /** base58btc PeerId of the remote, taken from the (mutually authenticated) handshake */
  readonly remotePeerId: string
  /** 'host:port' of the remote UDP endpoint; IPv6 hosts are bracketed: '[::1]:4001' */
  readonly remoteAddress: string
  readonly direction: 'inbound' | 'outbound'
  /**
   * Opens a bidirectional stream. The remote only learns of the stream when the
   * opener writes its first byte (or ends it): the opener speaks first.
   */
  openStream (opts?: StreamOptions): Promise<Duplex>
  /** Inbound streams opened by the remote; streams that arrive before a handler is set are queued. */
  onStream (handler: (stream: Duplex) => void): void
  /** Idempotent, abrupt: unfinished streams are destroyed with ERR_CLOSED, unsent data is dropped. */
  close (reason?: string): void
  /** Resolves once, when the connection is gone (either side, idle timeout, abort). Never rejects. */
  readonly closed: Promise<void>
  /** Stream payload bytes carried so far, both ways, over all streams of this connection. */
  readonly bytes: ByteCounts
  /** The transport's current round-trip estimate in milliseconds, if it keeps one (QUIC does; memory.ts does not). */
  rttMs?: () => number | undefined
}

/** Stream payload bytes (not UDP datagrams: no QUIC headers, acks or retransmissions). */
export interface ByteCounts { sent: number, received: number }

export interface Listener {
  readonly host: string
  readonly port: number
  /** Stops accepting and closes the connections accepted by this listener. */
  close (): Promise<void>
}

export interface Transport {
  readonly peerId: string
  listen (host: string, port: number, onConnection: (conn: Connection) => void): Promise<Listener>
  dial (host: string, port: number): Promise<Connection>
  /** Closes listeners, clients and all connections. Idempotent. */
  close (): Promise<void>
}

export interface StreamOptions {
  /**
   * The stream mostly receives bulk data (a piece stream, downloading): when a read returns little,
   * wait this long before the next one so more arrives per call. On a link slower than the CPU,
   * data otherwise comes a packet or two per read, and the per-read cost (a native call, a
   * promise, a buffer, a parse) dominates the CPU spent per byte. 0 (default): read at once.
   */
  bulkReadDelayMs?: number
}
