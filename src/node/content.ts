// The content side of a node: fetching files through the piece exchange (one Download per
// (root, size), at most MAX_CONCURRENT_FETCHES at once, every connected holder of the share added
// as a peer, the record of verified pieces kept across restarts) and choosing what to serve a
// peer's piece stream from (a download in progress, or an indexed local file).
//
// Who tracks what: downloads in flight and the open files being served live here; sessions and
// shares are the node's (read through ContentHost); the Download owns its part file.
import * as fs from 'node:fs'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { CATALOG_ID } from '../jobs/catalog.js'
import type { IndexDb } from '../store/db.js'
import type { Share } from '../sync/share.js'
import { type Entry, sameLocal } from '../model/entry.js'
import { STREAM_PIECES, STREAM_PIECES_DEFLATE, type PeerSession } from './session.js'
import { deflateDuplex } from '../transport/deflate.js'
import { Download } from '../swarm/download.js'
import type { LocalPieces } from '../swarm/local-copy.js'
import { LocalPieceFinder } from './local-pieces.js'
import { PIECE_SIZE } from '../merkle/bep52.js'
import { FileSource, type PieceSource } from '../swarm/source.js'
import type { BlobStore } from '../store/blob-store.js'
import { hashFile } from '../merkle/hash-file.js'
import { SwarmError, isSwarmError } from '../errors.js'

/** A piece stream's reads that return little wait this long for more (transport/types.ts StreamOptions). */
const BULK_READ_DELAY_MS = 2
/** How often the bitfield of an interrupted download is saved, at most. */
const PARTIAL_SAVE_MS = 200
/** Files kept open for serving at once; the least recently opened is closed past this. */
const MAX_OPEN_SOURCES = 64
/** A piece stream that arrives before the peer's SHARES message waits this long for it. */
const SHARES_WAIT_MS = 5000
/** A piece stream for content we do not have yet waits this long for our own download of it to start. */
const WANT_WAIT_MS = 3000
/**
 * Files fetched through the piece exchange at once, across all shares. Each download holds a
 * part file, a bitfield and picker state sized by the file, so a peer announcing thousands of
 * big files must not make us open thousands; the rest wait their turn.
 */
export const MAX_CONCURRENT_FETCHES = 8
/** Blob fetches (the jobs) have a pool of their own: no job, and no peer's FETCH, can hold up a share. */
export const MAX_CONCURRENT_BLOB_FETCHES = 8
/** A blob download with no new verified piece for this long fails (nobody has what it lacks); its verified pieces are kept. */
export const BLOB_NO_PROGRESS_MS = 20_000

/**
 * share: '' for a blob of the jobs' store (path is then its name). pieces/bytes came over the
 * network; reusedPieces/reusedBytes were copied from files already on this node (local-pieces.ts).
 */
export interface FetchedEvent {
  share: string, path: string, root: string, pieces: number, bytes: number, perPeer: Record<string, number>,
  reusedPieces: number, reusedBytes: number,
  /** From the moment the download got its slot until its last piece was verified. */
  ms: number
}

/** A download in progress, for status and progress lines. */
export interface TransferInfo {
  share: string, path: string, size: number,
  /** Bytes verified so far (fetched, reused or kept from an earlier run). */
  bytes: number,
  /** Bytes verified since this run of the download started, and when it started (ms epoch). */
  bytesThisRun: number, startedAt: number,
  holders: number
}

/** What every download has done since the node started: the metrics' counters. */
export interface ContentTotals {
  piecesFetched: number, bytesFetched: number, piecesReused: number, bytesReused: number,
  verifyFailures: number, downloadsDone: number, downloadsFailed: number
}

