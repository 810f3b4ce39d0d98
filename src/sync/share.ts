// One shared folder on this node: its index rows, its manifest root, its watcher, and the two
// directions of change —
//   local:  watcher/scan → stat against the index → hash what changed → new versions (commitLocal)
//   remote: peer entries → merge decision → write inline data / copy local content / pending fetch
// The node (node/node.ts) moves entries between peers; the Share decides and touches the disk.
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs'
import { IndexDb, type ShareRow } from '../store/db.js'
import { ManifestTree } from '../merkle/manifest.js'
import { fileRoot, ZERO_ROOT } from '../merkle/bep52.js'
import { hashFile } from '../merkle/hash-file.js'
import { DirWatcher } from '../watch/dir-watcher.js'
import { isSwarmError } from '../errors.js'
import { type Entry, type LocalStat, type StoredEntry, localStatOf, sameLocal } from '../model/entry.js'
import { bumpVersion } from '../model/version.js'
import { decide } from './merge.js'
import { META_DIR, conflictName, joinRel, pathProblem } from '../model/paths.js'
import { ShareDisk, mapWriteError } from '../store/share-disk.js'
import type { WireEntry } from '../wire/control.js'
import { ShareFeed, INLINE_MAX } from './feed.js'

/** Changes committed per SQLite transaction during a scan. */
const SCAN_COMMIT_EVERY = 2000
/** Longest wait between retries of a failed fetch, in seconds. */
const FETCH_RETRY_MAX_S = 30
/**
 * Files larger than INLINE_MAX whose mtime is younger than this are looked at again later instead
 * of hashed: without close-write events this is how a big file still being written is left alone.
 * Small files are never delayed (they are the latency path).
 */
const SETTLE_MS = 50

export interface ShareHost {
  readonly db: IndexDb
  readonly shortId: string
  readonly peerId: string
  /** Fetches content by root into this share's tmp dir; resolves with the verified file's path. */
  fetch (share: Share, entry: Entry, from: string): Promise<string>
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export interface ShareEvents {
  changed: []                                                   // new rows with higher seq exist
  'file-updated': [{ share: string, path: string, root: string, from: string }]
  'file-deleted': [{ share: string, path: string, from: string }]
  conflict: [{ share: string, path: string, copy: string }]
}

export class Share extends EventEmitter<ShareEvents> {
  readonly id: string
  readonly dir: string
  readonly indexId: string
  readonly disk: ShareDisk
  private readonly tree = new ManifestTree()
  private readonly feed: ShareFeed
  private watcher: DirWatcher | null = null
  private readonly warnedSpecial = new Set<string>()
  private localQueue: Promise<void> = Promise.resolve()
  private readonly fetching = new Set<string>()
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
  /** Counters for status and tests. */
  readonly stats = { filesHashed: 0 }

  constructor (private readonly host: ShareHost, row: ShareRow) {
    super()
    this.id = row.id
    this.dir = row.dir
    this.indexId = row.indexId
    this.disk = new ShareDisk(row.dir)
    this.feed = new ShareFeed(host.db, row.id, this.disk)
  }

  get db (): IndexDb { return this.host.db }

  async start (): Promise<void> {
    this.disk.init()
    for (const e of this.db.allEntries(this.id)) this.tree.set(e)
    for (const p of this.db.allPending(this.id)) this.pendingSet.add(p.entry.path)
    this.watcher = new DirWatcher(this.dir, {
      ignore: (rel) => rel === META_DIR || rel.startsWith(META_DIR + '/'),
      onPaths: (paths) => { this.enqueueLocal(() => this.examinePaths([...paths])) },
      onError: (err, dir) => this.host.log('warn', `share ${this.id}: cannot watch ${dir || '.'}: ${err.message}`)
    })
    this.watcher.add('')
    await this.enqueueLocal(() => this.scanAll())
    for (const p of this.db.allPending(this.id)) this.startFetch(p.entry, p.src)
  }

  stop (): void {
    this.stopped = true
    this.watcher?.close()
  }

  root (): Buffer { return this.tree.root() }
  pendingCount (): number { return this.pendingSet.size }

  private setPending (e: Entry, src: string, keepLocal = false): void {
    this.db.putPending(this.id, e, src, keepLocal, this.asIs.has(e))
    this.pendingSet.add(e.path)
  }

  private clearPending (path: string): void {
    if (!this.pendingSet.delete(path)) return
    this.db.deletePending(this.id, path)
  }
  get entryCount (): number { return this.tree.size }

