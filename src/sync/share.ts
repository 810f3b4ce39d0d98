// One shared folder on this node: its index rows, its manifest root, its watcher, and the two
// directions of change —
//   local:  local-side.ts (watcher, start sweep) → scan.ts (stat against the index → hash what changed) → new versions (commitLocal)
//   remote: peer entries → merge decision → write inline data / copy local content / pending fetch
// The node (node/node.ts) moves entries between peers; the Share decides and touches the disk.
// What the share's mode and ignore rules make of either direction is rules.ts's (read its top comment).
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs'
import { IndexDb, type PendingEntry, type ShareRow } from '../store/db.js'
import { ShareIndex } from '../store/share-index.js'
import { fileRoot, ZERO_ROOT } from '../merkle/bep52.js'
import { SwarmError, isSwarmError } from '../errors.js'
import { type Entry, type LocalStat, type StoredEntry, localStatOf, sameContent, sameLocal } from '../model/entry.js'
import { decide } from './merge.js'
import { compareVersions } from '../model/version.js'
import { META_DIR, conflictName, numberedName, parentOf } from '../model/paths.js'
import { ShareDisk, mapWriteError } from '../store/share-disk.js'
import type { WireEntry } from '../wire/control.js'
import { ShareFeed } from './feed.js'
import { RetryBackoff } from './retry.js'
import { LocalScanner, type LocalChange, type FullScan } from './scan.js'
import { RemoteBatch, type BatchHost } from './batch.js'
import { LocalSide } from './local-side.js'
import { ShareRules } from './rules.js'
import { IGNORE_FILE } from '../model/ignore.js'
import type { ShareMode } from '../model/share-mode.js'

/** Longest wait between retries of a failed fetch, in seconds. */
const FETCH_RETRY_MAX_S = 30

/** A paused share (marker missing, folder emptied) looks at its folder again this often. */
export const PAUSE_RECHECK_MS = 2000

export interface ShareHost {
  readonly db: IndexDb
  readonly shortId: string
  readonly peerId: string
  /** Fetches content by root into this share's tmp dir; resolves with the verified file's path. */
  fetch (share: Share, entry: Entry, from: string): Promise<string>
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export interface ShareOptions {
  /** Start even if the folder is empty while the index lists files (the user emptied it on purpose). */
  acceptEmpty?: boolean
  /** send-receive (default), send-only or receive-only (rules.ts); anything else is ERR_BAD_ARGUMENT. */
  mode?: ShareMode
  /** This node's ignore patterns on top of the share's .swarmignore (gitignore syntax). */
  ignore?: string[]
}

/** Why a peer's entries were not applied: the path is ignored here, or the share is send-only. */
export type NotAppliedReason = 'ignored' | 'send-only'

export interface ShareEvents {
  changed: []                                                   // new rows with higher seq exist
  paused: [reason: string]                                      // the folder is not what the index describes: nothing is read, written or sent
  resumed: []
  'file-updated': [{ share: string, path: string, root: string, size: number, from: string }]
  'file-deleted': [{ share: string, path: string, from: string }]
  conflict: [{ share: string, path: string, copy: string }]
  'scan-done': [{ share: string, files: number, ms: number }]   // the startup sweep is complete (files: live entries indexed)
  'not-applied': [{ share: string, from: string, count: number, reason: NotAppliedReason }]   // once per peer batch that held such entries
  resync: []                                                    // the rules now let through what was skipped: take peers' entries again from the start
}

export class Share extends EventEmitter<ShareEvents> {
  readonly id: string
  readonly dir: string
  readonly indexId: string
  readonly disk: ShareDisk
  /** The share's rows and its manifest root (store/share-index.ts): every entry is written through it. */
  private readonly index: ShareIndex
  private readonly feed: ShareFeed
  /** The watcher, the start sweep and rescans (local-side.ts). */
  private readonly local: LocalSide
  private localQueue: Promise<void> = Promise.resolve()
  private readonly fetching = new Set<string>()
  /** Pending paths whose write failed: the reason last logged and how many times it was tried. */
  private readonly retries: RetryBackoff
  /** While a batch is applied: temp files written, waiting for one durability barrier before they go in place. */
  /** The batch of a peer's entries being applied (batch.ts): its files wait there for one durability barrier. */
  private batch: RemoteBatch | null = null
  private readonly batchHost: BatchHost
  /** Paths with a pending row in the index (mirrors the table, so the hot path needs no query). */
  private readonly pendingSet = new Set<string>()
  /** Files this node just wrote from a peer, with their stat: the watcher's echo of our own write is skipped cheaply. */
  private readonly selfWritten = new Map<string, LocalStat>()
  /**
   * Peer entries taken exactly as sent (not merged): only these are recorded with the peer as their
   * source, which keeps them from being echoed back; a merged version is news to that peer too.
   */
  private readonly asIs = new WeakSet<Entry>()
  private stopped = false
  private started = false
  /** Why the share is paused, or null while it runs. */
  pausedReason: string | null = null
  private pauseTimer: NodeJS.Timeout | null = null
  private readonly scanner: LocalScanner
  /** The share's mode and ignore rules on this node (rules.ts). */
  readonly rules: ShareRules
  /** Peers' entries not applied, by reason, and local changes a receive-only share kept to itself: for status and tests. */
  private readonly counts = { ignored: 0, 'send-only': 0, localOnly: 0 }
  /** The peer batch being applied: its entries not applied so far, by reason. */
  private batchSkips = { ignored: 0, 'send-only': 0 }