export interface ContentHost {
  readonly db: IndexDb
  readonly shares: Map<string, Share>
  readonly blobs: BlobStore
  /** Ask holders for deflated piece streams (the --compress toggle). */
  readonly compress: boolean
  readonly wirePeerId: Buffer
  readonly stopped: boolean
  sessions (): Iterable<PeerSession>
  onFetched (e: FetchedEvent): void
  /** A download got its slot and begins (progress reporting starts polling). */
  onStarted (): void
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

/** What one download is for: which peers may hold it (and may be served from it), and where it ends up. */
interface Scope {
  /** The share the content is for; '' for the jobs' blob store. */
  share: string
  slots: SlotPool
  /** The key its verified pieces are recorded under between runs (partials table). */
  partialKey: Buffer
  /** Fail after this long without a new verified piece (0: never; a share retries with backoff instead). */
  noProgressMs: number
  /** May this peer hold the content, and be served from our download of it? */
  holds: (s: PeerSession) => boolean
  partPath: string
  /** Takes the verified part file over (renames it away); returns the final path. */
  finish: (partPath: string) => string
  /** Where pieces held locally may be copied from instead of fetched. */
  localPieces: () => LocalPieces
}

interface Slot {
  dl: Download | null, done: Promise<string>, scope: Scope, holders: Set<PeerSession>, waiters: number, bytesFetched: number,
  path: string, size: number, startedAt: number, verifiedAtStart: number
}

/** A pool of download slots: at most `max` downloads hold their state at once, the rest wait in order. */
class SlotPool {
  private active = 0
  private readonly queue: Array<() => void> = []
  constructor (private readonly max: number) {}
  async take (): Promise<void> {
    if (this.active < this.max) { this.active++; return }
    await new Promise<void>(resolve => this.queue.push(resolve))
  }

  give (): void {
    const next = this.queue.shift()
    if (next !== undefined) next(); else this.active--
  }
}

export class ContentExchange {
  /** Fetches asked for, by scope, size and root; `dl` is null while the fetch waits for a slot. */
  private readonly downloads = new Map<string, Slot>()
  /** Open files being served, by root: one file handle per file however many peers read it. */
  private readonly sources = new Map<string, FileSource>()
  /** Emits 'started' whenever a download gets its slot (piece streams waiting for it look again). */
  private readonly started = new EventEmitter().setMaxListeners(0)
  private readonly shareSlots = new SlotPool(MAX_CONCURRENT_FETCHES)
  private readonly blobSlots = new SlotPool(MAX_CONCURRENT_BLOB_FETCHES)
  /** Bytes of piece data uploaded, by hex root, for the roots someone watches (a bcast reports its source's upload). */
  private readonly uploaded = new Map<string, { bytes: number, watchers: number }>()
  readonly totals: ContentTotals = { piecesFetched: 0, bytesFetched: 0, piecesReused: 0, bytesReused: 0, verifyFailures: 0, downloadsDone: 0, downloadsFailed: 0 }

  constructor (private readonly host: ContentHost) {}

  /** A peer's SHARES arrived: downloads in flight gain it as a holder if it may hold their content. */
  onShares (session: PeerSession): void {
    for (const { dl, scope, holders } of this.downloads.values()) {
      if (dl !== null && scope.holds(session) && !holders.has(session)) { holders.add(session); void this.addHolder(dl, session) }
    }
  }

  stop (): void {
    for (const { dl } of this.downloads.values()) dl?.abort()
    for (const s of this.sources.values()) void s.close()
    this.sources.clear()
  }

  /** Fetches the content of `entry` into the share's tmp dir from every connected holder; resolves with its path. */
  fetch (share: Share, entry: Entry, _from: string): Promise<string> {
    const key = share.id + ':' + entry.size + ':' + entry.root.toString('hex')
    return this.run(key, entry, {
      share: share.id,
      slots: this.shareSlots,
      partialKey: entry.root,
      noProgressMs: 0,
      holds: s => s.remoteShares.has(share.id),
      partPath: join(share.disk.tmpDir, `${entry.root.toString('hex')}-${entry.size}.part`),
      // Handed over under a name of its own: a later fetch of the same content starts a new part
      // file and can never truncate this one while it waits to be installed.
      finish: part => { const done = share.disk.tempPath(); fs.renameSync(part, done); return done },
      localPieces: () => new LocalPieceFinder(this.host, share, entry.path)
    }).done
  }

