// The downloading side of the piece exchange: fetches one file (addressed by its BEP 52 root)
// piece by piece from any number of holders into partPath.
//
// Who tracks what:
// - Peer (download-peer.ts): one outbound wire — which pieces that peer holds (its bitfield + haves),
//   which requests are outstanding on it, how many bad pieces it sent. It only wraps the wire,
//   one method per outbound message kind; it decides nothing.
// - Picker (picker.ts): how many connected peers hold each piece and whether each piece is
//   idle / requested / done; decides which idle piece to ask a given peer for (rarest first).
// - Download: owns the requesters map (piece → peers asked for it, for endgame duplicates and
//   cancels), decides when to request (pipeline depth, endgame, verify/write backpressure),
//   verifies every piece against the layer/root (verify-pool.ts) before it is accepted, and is
//   the only thing that writes to disk — positional writes into partPath and nothing else; the
//   caller renames the part file into place.
// - LocalCopy (local-copy.ts): once the layer is known and before the first request, copies the
//   pieces already on this machine (LocalPieces, given by the caller) instead of fetching them;
//   it verifies and writes them through the Download like received pieces.
// - FrameGuard (framing.ts) sits between each stream and its wire, with wire-guard.ts checking
//   what reaches the wire; layer.ts is the swarm_layer extension that carries the piece layer.
// A Download is also a PieceSource: serveWire() can serve the pieces it has already written.
import { EventEmitter } from 'node:events'
import { constants as fsConstants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import Wire from 'bittorrent-protocol'
import { SwarmError, isSwarmError } from '../errors.js'
import { PIECE_SIZE, pieceCount, verifyPieceLayer } from '../merkle/bep52.js'
import { FrameGuard, MAX_QUEUED_SEND_BYTES, attachWire, maxFrameFor } from './framing.js'
import { LayerAssembler, useLayerExtension } from './layer.js'
import { Picker } from './picker.js'
import { Peer } from './download-peer.js'
import { pieceLength, readFully, type PieceSource } from './source.js'
import { shareLayer, verifyPieceOffThread } from './verify-pool.js'
import { PartWriter } from './part-writer.js'
import { LocalCopy, type LocalPieces } from './local-copy.js'

/** whole-piece requests kept in flight per peer (measured: see bench/pieces.ts) */
export const PIPELINE_DEPTH = 32
/** a peer that sends this many pieces failing verification is dropped */
export const MAX_BAD_PIECES = 3
/** a peer that answers none of our outstanding requests for this long is dropped */
export const REQUEST_TIMEOUT_MS = 30_000
/**
 * received pieces waiting for verification or the disk before we stop asking for more; well
 * above PIPELINE_DEPTH so that with a fast disk it never binds (when it binds, the peer whose
 * piece just arrived refills first and the others starve)
 */
export const MAX_PENDING_PIECES = 4 * PIPELINE_DEPTH
/**
 * A download whose connected peers hold none of the pieces it still needs (a holder moved or
 * changed its file, so it rejects every request) fails after this long with ERR_TIMEOUT, so the
 * caller can retry and find the content again, instead of waiting forever. With no peer at all it
 * keeps waiting: holders are added as they connect.
 */
export const STALL_TIMEOUT_MS = 5_000
/**
 * A piece a peer refused once is asked of other peers for this long before that peer is asked
 * again; a second refusal means it does not have it. (A super-seeding source refuses a piece it
 * already handed out, expecting it to come from whoever got it; if nobody can give it, the second
 * ask is served.)
 */
export const REFUSED_WAIT_MS = 2_000
/** endgame: at most this many peers are asked for the same piece at once */
export const ENDGAME_DUPLICATES = 2
/**
 * Endgame starts once every piece some peer holds is requested and at most this many requests
 * are in flight. Earlier, a peer that holds only pieces already requested elsewhere (a fellow
 * downloader early on) would get duplicates all through the transfer: measured with 8 nodes,
 * 11.4 copies uploaded in all for 7 needed.
 */
export const ENDGAME_MAX_INFLIGHT = 16

export interface DownloadOptions {
  root: Buffer
  size: number
  pieceSize?: number
  partPath: string
  /** bitfield (BitTorrent order: bit 7 of byte 0 is piece 0) of pieces verified in an earlier run; trusted */
  have?: Uint8Array
  /** piece layer if already known (verified here against root); otherwise fetched from a peer */
  layer?: Buffer | null
  /** our 20-byte wire peer id */
  peerId: Buffer
  /** drop a peer once this many bytes wait unread for it (default MAX_QUEUED_SEND_BYTES) */
  maxQueuedSendBytes?: number
  /** pieces to copy from local files instead of fetching them (the download closes it when done) */
  localPieces?: LocalPieces
}

export interface DownloadStats {
  /** pieces fetched, verified and accepted in this run */
  piecesFetched: number
  /** piece payload bytes received, including endgame duplicates and bad pieces */
  bytesFetched: number
  /** label → pieces it supplied that were accepted */
  perPeer: Map<string, number>
  /** pieces that failed verification */
  verifyFailures: number
  /** pieces copied from local files (LocalPieces), verified and accepted, and their bytes: not fetched */
  piecesReused: number
  bytesReused: number
  /** local pieces that could not be read or failed verification (then fetched) */
  reuseFailures: number
}

function toBuffer (u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength)
}