  constructor (private readonly host: ShareHost, row: ShareRow, private readonly opts: ShareOptions = {}) {
    super()
    this.id = row.id
    this.dir = row.dir
    this.indexId = row.indexId
    this.disk = new ShareDisk(row.dir)
    this.index = new ShareIndex(host.db, row.id)
    this.rules = new ShareRules(row.id, this.disk, opts.mode, opts.ignore, (level, msg) => host.log(level, msg))
    this.feed = new ShareFeed(host.db, row.id, this.disk, e => this.rules.withholds(e, host.shortId))
    this.retries = new RetryBackoff(rel => this.retryPending(rel), (level, msg) => host.log(level, `share ${this.id}: ${msg}`))
    this.batchHost = {
      disk: this.disk,
      holdsLive: (rel) => { const cur = this.db.getEntry(this.id, rel); return cur !== undefined && !cur.deleted },
      installTemp: (tmp, entry, local, from, keepLocal) => { this.installTemp(tmp, entry, local, from, keepLocal) },
      recordInstalled: (entry, local, from) => { this.recordInstalled(entry, local, from) },
      putBack: (entry, from, keepLocal, err, data) => { this.setPending(entry, from, keepLocal, data); this.retries.failed(entry.path, err) }
    }
    this.scanner = new LocalScanner({
      id: this.id, db: host.db, disk: this.disk, shortId: host.shortId,
      clock: () => this.index.clock,
      ignores: (rel, isDir) => this.rules.ignores(rel, isDir),
      ignorePatterns: () => this.rules.patterns,
      ignoresPath: (rel) => this.ignoresPath(rel),
      watcher: () => this.local.watcher,
      commit: (changes) => this.commitLocal(changes),
      requeue: (rel) => { void this.enqueueLocal(() => this.scanner.examinePaths([rel])) },
      takeSelfWritten: (rel) => { const m = this.selfWritten.get(rel); this.selfWritten.delete(rel); return m },
      cacheInline: (root, data) => this.feed.cacheInline(root, data),
      log: (level, msg) => host.log(level, msg)
    })
    this.local = new LocalSide({
      id: this.id, dir: this.dir, scanner: this.scanner,
      enqueue: (fn) => this.enqueueLocal(fn),
      running: () => !this.stopped && !this.paused,
      ignoresPath: (rel) => this.ignoresPath(rel),
      swept: (scan) => { this.swept(scan) },
      log: (level, msg) => host.log(level, msg)
    })
  }

  /** Counters for status and tests. */
  get stats (): { filesHashed: number, notAppliedIgnored: number, notAppliedSendOnly: number, localOnly: number } {
    return { ...this.scanner.stats, notAppliedIgnored: this.counts.ignored, notAppliedSendOnly: this.counts['send-only'], localOnly: this.counts.localOnly }
  }

  get mode (): ShareMode { return this.rules.mode }

