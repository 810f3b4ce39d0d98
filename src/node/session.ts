// One authenticated connection to one peer, seen from this node.
//
// Who tracks what:
//   PeerSession — the control stream: auth state, the peer's shares and announced roots, and one
//                 feeder per share the peer subscribed to (our entries after its cursor).
//   SwarmNode   — which sessions exist (one per peer), cursors in the index, downloads, serving.
//   Share       — what is on disk and what the merge rules decide.
//
// Stream tags: every stream starts with one byte saying what it carries.
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Connection } from '../transport/types.js'
import { FrameSplitter, decode, encode, PROTOCOL_VERSION, type ControlMessage, type ShareInfo, type WireEntry } from '../wire/control.js'
import { authProof, checkProof, newNonce } from './auth.js'

export const STREAM_CONTROL = 1
export const STREAM_PIECES = 2
/** A peer that has not proven the secret within this time is dropped. */
export const AUTH_TIMEOUT_MS = 5000

export interface SessionHost {
  readonly peerId: string
  readonly secret: string
  localShares (): ShareInfo[]
  entriesAfter (share: string, indexId: string, fromSeq: number, to: string): { entries: WireEntry[], upTo: number } | null
  onEntries (session: PeerSession, share: string, upTo: number, entries: WireEntry[]): Promise<void>
  onShares (session: PeerSession): void
  onRoot (session: PeerSession, share: string): void
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

interface Feeder { indexId: string, cursor: number, running: boolean, again: boolean }

export class PeerSession extends EventEmitter<{ ready: [], shares: [], closed: [reason: string] }> {
  readonly remoteShares = new Map<string, ShareInfo>()
  readonly roots = new Map<string, { root: Buffer, settled: boolean }>()
  /** The peer's SHARES message has arrived (its piece streams may come first: they are other streams). */
  sharesKnown = false
  private readonly feeders = new Map<string, Feeder>()
  private readonly splitter = new FrameSplitter()
  private readonly nonce = newNonce()
  private remoteNonce: Buffer | null = null
  private authenticated = false
  private closedReason: string | null = null
  private inbox: Promise<void> = Promise.resolve()
  private readonly authTimer: NodeJS.Timeout

  constructor (private readonly host: SessionHost, readonly conn: Connection, private readonly control: Duplex) {
    super()
    control.on('data', (chunk: Buffer) => this.onData(chunk))
    control.on('error', () => this.close('control stream error'))
    control.on('close', () => this.close('control stream closed'))
    void conn.closed.then(() => this.close('connection closed'))
    this.authTimer = setTimeout(() => this.fail('ERR_AUTH_FAILED', 'no authentication within ' + AUTH_TIMEOUT_MS + ' ms'), AUTH_TIMEOUT_MS)
    this.sendRaw(encode.hello(this.nonce))
  }

  get peerId (): string { return this.conn.remotePeerId }
  get ready (): boolean { return this.authenticated && this.closedReason === null }
  get isClosed (): boolean { return this.closedReason !== null }

  // ---- outbound messages --------------------------------------------------------------------

  private sendRaw (frame: Buffer): boolean {
    if (this.closedReason !== null) return false
    return this.control.write(frame)
  }

  private async send (frame: Buffer): Promise<void> {
    if (!this.sendRaw(frame) && this.closedReason === null) {
      await new Promise<void>(resolve => {
        const done = () => { this.control.off('drain', done); this.off('closed', done); resolve() }
        this.control.once('drain', done)
        this.once('closed', done)
      })
    }
  }

  sendShares (): void { if (this.ready) this.sendRaw(encode.shares(this.host.localShares())) }
  subscribe (share: string, indexId: string, fromSeq: number): void { if (this.ready) this.sendRaw(encode.subscribe(share, indexId, fromSeq)) }
  sendRoot (share: string, root: Buffer, settled: boolean): void { if (this.ready) this.sendRaw(encode.root(share, root, settled)) }

  /** Sends our entries the peer has not seen yet for a share it subscribed to. */
  pump (share: string): void {
    const f = this.feeders.get(share)
    if (f === undefined || !this.ready) return
    if (f.running) { f.again = true; return }
    f.running = true
    void (async () => {
      try {
        do {
          f.again = false
          for (;;) {
            const batch = this.host.entriesAfter(share, f.indexId, f.cursor, this.peerId)
            if (batch === null || batch.upTo === f.cursor) break
            if (batch.entries.length > 0) await this.send(encode.entries(share, batch.upTo, batch.entries))
            f.cursor = batch.upTo
            if (!this.ready) return
          }
        } while (f.again)
      } catch (err) {
        this.host.log('warn', `peer ${this.peerId}: feeding share ${share} failed: ${(err as Error).message}`)
      } finally { f.running = false }
    })()
  }

