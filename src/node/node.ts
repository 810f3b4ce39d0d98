// SwarmNode: one running node. It owns the transport, the sessions (one per peer) and the shares;
// content.ts fetches and serves file content, the Share objects own the disk.
//
// Life of a change: Share commits → 'changed' → every session pumps the entries the peer has
// not seen (small files inline) and the new root is announced → the peer's Share applies them,
// fetching big content here through fetch() from every connected holder at once.
import { EventEmitter } from 'node:events'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import { resolve, basename } from 'node:path'
import type { Duplex } from 'node:stream'
import { IndexDb } from '../store/db.js'
import { StateLock } from '../store/state-lock.js'
import { Share, type NotAppliedReason } from '../sync/share.js'
import { checkShareRules } from '../sync/rules.js'
import type { Entry } from '../model/entry.js'
import type { ShareMode } from '../model/share-mode.js'
import { PeerSession, STREAM_CONTROL, STREAM_PIECES, STREAM_PIECES_DEFLATE, type SessionHost } from './session.js'
import { deflateDuplex } from '../transport/deflate.js'
import type { Connection, Listener, Transport } from '../transport/types.js'
import { createQuicTransport } from '../transport/quic.js'
import { loadOrCreateIdentity, type Identity } from '../transport/identity.js'
import { serveWire } from '../swarm/serve.js'
import { ContentExchange, blobPartialKey, type FetchedEvent, type TransferInfo } from './content.js'
import { SwarmError } from '../errors.js'
import { checkFolder, checkShareId, checkShareSpecs, prepareStateDir } from './setup-checks.js'
import type { PeerAddress, ShareInfo, WireEntry } from '../wire/control.js'
import { joinHostPort, parseHostPort } from './address.js'
import { Dialer, type RedialTimings } from './dialer.js'
import { ConnReports } from './conn-reports.js'
import type { PeerRecord } from './peer-records.js'
import { CLOSE_DUPLICATE, CLOSE_STOPPING } from '../wire/control.js'
import { deriveAuthKey } from './auth.js'
import { Admission, type AdmissionLimits } from './admission.js'
import { printable } from '../model/printable.js'
import { BlobStore } from '../store/blob-store.js'
import { Catalog, CATALOG_ID } from '../jobs/catalog.js'
import { Jobs } from '../jobs/jobs.js'
import type { JobMessage } from '../wire/control.js'
import type { NodeInfo } from '../jobs/types.js'
import { NodeActivity, type ProgressInfo, type SummaryInfo } from './activity.js'
import { StatusBuilder, type NodeStatus } from './status.js'

/** What replicates entries with peers: a share, or the jobs' catalog (it has no folder). */
type Replica = Share | Catalog

/** Acks arrive with every batch; tombstones are collected at most this often per share. */
const TOMBSTONE_GC_DELAY_MS = 1000
/** One log line is cut to this many characters (control characters are escaped as well). */
const MAX_LOG_CHARS = 4096

export interface ShareSpec {
  dir: string
  id?: string
  /** Start even if the folder is empty while the index lists files there (emptied on purpose). */
  acceptEmpty?: boolean
  /** send-receive (default), send-only or receive-only: see model/share-mode.ts. */
  mode?: ShareMode
  /** Extra ignore patterns (gitignore syntax) on top of the folder's .swarmignore; this node only. */
  ignore?: string[]
}

export interface NodeOptions {
  stateDir: string
  secret: string
  listen?: string                    // 'host:port', default '0.0.0.0:0'
  peers?: string[]                   // 'host:port' addresses to keep dialing
  shares?: ShareSpec[]
  transport?: Transport              // for tests: an in-memory transport
  identity?: Identity
  admission?: Partial<AdmissionLimits>  // connection caps and the auth deadline (admission.ts); for tests
  /** Redial backoff, the wrong-secret retry delay and the unreachable report interval (dialer.ts); for tests. */
  redial?: Partial<RedialTimings>
  /** Connect to the peers other nodes name (peer exchange); default true. False: only --peer addresses. */
  peerExchange?: boolean
  /** Deflate the piece streams this node downloads over (zlib level 1); default false. See README for what it saves and costs. */
  compress?: boolean
  /** How often `transfer-progress` reports a large download (default PROGRESS_INTERVAL_MS, activity.ts). */
  progressIntervalMs?: number
}