  private ignoresPath (rel: string): boolean {
    return this.rules.ignoresPath(rel, () => this.db.getEntry(this.id, rel)?.type === 'dir')
  }

  get db (): IndexDb { return this.host.db }

  /**
   * Loads the index and, if the folder is the one the index describes, watches and scans it.
   * Otherwise the share is paused (see folderProblem) and looks again every PAUSE_RECHECK_MS.
   */
  async start (): Promise<void> {
    if (!this.started) {
      this.started = true
      for (const p of this.db.allPending(this.id)) this.pendingSet.add(p.entry.path)
    }
    const problem = this.folderProblem()
    if (problem !== null) { this.pause(problem); return }
    this.disk.init()
    this.loadRules(false)
    this.local.start()
  }

  /**
   * Reads the ignore rules again (at start, or .swarmignore changed). If they may let through what
   * was skipped, the folder is swept again (when running) and peers resend from the start.
   */
  private loadRules (running: boolean): void {
    const { resync, republish } = this.rules.load()
    if (republish) this.republishOwn()
    for (const rel of [...this.pendingSet]) {
      // A wanted version of a path now ignored, or any in a send-only share, is not applied after all.
      if (this.rules.mode === 'send-only' || this.rules.ignores(rel, this.db.getPending(this.id, rel)?.entry.type === 'dir')) this.clearPending(rel)
    }
    if (!resync) return
    if (running) this.local.rescan('info', `${IGNORE_FILE} changed`)
    setImmediate(() => { if (!this.stopped) this.emit('resync') })   // after the batch in progress has moved its cursor
  }

  /** The start sweep is complete: the index describes the disk. */
  private swept (scan: FullScan): void {
    this.index.save()
    this.emit('scan-done', { share: this.id, files: this.index.size, ms: Date.now() - scan.startedAt })
    this.emit('changed')
    for (const p of this.db.allPending(this.id)) this.retryPending(p.entry.path)
  }

  /** Resolves once the start sweep is complete (at once if none is running). */
  async scanned (): Promise<void> { await this.local.scanned() }

  /** True while the start sweep runs: the share's root may not yet reflect the disk. */
  get isScanning (): boolean { return this.local.isScanning }

  stop (): void {
    this.stopped = true
    this.local.close()
    if (this.pauseTimer !== null) clearTimeout(this.pauseTimer)
    this.retries.stop()
    this.index.close()
  }

  get paused (): boolean { return this.pausedReason !== null }

  /**
   * Why this folder must not be scanned, or null. A share the index knows (it has entries) must
   * carry its marker: an unmounted mount point or a replaced folder would otherwise read as
   * "every file was deleted" and delete them on every peer. A marker with nothing beside it while
   * the index lists files is refused the same way unless the user says it was emptied on purpose.
   */
  private folderProblem (): string | null {
    return this.disk.folderProblem(this.id, this.index.size, this.opts.acceptEmpty === true)
  }

  private pause (reason: string): void {
    const first = this.pausedReason === null
    this.pausedReason = reason
    this.local.close()
    if (first) {
      this.host.log('error', `share ${this.id} paused: ${reason}`)
      this.emit('paused', reason)
    }
    if (this.pauseTimer === null && !this.stopped) {
      this.pauseTimer = setTimeout(() => {
        this.pauseTimer = null
        if (this.stopped) return
        if (this.folderProblem() === null) {
          this.pausedReason = null
          this.host.log('info', `share ${this.id} resumed`)
          void this.start().then(() => { if (!this.paused) this.emit('resumed') })
        } else {
          this.pause(this.pausedReason ?? reason)
        }
      }, PAUSE_RECHECK_MS)
      this.pauseTimer.unref()
    }
  }

  root (): Buffer { return this.index.root() }
  pendingCount (): number { return this.pendingSet.size }

  /** `data`: the small file's inline content if we have it, kept with the row so a retry needs no fetch. */
  private setPending (e: Entry, src: string, keepLocal = false, data?: Buffer | null): void {
    this.db.putPending(this.id, e, src, keepLocal, this.asIs.has(e), data ?? null)
    this.pendingSet.add(e.path)
  }