  /** Local work (scans, watcher batches) runs one at a time, in order. */
  private enqueueLocal (fn: () => Promise<void>): Promise<void> {
    const run = this.localQueue.then(async () => { if (!this.stopped) await fn() })
    this.localQueue = run.catch((err) => this.host.log('error', `share ${this.id}: ${(err as Error).message}`))
    return this.localQueue
  }

  // ---- local changes ------------------------------------------------------------------------

  /** Full sweep: walk the folder, hash what changed since the index last saw it, tombstone what is gone. */
  private async scanAll (): Promise<void> {
    const known = new Map<string, StoredEntry>()
    for (const e of this.db.allEntries(this.id)) known.set(e.path, e)
    const seen = new Set<string>()
    let batch: Array<{ entry: Entry, local: LocalStat | null }> = []
    const flush = () => { if (batch.length > 0) { this.commitLocal(batch); batch = [] } }
    const walk = async (relDir: string) => {
      let dirents: fs.Dirent[]
      try { dirents = fs.readdirSync(this.disk.abs(relDir), { withFileTypes: true }) } catch { return }
      this.watcher?.add(relDir)
      for (const d of dirents) {
        const rel = joinRel(relDir, d.name)
        if (rel === META_DIR) continue
        seen.add(rel)
        const change = await this.examine(rel, known.get(rel))
        if (change !== null) { batch.push(change); if (batch.length >= SCAN_COMMIT_EVERY) flush() }
        if (d.isDirectory()) await walk(rel)
      }
    }
    await walk('')
    for (const e of known.values()) {
      if (!e.deleted && !seen.has(e.path)) batch.push({ entry: this.tombstone(e), local: null })
      if (batch.length >= SCAN_COMMIT_EVERY) flush()
    }
    flush()
  }

  /** Watcher batch: look at each path (and below new folders) and record what changed. */
  private async examinePaths (paths: string[]): Promise<void> {
    const changes: Array<{ entry: Entry, local: LocalStat | null }> = []
    const visit = async (rel: string) => {
      if (pathProblem(rel) !== null) return
      const mine = this.selfWritten.get(rel)
      if (mine !== undefined) {
        this.selfWritten.delete(rel)
        const st = this.disk.lstat(rel)
        if (st !== null && sameLocal(mine, st)) return
      }
      const old = this.db.getEntry(this.id, rel)
      const change = await this.examine(rel, old)
      if (change === null) return
      changes.push(change)
      if (change.entry.type === 'dir' && !change.entry.deleted) {
        this.watcher?.add(rel)
        let names: string[] = []
        try { names = fs.readdirSync(this.disk.abs(rel)) } catch {}
        for (const n of names) await visit(joinRel(rel, n))
      } else if (change.entry.deleted && old?.type === 'dir') {
        this.watcher?.remove(rel)
        this.disk.forgetDirs()
        for (const child of this.db.liveChildren(this.id, rel)) changes.push({ entry: this.tombstone(child), local: null })
      }
    }
    for (const p of paths) await visit(p)
    // New content before deletions, so a rename is applied on peers as copy-then-delete.
    changes.sort((a, b) => Number(a.entry.deleted) - Number(b.entry.deleted))
    if (changes.length > 0) this.commitLocal(changes)
  }

  /** Compares one path on disk with its index row; returns the new entry, or null if nothing changed. */
  private async examine (rel: string, old: StoredEntry | undefined): Promise<{ entry: Entry, local: LocalStat | null } | null> {
    const st = this.disk.lstat(rel)
    const live = old !== undefined && !old.deleted ? old : undefined
    if (st === null) return live !== undefined ? { entry: this.tombstone(live), local: null } : null
    if (st.isDirectory()) {
      if (live?.type === 'dir') return null
      return { entry: this.newVersion(rel, old, { type: 'dir', size: 0, mtime: 0, root: ZERO_ROOT }), local: null }
    }
    if (!st.isFile()) {
      if (!this.warnedSpecial.has(rel)) {
        this.warnedSpecial.add(rel)
        this.host.log('info', `share ${this.id}: not replicating ${rel} (${st.isSymbolicLink() ? 'symlink' : 'special file'})`)
      }
      return live !== undefined ? { entry: this.tombstone(live), local: null } : null
    }
    if (live?.type === 'file' && sameLocal(live.local, st)) return null
    if (st.size > INLINE_MAX && Date.now() - st.mtimeMs < SETTLE_MS) {
      // A big file modified this instant is most likely still being written: look again once it
      // has been quiet for SETTLE_MS rather than hash and ship a partial version.
      this.requeue(rel, SETTLE_MS)
      return null
    }
    let hashed: { root: Buffer, size: number, mtimeMs: number, ino: number }
    try {
      hashed = await this.hashLocal(rel, st)
    } catch (err) {
      if (isSwarmError(err, 'ERR_FILE_CHANGED')) { this.requeue(rel); return null }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return live !== undefined ? { entry: this.tombstone(live), local: null } : null
      throw err
    }
    const local: LocalStat = { size: hashed.size, mtimeMs: hashed.mtimeMs, ino: hashed.ino }
    const mtime = Math.trunc(hashed.mtimeMs)
    if (live?.type === 'file' && live.root.equals(hashed.root) && live.size === hashed.size && live.mtime === mtime) {
      this.db.setLocal(this.id, rel, local)   // same content and time, new inode (e.g. our own rename): no new version
      live.local = local
      return null
    }
    return { entry: this.newVersion(rel, old, { type: 'file', size: hashed.size, mtime, root: hashed.root }), local }
  }

