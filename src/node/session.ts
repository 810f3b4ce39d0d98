// One authenticated connection to one peer, seen from this node.
//
// Who tracks what:
//   PeerSession — the control stream: auth state, the peer's shares and announced roots, and one
//                 feeder per share the peer subscribed to (our entries after its cursor).
//   SwarmNode   — which sessions exist (one per peer), cursors in the index, downloads, serving.
//   Share       — what is on disk and what the merge rules decide.
//
// Stream tags: every stream starts with one byte saying what it carries.
//
// Before authentication (see auth.ts for the exchange) the control stream accepts only frames
// of up to MAX_HANDSHAKE_FRAME bytes, and only HELLO, AUTH and ERROR are decoded: any other
// frame type is refused from its type byte. The session on an outbound connection is the dialer
// and proves first; on an inbound one it is the listener and proves only after checking the
// dialer's proof. The deadline to authenticate and the connection caps are admission.ts.
// A wrong proof either way sets authFailed and emits 'auth-failed' (the node reports it as a
// configuration error, conn-reports.ts; the dialer retries slowly, dialer.ts).
//
// A session closed on purpose says why first (goodbye(): CLOSE_STOPPING, CLOSE_DUPLICATE), so the
// peer reports "peer stopped", or nothing for a duplicate, instead of a stream error.
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Connection } from '../transport/types.js'
import { CLOSE_DUPLICATE, CLOSE_STOPPING, FrameSplitter, decode, encode, isHandshakeType, MAX_CONTROL_FRAME, MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION, type ControlMessage, type JobMessage, type PeerAddress, type FetchState, type BlobRef, type Holding, type ShareInfo, type WireEntry } from '../wire/control.js'
import { authProof, newNonce, verifyProof, type AuthRole } from './auth.js'
import { printable } from '../model/printable.js'
import { hostOf } from './address.js'

export const STREAM_CONTROL = 1
export const STREAM_PIECES = 2
/** A piece stream whose bytes are deflated both ways (transport/deflate.ts); the downloader chooses it. */
export const STREAM_PIECES_DEFLATE = 3
/**
 * Bytes we let wait in the control stream's send buffer. Entry batches wait for 'drain', so only
 * small messages (roots, acks, share lists) can pile up: a peer that stops reading for this long
 * is dropped rather than growing our memory without bound.
 */
export const MAX_CONTROL_QUEUED = 32 * 1024 * 1024
/**
 * Messages decoded and waiting to be handled before we stop reading the control stream. Entry
 * batches (up to ~8 MiB each) are applied one at a time; a sender faster than our disk must not
 * pile them up in memory.
 */
const MAX_QUEUED_BATCHES = 4
/** entries of consecutive batches applied as one, at most (see joinWaitingBatch) */
const MAX_JOINED_ENTRIES = 8000
/** Our own reasons in ERROR frames are cut to this, so they fit the peer's pre-auth frame limit. */
const MAX_ERROR_MESSAGE = 200
/** A goodbye waits this long at most for the peer to close the connection before closing it here. */
export const GOODBYE_WAIT_MS = 1_000
/** The reason a session closes with when the peer stopped cleanly (peer-disconnected says it). */
export const REASON_PEER_STOPPED = 'peer stopped'
/** The reason a session closes with when the peer kept another connection between the same two nodes. */
export const REASON_DUPLICATE = 'duplicate connection'