export type NodeLogLevel = 'info' | 'warn' | 'error'

export interface NodeEvents {
  listening: [{ address: string, peerId: string }]
  'peer-connected': [{ peerId: string, address: string }]
  'peer-disconnected': [{ peerId: string, reason: string }]
  /** A peer's share ids and ours differ only by letter case, or have nothing in common (conn-reports.ts). */
  'share-mismatch': [{ peerId: string, ours: string[], theirs: string[] }]
  /** A peer does not share the cluster secret: our proof was refused or its proof was wrong. */
  'auth-failed': [{ address: string, peerId?: string }]
  'file-updated': [{ share: string, path: string, root: string, size: number, from: string }]
  'file-deleted': [{ share: string, path: string, from: string }]
  conflict: [{ share: string, path: string, copy: string }]
  'in-sync': [{ share: string, root: string }]
  'scan-done': [{ share: string, files: number, ms: number }]   // a share's startup sweep is complete
  /** Every connected node has the same catalog (the jobs' names) as this one. */
  'catalog-in-sync': [{ root: string }]
  /** A share stopped reading, writing and sending: its folder is not the one its index describes (see README). */
  'share-paused': [{ share: string, reason: string }]
  'share-resumed': [{ share: string }]
  /** A peer's batch held changes this share does not apply (ignored paths, or a send-only share): once per batch. */
  'not-applied': [{ share: string, from: string, count: number, reason: NotAppliedReason }]
  /** A piece-exchange download finished: how many pieces and bytes came over the network (resumed pieces do not count). */
  /** A piece-exchange download finished: pieces/bytes fetched from peers, reusedPieces/reusedBytes copied from local files. */
  fetched: [FetchedEvent]
  /** A download larger than PROGRESS_MIN_BYTES in flight, at most every PROGRESS_INTERVAL_MS (activity.ts). */
  'transfer-progress': [ProgressInfo]
  /** A burst of changes from one source is over: how many files, bytes and seconds (activity.ts). */
  summary: [SummaryInfo]
  log: [{ level: NodeLogLevel, message: string }]
}

export class SwarmNode extends EventEmitter<NodeEvents> implements SessionHost {
  readonly stateDir: string
  /** The cluster secret stretched by scrypt (auth.ts): what proofs are made with. */
  readonly authKey: Buffer
  private readonly admission: Admission
  private identity!: Identity
  private transport!: Transport
  private listener: Listener | null = null
  db!: IndexDb
  readonly shares = new Map<string, Share>()
  private readonly sessions = new Map<string, PeerSession>()
  private readonly lastInSync = new Map<string, string>()
  private readonly rootTimers = new Set<string>()
  private stopped = false
  private wirePeerId!: Buffer
  private lock: StateLock | null = null
  private readonly gcTimers = new Map<string, NodeJS.Timeout>()
  private readonly content: ContentExchange
  /** The jobs' content (complete files by root) and the replicated names for it. */
  blobs!: BlobStore
  catalog!: Catalog
  /** The distribution jobs (put / get / bcast / ...): the library face of jobs/jobs.ts. */
  jobs!: Jobs
  private readonly dialer: Dialer
  /** Counters and the recent past for status, metrics and progress lines (activity.ts). */
  readonly activity: NodeActivity
  private readonly statusBuilder: StatusBuilder
  private readonly reports: ConnReports

  constructor (private readonly opts: NodeOptions) {
    super()
    this.stateDir = resolve(opts.stateDir)
    this.authKey = deriveAuthKey(opts.secret)   // checks the secret; ~80 ms, once
    this.admission = new Admission(opts.admission, (level, msg) => this.log(level, msg))
    const node = this
    this.content = new ContentExchange({
      get db () { return node.db },
      get wirePeerId () { return node.wirePeerId },
      get stopped () { return node.stopped },
      shares: this.shares,
      get blobs () { return node.blobs },
      compress: opts.compress === true,
      sessions: () => this.sessions.values(),
      onFetched: (e) => this.emit('fetched', e),
      onStarted: () => this.activity.downloadStarted(),
      log: (level, msg) => this.log(level, msg)
    })
    this.reports = new ConnReports({
      emitter: this,
      log: (level, msg) => this.log(level, msg),
      get authFailedRetryMs () { return node.dialer.timings.authFailedMs }
    })
    this.dialer = new Dialer({
      get peerId () { return node.peerId },
      get transport () { return node.transport },
      get stopped () { return node.stopped },
      sessions: this.sessions,
      peerExchange: opts.peerExchange !== false,
      book: this.reports.book,
      openSession: conn => this.openSession(conn),
      log: (level, msg) => this.log(level, msg)
    }, opts.redial)
    this.activity = new NodeActivity(this, opts.progressIntervalMs)
    this.statusBuilder = new StatusBuilder({
      get peerId () { return node.peerId },
      get address () { return node.address },
      stateDir: this.stateDir,
      get db () { return node.db },
      activity: this.activity,
      totals: this.content.totals,
      shares: () => this.shares.values(),
      modeOf: share => share.mode,
      sessions: () => this.sessions.values(),
      peerRecords: () => this.peerRecords(),
      learned: () => this.dialer.learned
    })
  }

