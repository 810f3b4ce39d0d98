// The local direction of a share: what changed on disk since the index last saw it. A full
// sweep at start (hash only what size/mtime/inode say changed; tombstone what is gone) and the
// watcher's batches of paths; both produce new entry versions that the Share commits. Files or
// folders that cannot be read are logged once and left as last indexed — never taken for deleted.
import type * as fs from 'node:fs'
import type { IndexDb, LocalRow } from '../store/db.js'
import type { ShareDisk } from '../store/share-disk.js'
import type { Watcher } from '../watch/index.js'
import { fileRoot, ZERO_ROOT } from '../merkle/bep52.js'
import { hashFile } from '../merkle/hash-file.js'
import { isSwarmError } from '../errors.js'
import { type Entry, type LocalStat, type StoredEntry, sameLocal } from '../model/entry.js'
import { bumpVersion } from '../model/version.js'
import { META_DIR, joinRel, pathProblem } from '../model/paths.js'
import { INLINE_MAX } from './feed.js'
import { MAX_FILE_SIZE } from '../model/rules.js'

/** Changes committed per SQLite transaction during a scan. */
const SCAN_COMMIT_EVERY = 2000
/**
 * Files larger than INLINE_MAX whose mtime is younger than this are looked at again later instead
 * of hashed: without close-write events (the chokidar watcher) this is how a big file still being
 * written is left alone. Small files are never delayed (they are the latency path). The inotify
 * watcher announces files only once closed, so it needs no such wait.
 */
const SETTLE_MS = 50

export interface LocalChange { entry: Entry, local: LocalStat | null }