  /**
   * Fetches a blob of the jobs' store from every connected node (any node may hold blobs) and
   * files it in the store. Callers that no longer want it call the returned `release`; the
   * download stops (its verified pieces kept for a later fetch) when nobody wants it any more.
   */
  fetchBlob (root: Buffer, size: number, name: string): { done: Promise<number>, release: () => void } {
    const blobs = this.host.blobs
    const slot = this.run('blob:' + size + ':' + root.toString('hex'), { path: name, root, size }, {
      share: '',
      slots: this.blobSlots,
      partialKey: blobPartialKey(root, size),
      noProgressMs: BLOB_NO_PROGRESS_MS,
      holds: (s) => s.remoteShares.has(CATALOG_ID),
      partPath: blobs.partPath(root, size),
      finish: part => { const tmp = blobs.tempPath(); fs.renameSync(part, tmp); return blobs.adopt(tmp, root, size).path },
      localPieces: () => new LocalPieceFinder(this.host, null)
    })
    // Each caller has a `done` of its own: one that lets go stops waiting at once, even while
    // others still want the download (it stops only when nobody does).
    let released = false
    let letGo: (err: Error) => void = () => {}
    const mine = new Promise<number>((resolve, reject) => {
      letGo = reject
      slot.done.then(() => resolve(slot.bytesFetched), reject)
    })
    mine.catch(() => {})
    return {
      done: mine,
      release: () => {
        if (released) return
        released = true
        letGo(new SwarmError('ERR_ABORTED', `fetch of ${name} no longer wanted`))
        if (--slot.waiters === 0) slot.dl?.abort()
      }
    }
  }

  /** Verified pieces of a blob download in progress (for progress reports and holdings), or undefined. */
  blobBits (root: Buffer, size: number, withBitfield = true): { have: number, bitfield: Buffer, peers: number } | undefined {
    const slot = this.downloads.get('blob:' + size + ':' + root.toString('hex'))
    const dl = slot?.dl
    if (dl == null) return undefined
    const bits = withBitfield ? dl.haveBitfield() : null   // already a copy
    return { have: dl.verifiedCount, bitfield: bits === null ? Buffer.alloc(0) : Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength), peers: slot!.holders.size }
  }

  /** The downloads holding a slot now (those waiting for one are not listed). */
  transfers (): TransferInfo[] {
    const out: TransferInfo[] = []
    for (const slot of this.downloads.values()) {
      const dl = slot.dl
      if (dl === null) continue
      const bytes = Math.min(slot.size, dl.verifiedCount * PIECE_SIZE)
      out.push({
        share: slot.scope.share, path: slot.path, size: slot.size, bytes,
        bytesThisRun: Math.max(0, bytes - slot.verifiedAtStart), startedAt: slot.startedAt, holders: slot.holders.size
      })
    }
    return out
  }

  /** Counts the piece bytes uploaded for `root` from now until stop(); only watched roots are counted. */
  watchUploads (root: Buffer): { bytes: () => number, stop: () => void } {
    const k = root.toString('hex')
    const w = this.uploaded.get(k) ?? { bytes: 0, watchers: 0 }
    w.watchers++
    this.uploaded.set(k, w)
    const start = w.bytes
    let stopped = false
    return {
      bytes: () => w.bytes - start,
      stop: () => { if (stopped) return; stopped = true; if (--w.watchers === 0) this.uploaded.delete(k) }
    }
  }

  countUpload (root: Buffer, bytes: number): void {
    if (this.uploaded.size === 0) return
    const w = this.uploaded.get(root.toString('hex'))
    if (w !== undefined) w.bytes += bytes
  }