export interface SessionHost {
  readonly peerId: string
  /** The scrypt-stretched cluster secret (auth.ts deriveAuthKey), computed once per node. */
  readonly authKey: Buffer
  localShares (): ShareInfo[]
  entriesAfter (share: string, indexId: string, fromSeq: number, to: string): { entries: WireEntry[], upTo: number } | null
  onEntries (session: PeerSession, share: string, upTo: number, entries: WireEntry[]): Promise<void>
  onShares (session: PeerSession): void
  onRoot (session: PeerSession, share: string): void
  onAck (session: PeerSession, share: string, indexId: string, seq: number): void
  /** The peer said where it accepts connections (listenAddress is set). */
  onListen (session: PeerSession): void
  onPeers (session: PeerSession, peers: PeerAddress[]): void
  /** Job messages (FETCH, PROGRESS, HOLDS?, HOLDS): handled by the jobs face (jobs/remote.ts). */
  onJobMessage (session: PeerSession, msg: JobMessage): void
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

interface Feeder { indexId: string, cursor: number, running: boolean, again: boolean }

export class PeerSession extends EventEmitter<{ ready: [], shares: [], closed: [reason: string], 'auth-failed': [] }> {
  readonly remoteShares = new Map<string, ShareInfo>()
  readonly roots = new Map<string, { root: Buffer, settled: boolean }>()
  /** Where the peer accepts connections, once it said so (LISTEN); handed on by peer exchange. */
  listenAddress: PeerAddress | null = null
  /** The peer's SHARES message has arrived (its piece streams may come first: they are other streams). */
  sharesKnown = false
  /** The cluster secret differs: the peer refused our proof, or its proof was wrong ('auth-failed' was emitted). */
  authFailed = false
  /** The peer closed this connection because it keeps another one to us (not a fault, see conn-reports.ts). */
  closedAsDuplicate = false
  private readonly feeders = new Map<string, Feeder>()
  private readonly splitter = new FrameSplitter(MAX_HANDSHAKE_FRAME)
  private readonly nonce = newNonce()
  /** The dialer (outbound connection) proves first; the listener answers a correct proof with its own. */
  private readonly role: AuthRole
  private remoteNonce: Buffer | null = null
  /** Our AUTH went out (the dialer's, before it has seen the listener's). */
  private sentAuth = false
  private authenticated = false
  private closedReason: string | null = null
  private inbox: Promise<void> = Promise.resolve()
  /** Decoded messages waiting in the inbox. */
  private queued = 0
  /** The last ENTRIES message queued in the inbox, while it has not started: see joinWaitingBatch. */
  private waitingBatch: { msg: ControlMessage, count: number } | null = null

  constructor (private readonly host: SessionHost, readonly conn: Connection, private readonly control: Duplex) {
    super()
    this.setMaxListeners(0)   // every job request waiting on this peer listens for 'closed'
    this.role = conn.direction === 'outbound' ? 'dialer' : 'listener'
    control.on('data', (chunk: Buffer) => this.onData(chunk))
    control.on('error', () => this.close('control stream error'))
    control.on('close', () => this.close('control stream closed'))
    void conn.closed.then(() => this.close('connection closed'))
    this.sendRaw(encode.hello(this.nonce))
  }

  get peerId (): string { return this.conn.remotePeerId }
  get ready (): boolean { return this.authenticated && this.closedReason === null }
  get isClosed (): boolean { return this.closedReason !== null }

  // ---- outbound messages --------------------------------------------------------------------