export interface ScanHost {
  readonly id: string
  readonly db: IndexDb
  readonly disk: ShareDisk
  readonly shortId: string
  /** The highest version counter this node has seen in the share (bumpVersion's floor). */
  clock (): number
  watcher (): Watcher | null
  /** Records changes (one transaction) and tells peers. */
  commit (changes: LocalChange[]): void
  /** Looks at a path again later, in the share's local queue. */
  requeue (rel: string): void
  /** The stat of a file this node just wrote from a peer (its watcher echo is skipped), taken once. */
  takeSelfWritten (rel: string): LocalStat | undefined
  cacheInline (root: Buffer, data: Buffer): void
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export class LocalScanner {
  private readonly warnedSpecial = new Set<string>()
  /** Paths whose read failed and the reason last logged, so each is logged once. */
  private readonly unreadable = new Map<string, string>()
  /** Counters for status and tests. */
  readonly stats = { filesHashed: 0 }

  constructor (private readonly host: ScanHost) {}

  /** Full sweep, all steps at once (an overflow rescan, tests). The share runs startFullScan()'s steps through its queue. */
  async scanAll (): Promise<void> {
    const scan = this.startFullScan()
    while (await scan.step()) { /* next folder */ }
  }

  /** A full sweep that goes one folder per step() (see FullScan). */
  startFullScan (): FullScan { return new FullScan(this) }

  /**
   * Scans one folder: lists it, compares each name with the index row directly inside it (a
   * file whose size, mtime and inode match is not read), records what changed, and says which
   * subfolders to visit and which indexed names are gone. A folder that cannot be listed is
   * logged and nothing below it is touched: an unreadable folder is not a deleted one.
   */
  async scanFolder (relDir: string, subfolders: string[], gone: string[]): Promise<number> {
    let dirents: fs.Dirent[]
    try { dirents = this.host.disk.readdir(relDir) } catch (err) {
      this.noteUnreadable(relDir, err)
      return 0
    }
    this.host.watcher()?.add(relDir)
    const rows = new Map<string, LocalRow>()
    for (const r of this.host.db.localRowsIn(this.host.id, relDir)) rows.set(r.path, r)
    let batch: LocalChange[] = []
    const flush = (): void => { if (batch.length > 0) { this.host.commit(batch); batch = [] } }
    for (const d of dirents) {
      const rel = joinRel(relDir, d.name)
      if (rel === META_DIR) continue
      const row = rows.get(rel)
      rows.delete(rel)
      if (this.badName(rel)) continue
      if (d.isDirectory()) subfolders.push(rel)
      if (row !== undefined && !row.deleted && this.unchanged(rel, row, d)) continue
      const old = row === undefined ? undefined : this.host.db.getEntry(this.host.id, rel)
      const change = await this.examine(rel, old)
      if (change === null) continue
      batch.push(change)
      if (old !== undefined && !old.deleted && old.type === 'dir' && change.entry.type !== 'dir') {
        // The folder became a file: what the index held below it is gone.
        for (const child of this.host.db.liveChildren(this.host.id, rel)) batch.push({ entry: this.tombstone(child), local: null })
      }
      if (batch.length >= SCAN_COMMIT_EVERY) flush()
    }
    flush()
    for (const r of rows.values()) if (!r.deleted) gone.push(r.path)
    return dirents.length
  }

  /** True if the disk still holds what the row says, judged without reading the file. */
  private unchanged (rel: string, row: LocalRow, d: fs.Dirent): boolean {
    if (row.dir) return d.isDirectory()
    if (!d.isFile()) return false
    const st = this.host.disk.lstat(rel)
    if (st === null || !st.isFile() || !sameLocal(row.local, st)) return false
    this.unreadable.delete(rel)
    return true
  }

  /** Tombstones for indexed paths a sweep did not find (and everything below a vanished folder), if still absent. */
  async recordGone (paths: string[]): Promise<void> {
    let batch: LocalChange[] = []
    for (const rel of paths) {
      const old = this.host.db.getEntry(this.host.id, rel)
      if (old === undefined || old.deleted) continue
      const change = await this.examine(rel, old)
      if (change === null) continue
      batch.push(change)
      if (change.entry.deleted && old.type === 'dir') {
        for (const child of this.host.db.liveChildren(this.host.id, rel)) batch.push({ entry: this.tombstone(child), local: null })
      }
      if (batch.length >= SCAN_COMMIT_EVERY) { this.host.commit(batch); batch = [] }
    }
    if (batch.length > 0) this.host.commit(batch)
  }

  /** Watcher batch: look at each path (and below new folders) and record what changed. */
  async examinePaths (paths: string[]): Promise<void> {
    const changes: Array<{ entry: Entry, local: LocalStat | null }> = []
    this.host.disk.forgetDirs()   // folders may have been replaced (by a symlink, say) since they were checked
    const visit = async (rel: string) => {
      if (this.badName(rel)) return
      const mine = this.host.takeSelfWritten(rel)
      if (mine !== undefined) {
        const st = this.host.disk.lstat(rel)
        if (st !== null && sameLocal(mine, st)) return
      }
      const old = this.host.db.getEntry(this.host.id, rel)
      const change = await this.examine(rel, old)
      if (change === null) return
      changes.push(change)
      if (change.entry.type === 'dir' && !change.entry.deleted) {
        this.host.watcher()?.add(rel)
        let names: fs.Dirent[] = []
        try { names = this.host.disk.readdir(rel) } catch (err) { this.noteUnreadable(rel, err) }
        for (const n of names) await visit(joinRel(rel, n.name))
      } else if (old?.type === 'dir' && !old.deleted) {
        // The folder is gone or became a file: everything the index held below it is gone too.
        this.host.watcher()?.remove(rel)
        this.host.disk.forgetDirs()
        for (const child of this.host.db.liveChildren(this.host.id, rel)) changes.push({ entry: this.tombstone(child), local: null })
      }
    }
    for (const p of paths) await visit(p)
    // New content before deletions, so a rename is applied on peers as copy-then-delete.
    changes.sort((a, b) => Number(a.entry.deleted) - Number(b.entry.deleted))
    if (changes.length > 0) this.host.commit(changes)
  }

  /** Compares one path on disk with its index row; returns the new entry, or null if nothing changed. */
  async examine (rel: string, old: StoredEntry | undefined): Promise<{ entry: Entry, local: LocalStat | null } | null> {
    try {
      return await this.examineOrThrow(rel, old)
    } catch (err) {
      // An unreadable file or folder is logged and left as the index last saw it; the rest goes on.
      this.noteUnreadable(rel, err)
      return null
    }
  }

  private noteUnreadable (rel: string, err: unknown): void {
    const why = (err as Error).message
    if (this.unreadable.get(rel) === why) return
    if (this.unreadable.size > 10_000) this.unreadable.clear()
    this.unreadable.set(rel, why)
    this.host.log('warn', `share ${this.host.id}: cannot read ${rel || '.'}; skipped, kept as last indexed: ${why}`)
  }

  /** Names no peer could accept (see model/paths.ts) are logged once and not replicated. */
  private badName (rel: string): boolean {
    const problem = pathProblem(rel)
    if (problem === null) return false
    if (!this.warnedSpecial.has(rel)) {
      this.warnedSpecial.add(rel)
      this.host.log('info', `share ${this.host.id}: not replicating ${JSON.stringify(rel)} (${problem})`)
    }
    return true
  }

  private async examineOrThrow (rel: string, old: StoredEntry | undefined): Promise<{ entry: Entry, local: LocalStat | null } | null> {
    const st = this.host.disk.lstat(rel)
    const live = old !== undefined && !old.deleted ? old : undefined
    if (st === null) return live !== undefined ? { entry: this.tombstone(live), local: null } : null
    if (st.isDirectory()) {
      if (live?.type === 'dir') return null
      return { entry: this.newVersion(rel, old, { type: 'dir', size: 0, mtime: 0, root: ZERO_ROOT }), local: null }
    }
    if (!st.isFile()) {
      if (!this.warnedSpecial.has(rel)) {
        this.warnedSpecial.add(rel)
        this.host.log('info', `share ${this.host.id}: not replicating ${rel} (${st.isSymbolicLink() ? 'symlink' : 'special file'})`)
      }
      return live !== undefined ? { entry: this.tombstone(live), local: null } : null
    }
    if (live?.type === 'file' && sameLocal(live.local, st)) { this.unreadable.delete(rel); return null }
    if (st.size > MAX_FILE_SIZE) {
      // No peer would accept it (model/rules.ts): kept out of the share, as last indexed.
      if (!this.warnedSpecial.has(rel)) { this.warnedSpecial.add(rel); this.host.log('warn', `share ${this.host.id}: not replicating ${rel}: larger than ${MAX_FILE_SIZE} bytes`) }
      return null
    }
    if (st.size > INLINE_MAX && this.host.watcher()?.reportsCloseWrite !== true && Date.now() - st.mtimeMs < SETTLE_MS) {
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
      this.host.db.setLocal(this.host.id, rel, local)   // same content and time, new inode (e.g. our own rename): no new version
      live.local = local
      return null
    }
    return { entry: this.newVersion(rel, old, { type: 'file', size: hashed.size, mtime, root: hashed.root }), local }
  }

  private requeue (rel: string, delayMs = 5): void {
    setTimeout(() => { this.host.requeue(rel) }, delayMs).unref()
  }

  private async hashLocal (rel: string, st: fs.Stats): Promise<{ root: Buffer, size: number, mtimeMs: number, ino: number }> {
    this.stats.filesHashed++
    if (st.size <= INLINE_MAX) {
      const { data, local } = this.host.disk.readWhole(rel)
      const root = data.length === 0 ? ZERO_ROOT : fileRoot(data)
      this.host.cacheInline(root, data)
      return { root, ...local }
    }
    const h = await hashFile(await this.host.disk.openReadHandle(rel))
    this.host.db.putLayer(h.root, h.layer)
    return { root: h.root, size: h.size, mtimeMs: h.mtimeMs, ino: h.ino }
  }

  private newVersion (path: string, old: Entry | undefined, content: Pick<Entry, 'type' | 'size' | 'mtime' | 'root'>): Entry {
    return { path, deleted: false, ...content, version: bumpVersion(old?.version, this.host.shortId, this.host.clock()), by: this.host.shortId }
  }

  tombstone (e: Entry): Entry {
    return { ...e, deleted: true, size: 0, root: ZERO_ROOT, version: bumpVersion(e.version, this.host.shortId, this.host.clock()), by: this.host.shortId }
  }

}

/**
 * A full sweep of a share in steps, one folder each (the share runs each step through its
 * local queue, so peers' batches and watcher events are not held up behind a long scan). It
 * holds only the folders still to visit and the indexed paths found gone; tombstones are
 * recorded last, after every new file, so a rename is applied on peers as copy-then-delete.
 */
export class FullScan {
  private readonly todo: string[] = ['']
  private readonly gone: string[] = []
  private finished = false
  readonly startedAt = Date.now()
  /** Names listed so far. */
  seen = 0

  constructor (private readonly scanner: LocalScanner) {}

  /** Scans the next folder (or records what is gone, last); false once the sweep is complete. */
  async step (): Promise<boolean> {
    if (this.finished) return false
    const dir = this.todo.pop()
    if (dir !== undefined) {
      const sub: string[] = []
      this.seen += await this.scanner.scanFolder(dir, sub, this.gone)
      for (let i = sub.length - 1; i >= 0; i--) this.todo.push(sub[i]!)   // depth first, in listing order
      return true
    }
    await this.scanner.recordGone(this.gone)
    this.finished = true
    return false
  }
}