  private run (key: string, entry: { path: string, root: Buffer, size: number }, scope: Scope): Slot {
    const running = this.downloads.get(key)
    if (running !== undefined) { running.waiters++; return running }
    const partPath = scope.partPath
    const holders = new Set<PeerSession>()
    const slot: Slot = { dl: null, done: Promise.resolve(''), scope, holders, waiters: 1, bytesFetched: 0, path: entry.path, size: entry.size, startedAt: 0, verifiedAtStart: 0 }
    const pkey = scope.partialKey
    slot.done = (async () => {
      // The Download (bitfield, picker state sized by the claimed size) exists only once a slot is free.
      await scope.slots.take()
      let dl: Download | null = null
      let saveTimer: NodeJS.Timeout | null = null
      let watchdog: NodeJS.Timeout | null = null
      let forget = false   // drop the record of verified pieces (done, or found wrong)
      try {
        if (this.host.stopped) throw new SwarmError('ERR_CLOSED', 'node stopping')
        if (slot.waiters === 0) throw new SwarmError('ERR_ABORTED', `fetch of ${entry.path} no longer wanted`)
        const d = dl = slot.dl = this.newDownload(entry, partPath, pkey, scope)
        slot.startedAt = Date.now()
        slot.verifiedAtStart = Math.min(entry.size, d.verifiedCount * PIECE_SIZE)
        this.started.emit('started')
        this.host.onStarted()
        const resumed = d.complete() || d.haveBitfield().some(b => b !== 0)
        // An interrupted download picks up where it stopped: say so, or it looks like a slow start.
        if (resumed) this.host.log('info', `resuming ${entry.path}: ${d.verifiedCount} of ${d.numPieces} pieces verified in an earlier run`)
        const saveBitfield = () => { saveTimer = null; if (!this.host.stopped && !forget) this.host.db.putPartial(pkey, d.haveBitfield()) }
        let lastPiece = Date.now()
        d.on('verified', () => { lastPiece = Date.now(); if (saveTimer === null) saveTimer = setTimeout(saveBitfield, PARTIAL_SAVE_MS) })
        if (scope.noProgressMs > 0) {
          // Nobody has what is missing (every holder gone, or none ever had it): give the slot back.
          watchdog = setInterval(() => {
            if (Date.now() - lastPiece > scope.noProgressMs) d.abortWith(new SwarmError('ERR_NO_HOLDER', `no connected node has the remaining ${d.numPieces - d.verifiedCount} of ${d.numPieces} pieces of ${entry.path}`))
          }, Math.min(1000, scope.noProgressMs)).unref()
        }
        d.on('peer-error', (label: string, err: Error) => this.host.log('warn', `fetching ${entry.path} from ${label}: ${err.message}`))
        d.on('reuse-error', (err: Error) => this.host.log('warn', `looking for local pieces of ${entry.path}: ${err.message}`))
        for (const s of this.host.sessions()) if (s.ready && scope.holds(s)) { holders.add(s); void this.addHolder(d, s) }
        await d.start()
        slot.bytesFetched = d.stats.bytesFetched
        this.host.onFetched({
          share: scope.share, path: entry.path, root: entry.root.toString('hex'), pieces: d.stats.piecesFetched, bytes: d.stats.bytesFetched,
          perPeer: Object.fromEntries(d.stats.perPeer), reusedPieces: d.stats.piecesReused, reusedBytes: d.stats.bytesReused,
          ms: Date.now() - slot.startedAt
        })
        const layer = await d.pieceLayer()
        // Pieces kept from an earlier run were verified then, but the disk may not have kept them
        // (a power cut after the bitfield was saved): a resumed file is checked whole before use.
        if (resumed) await checkWholeFile(partPath, entry)
        if (layer !== null) this.host.db.putLayer(entry.root, layer)
        forget = true
        return scope.finish(partPath)
      } catch (err) {
        if (isSwarmError(err, 'ERR_VERIFY_FAILED')) { fs.rmSync(partPath, { force: true }); forget = true }   // start over
        throw err
      } finally {
        if (saveTimer !== null) clearTimeout(saveTimer)
        if (watchdog !== null) clearInterval(watchdog)
        // On success the record goes with the part file (about to be renamed away): saved after
        // that, it would make the next download of this root trust a file that is not there.
        // Nothing verified yet: no record and no part file (a FETCH for content nobody has
        // leaves nothing behind).
        if (!forget && dl !== null && dl.verifiedCount === 0 && !this.host.stopped) { forget = true; fs.rmSync(partPath, { force: true }) }
        if (dl !== null) this.count(dl, forget && dl.complete())
        if (forget) this.host.db.deletePartial(pkey)
        else if (dl !== null && !this.host.stopped) this.host.db.putPartial(pkey, dl.haveBitfield())
        this.downloads.delete(key)
        scope.slots.give()
      }
    })()
    this.downloads.set(key, slot)
    return slot
  }

