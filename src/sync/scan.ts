// The local direction of a share: what changed on disk since the index last saw it. A full
// sweep at start (hash only what size/mtime/inode say changed; tombstone what is gone) and the
// watcher's batches of paths; both produce new entry versions that the Share commits. Files or
// folders that cannot be read are logged once and left as last indexed — never taken for deleted.
// Ignored paths (rules.ts) are skipped: never indexed, never descended into, and an indexed path
// that became ignored is left as last indexed (no new version, no tombstone). A file whose stat is
// what the index holds is not matched against the rules at all: either it was matched when it was
// indexed, or it became ignored since, and then leaving its row alone is what ignoring means.
import type * as fs from 'node:fs'
import type { IndexDb, LocalRow } from '../store/db.js'
import { diskThread } from '../store/disk-thread.js'
import type { FolderResult, KnownStat } from '../store/folder-scan.js'
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
 * A sweep step scans folders for about this long before it commits and lets other work (peers'
 * batches, watcher events) run: long enough that a commit covers many small folders, short
 * enough that a live change waits at most this long behind a sweep.
 */
const STEP_MS = 50
/** Folders whose disk half runs ahead in the disk thread while the event loop records the current one. */
const READ_AHEAD = 2
/**
 * Files larger than INLINE_MAX whose mtime is younger than this are looked at again later instead
 * of hashed: without close-write events (the chokidar watcher) this is how a big file still being
 * written is left alone. Small files are never delayed (they are the latency path). The inotify
 * watcher announces files only once closed, so it needs no such wait.
 */
const SETTLE_MS = 50

/** A folder's disk half (readFolder), the index stats it was compared with, by name, and the ignore patterns it applied. */
export interface FolderRead { result: FolderResult, sent: Map<string, LocalStat>, patterns?: readonly string[] }

/** The row's local stat is still the one the disk thread compared with (both absent counts as the same). */
function unchangedSince (now: LocalStat | null, sent: LocalStat | undefined): boolean {
  return sent === undefined ? now === null : sameLocal(now, sent)
}

/** old: the row the change replaces, when the scanner already read it (null: none); undefined: look it up. */
export interface LocalChange { entry: Entry, local: LocalStat | null, old?: StoredEntry | null }

export interface ScanHost {
  readonly id: string
  readonly db: IndexDb
  readonly disk: ShareDisk
  readonly shortId: string
  /** The highest version counter this node has seen in the share (bumpVersion's floor). */
  clock (): number
  /** The ignore patterns in effect (the disk half of a folder scan leaves ignored names out unread). */
  ignorePatterns (): readonly string[]
  /** Whether the share's rules ignore `rel`, a folder when `isDir`. */
  ignores (rel: string, isDir: boolean): boolean
  /** The same for a path whose type is not known: a folder-only pattern asks the disk or the index. */
  ignoresPath (rel: string): boolean
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
  startFullScan (): FullScan { return new FullScan(this, this.host) }

  /**
   * The disk half of a folder's scan (store/folder-scan.ts: list, lstat, read and hash the small
   * files whose stat differs from the index), run in the disk thread. Started ahead of time by
   * FullScan so that the thread scans the next folder while the event loop records this one.
   */
  readFolder (relDir: string): Promise<FolderRead> {
    const st = this.host.disk.lstat(relDir)   // a real folder inside the share (no symlink on the way)
    if (st === null || !st.isDirectory()) return Promise.resolve({ result: { ok: true, items: [] }, sent: new Map() })
    const sent = new Map<string, LocalStat>()
    const known: KnownStat[] = []
    for (const r of this.host.db.localRowsIn(this.host.id, relDir)) {
      if (r.deleted || r.dir || r.local === null) continue
      const name = r.path.slice(relDir === '' ? 0 : relDir.length + 1)
      sent.set(name, r.local)
      known.push([name, r.local.size, r.local.mtimeMs, r.local.ino])
    }
    const patterns = this.host.ignorePatterns()
    return diskThread.scanFolder(this.host.disk.abs(relDir), known, INLINE_MAX, { patterns, relDir }).then(result => ({ result, sent, patterns }))
  }