  private clearPending (path: string): void {
    if (!this.pendingSet.delete(path)) return
    this.db.deletePending(this.id, path)
  }
  get entryCount (): number { return this.index.size }

  /** Local work (scans, watcher batches) runs one at a time, in order. */
  private enqueueLocal (fn: () => Promise<void>): Promise<void> {
    const run = this.localQueue.then(async () => { if (!this.stopped && !this.paused) await fn() })
    this.localQueue = run.catch((err) => this.host.log('error', `share ${this.id}: ${(err as Error).message}`))
    return this.localQueue
  }

  /** The share left receive-only: its own versions, withheld until now, get new sequence numbers so peers see them. */
  private republishOwn (): void {
    const own = [...this.db.iterateEntries(this.id)].filter(e => e.by === this.host.shortId)
    this.db.transaction(() => { for (const e of own) this.index.put(e, e.local, '', e) })
    if (own.length > 0) this.host.log('info', `share ${this.id} is no longer receive-only: sending ${own.length} local change(s) it kept back`)
  }

  /** Writes local changes to the index in one transaction and tells peers. */
  private commitLocal (changes: LocalChange[]): void {
    if (changes.some(c => c.entry.deleted) && !this.disk.hasMarker()) {
      // The folder vanished under us (unmounted, deleted): these are not deletions to send.
      this.pause(`folder ${this.dir} lost its .swarm/marker while running: it may have been unmounted or removed`)
      return
    }
    this.db.transaction(() => {
      for (const c of changes) this.index.put(c.entry, c.local, '', c.old)
    })
    if (this.rules.mode === 'receive-only') {
      if (this.counts.localOnly === 0) this.host.log('info', `share ${this.id} is receive-only: local changes stay on this node (not sent to peers)`)
      this.counts.localOnly += changes.length
    }
    if (changes.some(c => c.entry.path === IGNORE_FILE)) this.loadRules(true)
    for (const c of changes) {
      if (c.entry.deleted) this.emit('file-deleted', { share: this.id, path: c.entry.path, from: this.host.peerId })
      else if (c.entry.type === 'file') this.emit('file-updated', { share: this.id, path: c.entry.path, root: c.entry.root.toString('hex'), size: c.entry.size, from: this.host.peerId })
    }
    this.emit('changed')
  }

  // ---- feeding peers ------------------------------------------------------------------------

  /** The next batch of entries after `fromSeq` for peer `to` (see feed.ts). */
  entriesAfter (fromSeq: number, to: string): { entries: WireEntry[], upTo: number } {
    return this.feed.entriesAfter(fromSeq, to)
  }

  // ---- remote changes -----------------------------------------------------------------------

  /** Queues a batch of a peer's entries behind local work; resolves once it is applied (or queued for fetching). */
  async applyRemoteBatch (from: string, items: WireEntry[]): Promise<boolean> {
    let applied = false
    await this.enqueueLocal(async () => { await this.applyRemote(from, items); applied = true })
    return applied
  }

  /** Applies a batch of a peer's entries. Content that is not inline or local is fetched in the background. */
  private async applyRemote (from: string, items: WireEntry[]): Promise<void> {
    // Files and folders first (parents before children, as sent), deletions last and deepest first:
    // a rename is applied as copy-then-delete, so its content is still here to copy.
    const live = items.filter(i => !i.entry.deleted)
    const gone = items.filter(i => i.entry.deleted).sort((a, b) => b.entry.path.length - a.entry.path.length)
    let changed = false
    // One transaction per batch: thousands of small files cost one commit, not thousands.
    const own = !this.db.db.inTransaction
    this.disk.forgetDirs()   // a folder may have been replaced by a symlink since it was last checked
    if (own) this.db.db.exec('BEGIN')
    try {
      // New content is written to temp files first, made durable together, then put in place.
      this.batchSkips = { ignored: 0, 'send-only': 0 }
      const batch = this.batch = new RemoteBatch(this.batchHost, live.length)
      for (const item of live) if (await this.applyGuarded(from, item)) changed = true
      this.batch = null
      await batch.install()
      for (const item of gone) if (await this.applyGuarded(from, item)) changed = true
    } finally {
      this.batch = null
      if (own && this.db.db.inTransaction) this.db.db.exec('COMMIT')
    }
    if (changed) this.emit('changed')
    this.reportSkips(from)
  }