  private requeue (rel: string, delayMs = 5): void {
    setTimeout(() => { this.enqueueLocal(() => this.examinePaths([rel])) }, delayMs).unref()
  }

  private async hashLocal (rel: string, st: fs.Stats): Promise<{ root: Buffer, size: number, mtimeMs: number, ino: number }> {
    this.stats.filesHashed++
    const abs = this.disk.abs(rel)
    if (st.size <= INLINE_MAX) {
      const { data, local } = this.disk.readWhole(rel)
      const root = data.length === 0 ? ZERO_ROOT : fileRoot(data)
      this.feed.cacheInline(root, data)
      return { root, ...local }
    }
    const h = await hashFile(abs)
    this.db.putLayer(h.root, h.layer)
    return { root: h.root, size: h.size, mtimeMs: h.mtimeMs, ino: h.ino }
  }

  private newVersion (path: string, old: Entry | undefined, content: Pick<Entry, 'type' | 'size' | 'mtime' | 'root'>): Entry {
    return { path, deleted: false, ...content, version: bumpVersion(old?.version, this.host.shortId), by: this.host.shortId }
  }

  private tombstone (e: Entry): Entry {
    return { ...e, deleted: true, size: 0, root: ZERO_ROOT, version: bumpVersion(e.version, this.host.shortId), by: this.host.shortId }
  }