  /**
   * Scans one folder: compares each name the disk half found with the index row directly inside
   * it (a file whose size, mtime and inode match was not read), records what changed, and says
   * which subfolders to visit and which indexed names are gone. A folder that cannot be listed
   * is logged and nothing below it is touched: an unreadable folder is not a deleted one.
   */
  async scanFolder (relDir: string, subfolders: string[], gone: string[], batch: LocalChange[], read?: FolderRead): Promise<void> {
    const { result, sent, patterns } = read ?? await this.readFolder(relDir)
    // The disk half matched the files it read against these patterns: matched again only if the rules changed since.
    const filesMatched = patterns === this.host.ignorePatterns()
    if (!result.ok) {
      this.noteUnreadable(relDir, Object.assign(new Error(result.message), { code: result.code }))
      return
    }
    this.host.watcher()?.add(relDir)
    const rows = new Map<string, LocalRow>()
    for (const r of this.host.db.localRowsIn(this.host.id, relDir)) rows.set(r.path, r)
    const flush = (): void => { if (batch.length > 0) this.host.commit(batch.splice(0)) }
    for (const item of result.items) {
      const rel = joinRel(relDir, item.name)
      if (rel === META_DIR) continue
      const row = rows.get(rel)
      rows.delete(rel)
      if (this.badName(rel)) continue
      if (item.t !== 'same' && !(item.t === 'file' && filesMatched) && this.host.ignores(rel, item.t === 'dir')) continue
      if (item.t === 'dir') subfolders.push(rel)
      // The row may have moved on (a peer's file installed) since the thread compared with it: then look again here.
      const fresh = row === undefined || row.deleted || row.dir || unchangedSince(row.local, sent.get(item.name))
      if (fresh && row !== undefined && !row.deleted && (item.t === 'same' || (item.t === 'dir' && row.dir))) { this.unreadable.delete(rel); continue }
      if (fresh && item.t === 'error' && item.code === 'ERR_FILE_CHANGED') { this.requeue(rel); continue }
      const old = row === undefined ? undefined : this.host.db.getEntry(this.host.id, rel)
      const change = fresh && item.t === 'file' && item.root !== undefined
        ? this.examineRead(rel, old, item.size, item.mtimeMs, item.ino, Buffer.from(item.root))
        : await this.examine(rel, old)
      if (change === null) continue
      batch.push({ ...change, old: old ?? null })
      if (old !== undefined && !old.deleted && old.type === 'dir' && change.entry.type !== 'dir') {
        // The folder became a file: what the index held below it is gone.
        batch.push(...this.tombstonesBelow(rel))
      }
      if (batch.length >= SCAN_COMMIT_EVERY) flush()
    }
    for (const r of rows.values()) if (!r.deleted && !this.host.ignores(r.path, r.dir)) gone.push(r.path)
  }

  /** A small file the disk thread read and hashed: its new version, or null if the index already has this content. */
  private examineRead (rel: string, old: StoredEntry | undefined, size: number, mtimeMs: number, ino: number, root: Buffer): LocalChange | null {
    this.stats.filesHashed++
    this.unreadable.delete(rel)
    const live = old !== undefined && !old.deleted ? old : undefined
    const local: LocalStat = { size, mtimeMs, ino }
    const mtime = Math.trunc(mtimeMs)
    if (live?.type === 'file' && live.root.equals(root) && live.size === size && live.mtime === mtime) {
      this.host.db.setLocal(this.host.id, rel, local)   // same content and time, new inode: no new version
      return null
    }
    return { entry: this.newVersion(rel, old, { type: 'file', size, mtime, root }), local }
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
      if (change.entry.deleted && old.type === 'dir') batch.push(...this.tombstonesBelow(rel))
      if (batch.length >= SCAN_COMMIT_EVERY) { this.host.commit(batch); batch = [] }
    }
    if (batch.length > 0) this.host.commit(batch)
  }

  /** Watcher batch: look at each path (and below new folders) and record what changed. */
  async examinePaths (paths: string[]): Promise<void> {
    const changes: Array<{ entry: Entry, local: LocalStat | null }> = []
    this.host.disk.forgetDirs()   // folders may have been replaced (by a symlink, say) since they were checked
    const visit = async (rel: string) => {
      if (this.badName(rel) || this.host.ignoresPath(rel)) return
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
        changes.push(...this.tombstonesBelow(rel))
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

  /** Tombstones for what the index holds below a folder that is gone, except ignored paths (left as last indexed). */
  private tombstonesBelow (rel: string): LocalChange[] {
    const out: LocalChange[] = []
    for (const child of this.host.db.liveChildren(this.host.id, rel)) {
      if (!this.host.ignores(child.path, child.type === 'dir')) out.push({ entry: this.tombstone(child), local: null })
    }
    return out
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
  /** Folders still to scan, breadth first, so the next one is known while this one is recorded. */
  private readonly todo: string[] = ['']
  private head = 0
  /** Disk halves started ahead (readFolder), by folder. */
  private readonly ahead = new Map<string, Promise<FolderRead>>()
  private readonly gone: string[] = []
  private finished = false
  readonly startedAt = Date.now()

  constructor (private readonly scanner: LocalScanner, private readonly host: ScanHost) {}

  /**
   * Scans the next folders, for up to STEP_MS or SCAN_COMMIT_EVERY changes, and records their
   * changes in one transaction (or, once every folder is done, records what is gone); false once
   * the sweep is complete.
   */
  async step (): Promise<boolean> {
    if (this.finished) return false
    if (this.head < this.todo.length) {
      const batch: LocalChange[] = []
      const until = Date.now() + STEP_MS
      do {
        const dir = this.todo[this.head++]!
        const read = this.ahead.get(dir) ?? this.scanner.readFolder(dir)
        this.ahead.delete(dir)
        this.readAhead()
        await this.scanner.scanFolder(dir, this.todo, this.gone, batch, await read)
        if (this.head > 4096) { this.todo.splice(0, this.head); this.head = 0 }
      } while (this.head < this.todo.length && batch.length < SCAN_COMMIT_EVERY && Date.now() < until)
      this.readAhead()
      if (batch.length > 0) this.host.commit(batch)
      return true
    }
    await this.scanner.recordGone(this.gone)
    this.finished = true
    return false
  }

  /** Keeps READ_AHEAD folders' disk halves running in the disk thread. */
  private readAhead (): void {
    for (let i = this.head; i < this.todo.length && this.ahead.size < READ_AHEAD; i++) {
      const dir = this.todo[i]!
      if (!this.ahead.has(dir)) this.ahead.set(dir, this.scanner.readFolder(dir))
    }
  }
}