  /** One log line and one event per batch and reason, never one per file. */
  private reportSkips (from: string): void {
    for (const reason of ['ignored', 'send-only'] as const) {
      const count = this.batchSkips[reason]
      if (count === 0) continue
      this.counts[reason] += count
      this.host.log('info', `share ${this.id}: ${count} change(s) from ${from} not applied (${reason === 'ignored' ? 'ignored paths on this node' : 'send-only share'})`)
      this.emit('not-applied', { share: this.id, from, count, reason })
    }
  }

  private async applyGuarded (from: string, item: WireEntry): Promise<boolean> {
    try {
      return await this.applyOne(from, item)
    } catch (err) {
      // Not even a decision could be made (the disk could not be read, say): the entry is kept as
      // wanted and tried again later, when decideAgain runs the merge rules on it first.
      this.setPending(item.entry, from, false, item.data)
      this.retries.failed(item.entry.path, err)
      return false
    }
  }

  private async applyOne (from: string, { entry: remote, data }: WireEntry): Promise<boolean> {
    // Ignored here: whatever this node has at the path (or its lack of anything) stays.
    if (this.rules.ignores(remote.path, remote.type === 'dir')) { this.batchSkips.ignored++; return false }
    // An edit on disk the index has not seen yet becomes a local version first, so it can conflict instead of vanishing.
    const onDisk = this.db.getEntry(this.id, remote.path)
    const st = (onDisk === undefined || onDisk.deleted) && this.batch?.absent(remote.path) === true ? null : this.disk.lstat(remote.path)
    let local = onDisk
    if (st !== null && (st.isFile() || st.isDirectory()) && (onDisk === undefined || onDisk.deleted || onDisk.type !== (st.isFile() ? 'file' : 'dir') || (st.isFile() && !sameLocal(onDisk.local, st)))) {
      const change = await this.scanner.examine(remote.path, onDisk)
      if (change !== null) { this.commitLocal([change]); local = this.db.getEntry(this.id, remote.path) }
    }
    const pending = this.pendingSet.has(remote.path) ? this.db.getPending(this.id, remote.path) : undefined
    const target = pending?.entry ?? local
    const d = this.rules.adjust(decide(target, remote), target, remote, this.host.shortId)
    if (d === null) { this.batchSkips['send-only']++; return false }
    if (d.kind === 'accept' && d.entry === remote) this.asIs.add(remote)
    switch (d.kind) {
      case 'ignore': return false
      case 'merge-meta':
        if (pending !== undefined) { this.setPending(d.entry, pending.src, pending.keepLocal, keptData(pending, d.entry) ?? data); return false }
        return this.materialize(d.entry, undefined, from)
      case 'accept':
        return this.materialize(d.entry, data, from, pending?.keepLocal ?? false, pending === undefined ? { cur: local, st } : undefined)
      case 'conflict': {
        const copy = this.freeCopyPath(d.copy)
        this.host.log('warn', `share ${this.id}: concurrent edits of ${d.entry.path}; the other version is kept as ${copy.path}`)
        if (!d.localLost) {
          // The remote content lost: it becomes the conflict copy; ours stays, with the merged vector.
          this.emit('conflict', { share: this.id, path: d.entry.path, copy: copy.path })
          await this.materialize(copy, data, from)
          if (pending !== undefined) { this.setPending(d.entry, pending.src, pending.keepLocal, keptData(pending, d.entry)); return true }
          return this.materialize(d.entry, undefined, from)
        }
        if (pending !== undefined) {
          // The loser was only wanted, not on disk: fetch it under the conflict name instead.
          this.emit('conflict', { share: this.id, path: d.entry.path, copy: copy.path })
          this.setPending(copy, pending.src, false, keptData(pending, copy))
          this.retryPending(copy.path)
          return this.materialize(d.entry, d.entry.root.equals(remote.root) ? data : undefined, from, pending.keepLocal)
        }
        // Our content on disk lost: it is moved aside when the winner is installed, never before.
        return this.materialize(d.entry, d.entry.root.equals(remote.root) ? data : undefined, from, true)
      }
    }
  }

