// Finding and keeping peers: --peer addresses are dialed and redialed with backoff for as long as
// the node runs; peers learned by exchange (LISTEN / PEERS, as BitTorrent's PEX) are tried once
// each, in random order, up to MAX_PEERS connections in all. One bootstrap address is enough.
//
// Who tracks what: the Dialer keeps the redial loops, the peers being dialed and the addresses
// learned (for `swarm nodes`); the node keeps the sessions and opens them (openSession).
import type { PeerSession } from './session.js'
import type { Connection, Transport } from '../transport/types.js'
import type { PeerAddress } from '../wire/control.js'
import { parseHostPort } from './address.js'

/** Redial backoff for --peer addresses: first retry, growth, ceiling. */
export const REDIAL_MIN_MS = 250
export const REDIAL_MAX_MS = 5000
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
  openSession (conn: Connection): Promise<PeerSession>
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export class Dialer {
  /** Where peers learned by exchange listen, by PeerId. */
  readonly learned = new Map<string, string>()
  /** Peers learned by exchange that are being dialed. */
  private readonly learning = new Set<string>()
  private readonly loops: Array<{ stop: () => void }> = []

  constructor (private readonly host: DialerHost) {}

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
    for (const p of peers) if (p.peerId !== this.host.peerId && this.learned.size < MAX_KNOWN_NODES) this.learned.set(p.peerId, `${p.ip}:${p.port}`)
    if (!this.host.peerExchange) return
    const fresh = peers.filter(p => p.peerId !== this.host.peerId && !sessions.has(p.peerId) && !this.learning.has(p.peerId))
    for (let i = fresh.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [fresh[i], fresh[j]] = [fresh[j]!, fresh[i]!] }
    for (const p of fresh) {
      if (this.host.stopped || sessions.size + this.learning.size >= MAX_PEERS) return
      void this.dialLearned(p)
    }
  }

  /** One try at a peer learned by exchange; no retries (peers hear of each other again as nodes connect). */
  private async dialLearned (p: PeerAddress): Promise<void> {
    this.learning.add(p.peerId)
    try {
      const conn = await this.host.transport.dial(p.ip, p.port)
      if (this.host.stopped || conn.remotePeerId !== p.peerId || this.host.sessions.has(p.peerId)) { conn.close(this.host.stopped ? 'node stopping' : 'not the peer that was named'); return }
      const session = await this.host.openSession(conn)
      await new Promise<void>(resolve => { session.once('ready', () => resolve()); session.once('closed', () => resolve()) })
    } catch (err) {
      this.host.log('info', `peer exchange: cannot reach ${p.peerId} at ${p.ip}:${p.port}: ${(err as Error).message}`)
    } finally {
      this.learning.delete(p.peerId)
    }
  }

  /** Keeps a connection to a --peer address, redialing with backoff. */
  dialForever (address: string): void {
    const { host, port } = parseHostPort(address)
    let stop = false
    let wake: (() => void) | null = null
    let knownPeer: string | null = null
    this.loops.push({ stop: () => { stop = true; wake?.() } })
    const sleep = (ms: number) => new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, ms).unref() })
    const stopped = () => stop || this.host.stopped
    void (async () => {
      let delay = REDIAL_MIN_MS
      let lastError = ''
      while (!stopped()) {
        const existing = knownPeer === null ? undefined : this.host.sessions.get(knownPeer)
        if (existing !== undefined && !existing.isClosed) {
          await new Promise<void>(resolve => { wake = resolve; existing.once('closed', () => resolve()) })
          continue
        }
        try {
          const conn = await this.host.transport.dial(host, port)
          if (stopped()) { conn.close('node stopping'); return }
          if (conn.remotePeerId === this.host.peerId) {
            conn.close('dialed itself')
            this.host.log('warn', `--peer ${address} is this node's own address; not dialing it`)
            return
          }
          knownPeer = conn.remotePeerId
          const session = await this.host.openSession(conn)
          const outcome = await new Promise<boolean>(resolve => {
            session.once('ready', () => resolve(true))
            session.once('closed', () => resolve(false))
          })
          if (outcome) { delay = REDIAL_MIN_MS; lastError = '' }
          await new Promise<void>(resolve => { if (session.isClosed) resolve(); else session.once('closed', () => resolve()) })
          if (!outcome) await sleep(delay = Math.min(delay * 2, REDIAL_MAX_MS))
        } catch (err) {
          const msg = (err as Error).message
          if (msg !== lastError) this.host.log('warn', `cannot reach peer ${address}: ${msg}; retrying with backoff`)
          lastError = msg
          await sleep(delay)
          delay = Math.min(delay * 2, REDIAL_MAX_MS)
        }
      }
    })()
  }
}