  private sendRaw (frame: Buffer): boolean {
    if (this.closedReason !== null) return false
    if (this.control.writableLength > MAX_CONTROL_QUEUED) {
      this.close(`peer is not reading (over ${MAX_CONTROL_QUEUED} bytes waiting to be sent)`)
      return false
    }
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
  sendAck (share: string, indexId: string, seq: number): void { if (this.ready) this.sendRaw(encode.ack(share, indexId, seq)) }
  sendListen (port: number): void { if (this.ready && port > 0) this.sendRaw(encode.listen(port)) }
  sendPeers (peers: PeerAddress[]): void { if (this.ready && peers.length > 0) this.sendRaw(encode.peers(peers)) }
  sendFetch (req: number, root: Buffer, size: number, name: string): void { if (this.ready) this.sendRaw(encode.fetch(req, root, size, name)) }
  sendProgress (req: number, have: number, total: number, state: FetchState, message = ''): void { if (this.ready) this.sendRaw(encode.progress(req, have, total, state, message)) }
  sendCancel (req: number): void { if (this.ready) this.sendRaw(encode.cancel(req)) }
  sendHoldsQuery (req: number, blobs: BlobRef[]): void { if (this.ready) this.sendRaw(encode.holdsQuery(req, blobs)) }
  sendHolds (req: number, storeBytes: number, holdings: Holding[]): void { if (this.ready) this.sendRaw(encode.holds(req, storeBytes, holdings)) }

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
            // Sent even when empty (every row came from this peer): its cursor, and so its ack, must move on.
            await this.send(encode.entries(share, batch.upTo, batch.entries))
            f.cursor = batch.upTo
            if (!this.ready) return
          }
        } while (f.again)
      } catch (err) {
        this.host.log('warn', `peer ${this.peerId}: feeding share ${printable(share)} failed: ${printable((err as Error).message)}`)
      } finally { f.running = false }
    })()
  }

  // ---- inbound messages ---------------------------------------------------------------------

  private onData (chunk: Buffer): void {
    if (this.closedReason !== null) return
    this.splitter.add(chunk)
    // One frame at a time: an AUTH handled here raises the frame limit for the frames after it.
    for (;;) {
      let f: Buffer | null
      try { f = this.splitter.next() } catch (err) { this.fail('ERR_PROTOCOL', (err as Error).message); return }
      if (f === null) return
      if (!this.authenticated) {
        // Nothing but HELLO, AUTH and ERROR is even decoded before the peer has authenticated.
        if (!isHandshakeType(f[0])) { this.fail('ERR_AUTH_FAILED', `message type ${f[0]} before authentication`); return }
        let msg: ControlMessage
        try { msg = decode(f) } catch (err) { this.fail('ERR_PROTOCOL', (err as Error).message); return }
        this.handshake(msg)
        if (this.closedReason !== null) return
        continue
      }
      let msg: ControlMessage
      try { msg = decode(f) } catch (err) { this.fail('ERR_PROTOCOL', (err as Error).message); return }
      // A goodbye jumps the queue: the peer is going, batches still waiting are sent again next time.
      if (msg.type === 'error' && isGoodbye(msg.code)) { this.onError(msg.code, msg.message); return }
      // Entries are applied in order, one batch after another; everything else is handled at once.
      // While MAX_QUEUED_BATCHES wait, the stream is paused: QUIC flow control then holds the sender.
      if (++this.queued > MAX_QUEUED_BATCHES) this.control.pause()
      if (msg.type === 'entries' && this.joinWaitingBatch(msg)) continue
      const item = { msg, count: 1 }
      this.waitingBatch = msg.type === 'entries' ? item : null   // anything else in between keeps the order
      this.inbox = this.inbox.then(() => {
        if (this.waitingBatch === item) this.waitingBatch = null   // started: nothing joins it now
        return this.handle(item.msg)
      }).catch(err => this.fail('ERR_PROTOCOL', (err as Error).message)).finally(() => {
        this.queued -= item.count
        if (this.queued <= MAX_QUEUED_BATCHES && this.closedReason === null) this.control.resume()
      })
    }
  }

  /**
   * A batch of entries that arrives while the one before it (same share) still waits its turn
   * joins it: a receiver that is behind applies several batches at once, with one durability
   * barrier and one transaction for them all (measured: 20,000 small files, ~80 ms per barrier).
   */
  private joinWaitingBatch (msg: ControlMessage & { type: 'entries' }): boolean {
    const w = this.waitingBatch
    if (w === null || w.msg.type !== 'entries' || w.msg.share !== msg.share) return false
    if (w.msg.entries.length + msg.entries.length > MAX_JOINED_ENTRIES) return false
    w.msg.entries.push(...msg.entries)
    w.msg.rejected.push(...msg.rejected)
    w.msg.upTo = msg.upTo
    w.count++
    return true
  }

  /** HELLO / AUTH / ERROR before authentication; handled synchronously, in order. */
  private handshake (msg: ControlMessage): void {
    switch (msg.type) {
      case 'hello': return this.onHello(msg.protocol, msg.nonce)
      case 'auth': return this.onAuth(msg.mac)
      case 'error': return this.onError(msg.code, msg.message)
      default: this.fail('ERR_AUTH_FAILED', `${msg.type} message before authentication`)
    }
  }

  private onError (code: string, message: string): void {
    const why = printable(message)
    if (code === CLOSE_STOPPING) {
      this.closedReason = REASON_PEER_STOPPED
    } else if (code === CLOSE_DUPLICATE) {
      this.closedAsDuplicate = true
      this.closedReason = REASON_DUPLICATE
    } else if (code === 'ERR_AUTH_FAILED' && !this.authenticated && this.sentAuth) {
      // An honest listener refuses a dialer's proof only when the secrets differ.
      this.closedReason = `refused by peer: ${why}`
      this.authFailed = true
      this.emit('auth-failed')
    } else {
      this.host.log('warn', `peer ${this.peerId} at ${printable(this.conn.remoteAddress)} closed the connection: ${why} (${printable(code, 64)})`)
      this.closedReason = `refused by peer: ${why}`
    }
    this.control.pause()
    this.emit('closed', this.closedReason)
    this.conn.close(this.closedReason)
  }

  private async handle (msg: ControlMessage): Promise<void> {
    if (this.closedReason !== null) return
    switch (msg.type) {
      case 'hello':
      case 'auth':
        this.fail('ERR_PROTOCOL', `unexpected ${msg.type} message after authentication`)
        return
      case 'error': return this.onError(msg.code, msg.message)
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
      case 'entries':
        for (const r of msg.rejected) this.host.log('warn', `peer ${this.peerId}: share ${printable(msg.share)}: dropped entry ${printable(r.path)}: ${r.problem}`)
        return this.host.onEntries(this, msg.share, msg.upTo, msg.entries)
      case 'root':
        this.roots.set(msg.share, { root: msg.root, settled: msg.settled })
        this.host.onRoot(this, msg.share)
        return
      case 'ack': return this.host.onAck(this, msg.share, msg.indexId, msg.seq)
      case 'listen':
        // Where the peer accepts connections: the address it reached us from, with the port it names (said once).
        if (this.listenAddress !== null) return
        this.listenAddress = { peerId: this.peerId, ip: hostOf(this.conn.remoteAddress), port: msg.port }
        return this.host.onListen(this)
      case 'peers': return this.host.onPeers(this, msg.peers)
      case 'fetch': case 'progress': case 'cancel': case 'holds-query': case 'holds': return this.host.onJobMessage(this, msg)
    }
  }

  private onHello (protocol: number, nonce: Buffer): void {
    if (protocol !== PROTOCOL_VERSION) { this.fail('ERR_PROTOCOL', `protocol version ${protocol}, expected ${PROTOCOL_VERSION}`); return }
    if (this.remoteNonce !== null) { this.fail('ERR_PROTOCOL', 'second hello'); return }
    this.remoteNonce = nonce
    // The dialer proves first; the listener says nothing that depends on the secret until then.
    if (this.role === 'dialer') {
      this.sendRaw(encode.auth(authProof(this.host.authKey, 'dialer', this.host.peerId, this.peerId, this.nonce, nonce)))
      this.sentAuth = true
    }
  }

  private onAuth (mac: Buffer): void {
    if (this.remoteNonce === null) { this.fail('ERR_PROTOCOL', 'auth message before hello'); return }
    const peerRole: AuthRole = this.role === 'dialer' ? 'listener' : 'dialer'
    if (!verifyProof(this.host.authKey, mac, peerRole, this.peerId, this.host.peerId, this.remoteNonce, this.nonce)) {
      // Reported by the node (conn-reports.ts) as a configuration error, not as a refusal like any other.
      this.authFailed = true
      this.emit('auth-failed')
      this.fail('ERR_AUTH_FAILED', 'wrong cluster secret', { quiet: true })
      return
    }
    if (this.role === 'listener') this.sendRaw(encode.auth(authProof(this.host.authKey, 'listener', this.host.peerId, this.peerId, this.nonce, this.remoteNonce)))
    this.authenticated = true
    this.splitter.limit = MAX_CONTROL_FRAME
    this.emit('ready')
    this.sendShares()
  }

  /** Refuses the peer: tells it why, logs why (unless quiet: reported elsewhere), closes. No data has flowed if auth failed. */
  fail (code: string, message: string, opts: { quiet?: boolean } = {}): void {
    if (this.closedReason !== null) return
    if (opts.quiet !== true) this.host.log('warn', `peer ${this.peerId} at ${printable(this.conn.remoteAddress)}: ${message}; connection refused (${code})`)
    this.control.write(encode.error(code, message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE) + '…' : message))
    this.control.end()
    this.control.pause()   // read nothing more from a peer we are refusing
    this.closedReason = message
    this.emit('closed', message)
    // Give the error frame a moment to leave before the connection goes.
    setTimeout(() => this.conn.close(message), 100).unref()
  }

  /**
   * Closes on purpose and tells the peer why with a code it knows is no fault (CLOSE_STOPPING,
   * CLOSE_DUPLICATE); resolves once the peer closed the connection, or after GOODBYE_WAIT_MS.
   */
  async goodbye (code: typeof CLOSE_STOPPING | typeof CLOSE_DUPLICATE, reason: string): Promise<void> {
    if (this.closedReason !== null) return
    this.control.write(encode.error(code, reason))
    this.control.end()
    this.closedReason = reason
    this.emit('closed', reason)
    // The peer closes the connection when it reads the goodbye; one that says goodbye too ends its stream.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.conn.closed,
      new Promise<void>(resolve => { this.control.once('end', resolve); this.control.once('close', resolve) }),
      new Promise<void>(resolve => { timer = setTimeout(resolve, GOODBYE_WAIT_MS) })
    ])
    clearTimeout(timer)
    this.conn.close(reason)
  }

  close (reason: string): void {
    if (this.closedReason !== null) return
    this.closedReason = reason
    this.control.destroy()
    this.conn.close(reason)
    this.emit('closed', reason)
  }
}

function isGoodbye (code: string): boolean { return code === CLOSE_STOPPING || code === CLOSE_DUPLICATE }
