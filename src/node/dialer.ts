// Finding and keeping peers: --peer addresses are dialed and redialed with backoff for as long as
// the node runs; peers learned by exchange (LISTEN / PEERS, as BitTorrent's PEX) are tried once
// each, in random order, up to MAX_PEERS connections in all. One bootstrap address is enough.
//
// A --peer that stays down is reported when it goes down, every UNREACHABLE_REPORT_MS after, and
// once when it is back. One whose node refuses our proof (the cluster secret differs) is tried
// only every AUTH_FAILED_RETRY_MS: that is a configuration error, retrying fast fixes nothing.
// An address that turns out to be this node (the handshake shows our own PeerId) is never
// dialed again, whether it came from --peer or from peer exchange.
//
// Who tracks what: the Dialer keeps the redial loops, the peers being dialed and the addresses
// learned (for `swarm nodes`); the node keeps the sessions and opens them (openSession); the
// PeerBook (peer-records.ts) keeps what `status` shows of every dial.
import type { PeerSession } from './session.js'
import type { Connection, Transport } from '../transport/types.js'
import type { PeerAddress } from '../wire/control.js'
import type { PeerBook } from './peer-records.js'
import { joinHostPort, parseHostPort } from './address.js'

/** Redial backoff for --peer addresses: first retry, growth, ceiling. */
export const REDIAL_MIN_MS = 250
export const REDIAL_MAX_MS = 5000
/** A --peer whose node does not share our cluster secret is dialed again only this often. */
export const AUTH_FAILED_RETRY_MS = 60_000
/** A --peer that stays unreachable is reported again this often (since when, how many attempts). */
export const UNREACHABLE_REPORT_MS = 5 * 60_000

export interface RedialTimings {
  minMs: number
  maxMs: number
  authFailedMs: number
  unreachableReportMs: number
}

export const DEFAULT_REDIAL_TIMINGS: Readonly<RedialTimings> = Object.freeze({
  minMs: REDIAL_MIN_MS,
  maxMs: REDIAL_MAX_MS,
  authFailedMs: AUTH_FAILED_RETRY_MS,
  unreachableReportMs: UNREACHABLE_REPORT_MS
})
/**
 * Peers a node connects to through peer exchange, in all: a full mesh up to here, a bounded random
 * set beyond (a file still reaches everyone through the swarm). --peer addresses are always dialed.
 */
export const MAX_PEERS = 50
/** Nodes remembered from peer exchange for `swarm nodes` (connected or not). */
const MAX_KNOWN_NODES = 10_000