  /** The downloads in flight: what they fetch, how far they are, from how many holders. */
  transfers (): TransferInfo[] { return this.content.transfers() }

  /** A snapshot of this node, its peers, shares and transfers (status.ts): what `swarm status` prints. */
  status (): NodeStatus {
    if (this.db === undefined) throw new SwarmError('ERR_CLOSED', 'the node has not started')
    return this.statusBuilder.build()
  }

  get peerId (): string { return this.identity.peerId }
  /** Short id used in version vectors and conflict names. */
  get shortId (): string { return this.identity.peerId.slice(-8) }
  get address (): string { return this.listener === null ? '' : joinHostPort(this.listener.host, this.listener.port) }
  get port (): number { return this.listener?.port ?? 0 }
  connectedPeers (): string[] { return [...this.sessions.values()].filter(s => s.ready).map(s => s.peerId) }
  /** Each connected peer and the stream bytes sent to and received from it on the current connection. */
  peerTraffic (): Array<{ peerId: string, address: string, sent: number, received: number }> {
    return [...this.sessions.values()].filter(s => s.ready).map(s => ({ peerId: s.peerId, address: s.conn.remoteAddress, sent: s.conn.bytes.sent, received: s.conn.bytes.received }))
  }

  /** Every peer this node dialed or that authenticated to it: connected or not, since when, errors, bytes, RTT. */
  peerRecords (): PeerRecord[] { return this.reports.book.list() }

  /** Every log line goes through here: control characters escaped, length capped (peer strings end up in messages). */
  log (level: NodeLogLevel, message: string): void { this.emit('log', { level, message: printable(message, MAX_LOG_CHARS) }) }

  async start (): Promise<void> {
    // Validate every folder before anything else: a typo must not start a half-configured node.
    const specs = checkShareSpecs(this.opts.shares ?? [])
    prepareStateDir(this.stateDir)
    // The lock comes first: a second process on this state dir stops here, before touching anything.
    this.lock = new StateLock(this.stateDir)
    try {
      this.identity = this.opts.identity ?? await loadOrCreateIdentity(this.stateDir)
      this.db = new IndexDb(this.stateDir)
      this.blobs = new BlobStore(this.stateDir, this.db)
    } catch (err) { this.db?.close(); this.lock.release(); throw err }
    this.wirePeerIdInit()
    this.catalog = new Catalog(this.db, this.shortId)
    this.catalog.on('changed', () => this.onShareChanged(this.catalog))
    this.jobs = this.newJobs()
    this.transport = this.opts.transport ?? createQuicTransport(this.identity)
    const { host, port } = parseHostPort(this.opts.listen ?? '0.0.0.0:0')
    try {
      this.listener = await this.transport.listen(host, port, conn => this.onConnection(conn))
    } catch (err) {
      this.db.close()
      this.lock.release()
      await this.transport.close()
      throw err
    }
    this.emit('listening', { address: this.address, peerId: this.peerId })
    for (const s of specs) await this.addShare(s.dir, s.id, { acceptEmpty: s.acceptEmpty, mode: s.mode, ignore: s.ignore })
    for (const p of this.opts.peers ?? []) this.dialer.dialForever(p)
  }

  private wirePeerIdInit (): void {
    this.wirePeerId = createHash('sha256').update(this.identity.peerId).digest().subarray(0, 20)
  }

