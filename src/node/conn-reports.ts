// Owns what the node tells its user about its connections: one peer-connected and one
// peer-disconnected per peer (a duplicate connection resolved, or replaced, is not news), the
// peer record book (peer-records.ts), share ids that do not match a peer's, and a cluster secret
// that differs. Every line names the peer by its short id and address, and says what to do.
//
// The unreachable / reachable-again lines belong to the redial loops (dialer.ts).
import type { EventEmitter } from 'node:events'
import type { PeerSession } from './session.js'
import { PeerBook } from './peer-records.js'
import { CATALOG_ID } from '../jobs/catalog.js'
import { printable } from '../model/printable.js'
import { hostOf, joinHostPort } from './address.js'

/**
 * A session the peer closed as the duplicate of another connection (both sides dialed) is
 * reported as a disconnection only if no other connection to the peer is up this soon after.
 */
export const DUPLICATE_GRACE_MS = 2_000
/** Hosts whose last inbound wrong-secret line is remembered (one line per host per retry interval). */
const AUTH_LOG_KEYS_MAX = 1_000
/** Peers whose share-id mismatches were reported, remembered at most (reports are once per peer and pair). */
const MISMATCH_PEERS_MAX = 10_000

export interface ConnEvents {
  'peer-connected': [{ peerId: string, address: string }]
  'peer-disconnected': [{ peerId: string, reason: string }]
  /** A peer's share ids and ours differ only by letter case, or have nothing in common. */
  'share-mismatch': [{ peerId: string, ours: string[], theirs: string[] }]
  /** A peer and this node do not share the cluster secret (either side's proof was refused). */
  'auth-failed': [{ address: string, peerId?: string }]
}

export interface ConnReportsHost {
  /** The node: its events include ConnEvents. */
  readonly emitter: Pick<EventEmitter<ConnEvents>, 'emit'>
  log (level: 'info' | 'warn' | 'error', msg: string): void
  /** How long a wrong-secret address waits before it is dialed again (dialer.ts). */
  readonly authFailedRetryMs: number
}

/** 'Ab3xYz12 at 10.0.0.2:4001': how every line names a peer. */
export function peerLabel (peerId: string, address: string): string {
  return `${printable(peerId.slice(-8), 16)} at ${printable(address, 64)}`
}

export class ConnReports {
  readonly book = new PeerBook()
  /** Peers whose duplicate connection closed: the disconnection is reported when the grace runs out. */
  private readonly graceTimers = new Map<string, NodeJS.Timeout>()
  /** Per peer, the mismatches already reported ('ours\0theirs', or '*' for "nothing in common"). */
  private readonly mismatches = new Map<string, Set<string>>()
  /** When an inbound wrong-secret line was last written, per remote host (peer ids cost a stranger nothing). */
  private readonly authLogged = new Map<string, number>()

  constructor (private readonly host: ConnReportsHost) {}

  stop (): void {
    for (const t of this.graceTimers.values()) clearTimeout(t)
    this.graceTimers.clear()
  }

  /** `session` authenticated and is the peer's session now; `replaced`: it took over from a live one. */
  sessionReady (session: PeerSession, replaced: boolean): void {
    const address = session.conn.remoteAddress
    this.book.connected(session.peerId, address, session.conn)
    const grace = this.graceTimers.get(session.peerId)
    if (grace !== undefined) { clearTimeout(grace); this.graceTimers.delete(session.peerId); return }
    if (replaced) return
    this.host.emitter.emit('peer-connected', { peerId: session.peerId, address })
  }

  /** The peer's session closed (and no other took its place). */
  sessionClosed (session: PeerSession, reason: string): void {
    const peerId = session.peerId
    this.book.disconnected(peerId, reason)
    if (!session.closedAsDuplicate) { this.host.emitter.emit('peer-disconnected', { peerId, reason }); return }
    if (this.graceTimers.has(peerId)) return
    this.graceTimers.set(peerId, setTimeout(() => {
      this.graceTimers.delete(peerId)
      this.host.emitter.emit('peer-disconnected', { peerId, reason })
    }, DUPLICATE_GRACE_MS).unref())
  }