  private count (dl: Download, done: boolean): void {
    const t = this.totals
    t.piecesFetched += dl.stats.piecesFetched
    t.bytesFetched += dl.stats.bytesFetched
    t.piecesReused += dl.stats.piecesReused
    t.bytesReused += dl.stats.bytesReused
    t.verifyFailures += dl.stats.verifyFailures
    if (done) t.downloadsDone++; else t.downloadsFailed++
  }

  /** A Download for `entry`, resuming from a part file only if it is there, whole-sized, with a matching record. */
  private newDownload (entry: { path: string, root: Buffer, size: number }, partPath: string, pkey: Buffer, scope: Scope): Download {
    // A file of one piece has no layer to compare pieces by (the share copies equal whole files itself).
    const localPieces = entry.size > PIECE_SIZE ? scope.localPieces() : undefined   // opens nothing until read
    const opts = { root: entry.root, size: entry.size, partPath, peerId: this.host.wirePeerId }
    const have = this.host.db.getPartial(pkey)
    const layer = this.host.db.getLayer(entry.root)
    const part = fs.statSync(partPath, { throwIfNoEntry: false })
    const resumable = have !== null && part !== undefined && part.isFile() && part.size === entry.size
    if (have !== null && !resumable) this.host.db.deletePartial(pkey)
    if (!resumable) fs.rmSync(partPath, { force: true })
    try {
      return new Download({ ...opts, have: resumable ? have : undefined, layer, localPieces })
    } catch (err) {
      // A record that does not fit this (root, size): drop it and start clean.
      if (layer === null && !resumable) throw err
      this.host.log('warn', `ignoring saved download state for ${entry.path}: ${(err as Error).message}`)
      this.host.db.deletePartial(pkey)
      fs.rmSync(partPath, { force: true })
      return new Download({ ...opts, layer: null, localPieces })
    }
  }

  private async addHolder (dl: Download, session: PeerSession): Promise<void> {
    try {
      const stream = await session.conn.openStream({ bulkReadDelayMs: BULK_READ_DELAY_MS })
      stream.write(Buffer.from([this.host.compress ? STREAM_PIECES_DEFLATE : STREAM_PIECES]))
      dl.addPeer(this.host.compress ? deflateDuplex(stream) : stream, session.peerId)
    } catch (err) {
      this.host.log('warn', `cannot open a piece stream to ${session.peerId}: ${(err as Error).message}`)
    }
  }