  private newJobs (): Jobs {
    const content = this.content
    return new Jobs({
      peerId: this.peerId,
      db: this.db,
      catalog: this.catalog,
      blobs: this.blobs,
      // Only peers that replicate the catalog speak the jobs' messages (an older node would refuse them).
      peers: () => [...this.sessions.values()].filter(s => s.ready && s.remoteShares.has(CATALOG_ID)),
      nodes: () => this.nodeList(),
      fetchBlob: (root, size, name) => content.fetchBlob(root, size, name),
      blobBits: (root, size, withBitfield) => content.blobBits(root, size, withBitfield),
      savedBits: (root, size) => this.db.getPartial(blobPartialKey(root, size)),
      watchUploads: root => content.watchUploads(root),
      putLayer: (root, layer) => this.db.putLayer(root, layer),
      log: (level, msg) => this.log(level, msg)
    })
  }

  /** This node, every connected peer, and the peers it knows of but is not connected to. */
  private nodeList (): NodeInfo[] {
    const out: NodeInfo[] = [{ peerId: this.peerId, address: this.address, connected: true, self: true }]
    for (const s of this.sessions.values()) {
      if (!s.ready) continue
      const addr = s.listenAddress === null ? s.conn.remoteAddress : joinHostPort(s.listenAddress.ip, s.listenAddress.port)
      out.push({ peerId: s.peerId, address: addr, connected: true })
    }
    for (const [peerId, address] of this.dialer.learned) if (!out.some(n => n.peerId === peerId)) out.push({ peerId, address, connected: false })
    return out
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.jobs?.stop()
    this.activity.stop()
    this.dialer.stop()
    for (const t of this.gcTimers.values()) clearTimeout(t)
    for (const s of this.shares.values()) s.stop()
    this.catalog?.close()
    this.content.stop()
    this.reports.stop()
    // Peers see "peer stopped" rather than a stream error; sessions not yet authenticated just close.
    await Promise.all([...this.sessions.values()].map(s => s.ready ? s.goodbye(CLOSE_STOPPING, 'node stopping') : s.close('node stopping')))
    await this.transport?.close()
    this.db?.close()
    this.lock?.release()
  }

  // ---- shares -------------------------------------------------------------------------------

  async addShare (dir: string, id?: string, opts: Pick<ShareSpec, 'acceptEmpty' | 'mode' | 'ignore'> = {}): Promise<Share> {
    const abs = checkFolder(dir)
    const shareId = checkShareId(id ?? basename(abs))
    if (this.shares.has(shareId)) throw new SwarmError('ERR_BAD_ARGUMENT', `share '${shareId}' already exists`)
    checkShareRules(shareId, opts)
    const share = new Share({ db: this.db, shortId: this.shortId, peerId: this.peerId, fetch: (s, e, from) => this.fetch(s, e, from), log: (l, m) => this.log(l, m) }, this.db.openShare(shareId, abs), opts)
    share.on('changed', () => this.onShareChanged(share))
    share.on('paused', reason => {
      this.emit('share-paused', { share: share.id, reason })
      for (const s of this.sessions.values()) s.sendShares()
    })
    share.on('resumed', () => {
      this.emit('share-resumed', { share: share.id })
      for (const s of this.sessions.values()) { s.sendShares(); if (s.ready && s.sharesKnown) this.onShares(s) }
    })
    share.on('file-updated', e => this.emit('file-updated', e))
    share.on('file-deleted', e => this.emit('file-deleted', e))
    share.on('conflict', e => this.emit('conflict', e))
    share.on('scan-done', e => this.emit('scan-done', e))
    share.on('not-applied', e => this.emit('not-applied', e))
    share.on('resync', () => {
      // Its rules now let through entries it skipped: every peer's entries are taken again from the start.
      this.db.resetCursors(share.id)
      for (const s of this.sessions.values()) { const info = s.remoteShares.get(share.id); if (info !== undefined) s.subscribe(share.id, info.indexId, 0) }
    })
    this.shares.set(shareId, share)
    await share.start()
    for (const s of this.sessions.values()) s.sendShares()
    this.onShareChanged(share)
    return share
  }

  /** Resolves once every share's startup sweep is complete (the node serves what its index knows meanwhile). */
  async scanned (): Promise<void> { for (const s of this.shares.values()) await s.scanned() }