function diskError (err: unknown, what: string): SwarmError {
  if (isSwarmError(err)) return err
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SwarmError('ERR_NO_SPACE', `disk full writing ${what}`, { cause: err })
  return new SwarmError('ERR_STATE_DIR', `cannot write ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

function asSwarmError (err: unknown): SwarmError {
  return isSwarmError(err) ? err : new SwarmError('ERR_PROTOCOL', (err as Error)?.message ?? String(err), { cause: err })
}


export class Download extends EventEmitter implements PieceSource {
  readonly root: Buffer
  readonly size: number
  readonly pieceSize: number
  readonly numPieces: number
  readonly partPath: string
  readonly stats: DownloadStats = { piecesFetched: 0, bytesFetched: 0, perPeer: new Map(), verifyFailures: 0, piecesReused: 0, bytesReused: 0, reuseFailures: 0 }

  private readonly peerId: Buffer
  private readonly maxQueued: number
  private readonly infoHash: Buffer
  private readonly infoHashHex: string
  private readonly bits: Uint8Array // pieces verified AND written
  private written = 0
  private readonly picker: Picker
  private readonly peers = new Set<Peer>()
  private readonly requesters = new Map<number, Set<Peer>>()
  private layer: Buffer | null | undefined // undefined until known
  private sharedLayer: SharedArrayBuffer | null = null // the layer, for verify workers
  private readonly verifying = new Set<number>() // received, hash check under way
  private layerWaiters: Array<{ resolve: (l: Buffer | null) => void, reject: (e: Error) => void }> = []

  private fh: FileHandle | null = null
  private io = 0 // reads + writes in flight on fh
  private pendingPieces = 0 // verifying + writing
  private writer: PartWriter | null = null // writes verified pieces into fh (part-writer.ts)
  private fileClosing = false
  private serving = 0 // wires serving from us (retain/release); the finished part file stays open while > 0
  private running = false // part file open, requests may go out
  private finished = false // succeeded, failed or aborted: no more downloading
  private startPromise: Promise<void> | null = null
  private settle: { resolve: () => void, reject: (e: Error) => void } | null = null
  private fillScheduled = false
  private stallTimer: NodeJS.Timeout | null = null
  private order: Uint32Array | null = null
  private stalledSince = 0
  private readonly localCopy: LocalCopy | null

  constructor (opts: DownloadOptions) {
    super()
    this.root = opts.root
    this.size = opts.size
    this.pieceSize = opts.pieceSize ?? PIECE_SIZE
    this.numPieces = pieceCount(this.size, this.pieceSize) // validates size and pieceSize
    this.partPath = opts.partPath
    this.peerId = opts.peerId
    this.maxQueued = opts.maxQueuedSendBytes ?? MAX_QUEUED_SEND_BYTES
    this.localCopy = opts.localPieces === undefined ? null : this.newLocalCopy(opts.localPieces)
    if (this.root.length !== 32) throw new SwarmError('ERR_BAD_ARGUMENT', 'root must be 32 bytes')
    if (this.peerId.length !== 20) throw new SwarmError('ERR_BAD_ARGUMENT', 'peerId must be 20 bytes')
    this.infoHash = this.root.subarray(0, 20)
    this.infoHashHex = this.infoHash.toString('hex')

    const nbytes = Math.ceil(this.numPieces / 8)
    this.bits = new Uint8Array(nbytes)
    if (opts.have !== undefined) {
      if (opts.have.length !== nbytes) throw new SwarmError('ERR_BAD_ARGUMENT', `have bitfield is ${opts.have.length} bytes, expected ${nbytes}`)
      this.bits.set(opts.have)
      if (this.numPieces % 8 !== 0) this.bits[nbytes - 1] &= (0xff << (8 - this.numPieces % 8)) & 0xff
      for (let i = 0; i < this.numPieces; i++) if (this.has(i)) this.written++
    }
    this.picker = new Picker(this.numPieces, (i) => this.has(i))

    if (this.numPieces <= 1) {
      this.layer = null
    } else if (opts.layer !== undefined && opts.layer !== null && opts.layer.length > 0) {
      if (!verifyPieceLayer(opts.layer, this.root, this.size, this.pieceSize)) {
        throw new SwarmError('ERR_VERIFY_FAILED', 'the given piece layer does not match the root')
      }
      this.layer = opts.layer
      this.sharedLayer = shareLayer(opts.layer)
    }
  }

  // ---- PieceSource

  has (index: number): boolean {
    return index >= 0 && index < this.numPieces && (this.bits[index >> 3] & (0x80 >> (index & 7))) !== 0
  }

  complete (): boolean { return this.written === this.numPieces }
  /** Pieces verified and written so far. */
  get verifiedCount (): number { return this.written }

  haveBitfield (): Uint8Array { return this.bits.slice() }

  async readPiece (index: number): Promise<Buffer> {
    if (!this.has(index)) throw new SwarmError('ERR_BAD_ARGUMENT', `piece ${index} is not held`)
    const fh = this.fh
    if (fh === null || this.fileClosing) throw new SwarmError('ERR_CLOSED', 'download is not open')
    const len = pieceLength(index, this.size, this.pieceSize)
    const buf = Buffer.allocUnsafe(len)
    this.io++
    try {
      await readFully(fh, buf, index * this.pieceSize, this.partPath)
      return buf
    } finally {
      this.io--
      this.maybeCloseFile()
    }
  }

  retain (): void { this.serving++ }

  release (): void {
    if (--this.serving > 0 || !this.finished) return
    this.fileClosing = true // finished and nobody is served from the part file any more
    this.maybeCloseFile()
  }

  async pieceLayer (): Promise<Buffer | null> {
    if (this.layer !== undefined) return this.layer
    if (this.finished) throw new SwarmError('ERR_CLOSED', 'download closed without a piece layer')
    return await new Promise((resolve, reject) => { this.layerWaiters.push({ resolve, reject }) })
  }

  // ---- lifecycle

  /** Resolves once every piece is verified, written and fsync'd to partPath. */
  start (): Promise<void> {
    if (this.startPromise !== null) return this.startPromise
    if (this.finished) {
      this.startPromise = Promise.reject(new SwarmError('ERR_CLOSED', 'download was aborted'))
      return this.startPromise
    }
    this.startPromise = new Promise<void>((resolve, reject) => { this.settle = { resolve, reject } })
    void this.openPart()
    return this.startPromise
  }

  /**
   * Stops downloading: start() rejects with ERR_CLOSED, peers are dropped, the part file is
   * closed (as it is: nothing is truncated). After start() resolved it releases the part file
   * at once; otherwise that happens by itself when the last wire serving from it closes.
   */
  abort (): void {
    if (!this.finished) {
      this.fail(new SwarmError('ERR_CLOSED', 'download was aborted'))
      return
    }
    this.closePeers()
    this.fileClosing = true
    this.maybeCloseFile()
  }

  /** Stops an unfinished download with this error (start() rejects with it); like abort() otherwise. */
  abortWith (err: SwarmError): void {
    if (!this.finished) this.fail(err); else this.abort()
  }

  /** alias of abort(): release the part file once the caller has taken the finished file over */
  close (): void { this.abort() }

  private async openPart (): Promise<void> {
    let fh: FileHandle
    try {
      fh = await open(this.partPath, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644)
    } catch (err) {
      this.fail(diskError(err, this.partPath))
      return
    }
    try {
      const st = await fh.stat()
      // size it: extending leaves verified data alone; bytes past the end are not ours
      if (st.isFile() && st.size !== this.size) await fh.truncate(this.size)
    } catch (err) {
      await fh.close().catch(() => {})
      this.fail(diskError(err, this.partPath))
      return
    }
    if (this.finished) {
      await fh.close().catch(() => {})
      return
    }
    this.fh = fh
    this.running = true
    this.stallTimer = setInterval(() => this.checkStall(), STALL_TIMEOUT_MS / 5)
    this.stallTimer.unref()
    this.checkDone()
    if (this.layer !== undefined) this.localCopy?.start(this.layer)
    this.fillAll()
  }

  /** Fails the download once no connected peer has held a needed piece for STALL_TIMEOUT_MS. */
  private checkStall (): void {
    if (this.finished || this.layer === undefined) return
    const stuck = this.peers.size > 0 && this.requesters.size === 0 && this.verifying.size === 0 && this.localCopy?.busy !== true &&
      ![...this.peers].some(p => { for (let i = 0; i < this.numPieces; i++) if (p.has(i) && !this.has(i)) return true; return false })
    if (!stuck) { this.stalledSince = 0; return }
    if (this.stalledSince === 0) { this.stalledSince = Date.now(); return }
    if (Date.now() - this.stalledSince >= STALL_TIMEOUT_MS) {
      this.fail(new SwarmError('ERR_TIMEOUT', `no connected holder has the remaining ${this.numPieces - this.written} pieces`))
    }
  }

  private fail (err: SwarmError): void {
    if (this.finished) return
    this.finished = true
    if (this.stallTimer !== null) clearInterval(this.stallTimer)
    this.running = false
    this.closePeers()
    const waiters = this.layerWaiters
    this.layerWaiters = []
    for (const w of waiters) w.reject(err)
    this.fileClosing = true
    this.maybeCloseFile()
    this.localCopy?.stop()
    const settle = this.settle
    this.settle = null
    if (settle !== null) settle.reject(err)
  }

  private checkDone (): void {
    if (this.finished || !this.running || this.written < this.numPieces) return
    this.finished = true
    if (this.stallTimer !== null) clearInterval(this.stallTimer)
    this.closePeers()
    this.localCopy?.stop()
    const fh = this.fh as FileHandle
    this.io++
    fh.sync().then(
      () => {
        this.io--
        if (this.serving === 0) this.fileClosing = true // keep it open only for wires still serving from it
        this.maybeCloseFile()
        const settle = this.settle
        this.settle = null
        settle?.resolve()
      },
      (err) => {
        this.io--
        this.fileClosing = true
        this.maybeCloseFile()
        const settle = this.settle
        this.settle = null
        settle?.reject(diskError(err, this.partPath))
      }
    )
  }

  private maybeCloseFile (): void {
    if (!this.fileClosing || this.io > 0 || this.fh === null) return
    const fh = this.fh
    this.fh = null
    this.running = false
    void fh.sync().catch(() => {}).finally(() => { void fh.close().catch(() => {}) })
  }

  private closePeers (): void {
    for (const p of [...this.peers]) p.close()
  }

  // ---- peers

  /** Adds an outbound wire to a holder (full or partial). Any time; after the end it just closes the stream. */
  addPeer (stream: Duplex, label: string): void {
    if (this.finished) {
      stream.destroy()
      return
    }
    const wire = new Wire()
    const peer = new Peer(label, wire, this.numPieces)
    useLayerExtension(wire, {
      onReady: () => { this.guarded(peer, () => this.onLayerReady(peer)) },
      onMessage: (msg) => { this.guarded(peer, () => this.onLayerMessage(peer, msg)) }
    })
    this.peers.add(peer)
    const guard = new FrameGuard(maxFrameFor(this.pieceSize, this.numPieces))
    peer.close = attachWire(stream, wire, guard, (err) => { this.onPeerClosed(peer, err) }, () => this.maxQueued)
    if (peer.closed) return
    wire.setTimeout(REQUEST_TIMEOUT_MS, true)
    wire.on('handshake', (infoHash: string) => {
      this.guarded(peer, () => {
        if (infoHash !== this.infoHashHex) throw new SwarmError('ERR_PROTOCOL', `${label} answered for other content`)
      })
    })
    wire.on('bitfield', (bf) => { this.guarded(peer, () => this.onBitfield(peer, bf.buffer)) })
    wire.on('have', (index: number) => { this.guarded(peer, () => this.onHave(peer, index)) })
    wire.on('have-all', () => { this.guarded(peer, () => this.onHaveAll(peer)) })
    wire.on('unchoke', () => { this.guarded(peer, () => this.fill(peer)) })
    wire.on('timeout', () => { peer.close(new SwarmError('ERR_TIMEOUT', `${label} stopped answering requests`)) })
    this.guarded(peer, () => peer.sendHandshake(this.infoHash, this.peerId))
  }

  /** our handlers run inside the wire's parser: never let one throw into it */
  private guarded (peer: Peer, fn: () => void): void {
    if (peer.closed) return
    try {
      fn()
    } catch (err) {
      peer.close(asSwarmError(err))
    }
  }

  private onPeerClosed (peer: Peer, err?: Error): void {
    peer.closed = true
    this.peers.delete(peer)
    for (const i of peer.inflight) this.dropRequester(i, peer)
    peer.inflight.clear()
    for (let i = 0; i < this.numPieces; i++) if (peer.has(i)) this.picker.removeHolder(i)
    peer.bits.fill(0)
    if (this.finished) return
    this.emit('peer-error', peer.label, err ?? new SwarmError('ERR_CLOSED', `${peer.label} disconnected`))
    this.scheduleFill()
  }

  private onBitfield (peer: Peer, buf: Uint8Array): void {
    if (buf.length !== peer.bits.length) {
      throw new SwarmError('ERR_PROTOCOL', `${peer.label} sent a ${buf.length}-byte bitfield, expected ${peer.bits.length}`)
    }
    for (let i = 0; i < this.numPieces; i++) if (peer.has(i)) this.picker.removeHolder(i)
    peer.bits.set(buf)
    let wanted = false
    for (const i of this.pieceOrder()) {
      if (peer.has(i)) {
        this.picker.addHolder(i)
        if (!wanted && !this.picker.isDone(i)) wanted = true
      }
    }
    if (this.numPieces % 8 !== 0) peer.bits[peer.bits.length - 1] &= (0xff << (8 - this.numPieces % 8)) & 0xff
    if (wanted) peer.sendInterested()
    this.fill(peer)
  }

  /**
   * The order in which a holder's pieces enter the picker, and so the order equally rare pieces
   * are asked for: random per download, so downloaders of one file start on different pieces and
   * have something to trade, instead of all asking the source for piece 0, 1, 2… at once.
   */
  private pieceOrder (): Uint32Array {
    if (this.order === null) {
      const o = new Uint32Array(this.numPieces)
      for (let i = 0; i < o.length; i++) o[i] = i
      for (let i = o.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); const t = o[i]!; o[i] = o[j]!; o[j] = t }
      this.order = o
    }
    return this.order
  }

  private onHaveAll (peer: Peer): void {
    for (const i of this.pieceOrder()) {
      if (!peer.has(i)) { peer.set(i); this.picker.addHolder(i) }
    }
    if (this.picker.remaining > 0) peer.sendInterested()
    this.fill(peer)
  }

  private onHave (peer: Peer, index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numPieces) {
      throw new SwarmError('ERR_PROTOCOL', `${peer.label} announced piece ${index} of ${this.numPieces}`)
    }
    if (peer.has(index)) return
    peer.set(index)
    this.picker.addHolder(index)
    if (!this.picker.isDone(index)) {
      peer.sendInterested()
      this.fill(peer)
    }
  }

  // ---- piece layer

  private onLayerReady (peer: Peer): void {
    if (this.layer !== undefined || peer.layer !== null) return
    peer.layer = new LayerAssembler(this.numPieces * 32)
    peer.sendLayerRequest()
  }

  private onLayerMessage (peer: Peer, msg: Buffer): void {
    if (this.layer !== undefined || peer.layer === null) return // not asked, or already have one
    const got = peer.layer.push(msg)
    if (got === null) return
    peer.layer = null
    if (got === 'none') return
    if (!verifyPieceLayer(got, this.root, this.size, this.pieceSize)) {
      throw new SwarmError('ERR_VERIFY_FAILED', `${peer.label} sent a piece layer that does not match the root`)
    }
    this.layer = got
    this.sharedLayer = shareLayer(got)
    for (const p of this.peers) p.layer = null
    const waiters = this.layerWaiters
    this.layerWaiters = []
    for (const w of waiters) w.resolve(got)
    if (this.running) this.localCopy?.start(got)
    this.fillAll()
  }

  // ---- local pieces

  private newLocalCopy (local: LocalPieces): LocalCopy {
    const dl = this // the host reads `finished` live, through a getter
    return new LocalCopy({
      numPieces: this.numPieces,
      get stopped () { return dl.finished },
      pieceLength: (i) => pieceLength(i, this.size, this.pieceSize),
      wanted: (i) => this.picker.isIdle(i),
      reserve: (i) => { this.picker.markRequested(i) },
      verify: async (i, piece) => {
        this.pendingPieces++
        try {
          const v = await verifyPieceOffThread(piece, i, this.layer ?? null, this.sharedLayer, this.root, this.size, this.pieceSize)
          return v.ok ? v.piece : null
        } catch { return null } finally { this.pendingPieces-- }
      },
      accept: async (i, piece) => {
        this.picker.markDone(i)
        this.stats.piecesReused++
        this.stats.bytesReused += piece.length
        this.pendingPieces++ // write() counts it back
        await this.write(i, piece)
      },
      giveBack: (i) => {
        this.stats.reuseFailures++
        this.picker.release(i)
        this.scheduleFill()
      },
      onError: (err) => this.emit('reuse-error', err),
      onPlanned: () => this.fillAll()
    }, local)
  }

  // ---- requests

  private scheduleFill (): void {
    if (this.fillScheduled) return
    this.fillScheduled = true
    setImmediate(() => {
      this.fillScheduled = false
      this.fillAll()
    })
  }

  private fillAll (): void {
    for (const p of this.peers) this.guarded(p, () => this.fill(p))
  }

  /** keep PIPELINE_DEPTH requests in flight on this peer */
  private fill (peer: Peer): void {
    if (!this.running || this.finished || peer.closed || this.layer === undefined || this.localCopy?.planning === true || peer.wire.peerChoking) return
    while (peer.inflight.size < PIPELINE_DEPTH && this.pendingPieces < MAX_PENDING_PIECES) {
      const now = Date.now()
      let i = this.picker.pick((j) => peer.has(j) && !peer.badPieces.has(j) && this.mayAskAgain(peer, j, now))
      if (i === -1 && this.picker.idleHeld === 0 && this.requesters.size <= ENDGAME_MAX_INFLIGHT) i = this.pickEndgame(peer)
      if (i === -1) return
      this.request(peer, i)
      if (!peer.inflight.has(i)) return // the wire refused synchronously (closing)
    }
  }

  /**
   * A piece `peer` refused once is asked of it again only after REFUSED_WAIT_MS, and only if no
   * other peer that holds it is still willing (has not refused it too). Every complete holder
   * hands pieces out in rounds (super-seeding), so at the tail all of them may have refused a
   * piece once: then each is asked again rather than none ever.
   */
  private mayAskAgain (peer: Peer, index: number, now: number): boolean {
    const until = peer.refusedUntil.get(index)
    if (until === undefined) return true
    if (now < until) return false
    for (const p of this.peers) {
      if (p !== peer && !p.closed && p.has(index) && !p.badPieces.has(index) && !p.refusedUntil.has(index)) return false
    }
    return true
  }

  /** nothing idle for this peer: duplicate a piece that is already requested elsewhere */
  private pickEndgame (peer: Peer): number {
    let best = -1
    let bestCount = ENDGAME_DUPLICATES
    for (const [i, set] of this.requesters) {
      if (set.size >= bestCount || set.has(peer) || !peer.has(i) || peer.badPieces.has(i)) continue
      best = i
      bestCount = set.size
      if (bestCount <= 1) break
    }
    return best
  }

  private request (peer: Peer, index: number): void {
    this.picker.markRequested(index)
    let set = this.requesters.get(index)
    if (set === undefined) {
      set = new Set()
      this.requesters.set(index, set)
    }
    set.add(peer)
    peer.inflight.add(index)
    peer.sendRequest(index, pieceLength(index, this.size, this.pieceSize), (err, buf) => {
      // called inside the wire's parser (piece, reject, choke) or on close: never throw into it
      try {
        this.onPieceResult(peer, index, err, buf)
      } catch (e) {
        peer.close(asSwarmError(e))
      }
    })
  }

  /** peer no longer asked for index; if nobody is (and no copy is being verified), the piece goes back to the pool */
  private dropRequester (index: number, peer: Peer): void {
    const set = this.requesters.get(index)
    if (set === undefined) return
    set.delete(peer)
    if (set.size === 0) {
      this.requesters.delete(index)
      if (!this.verifying.has(index)) this.picker.release(index)
    }
  }

  private onPieceResult (peer: Peer, index: number, err: Error | null, buf: Uint8Array | null | undefined): void {
    if (!peer.inflight.delete(index)) return // we cancelled it, or the peer is gone
    if (err !== null || buf === null || buf === undefined) {
      this.dropRequester(index, peer)
      if (this.finished) return
      if (err?.message === 'request was rejected' && peer.has(index)) {
        if (peer.refusedUntil.has(index)) {
          // refused twice: the holder cannot serve it (e.g. its file changed): treat as not held
          peer.refusedUntil.delete(index)
          peer.clear(index)
          this.picker.removeHolder(index)
        } else {
          // refused once (a source handing each piece out once first): others are asked first for a while
          peer.refusedUntil.set(index, Date.now() + REFUSED_WAIT_MS)
          setTimeout(() => this.scheduleFill(), REFUSED_WAIT_MS + 10).unref()
        }
      }
      this.scheduleFill()
      return
    }
    const piece = toBuffer(buf)
    this.stats.bytesFetched += piece.length
    if (this.finished || this.picker.isDone(index) || this.verifying.has(index)) {
      // an endgame duplicate that beat its cancel
      this.dropRequester(index, peer)
      this.guarded(peer, () => this.fill(peer))
      return
    }
    this.verifying.add(index)
    this.pendingPieces++
    this.dropRequester(index, peer)
    verifyPieceOffThread(piece, index, this.layer ?? null, this.sharedLayer, this.root, this.size, this.pieceSize).then(
      ({ ok, piece }) => { this.onVerified(peer, index, ok, piece) },
      () => { this.onVerified(peer, index, null, null) }
    )
    this.guarded(peer, () => this.fill(peer))
  }

  /** ok: verdict, or null if the check itself failed (a verify worker died) */
  private onVerified (peer: Peer, index: number, ok: boolean | null, piece: Buffer | null): void {
    this.verifying.delete(index)
    if (this.finished) {
      this.pendingPieces--
      return
    }
    if (ok !== true || piece === null) {
      this.pendingPieces--
      if (ok === false && peer.bad < MAX_BAD_PIECES) { // verdicts still arriving from a dropped peer are not counted
        this.stats.verifyFailures++
        peer.bad++
        peer.badPieces.add(index)
        if (peer.bad >= MAX_BAD_PIECES) {
          peer.close(new SwarmError('ERR_VERIFY_FAILED', `${peer.label} sent ${peer.bad} pieces that failed verification`))
        }
      }
      if (!this.requesters.has(index)) this.picker.release(index)
      this.scheduleFill()
      return
    }
    this.picker.markDone(index)
    this.stats.piecesFetched++
    this.stats.perPeer.set(peer.label, (this.stats.perPeer.get(peer.label) ?? 0) + 1)
    const others = this.requesters.get(index)
    if (others !== undefined) {
      this.requesters.delete(index)
      for (const p of others) {
        p.inflight.delete(index)
        this.guarded(p, () => p.sendCancel(index, piece.length))
      }
    }
    void this.write(index, piece)
    this.scheduleFill()
  }

  // ---- disk

  /** Resolves once written (or the download failed over it); never rejects. See part-writer.ts. */
  private write (index: number, piece: Buffer): Promise<void> {
    this.io++
    this.writer ??= new PartWriter(this.fh as FileHandle, this.pieceSize, {
      written: (i) => {
        this.pendingPieces--
        this.io--
        this.bits[i >> 3] |= 0x80 >> (i & 7)
        this.written++
        this.emit('verified', i)
        this.emit('have', i)
        if (this.pendingPieces === MAX_PENDING_PIECES - 1) this.scheduleFill()
      },
      runDone: () => {
        this.maybeCloseFile()
        this.checkDone()
      },
      failed: (err, lost) => {
        this.pendingPieces -= lost
        this.io -= lost
        this.fail(diskError(err, this.partPath))
        this.maybeCloseFile()
      }
    })
    return this.writer.write(index, piece)
  }
}