export interface DialerHost {
  readonly peerId: string
  readonly transport: Transport
  readonly stopped: boolean
  readonly sessions: Map<string, PeerSession>
  /** Connect to the peers others name; false: only --peer addresses. */
  readonly peerExchange: boolean
  readonly book: PeerBook
  openSession (conn: Connection): Promise<PeerSession>
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export class Dialer {
  /** Where peers learned by exchange listen, by PeerId. */
  readonly learned = new Map<string, string>()
  /** Peers learned by exchange that are being dialed. */
  private readonly learning = new Set<string>()
  private readonly loops: Array<{ stop: () => void }> = []
  /** Addresses where the handshake showed our own PeerId: never dialed again. */
  private readonly selfAddresses = new Set<string>()
  readonly timings: RedialTimings

  constructor (private readonly host: DialerHost, timings?: Partial<RedialTimings>) {
    this.timings = { ...DEFAULT_REDIAL_TIMINGS, ...timings }
  }

  stop (): void { for (const l of this.loops) l.stop() }

  /** A peer said where it listens: tell it of the others, and the others of it. */
  onListen (session: PeerSession): void {
    const others = [...this.host.sessions.values()].filter(s => s !== session && s.ready && s.listenAddress !== null)
    session.sendPeers(others.map(s => s.listenAddress!))
    for (const s of others) s.sendPeers([session.listenAddress!])
  }

  /** Peers learned from a peer: dial those we are not connected to, up to MAX_PEERS, in random order. */
  onPeers (_session: PeerSession, peers: PeerAddress[]): void {
    const { sessions } = this.host
    for (const p of peers) if (p.peerId !== this.host.peerId && this.learned.size < MAX_KNOWN_NODES) this.learned.set(p.peerId, joinHostPort(p.ip, p.port))
    if (!this.host.peerExchange) return
    const fresh = peers.filter(p => p.peerId !== this.host.peerId && !sessions.has(p.peerId) && !this.learning.has(p.peerId) && !this.selfAddresses.has(joinHostPort(p.ip, p.port)))
    for (let i = fresh.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [fresh[i], fresh[j]] = [fresh[j]!, fresh[i]!] }
    for (const p of fresh) {
      if (this.host.stopped || sessions.size + this.learning.size >= MAX_PEERS) return
      void this.dialLearned(p)
    }
  }

  /** One try at a peer learned by exchange; no retries (peers hear of each other again as nodes connect). */
  private async dialLearned (p: PeerAddress): Promise<void> {
    const address = joinHostPort(p.ip, p.port)
    this.learning.add(p.peerId)
    this.host.book.dialing(address, p.peerId)
    try {
      const conn = await this.host.transport.dial(p.ip, p.port)
      if (conn.remotePeerId === this.host.peerId) {
        conn.close('dialed itself')
        this.selfAddresses.add(address)
        this.host.book.forget(address)
        this.host.log('info', `peer exchange: ${address} is this node's own address (the handshake showed our own peer id); not dialing it again`)
        return
      }
      if (this.host.stopped || conn.remotePeerId !== p.peerId || this.host.sessions.has(p.peerId)) { conn.close(this.host.stopped ? 'node stopping' : 'not the peer that was named'); return }
      const session = await this.host.openSession(conn)
      await new Promise<void>(resolve => { session.once('ready', () => resolve()); session.once('closed', () => resolve()) })
    } catch (err) {
      this.host.book.dialFailed(address, (err as Error).message, p.peerId)
      this.host.log('info', `peer exchange: cannot reach ${p.peerId} at ${p.ip}:${p.port}: ${(err as Error).message}`)
    } finally {
      this.learning.delete(p.peerId)
    }
  }

  /** Keeps a connection to a --peer address, redialing with backoff. */
  dialForever (address: string): void {
    const { host, port } = parseHostPort(address)
    if (this.selfAddresses.has(address)) return
    const t = this.timings
    const { book } = this.host
    let stop = false
    let wake: (() => void) | null = null
    let knownPeer: string | undefined
    this.loops.push({ stop: () => { stop = true; wake?.() } })
    const sleep = (ms: number) => new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, ms).unref() })
    const stopped = () => stop || this.host.stopped
    const down = new DownStreak(address, t.unreachableReportMs, this.host.log)
    const failed = (why: string) => { book.dialFailed(address, why, knownPeer); down.failed(why) }
    void (async () => {
      let delay = t.minMs
      while (!stopped()) {
        const existing = knownPeer === undefined ? undefined : this.host.sessions.get(knownPeer)
        if (existing !== undefined && !existing.isClosed) {
          // Connected (maybe by the peer dialing us): nothing to dial while that lasts.
          if (existing.ready) down.recovered()
          await new Promise<void>(resolve => { wake = resolve; existing.once('closed', () => resolve()) })
          continue
        }
        book.dialing(address, knownPeer)
        let conn: Connection
        let session: PeerSession
        try {
          conn = await this.host.transport.dial(host, port)
          if (stopped()) { conn.close('node stopping'); return }
          if (conn.remotePeerId === this.host.peerId) {
            conn.close('dialed itself')
            this.selfAddresses.add(address)
            book.forget(address)
            this.host.log('info', `--peer ${address} is this node's own address (the handshake showed our own peer id); not dialing it again`)
            return
          }
          knownPeer = conn.remotePeerId
          book.identified(address, knownPeer)
          session = await this.host.openSession(conn)
        } catch (err) {
          failed((err as Error).message)
          await sleep(delay)
          delay = Math.min(delay * 2, t.maxMs)
          continue
        }
        const outcome = await new Promise<{ ready: boolean, reason: string }>(resolve => {
          session.once('ready', () => resolve({ ready: true, reason: '' }))
          session.once('closed', reason => resolve({ ready: false, reason }))
        })
        if (outcome.ready) { down.recovered(); delay = t.minMs }
        await new Promise<void>(resolve => { if (session.isClosed) resolve(); else session.once('closed', () => resolve()) })
        if (outcome.ready || stopped()) continue
        // The cluster secret differs (reported by the node as an error): slow retries only.
        if (session.authFailed) { await sleep(t.authFailedMs); continue }
        // Dropped as the duplicate of a connection that is up: not a failure; the loop waits on that one.
        const live = this.host.sessions.get(knownPeer)
        if (live !== undefined && !live.isClosed) continue
        failed(outcome.reason)
        await sleep(delay = Math.min(delay * 2, t.maxMs))
      }
    })()
  }
}

/** One --peer's run of failed dials: reported when it starts, every reportMs while it lasts, and when it ends. */
class DownStreak {
  private since: number | null = null
  private attempts = 0
  private lastReport = 0

  constructor (private readonly address: string, private readonly reportMs: number, private readonly log: DialerHost['log']) {}

  failed (error: string): void {
    const now = Date.now()
    this.attempts++
    if (this.since === null) {
      this.since = this.lastReport = now
      this.log('warn', `cannot reach peer ${this.address}: ${error}; retrying with backoff`)
    } else if (now - this.lastReport >= this.reportMs) {
      this.lastReport = now
      this.log('warn', `peer ${this.address} still unreachable since ${new Date(this.since).toISOString()} (${this.attempts} attempts): ${error}`)
    }
  }

  recovered (): void {
    if (this.since === null) return
    this.since = null
    this.attempts = 0
    this.log('info', `peer ${this.address} reachable again`)
  }
}