  /** Writes local changes to the index in one transaction and tells peers. */
  private commitLocal (changes: Array<{ entry: Entry, local: LocalStat | null }>): void {
    this.db.transaction(() => {
      for (const c of changes) {
        this.db.putEntry(this.id, c.entry, c.local)
        this.tree.set(c.entry)
      }
    })
    for (const c of changes) {
      if (c.entry.deleted) this.emit('file-deleted', { share: this.id, path: c.entry.path, from: this.host.peerId })
      else if (c.entry.type === 'file') this.emit('file-updated', { share: this.id, path: c.entry.path, root: c.entry.root.toString('hex'), from: this.host.peerId })
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
  applyRemoteBatch (from: string, items: WireEntry[]): Promise<void> {
    return this.enqueueLocal(() => this.applyRemote(from, items))
  }

  /** Applies a batch of a peer's entries. Content that is not inline or local is fetched in the background. */
  private async applyRemote (from: string, items: WireEntry[]): Promise<void> {
    // Files and folders first (parents before children, as sent), deletions last and deepest first.
    const live = items.filter(i => !i.entry.deleted)
    const gone = items.filter(i => i.entry.deleted).sort((a, b) => b.entry.path.length - a.entry.path.length)
    let changed = false
    // One transaction per batch: thousands of small files cost one commit, not thousands.
    const own = !this.db.db.inTransaction
    if (own) this.db.db.exec('BEGIN')
    try {
      changed = await this.applyItems(from, [...live, ...gone])
    } finally {
      if (own && this.db.db.inTransaction) this.db.db.exec('COMMIT')
    }
    if (changed) this.emit('changed')
  }

  private async applyItems (from: string, items: WireEntry[]): Promise<boolean> {
    let changed = false
    for (const item of items) {
      const problem = pathProblem(item.entry.path)
      if (problem !== null) {
        this.host.log('warn', `share ${this.id}: rejected entry from ${from}: ${JSON.stringify(item.entry.path)} (${problem})`)
        continue
      }
      try {
        if (await this.applyOne(from, item)) changed = true
      } catch (err) {
        const e = err as Error
        this.host.log(isSwarmError(err, 'ERR_NO_SPACE') ? 'error' : 'warn', `share ${this.id}: cannot apply ${item.entry.path} from ${from}: ${e.message}`)
      }
    }
    return changed
  }

  private async applyOne (from: string, { entry: remote, data }: WireEntry): Promise<boolean> {
    // An edit on disk the index has not seen yet becomes a local version first, so it can conflict instead of vanishing.
    const onDisk = this.db.getEntry(this.id, remote.path)
    const st = this.disk.lstat(remote.path)
    let local = onDisk
    if (st !== null && (st.isFile() || st.isDirectory()) && (onDisk === undefined || onDisk.deleted || (st.isFile() && !sameLocal(onDisk.local, st)))) {
      const change = await this.examine(remote.path, onDisk)
      if (change !== null) { this.commitLocal([change]); local = this.db.getEntry(this.id, remote.path) }
    }
    const pending = this.pendingSet.has(remote.path) ? this.db.getPending(this.id, remote.path) : undefined
    const target = pending?.entry ?? local
    const d = decide(target, remote)
    if (d.kind === 'accept' && d.entry === remote) this.asIs.add(remote)
    switch (d.kind) {
      case 'ignore': return false
      case 'merge-meta':
        if (pending !== undefined) { this.setPending(d.entry, pending.src, pending.keepLocal); return false }
        return this.materialize(d.entry, undefined, from)
      case 'accept':
        return this.materialize(d.entry, data, from, false, pending === undefined ? { cur: local, st } : undefined)
      case 'conflict': {
        this.host.log('warn', `share ${this.id}: concurrent edits of ${d.entry.path}; the other version is kept as ${d.copy.path}`)
        if (!d.localLost) {
          // The remote content lost: it becomes the conflict copy; ours stays, with the merged vector.
          this.emit('conflict', { share: this.id, path: d.entry.path, copy: d.copy.path })
          await this.materialize(d.copy, data, from)
          if (pending !== undefined) { this.setPending(d.entry, pending.src, pending.keepLocal); return true }
          return this.materialize(d.entry, undefined, from)
        }
        if (pending !== undefined) {
          // The loser was only wanted, not on disk: fetch it under the conflict name instead.
          this.emit('conflict', { share: this.id, path: d.entry.path, copy: d.copy.path })
          this.setPending(d.copy, pending.src, false)
          this.startFetch(d.copy, pending.src)
          return this.materialize(d.entry, d.entry.root.equals(remote.root) ? data : undefined, from, pending.keepLocal)
        }
        // Our content on disk lost: it is moved aside when the winner is installed, never before.
        return this.materialize(d.entry, d.entry.root.equals(remote.root) ? data : undefined, from, true)
      }
    }
  }

  private putAndTrack (e: Entry, local: LocalStat | null, src = ''): void {
    this.db.putEntry(this.id, e, local, this.asIs.has(e) ? src : '')
    this.tree.set(e)
  }

  /** Moves the live file at `rel` aside under its conflict name (no data moves) and records it. */
  private moveAside (cur: StoredEntry): void {
    const copy: Entry = { ...cur, path: conflictName(cur.path, cur.mtime, cur.by) }
    if (this.disk.lstat(copy.path) !== null) return
    this.disk.rename(cur.path, copy.path)
    this.putAndTrack(copy, localStatOf(this.disk.lstat(copy.path)!))
    this.emit('conflict', { share: this.id, path: cur.path, copy: copy.path })
  }

  /** Brings the disk to `entry`: delete, mkdir, write inline data, copy local content, or queue a fetch. */
  private async materialize (entry: Entry, data: Buffer | undefined, from: string, keepLocal = false, known?: { cur: StoredEntry | undefined, st: fs.Stats | null }): Promise<boolean> {
    const rel = entry.path
    if (entry.deleted) {
      const cur = this.db.getEntry(this.id, rel)
      this.disk.remove(rel, cur?.type ?? entry.type)
      if (cur?.type === 'dir') this.watcher?.remove(rel)
      this.clearPending(rel)
      this.putAndTrack(entry, null, from)
      if (cur !== undefined && !cur.deleted) this.emit('file-deleted', { share: this.id, path: rel, from })
      return true
    }
    if (entry.type === 'dir') {
      this.disk.ensureDir(rel)
      this.watcher?.add(rel)
      this.clearPending(rel)
      this.putAndTrack(entry, null, from)
      return true
    }
    // Same content already in place: only the metadata changes.
    const cur = known !== undefined ? known.cur : this.db.getEntry(this.id, rel)
    const st = known !== undefined ? known.st : this.disk.lstat(rel)
    if (cur !== undefined && !cur.deleted && cur.type === 'file' && cur.root.equals(entry.root) && st !== null && sameLocal(cur.local, st)) {
      let local = cur.local
      if (cur.mtime !== entry.mtime) {
        fs.utimesSync(this.disk.abs(rel), entry.mtime / 1000, entry.mtime / 1000)
        local = localStatOf(fs.lstatSync(this.disk.abs(rel)))
      }
      this.clearPending(rel)
      this.putAndTrack(entry, local, from)
      return true
    }
    if (data === undefined && entry.size === 0) data = Buffer.alloc(0)
    if (data !== undefined) {
      if (data.length !== entry.size || !(entry.size === 0 ? ZERO_ROOT : fileRoot(data)).equals(entry.root)) {
        this.host.log('warn', `share ${this.id}: inline data for ${rel} from ${from} failed verification; fetching it instead`)
      } else {
        const { tmp, local } = this.disk.writeTemp(data, entry.mtime)
        this.installTemp(tmp, entry, local, from, keepLocal)
        return true
      }
    }
    const copy = this.localCopy(entry)
    if (copy !== null) { this.installTemp(copy.tmp, entry, copy.local, from, keepLocal); return true }
    this.setPending(entry, from, keepLocal)
    this.startFetch(entry, from)
    return false
  }

  /** Content this node already has (any share on the same filesystem): copied, never fetched. */
  private localCopy (entry: Entry): { tmp: string, local: LocalStat } | null {
    for (const src of this.db.localByRoot(entry.root)) {
      if (src.share !== this.id) continue
      const st = this.disk.lstat(src.path)
      if (st === null || !sameLocal(src.local, st)) continue
      try { return this.disk.copyToTemp(src.path, entry.mtime) } catch (err) {
        if (isSwarmError(err, 'ERR_NO_SPACE')) throw err
      }
    }
    return null
  }

  private installTemp (tmp: string, entry: Entry, local: LocalStat, from: string, keepLocal: boolean): void {
    const cur = keepLocal ? this.db.getEntry(this.id, entry.path) : undefined
    if (cur !== undefined && !cur.deleted && cur.type === 'file' && !cur.root.equals(entry.root)) this.moveAside(cur)
    try {
      this.disk.install(tmp, entry.path)
    } catch (err) {
      this.disk.discard(tmp)
      throw mapWriteError(err)
    }
    this.clearPending(entry.path)
    this.putAndTrack(entry, local, from)
    if (this.selfWritten.size > 100_000) this.selfWritten.clear()
    this.selfWritten.set(entry.path, local)
    this.emit('file-updated', { share: this.id, path: entry.path, root: entry.root.toString('hex'), from })
  }

  private startFetch (entry: Entry, from: string, attempt = 1): void {
    const key = entry.path
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
        const want = this.pendingSet.has(entry.path) ? this.db.getPending(this.id, entry.path) : undefined
        if (want !== undefined && !this.stopped) this.startFetch(want.entry, want.src, Math.min(attempt * 2, FETCH_RETRY_MAX_S))
      }, attempt * 1000).unref()
      return
    }
    if (this.stopped) return
    // The wanted version may have moved on while we fetched; install only if it is still the one.
    const want = this.db.getPending(this.id, entry.path)
    if (want === undefined || !want.entry.root.equals(entry.root)) {
      if (want !== undefined) this.startFetch(want.entry, want.src)
      return
    }
    await this.enqueueLocal(async () => {
      const st = this.disk.lstat(entry.path)
      const cur = this.db.getEntry(this.id, entry.path)
      if (st !== null && st.isFile() && (cur === undefined || cur.deleted || !sameLocal(cur.local, st))) {
        // A local edit landed while we fetched: record it and let the merge rules decide.
        const change = await this.examine(entry.path, cur)
        if (change !== null) this.commitLocal([change])
        this.clearPending(entry.path)
        await this.applyRemote(want.src, [{ entry: want.entry }])
        return
      }
      const local = this.disk.stampTemp(tmp, want.entry.mtime)
      if (want.asIs) this.asIs.add(want.entry)
      this.installTemp(tmp, want.entry, local, want.src, want.keepLocal)
      this.emit('changed')
    })
  }
}
