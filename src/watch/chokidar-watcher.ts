// The fallback watch backend, where the native inotify addon cannot load (not Linux, the build
// failed, or SWARM_WATCHER=chokidar): chokidar watches the share recursively. This file owns
// mapping chokidar's events onto the contract (watcher.ts). What it cannot give:
//  - close-write: a file is announced once its size and mtime have been stable for
//    AWAIT_WRITE_STABLE_MS (checked here, not with chokidar's awaitWriteFinish, which drops the
//    unlink of a file whose add it still holds back: a file installed and at once renamed or
//    deleted would stay in the index), so reportsCloseWrite is false and the sync layer also
//    waits for young big files to settle;
//  - moves: chokidar reports a rename as unlink + add; the two are paired here by inode
//    (learned from the stats of the events this watcher saw, so a file that has not changed
//    since the watcher started is reported as delete + create);
//  - overflow: none is ever reported.
import { lstatSync } from 'node:fs'
import { isAbsolute, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { Stats } from 'node:fs'
import { EventBatcher } from './batcher.js'
import { type RelPath, type Watcher, type WatcherOptions, isWithin } from './watcher.js'

/** A file is announced once its size has not changed for this long... */
export const AWAIT_WRITE_STABLE_MS = 150
/** ...checked this often. */
export const AWAIT_WRITE_POLL_MS = 30
/**
 * A deleted path whose inode is known waits this long for an add of the same inode (a rename).
 * chokidar reports the add at once and holds an unlink back 100 ms itself (its `atomic`), so the
 * add nearly always comes first and this wait is rare.
 */
export const MOVE_PAIR_MS = 200

interface HeldDelete { path: RelPath, dir: boolean, timer: NodeJS.Timeout }
interface Unsettled { kind: 'create' | 'write', size: number, mtimeMs: number, since: number, timer: NodeJS.Timeout }

export class ChokidarWatcher implements Watcher {
  readonly backend = 'chokidar' as const
  readonly reportsCloseWrite = false
  readonly ready: Promise<void>
  private readonly fsw: FSWatcher
  private readonly batcher: EventBatcher
  /** Folders passed to add() that chokidar watches recursively. */
  private readonly tops = new Set<RelPath>()
  /** Inode of each path seen in an event (for pairing renames), and the reverse. */
  private readonly inoOf = new Map<RelPath, number>()
  private readonly pathOfIno = new Map<number, RelPath>()
  /** Deletes held back for MOVE_PAIR_MS, by inode. */
  private readonly held = new Map<number, HeldDelete>()
  /** Files added or changed whose size and mtime have not been stable for AWAIT_WRITE_STABLE_MS yet. */
  private readonly unsettled = new Map<RelPath, Unsettled>()
  /** Old paths of moves already reported: their unlink, when it comes, is not news. */
  private readonly movedAway = new Set<RelPath>()
  private closed = false
  private readyNow: () => void = () => {}

  constructor (private readonly root: string, private readonly opts: WatcherOptions) {
    this.batcher = new EventBatcher(opts.onEvents)
    this.fsw = watch([], {
      persistent: false,            // a share's watcher must not keep the process alive
      ignoreInitial: true,          // the sync layer's own scan covers what is already there
      followSymlinks: false,
      alwaysStat: true,             // the inode pairs a rename's unlink and add
      ignored: (p: string) => { const rel = this.rel(p); return rel !== null && rel !== '' && opts.ignore(rel) }
    })
    // Resolved by chokidar's first 'ready', or by close (a caller waiting must not hang).
    this.ready = new Promise(resolve => { this.readyNow = resolve; this.fsw.once('ready', () => resolve()) })
    this.fsw.on('add', (p, st) => { this.added(p, st, false) })
    this.fsw.on('addDir', (p, st) => { this.added(p, st, true) })
    this.fsw.on('change', (p, st) => { const rel = this.rel(p); if (rel !== null && rel !== '') { this.learn(rel, st); this.unsettle(rel, 'write') } })
    this.fsw.on('unlink', (p) => { this.removed(p, false) })
    this.fsw.on('unlinkDir', (p) => { this.removed(p, true) })
    this.fsw.on('error', (err) => { this.opts.onError(err as Error, '') })
  }

  get watchCount (): number {
    // getWatched() also lists the parent of each folder added (chokidar watches it for the folder's own events).
    return Object.keys(this.fsw.getWatched()).filter(d => this.rel(d) !== null).length
  }

  add (relDir: RelPath): void {
    if (this.closed || (relDir !== '' && this.opts.ignore(relDir))) return
    for (const t of this.tops) if (isWithin(relDir, t)) return   // already watched recursively
    this.tops.add(relDir)
    this.fsw.add(this.abs(relDir))
  }

  remove (relDir: RelPath): void {
    // chokidar drops the watches of folders that go; only a top added here is unwatched by hand.
    if (this.closed || !this.tops.delete(relDir)) return
    this.fsw.unwatch(this.abs(relDir))
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.readyNow()
    this.batcher.close()
    for (const h of this.held.values()) clearTimeout(h.timer)
    this.held.clear()
    for (const u of this.unsettled.values()) clearTimeout(u.timer)
    this.unsettled.clear()
    void this.fsw.close()
  }

  private abs (rel: RelPath): string {
    return rel === '' ? this.root : this.root + sep + rel.split('/').join(sep)
  }

  /** The share-relative path of a path chokidar reports, or null if it is outside the share. */
  private rel (p: string): RelPath | null {
    const r = isAbsolute(p) ? relative(this.root, p) : p
    if (r.startsWith('..')) return null
    return sep === '/' ? r : r.split(sep).join('/')
  }

  private learn (rel: RelPath, st: Stats | undefined): void {
    if (st === undefined) return
    const old = this.inoOf.get(rel)
    if (old !== undefined && this.pathOfIno.get(old) === rel) this.pathOfIno.delete(old)
    this.inoOf.set(rel, st.ino)
    this.pathOfIno.set(st.ino, rel)
  }

  private forget (rel: RelPath): number | undefined {
    const ino = this.inoOf.get(rel)
    this.inoOf.delete(rel)
    if (ino !== undefined && this.pathOfIno.get(ino) === rel) this.pathOfIno.delete(ino)
    return ino
  }

  private added (p: string, st: Stats | undefined, dir: boolean): void {
    const rel = this.rel(p)
    if (rel === null || rel === '' || this.closed) return
    this.movedAway.delete(rel)
    const ino = st?.ino
    if (ino !== undefined) {
      // The unlink came first and is held: the pair is a rename.
      const h = this.held.get(ino)
      if (h !== undefined && h.path !== rel) {
        clearTimeout(h.timer)
        this.held.delete(ino)
        this.dropUnsettled(h.path, rel)
        this.learn(rel, st)
        this.batcher.push({ kind: 'move', from: h.path, to: rel, dir })
        return
      }
      // The add came first: the inode was last seen under a path that no longer holds it.
      const before = this.pathOfIno.get(ino)
      if (before !== undefined && before !== rel && !this.holds(before, ino)) {
        this.forget(before)
        this.movedAway.add(before)
        this.dropUnsettled(before, rel)
        this.learn(rel, st)
        this.batcher.push({ kind: 'move', from: before, to: rel, dir })
        return
      }
    }
    this.learn(rel, st)
    if (dir) this.batcher.push({ kind: 'dir-create', path: rel })
    else this.unsettle(rel, 'create')
  }

  /** A file added or changed: announced once it has stopped changing (see AWAIT_WRITE_STABLE_MS). */
  private unsettle (rel: RelPath, kind: 'create' | 'write'): void {
    const u = this.unsettled.get(rel)
    if (u !== undefined) return   // already being watched; a create stays a create
    const timer = setTimeout(() => this.checkSettled(rel), AWAIT_WRITE_POLL_MS)
    timer.unref()
    this.unsettled.set(rel, { kind, size: -1, mtimeMs: -1, since: Date.now(), timer })
  }

  private checkSettled (rel: RelPath): void {
    const u = this.unsettled.get(rel)
    if (u === undefined || this.closed) return
    let st: Stats
    try { st = lstatSync(this.abs(rel)) } catch { this.unsettled.delete(rel); return }   // gone: its unlink comes
    const now = Date.now()
    if (st.size !== u.size || st.mtimeMs !== u.mtimeMs) { u.size = st.size; u.mtimeMs = st.mtimeMs; u.since = now }
    if (now - u.since >= AWAIT_WRITE_STABLE_MS) {
      this.unsettled.delete(rel)
      this.batcher.push({ kind: u.kind, path: rel })
      return
    }
    u.timer = setTimeout(() => this.checkSettled(rel), AWAIT_WRITE_POLL_MS)
    u.timer.unref()
  }

  /** A path that moved or went: what was waiting to settle there is dropped (or follows the move). */
  private dropUnsettled (rel: RelPath, to?: RelPath): void {
    for (const [p, u] of [...this.unsettled]) {
      if (!isWithin(p, rel)) continue
      clearTimeout(u.timer)
      this.unsettled.delete(p)
      if (to !== undefined) this.unsettle(to + p.slice(rel.length), u.kind)
    }
  }

  private removed (p: string, dir: boolean): void {
    const rel = this.rel(p)
    if (rel === null || rel === '' || this.closed) return
    if (this.movedAway.delete(rel)) return
    this.dropUnsettled(rel)
    const ino = this.forget(rel)
    if (ino === undefined) { this.batcher.push({ kind: 'delete', path: rel }); return }
    const prev = this.held.get(ino)
    if (prev !== undefined) { clearTimeout(prev.timer); this.batcher.push({ kind: 'delete', path: prev.path }) }
    const timer = setTimeout(() => {
      this.held.delete(ino)
      this.batcher.push({ kind: 'delete', path: rel })
    }, MOVE_PAIR_MS)
    timer.unref()
    this.held.set(ino, { path: rel, dir, timer })
  }

  private holds (rel: RelPath, ino: number): boolean {
    try { return lstatSync(this.abs(rel)).ino === ino } catch { return false }
  }
}