  private putAndTrack (e: Entry, local: LocalStat | null, src = ''): void {
    this.index.put(e, local, this.asIs.has(e) ? src : '')
    if (e.path === IGNORE_FILE) this.loadRules(true)   // a peer's .swarmignore takes effect here too
  }

  /**
   * Where a conflict copy goes: its deterministic name, or the first numbered variant that is free
   * (nothing on disk, no live entry) or already holds this very copy. A copy never overwrites anything.
   */
  private freeCopyPath (copy: Entry): Entry {
    for (let n = 1; ; n++) {
      const path = n === 1 ? copy.path : numberedName(copy.path, n)
      const cur = this.db.getEntry(this.id, path)
      const onDisk = this.disk.lstat(path)
      if (cur !== undefined && !cur.deleted && sameContent(cur, copy)) return { ...copy, path }
      if (onDisk === null && (cur === undefined || cur.deleted)) return { ...copy, path }
    }
  }

  /**
   * Moves the live file at `rel` aside under a free conflict name (no data moves) and records it.
   * Returns false when that copy is already there (it arrived from a peer that resolved the same
   * conflict first): then the file at `rel` stays, to be replaced.
   */
  private moveAside (cur: StoredEntry): boolean {
    const st = this.disk.lstat(cur.path)
    if (st === null || !sameLocal(cur.local, st)) throw new SwarmError('ERR_FILE_CHANGED', `${cur.path} changed on disk; not moving it aside`)
    const copy = this.freeCopyPath({ ...cur, path: conflictName(cur.path, cur.mtime, cur.by) })
    if (this.disk.lstat(copy.path) !== null) return false
    this.disk.rename(cur.path, copy.path)
    this.putAndTrack(copy, localStatOf(this.disk.lstat(copy.path)!))
    this.emit('conflict', { share: this.id, path: cur.path, copy: copy.path })
    return true
  }

  /**
   * Brings the disk to `entry`: delete, mkdir, write inline data, copy local content, or queue a fetch.
   * Whatever cannot be done now (disk full, no permission, a folder still in the way) is kept as
   * pending and tried again with backoff: an accepted version is never dropped.
   */
  private async materialize (entry: Entry, data: Buffer | undefined, from: string, keepLocal = false, known?: { cur: StoredEntry | undefined, st: fs.Stats | null }): Promise<boolean> {
    try {
      return await this.materializeOrThrow(entry, data, from, keepLocal, known)
    } catch (err) {
      this.setPending(entry, from, keepLocal, data)
      this.retries.failed(entry.path, err)
      return false
    }
  }

  private async materializeOrThrow (entry: Entry, data: Buffer | undefined, from: string, keepLocal: boolean, known?: { cur: StoredEntry | undefined, st: fs.Stats | null }): Promise<boolean> {
    const rel = entry.path
    if (entry.deleted) {
      const cur = this.db.getEntry(this.id, rel)
      this.disk.remove(rel, cur !== undefined && !cur.deleted ? cur.local : null)
      if (cur?.type === 'dir') this.local.watcher?.remove(rel)
      this.clearPending(rel)
      this.putAndTrack(entry, null, from)
      this.removeDeletedParents(rel)
      if (cur !== undefined && !cur.deleted) this.emit('file-deleted', { share: this.id, path: rel, from })
      return true
    }
    if (entry.type === 'dir') {
      const st = this.disk.lstat(rel)
      // A file became a folder: the accepted version dominates the file's, so the file is out of date.
      if (st !== null && st.isFile()) this.disk.remove(rel, this.db.getEntry(this.id, rel)?.local ?? null)
      this.disk.ensureDir(rel)
      this.local.watcher?.add(rel)
      this.clearPending(rel)
      this.putAndTrack(entry, null, from)
      return true
    }
    // Same content already in place: only the metadata changes.
    const cur = known !== undefined ? known.cur : this.db.getEntry(this.id, rel)
    const st = known !== undefined ? known.st : this.disk.lstat(rel)
    if (cur !== undefined && !cur.deleted && cur.type === 'file' && sameContent(cur, entry) && st !== null && sameLocal(cur.local, st)) {
      const local = cur.mtime !== entry.mtime ? this.disk.setMtime(rel, entry.mtime) : cur.local
      this.clearPending(rel)
      this.putAndTrack(entry, local, from)
      return true
    }
    if (data === undefined && entry.size === 0) data = Buffer.alloc(0)
    if (data !== undefined) {
      if (data.length !== entry.size || !(entry.size === 0 ? ZERO_ROOT : fileRoot(data)).equals(entry.root)) {
        this.host.log('warn', `share ${this.id}: inline data for ${rel} from ${from} failed verification; fetching it instead`)
      } else {
        if (this.batch !== null) { this.batch.stageWrite(data, entry, from, keepLocal); return true }
        const { tmp, local } = this.disk.writeTemp(data, entry.mtime)
        this.installTemp(tmp, entry, local, from, keepLocal)
        return true
      }
    }
    const copy = this.localCopy(entry)
    if (copy !== null) { this.installOrStage(copy.tmp, entry, copy.local, from, keepLocal); return true }
    this.setPending(entry, from, keepLocal)
    this.startFetch(entry, from)
    return false
  }