  removeShare (id: string): void {
    const share = this.shares.get(id)
    if (share === undefined) throw new SwarmError('ERR_BAD_ARGUMENT', `no share '${id}'`)
    share.stop()
    this.shares.delete(id)
    for (const s of this.sessions.values()) s.sendShares()
  }

  /** The shares offered to peers: a paused share is not offered (nothing is read from or written to it). */
  localShares (): ShareInfo[] {
    const shares = [...this.shares.values()].filter(s => !s.paused).map(s => ({ id: s.id, indexId: s.indexId, root: s.root() }))
    return [...shares, { id: CATALOG_ID, indexId: this.catalog.indexId, root: this.catalog.root() }]
  }

  private replica (id: string): Replica | undefined { return id === CATALOG_ID ? this.catalog : this.shares.get(id) }

  private onShareChanged (share: Replica): void {
    for (const s of this.sessions.values()) if (s.remoteShares.has(share.id)) s.pump(share.id)
    if (this.rootTimers.has(share.id)) return
    this.rootTimers.add(share.id)
    setImmediate(() => {
      this.rootTimers.delete(share.id)
      if (this.replica(share.id) !== share || share.paused) return
      const root = share.root()
      // A share still sweeping its folder at start may not hold what its disk holds yet.
      const settled = share.pendingCount() === 0 && !share.isScanning
      for (const s of this.sessions.values()) if (s.remoteShares.has(share.id)) s.sendRoot(share.id, root, settled)
      this.checkInSync(share)
    })
  }

  private checkInSync (share: Replica): void {
    const peers = [...this.sessions.values()].filter(s => s.ready && s.remoteShares.has(share.id))
    if (peers.length === 0 || share.pendingCount() > 0 || share.paused || share.isScanning) return
    const root = share.root()
    for (const p of peers) {
      const r = p.roots.get(share.id)
      if (r === undefined || !r.settled || !r.root.equals(root)) return
    }
    const hex = root.toString('hex')
    if (this.lastInSync.get(share.id) === hex) return
    this.lastInSync.set(share.id, hex)
    if (share === this.catalog) this.emit('catalog-in-sync', { root: hex })
    else this.emit('in-sync', { share: share.id, root: hex })
  }

  // ---- sessions -----------------------------------------------------------------------------

  entriesAfter (shareId: string, indexId: string, fromSeq: number, to: string): { entries: WireEntry[], upTo: number } | null {
    const share = this.replica(shareId)
    if (share === undefined || share.paused) return null
    return share.entriesAfter(indexId === share.indexId ? fromSeq : 0, to)
  }

  async onEntries (session: PeerSession, shareId: string, upTo: number, entries: WireEntry[]): Promise<void> {
    const share = this.replica(shareId)
    const info = session.remoteShares.get(shareId)
    // A paused share takes nothing, and the cursor stays: it asks again from there when it resumes.
    if (share === undefined || info === undefined || share.paused) return
    if (!await share.applyRemoteBatch(session.peerId, entries)) {
      // Not applied (the share paused meanwhile, or the index failed): the cursor stays, and a
      // share that still runs starts over from it on a new connection rather than skip the batch.
      if (!share.paused) session.close(`could not apply a batch of share ${shareId}; resyncing`)
      return
    }
    // Entries are applied or recorded as pending in the index: the cursor can move past them.
    this.db.setCursor(session.peerId, shareId, info.indexId, upTo)
    session.sendAck(shareId, info.indexId, upTo)
  }

  onShares (session: PeerSession): void {
    this.reports.onShares(session, [...this.shares.keys()])
    this.content.onShares(session)
    for (const [id, info] of session.remoteShares) {
      const share = this.replica(id)
      if (share === undefined || share.paused) continue
      const cur = this.db.getCursor(session.peerId, id)
      session.subscribe(id, info.indexId, cur !== undefined && cur.indexId === info.indexId ? cur.seq : 0)
      this.onShareChanged(share)
    }
  }

  /** A peer applied our entries up to `seq`: tombstones every known peer has applied can go. */
  onAck (session: PeerSession, shareId: string, indexId: string, seq: number): void {
    const share = this.replica(shareId)
    if (share === undefined || indexId !== share.indexId || seq > this.db.currentSeq(shareId)) return
    this.db.setAck(session.peerId, shareId, seq)
    if (this.gcTimers.has(shareId)) return
    this.gcTimers.set(shareId, setTimeout(() => {
      this.gcTimers.delete(shareId)
      if (!this.stopped) this.db.collectTombstones(shareId)
    }, TOMBSTONE_GC_DELAY_MS).unref())
  }