  // ---- inbound messages ---------------------------------------------------------------------

  private onData (chunk: Buffer): void {
    let frames: Buffer[]
    try { frames = this.splitter.push(chunk) } catch (err) { this.fail('ERR_PROTOCOL', (err as Error).message); return }
    for (const f of frames) {
      let msg: ControlMessage
      try { msg = decode(f) } catch (err) { this.fail('ERR_PROTOCOL', (err as Error).message); return }
      // Entries are applied in order, one batch after another; everything else is handled at once.
      this.inbox = this.inbox.then(() => this.handle(msg)).catch(err => this.fail('ERR_PROTOCOL', (err as Error).message))
    }
  }

  private async handle (msg: ControlMessage): Promise<void> {
    if (this.closedReason !== null) return
    if (!this.authenticated && msg.type !== 'hello' && msg.type !== 'auth' && msg.type !== 'error') {
      this.fail('ERR_AUTH_FAILED', `${msg.type} message before authentication`)
      return
    }
    switch (msg.type) {
      case 'hello': return this.onHello(msg.protocol, msg.nonce)
      case 'auth': return this.onAuth(msg.mac)
      case 'error': {
        this.host.log('warn', `peer ${this.peerId} at ${this.conn.remoteAddress} closed the connection: ${msg.message} (${msg.code})`)
        this.emit('closed', this.closedReason = `refused by peer: ${msg.message}`)
        this.conn.close(msg.message)
        return
      }
      case 'shares':
        this.remoteShares.clear()
        for (const s of msg.shares) this.remoteShares.set(s.id, s)
        this.sharesKnown = true
        this.host.onShares(this)
        this.emit('shares')
        return
      case 'subscribe': {
        const f: Feeder = this.feeders.get(msg.share) ?? { indexId: msg.indexId, cursor: 0, running: false, again: false }
        f.indexId = msg.indexId
        f.cursor = msg.fromSeq
        this.feeders.set(msg.share, f)
        this.pump(msg.share)
        return
      }
      case 'entries': return this.host.onEntries(this, msg.share, msg.upTo, msg.entries)
      case 'root':
        this.roots.set(msg.share, { root: msg.root, settled: msg.settled })
        this.host.onRoot(this, msg.share)
    }
  }

  private onHello (protocol: number, nonce: Buffer): void {
    if (protocol !== PROTOCOL_VERSION) { this.fail('ERR_PROTOCOL', `protocol version ${protocol}, expected ${PROTOCOL_VERSION}`); return }
    if (this.remoteNonce !== null) { this.fail('ERR_PROTOCOL', 'second hello'); return }
    this.remoteNonce = nonce
    this.sendRaw(encode.auth(authProof(this.host.secret, this.host.peerId, this.peerId, this.nonce, nonce)))
  }

  private onAuth (mac: Buffer): void {
    if (this.remoteNonce === null || this.authenticated) { this.fail('ERR_PROTOCOL', 'unexpected auth message'); return }
    const expected = authProof(this.host.secret, this.peerId, this.host.peerId, this.remoteNonce, this.nonce)
    if (!checkProof(mac, expected)) { this.fail('ERR_AUTH_FAILED', 'wrong cluster secret'); return }
    this.authenticated = true
    clearTimeout(this.authTimer)
    this.emit('ready')
    this.sendShares()
  }

  /** Refuses the peer: tells it why, logs why, closes. No data has flowed if auth failed. */
  fail (code: string, message: string): void {
    if (this.closedReason !== null) return
    this.host.log('warn', `peer ${this.peerId} at ${this.conn.remoteAddress}: ${message}; connection refused (${code})`)
    this.control.write(encode.error(code, message))
    this.control.end()
    this.closedReason = message
    clearTimeout(this.authTimer)
    this.emit('closed', message)
    // Give the error frame a moment to leave before the connection goes.
    setTimeout(() => this.conn.close(message), 100).unref()
  }

  close (reason: string): void {
    if (this.closedReason !== null) return
    this.closedReason = reason
    clearTimeout(this.authTimer)
    this.control.destroy()
    this.conn.close(reason)
    this.emit('closed', reason)
  }
}