  /** After a deletion: folders above it that were deleted too and are empty now go as well. */
  private removeDeletedParents (rel: string): void {
    for (let dir = parentOf(rel); dir !== ''; dir = parentOf(dir)) {
      const e = this.db.getEntry(this.id, dir)
      if (e === undefined || !e.deleted || !this.disk.removeEmptyFolder(dir)) return
      this.local.watcher?.remove(dir)
    }
  }

  /** Content this node already has (same root and size, in this share): copied, never fetched. */
  private localCopy (entry: Entry): { tmp: string, local: LocalStat } | null {
    for (const src of this.db.localByRoot(entry.root, entry.size)) {
      if (src.share !== this.id) continue
      const st = this.disk.lstat(src.path)
      if (st === null || !sameLocal(src.local, st)) continue
      try { return this.disk.copyToTemp(src.path, entry.mtime, this.batch === null) } catch (err) {
        if (isSwarmError(err, 'ERR_NO_SPACE')) throw err
      }
    }
    return null
  }

  /** In a batch, the temp file waits for the batch's durability barrier; alone, it was fsync'd and goes in now. */
  private installOrStage (tmp: string, entry: Entry, local: LocalStat, from: string, keepLocal: boolean): void {
    if (this.batch !== null) this.batch.stageTemp(tmp, entry, local, from, keepLocal)
    else this.installTemp(tmp, entry, local, from, keepLocal)
  }

  private installTemp (tmp: string, entry: Entry, local: LocalStat, from: string, keepLocal: boolean): void {
    const cur = this.db.getEntry(this.id, entry.path)
    const live = cur !== undefined && !cur.deleted && cur.type === 'file' ? cur : undefined
    try {
      let expect = live?.local ?? null
      if (keepLocal && live !== undefined && !sameContent(live, entry) && this.moveAside(live)) expect = null
      this.disk.install(tmp, entry.path, expect)
    } catch (err) {
      this.disk.discard(tmp)
      throw mapWriteError(err)
    }
    this.recordInstalled(entry, local, from)
  }

  /** `entry` is in place on disk with `local`: the index, the pending list and listeners learn it. */
  private recordInstalled (entry: Entry, local: LocalStat, from: string): void {
    this.clearPending(entry.path)
    this.retries.succeeded(entry.path)
    this.putAndTrack(entry, local, from)
    if (this.selfWritten.size > 100_000) this.selfWritten.clear()
    this.selfWritten.set(entry.path, local)
    this.emit('file-updated', { share: this.id, path: entry.path, root: entry.root.toString('hex'), size: entry.size, from })
  }

  // ---- retries ----------------------------------------------------------------------------

  /** Materializes the pending version of `rel` again: from local content if it can, else by fetching it. */
  private retryPending (rel: string): void {
    if (this.stopped || !this.pendingSet.has(rel)) return
    const want = this.db.getPending(this.id, rel)
    if (want === undefined) return
    if (this.rules.ignores(rel, want.entry.type === 'dir')) { this.clearPending(rel); return }
    void this.enqueueLocal(async () => {
      const again = this.db.getPending(this.id, rel)
      if (again === undefined || !again.entry.root.equals(want.entry.root)) return
      if (again.asIs) this.asIs.add(again.entry)
      if (await this.decideAgain(again)) return
      if (await this.materialize(again.entry, again.data ?? undefined, again.src, again.keepLocal)) this.emit('changed')
    })
  }