  // ---- peer exchange (dialer.ts) ----------------------------------------------------------------

  onListen (session: PeerSession): void { this.reports.onListen(session); this.dialer.onListen(session) }
  onPeers (session: PeerSession, peers: PeerAddress[]): void { this.dialer.onPeers(session, peers) }

  onRoot (_session: PeerSession, shareId: string): void {
    const share = this.replica(shareId)
    if (share !== undefined) this.checkInSync(share)
  }

  private onConnection (conn: Connection): void {
    if (this.stopped) { conn.close('node stopping'); return }
    if (!this.admission.admit(conn)) return
    conn.onStream(stream => this.onStream(conn, stream))
  }

  private onStream (conn: Connection, stream: Duplex): void {
    // Before authentication a connection gets one stream: its control stream.
    if (!this.admission.mayOpenStream(conn)) { stream.destroy(); return }
    stream.once('readable', () => {
      const tag = stream.read(1) as Buffer | null
      if (tag === null) { stream.destroy(); return }
      if (tag[0] === STREAM_CONTROL) {
        // The dialer opens the control stream; one per connection.
        if (conn.direction !== 'inbound' || this.admission.hasSession(conn)) { stream.destroy(); return }
        this.startSession(conn, stream)
      } else if (tag[0] === STREAM_PIECES || tag[0] === STREAM_PIECES_DEFLATE) {
        const session = this.sessions.get(conn.remotePeerId)
        if (session === undefined || !session.ready || session.conn !== conn) { stream.destroy(); return }
        serveWire(tag[0] === STREAM_PIECES_DEFLATE ? deflateDuplex(stream) : stream, {
          peerId: this.wirePeerId,
          lookup: (infoHash) => this.content.lookupSource(infoHash, session),
          onUpload: (root, bytes) => this.content.countUpload(root, bytes)
        })
      } else {
        stream.destroy()
      }
    })
  }

  /** Our side of a new outbound connection: its control stream and session. */
  private async openSession (conn: Connection): Promise<PeerSession> {
    conn.onStream(stream => this.onStream(conn, stream))
    const control = await conn.openStream()
    control.write(Buffer.from([STREAM_CONTROL]))
    return this.startSession(conn, control)
  }

  private startSession (conn: Connection, control: Duplex): PeerSession {
    // One control session per connection (onStream already destroys a second control stream).
    if (this.admission.hasSession(conn)) { control.destroy(); throw new SwarmError('ERR_PROTOCOL', 'a second control stream on one connection') }
    const session = new PeerSession(this, conn, control)
    this.admission.attach(conn, session)
    session.on('ready', () => {
      this.admission.authenticated(conn)
      const old = this.sessions.get(session.peerId)
      const replaced = old !== undefined && !old.isClosed
      if (replaced) {
        // Both sides dialed: keep the connection opened by the smaller PeerId, the same choice on both ends.
        const dialerOf = (s: PeerSession) => s.conn.direction === 'outbound' ? this.peerId : s.peerId
        const keepNew = dialerOf(old) === dialerOf(session) || dialerOf(session) < dialerOf(old)
        if (!keepNew) { void session.goodbye(CLOSE_DUPLICATE, 'duplicate connection'); return }
        this.sessions.delete(old.peerId)
        void old.goodbye(CLOSE_DUPLICATE, 'replaced by a newer connection')
      }
      this.sessions.set(session.peerId, session)
      session.sendListen(this.port)
      // peer-connected is the one report of a connection (the CLI prints it); a replacement is not news.
      this.reports.sessionReady(session, replaced)
    })
    session.on('auth-failed', () => this.reports.authFailed(session))
    session.on('closed', reason => {
      if (this.sessions.get(session.peerId) !== session) return
      this.sessions.delete(session.peerId)
      this.reports.sessionClosed(session, reason)
    })
    return session
  }

  onJobMessage (session: PeerSession, msg: JobMessage): void { this.jobs.remote.onMessage(session, msg) }

  // ---- content ------------------------------------------------------------------------------

  fetch (share: Share, entry: Entry, from: string): Promise<string> { return this.content.fetch(share, entry, from) }
}