  onListen (session: PeerSession): void {
    const a = session.listenAddress
    if (a !== null) this.book.listening(session.peerId, joinHostPort(a.ip, a.port))
  }

  /** The peer announced its shares: ids that differ from ours only by case, or nothing in common, are reported once. */
  onShares (session: PeerSession, oursAll: string[]): void {
    const ours = oursAll.filter(id => id !== CATALOG_ID)
    const theirs = [...session.remoteShares.keys()].filter(id => id !== CATALOG_ID)
    // A node without shares (jobs only) has nothing in common with anyone, on purpose.
    if (ours.length === 0 || theirs.length === 0) return
    const reported = this.reportedFor(session.peerId)
    const label = peerLabel(session.peerId, session.conn.remoteAddress)
    const oursSet = new Set(ours)
    const theirsSet = new Set(theirs)
    let caseOnly = false
    for (const t of theirs) {
      if (oursSet.has(t)) continue
      for (const o of ours) {
        if (theirsSet.has(o) || o.toLowerCase() !== t.toLowerCase()) continue
        caseOnly = true
        const key = `${o}\0${t}`
        if (reported.has(key)) continue
        reported.add(key)
        this.host.log('warn', `peer ${label} shares ${printable(t)}; we share ${printable(o)} — share ids must match exactly (set them with <dir>=<id>)`)
        this.host.emitter.emit('share-mismatch', { peerId: session.peerId, ours: [o], theirs: [t] })
      }
    }
    if (caseOnly || theirs.some(t => oursSet.has(t)) || reported.has('*')) return
    reported.add('*')
    this.host.log('warn', `peer ${label} shares ${list(theirs)}; we share ${list(ours)} — no share in common, nothing replicates between us (share ids must match exactly; set them with <dir>=<id>)`)
    this.host.emitter.emit('share-mismatch', { peerId: session.peerId, ours, theirs })
  }

  /** The cluster secret differs: our proof was refused (outbound) or the peer's was wrong (inbound). */
  authFailed (session: PeerSession): void {
    const { peerId } = session
    const address = session.conn.remoteAddress
    const outbound = session.conn.direction === 'outbound'
    // An inbound stranger gets no record (peer-records.ts); a peer we dialed does.
    if (outbound) this.book.dialFailed(address, 'the cluster secret differs', peerId)
    else if (!this.mayLogInbound(hostOf(address))) return
    const why = 'wrong cluster secret — the cluster secret differs between this node and the peer (a configuration error, not a network fault: give every node the same secret)'
    const then = outbound ? `retrying in ${Math.round(this.host.authFailedRetryMs / 1000)} s` : 'connection refused'
    this.host.log('error', `peer ${peerLabel(peerId, address)}: ${why}; ${then}`)
    this.host.emitter.emit('auth-failed', { address, peerId })
  }

  /** An inbound wrong proof is reported at most once per retry interval per host: a stranger can dial in a loop. */
  private mayLogInbound (host: string): boolean {
    const now = Date.now()
    const last = this.authLogged.get(host)
    if (last !== undefined && now - last < this.host.authFailedRetryMs) return false
    if (this.authLogged.size >= AUTH_LOG_KEYS_MAX) this.authLogged.clear()
    this.authLogged.set(host, now)
    return true
  }

  private reportedFor (peerId: string): Set<string> {
    let s = this.mismatches.get(peerId)
    if (s === undefined) {
      if (this.mismatches.size >= MISMATCH_PEERS_MAX) this.mismatches.clear()
      s = new Set()
      this.mismatches.set(peerId, s)
    }
    return s
  }
}

function list (ids: string[]): string {
  const shown = ids.slice(0, 5).map(id => printable(id, 64)).join(', ')
  return ids.length > 5 ? `${shown} and ${ids.length - 5} more` : shown
}