  /**
   * What we can serve for an info hash: a complete local file, or a download in progress — only
   * from shares this peer replicates too, so content is never served across shares.
   */
  async lookupSource (infoHash: Buffer, session: PeerSession): Promise<PieceSource | undefined> {
    if (!session.sharesKnown) {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, SHARES_WAIT_MS)
        session.once('shares', () => { clearTimeout(t); resolve() })
      })
    }
    const found = this.downloadFor(infoHash, session) ?? this.localSource(infoHash, session) ?? this.blobSource(infoHash)
    if (found !== undefined) return found
    // Another downloader of the same new file often asks before our own download of it has
    // started (the entry reaches every node at about the same time): wait for it briefly, so the
    // two trade pieces instead of both fetching everything from the source.
    return await new Promise<PieceSource | undefined>(resolve => {
      const t = setTimeout(() => { this.started.off('started', check); resolve(undefined) }, WANT_WAIT_MS)
      const check = (): void => {
        const dl = this.downloadFor(infoHash, session)
        if (dl !== undefined) { clearTimeout(t); this.started.off('started', check); resolve(dl) }
      }
      this.started.on('started', check)
    })
  }

  private downloadFor (infoHash: Buffer, session: PeerSession): Download | undefined {
    for (const { dl, scope } of this.downloads.values()) {
      if (dl !== null && scope.holds(session) && dl.root.subarray(0, 20).equals(infoHash)) return dl
    }
    return undefined
  }

  /** A complete blob of the jobs' store: any authenticated node may read blobs. */
  private blobSource (infoHash: Buffer): PieceSource | undefined {
    const blob = this.host.blobs.byInfoHash(infoHash)
    if (blob === undefined) return undefined
    const key = 'blob:' + blob.root.toString('hex')
    const cached = this.sources.get(key)
    if (cached !== undefined) return cached
    const st = fs.statSync(blob.path, { throwIfNoEntry: false })
    if (st === undefined) return undefined
    const source = new FileSource({ path: blob.path, root: blob.root, size: blob.size, layer: this.host.db.getLayer(blob.root), mtimeMs: st.mtimeMs, verify: false })
    this.keepSource(key, source)
    return source
  }

  private keepSource (key: string, source: FileSource): void {
    this.sources.set(key, source)
    if (this.sources.size > MAX_OPEN_SOURCES) {
      const [oldKey, old] = this.sources.entries().next().value as [string, FileSource]
      this.sources.delete(oldKey)
      void old.close()
    }
  }

  /** A complete, indexed local file with this info hash, in a share the peer replicates too. */
  private localSource (infoHash: Buffer, session: PeerSession): PieceSource | undefined {
    for (const row of this.host.db.localByInfoHash(infoHash)) {
      const share = this.host.shares.get(row.share)
      if (share === undefined || share.paused || row.local === null || !session.remoteShares.has(row.share)) continue
      const abs = share.disk.abs(row.path)
      let st: fs.Stats | null
      try { st = share.disk.lstat(row.path) } catch { continue }
      if (st === null || !st.isFile() || !sameLocal(row.local, st)) continue
      const key = row.root.toString('hex')
      const cached = this.sources.get(key)
      if (cached !== undefined && cached.path === abs && cached.mtimeMs === row.local.mtimeMs) return cached
      if (cached !== undefined) { this.sources.delete(key); void cached.close() }
      const source = new FileSource({ path: abs, root: row.root, size: row.size, layer: this.host.db.getLayer(row.root), mtimeMs: row.local.mtimeMs, verify: false })
      this.keepSource(key, source)
      return source
    }
    return undefined
  }
}

/**
 * The key a blob download's verified pieces are recorded under: not the bare root, which a share's
 * download of the same content uses, so the two never take each other's record.
 */
export function blobPartialKey (root: Buffer, size: number): Buffer {
  return createHash('sha256').update('blob\0').update(root).update(String(size)).digest()
}

/** The finished part file hashes to the entry's root and has its size, or ERR_VERIFY_FAILED. */
async function checkWholeFile (partPath: string, entry: { path: string, root: Buffer, size: number }): Promise<void> {
  const h = await hashFile(partPath)
  if (h.size !== entry.size || !h.root.equals(entry.root)) {
    throw new SwarmError('ERR_VERIFY_FAILED', `resumed download of ${entry.path} does not match its root; fetching it again`)
  }
}

