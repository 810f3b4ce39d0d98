// Owns what a connection may do before it has proven the cluster secret, and how many
// connections this node holds: the caps on connections (all, and unauthenticated at once), the
// deadline to authenticate, and "one control session per connection". The proof itself is
// auth.ts; the HELLO/AUTH exchange and the small pre-auth frame limit are session.ts.
//
// Streams per connection are capped by the transport: QUIC lets the remote have at most
// MAX_CONCURRENT_STREAMS (1024) streams open at once (quic.ts; memory.ts enforces the same), and
// before authentication this node keeps at most one of them (the control stream): any other
// stream is destroyed as soon as it is seen.
import type { Connection } from '../transport/types.js'
import { printable } from '../model/printable.js'
import { hostOf } from './address.js'

/** An inbound connection must authenticate this soon (2 round trips; generous for a loaded node). */
export const AUTH_DEADLINE_MS = 5_000
/** All connections at once: a cluster is tens of nodes; each costs QUIC windows of up to 32 MiB. */
export const MAX_CONNECTIONS = 256
/** Unauthenticated inbound connections at once: bounds what strangers hold, and a restarting cluster reconnects in a few. */
export const MAX_UNAUTHENTICATED = 32
/**
 * Unauthenticated inbound connections at once from one host (IP address): one stranger cannot
 * hold every MAX_UNAUTHENTICATED slot and keep real peers out; several nodes behind one address
 * (or on one test machine) still connect.
 */
export const MAX_UNAUTHENTICATED_PER_HOST = 8
/** Refusals and expiries are logged at most this often (with a count), so a flood cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000

export interface AdmissionLimits {
  authDeadlineMs: number
  maxConnections: number
  maxUnauthenticated: number
  maxUnauthenticatedPerHost: number
}

export const DEFAULT_ADMISSION_LIMITS: Readonly<AdmissionLimits> = Object.freeze({
  authDeadlineMs: AUTH_DEADLINE_MS,
  maxConnections: MAX_CONNECTIONS,
  maxUnauthenticated: MAX_UNAUTHENTICATED,
  maxUnauthenticatedPerHost: MAX_UNAUTHENTICATED_PER_HOST
})

/** The one control session of a connection, as far as admission cares. */
export interface Refusable {
  fail (code: 'ERR_TIMEOUT', message: string): void
}

interface Tracked {
  readonly inbound: boolean
  authenticated: boolean
  session: Refusable | null
  timer: NodeJS.Timeout | null
}

export class Admission {
  readonly limits: AdmissionLimits
  private readonly conns = new Map<Connection, Tracked>()
  private unauthenticated = 0
  /** Unauthenticated inbound connections by remote host. */
  private readonly perHost = new Map<string, number>()
  private suppressed = 0
  private lastLog = -Infinity

  constructor (limits: Partial<AdmissionLimits> | undefined, private readonly log: (level: 'info' | 'warn', msg: string) => void) {
    this.limits = { ...DEFAULT_ADMISSION_LIMITS, ...limits }
  }

  get connectionCount (): number { return this.conns.size }
  get unauthenticatedCount (): number { return this.unauthenticated }

  /** A new inbound connection: tracked, with a deadline to authenticate, or closed if a cap is reached. */
  admit (conn: Connection): boolean {
    let refusal: string | null = null
    if (this.conns.size >= this.limits.maxConnections) refusal = `too many connections (${this.limits.maxConnections})`
    else if (this.unauthenticated >= this.limits.maxUnauthenticated) refusal = `too many unauthenticated connections (${this.limits.maxUnauthenticated})`
    else if ((this.perHost.get(hostOf(conn.remoteAddress)) ?? 0) >= this.limits.maxUnauthenticatedPerHost) refusal = `too many unauthenticated connections from one host (${this.limits.maxUnauthenticatedPerHost})`
    if (refusal !== null) {
      conn.close(refusal)
      this.note(`refused connection from ${printable(conn.remoteAddress)}: ${refusal}`)
      return false
    }
    this.track(conn, true)
    return true
  }

  /**
   * Gives the connection its one control session (check hasSession first). Outbound connections
   * (we dialed: the session is ours) are tracked from here, with the same deadline.
   */
  attach (conn: Connection, session: Refusable): void {
    const t = this.conns.get(conn) ?? this.track(conn, false)
    if (t.session !== null) throw new Error('a connection has one control session')
    t.session = session
  }

  /** Whether an inbound stream on `conn` may be looked at: before auth only the control stream, once. */
  mayOpenStream (conn: Connection): boolean {
    const t = this.conns.get(conn)
    return t !== undefined && (t.authenticated || t.session === null)
  }

  hasSession (conn: Connection): boolean { return this.conns.get(conn)?.session != null }

  /** The connection's session proved the secret: no deadline, no longer counted as unauthenticated. */
  authenticated (conn: Connection): void {
    const t = this.conns.get(conn)
    if (t === undefined || t.authenticated) return
    t.authenticated = true
    if (t.inbound) this.countUnauthenticated(conn, -1)
    if (t.timer !== null) { clearTimeout(t.timer); t.timer = null }
  }

  private countUnauthenticated (conn: Connection, delta: 1 | -1): void {
    this.unauthenticated += delta
    const host = hostOf(conn.remoteAddress)
    const n = (this.perHost.get(host) ?? 0) + delta
    if (n <= 0) this.perHost.delete(host); else this.perHost.set(host, n)
  }

  private track (conn: Connection, inbound: boolean): Tracked {
    const t: Tracked = { inbound, authenticated: false, session: null, timer: null }
    this.conns.set(conn, t)
    if (inbound) this.countUnauthenticated(conn, 1)
    const ms = this.limits.authDeadlineMs
    t.timer = setTimeout(() => {
      t.timer = null
      if (t.authenticated || !this.conns.has(conn)) return
      const why = `no authentication within ${ms} ms`
      if (t.session !== null) { t.session.fail('ERR_TIMEOUT', why); return }
      conn.close(why)
      this.note(`closed connection from ${printable(conn.remoteAddress)}: ${why}`)
    }, ms)
    t.timer.unref()
    void conn.closed.then(() => {
      if (this.conns.get(conn) !== t) return
      this.conns.delete(conn)
      if (t.timer !== null) clearTimeout(t.timer)
      if (inbound && !t.authenticated) this.countUnauthenticated(conn, -1)
    })
    return t
  }

  /** Logs at most one line per REFUSAL_LOG_INTERVAL_MS, with how many were left out. */
  private note (msg: string): void {
    const now = Date.now()
    if (now - this.lastLog < REFUSAL_LOG_INTERVAL_MS) { this.suppressed++; return }
    const more = this.suppressed > 0 ? ` (and ${this.suppressed} more refusals since the last report)` : ''
    this.suppressed = 0
    this.lastLog = now
    this.log('warn', msg + more)
  }
}