  /**
   * Before a pending version is put in place: an edit on disk the index has not seen is recorded
   * first, and if the index now holds a version the pending one does not dominate (a local edit
   * made since it was accepted), the merge rules decide again — so the edit ends up the winner or
   * a conflict copy, never overwritten. Returns whether it went back to the rules.
   */
  private async decideAgain (want: PendingEntry): Promise<boolean> {
    const rel = want.entry.path
    const st = this.disk.lstat(rel)
    let cur = this.db.getEntry(this.id, rel)
    if (st !== null && st.isFile() && !(cur !== undefined && !cur.deleted && cur.type === 'file' && sameLocal(cur.local, st))) {
      const change = await this.scanner.examine(rel, cur)
      if (change !== null) { this.commitLocal([change]); cur = this.db.getEntry(this.id, rel) }
    }
    // The pending version was accepted because it dominated what the index held; a local version
    // recorded since (by the watcher, or just now) may not be dominated: then the rules decide again.
    if (cur === undefined || compareVersions(want.entry.version, cur.version) === 'greater') return false
    this.clearPending(rel)
    await this.applyRemote(want.src, [{ entry: want.entry, data: want.data ?? undefined }])
    return true
  }

  private startFetch (entry: Entry, from: string, attempt = 1): void {
    // By path and content: a newer version of a path is fetched even while an older one still is.
    const key = entry.path + '\0' + entry.size + ':' + entry.root.toString('hex')
    if (this.fetching.has(key) || this.stopped) return
    this.fetching.add(key)
    void this.fetchLoop(entry, from, attempt).finally(() => this.fetching.delete(key))
  }

  /** `attempt`: seconds to wait before the next try if this one fails (doubles up to FETCH_RETRY_MAX_S). */
  private async fetchLoop (entry: Entry, from: string, attempt: number): Promise<void> {
    let tmp: string
    try {
      tmp = await this.host.fetch(this, entry, from)
    } catch (err) {
      if (this.stopped || isSwarmError(err, 'ERR_CLOSED')) return
      this.host.log(isSwarmError(err, 'ERR_NO_SPACE') ? 'error' : 'warn', `share ${this.id}: fetching ${entry.path} failed: ${(err as Error).message}; retrying in ${attempt} s`)
      // Still wanted? Try again later (disk full, no holder reachable): verified pieces are kept.
      setTimeout(() => {
        if (this.stopped || !this.pendingSet.has(entry.path)) return
        const want = this.db.getPending(this.id, entry.path)
        if (want !== undefined) this.startFetch(want.entry, want.src, Math.min(attempt * 2, FETCH_RETRY_MAX_S))
      }, attempt * 1000).unref()
      return
    }
    if (this.stopped) { this.disk.discard(tmp); return }
    await this.enqueueLocal(async () => {
      // The wanted version may have moved on while we fetched; install only if it is still the one.
      const want = this.db.getPending(this.id, entry.path)
      if (want === undefined || !want.entry.root.equals(entry.root) || want.entry.size !== entry.size) {
        this.disk.discard(tmp)
        if (want !== undefined) this.startFetch(want.entry, want.src)
        return
      }
      // A local edit recorded since goes through the merge rules first.
      if (await this.decideAgain(want)) { this.disk.discard(tmp); return }
      try {
        const local = this.disk.stampTemp(tmp, want.entry.mtime)
        if (want.asIs) this.asIs.add(want.entry)
        this.installTemp(tmp, want.entry, local, want.src, want.keepLocal)
        this.emit('changed')
      } catch (err) {
        // Still pending: tried again later (from a local copy if one has appeared, else fetched again).
        this.retries.failed(entry.path, err)
      }
    })
  }
}

/** The inline content kept with a pending row, if it is the content of `e`. */
function keptData (p: PendingEntry, e: Entry): Buffer | undefined {
  return p.data !== undefined && p.data !== null && p.entry.root.equals(e.root) ? p.data : undefined
}
