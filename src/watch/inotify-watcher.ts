// The native watch backend: one inotify watch per folder of the share through the addon in
// native/ (inotify-binding.ts loads it), events read on Node's own loop in one Buffer per wakeup.
// This file owns turning raw inotify events into the contract's events (watcher.ts):
//  - files are announced on IN_CLOSE_WRITE (or when moved into place), not while still open; a
//    file modified and never closed (mmap, a writer keeping its fd) is announced WRITE_SETTLE_MS
//    after its last IN_MODIFY;
//  - IN_MOVED_FROM/IN_MOVED_TO are paired by cookie into one move; unpaired they are a delete
//    (moved out of the share) or a create (moved in);
//  - a new folder is watched the moment it appears, then listed, so what was put in it before the
//    watch existed is reported too;
//  - the wd ↔ folder maps follow renames (a renamed folder keeps its watches) and forget watches
//    the kernel drops (IN_IGNORED);
//  - IN_Q_OVERFLOW becomes an `overflow` event: the consumer rescans.
import { readdirSync, lstatSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import { joinRel } from '../model/paths.js'
import { EventBatcher } from './batcher.js'
import { type InotifyBinding, type InotifyHandle, inotifyError } from './inotify-binding.js'
import {
  parseEvents, type RawEvent, WATCH_MASK, IN_Q_OVERFLOW, IN_IGNORED, IN_DELETE_SELF, IN_MOVE_SELF, IN_ISDIR,
  IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE, IN_ATTRIB, IN_DELETE
} from './inotify-events.js'
import { type RelPath, type Watcher, type WatcherOptions, isWithin } from './watcher.js'

/** A file modified (or created) and not closed is announced this long after its last change. */
export const WRITE_SETTLE_MS = 1000
/**
 * An IN_MOVED_FROM whose IN_MOVED_TO has not come this long after it (with the loop idle in
 * between, see resolveMoves) was a move out of the share: a delete. The kernel queues both halves
 * of a rename together, so this only delays moves out of the share.
 */
export const MOVE_PAIR_MS = 5
/** ...but however busy the loop, an unpaired IN_MOVED_FROM is a delete after this long. */
export const MOVE_PAIR_MAX_MS = 200

interface Settling { last: number, created: boolean, timer: NodeJS.Timeout }
interface MovedFrom { path: RelPath, dir: boolean, ignored: boolean, at: number }

export class InotifyWatcher implements Watcher {
  readonly backend = 'inotify' as const
  readonly reportsCloseWrite = true
  readonly ready = Promise.resolve()
  private readonly handle: InotifyHandle
  private readonly wdToDir = new Map<number, RelPath>()
  private readonly dirToWd = new Map<RelPath, number>()
  /** Files created or modified and not yet closed. */
  private readonly settling = new Map<RelPath, Settling>()
  /** IN_MOVED_FROM halves waiting for their IN_MOVED_TO, by cookie. */
  private readonly movedFrom = new Map<number, MovedFrom>()
  private moveTimer: NodeJS.Timeout | null = null
  private moveTimerDue = 0
  private readonly batcher: EventBatcher
  private closed = false

  constructor (private readonly binding: InotifyBinding, private readonly root: string, private readonly opts: WatcherOptions) {
    this.batcher = new EventBatcher(opts.onEvents, 0)
    try {
      this.handle = binding.open((err, buf) => { this.onData(err, buf) })
    } catch (err) {
      throw inotifyError(err as NodeJS.ErrnoException, root)
    }
  }

  get watchCount (): number { return this.dirToWd.size }

  add (relDir: RelPath): void {
    if (this.closed || (relDir !== '' && this.opts.ignore(relDir)) || this.dirToWd.has(relDir)) return
    this.watch(relDir)
  }

  remove (relDir: RelPath): void {
    if (this.closed) return
    for (const [dir, wd] of [...this.dirToWd]) {
      if (!isWithin(dir, relDir)) continue
      try { this.binding.rmWatch(this.handle, wd) } catch { /* the kernel dropped it already */ }
      this.dirToWd.delete(dir)
      this.wdToDir.delete(wd)
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.batcher.close()
    for (const s of this.settling.values()) clearTimeout(s.timer)
    this.settling.clear()
    if (this.moveTimer !== null) clearTimeout(this.moveTimer)
    this.binding.close(this.handle)
    this.wdToDir.clear()
    this.dirToWd.clear()
  }

  /** Adds (or renews) the watch of a folder; false if it is gone or not a folder. */
  private watch (relDir: RelPath): boolean {
    let wd: number
    try {
      wd = this.binding.addWatch(this.handle, relDir === '' ? this.root : join(this.root, relDir), WATCH_MASK)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') this.opts.onError(inotifyError(e, relDir === '' ? this.root : relDir), relDir)
      return false
    }
    // The same folder reached under another name (we missed its rename) keeps one entry.
    const before = this.wdToDir.get(wd)
    if (before !== undefined && before !== relDir && this.dirToWd.get(before) === wd) this.dirToWd.delete(before)
    this.wdToDir.set(wd, relDir)
    this.dirToWd.set(relDir, wd)
    return true
  }

  private forgetWd (wd: number): void {
    const dir = this.wdToDir.get(wd)
    if (dir === undefined) return
    this.wdToDir.delete(wd)
    if (this.dirToWd.get(dir) === wd) this.dirToWd.delete(dir)
  }

  private onData (err: NodeJS.ErrnoException | null, buf: Buffer | undefined): void {
    if (this.closed) return
    if (err !== null || buf === undefined) { this.opts.onError(err ?? new Error('inotify read failed'), ''); return }
    try {
      for (const e of parseEvents(buf)) this.handle1(e)
    } catch (e) {
      this.opts.onError(e as Error, '')
    }
    if (this.movedFrom.size > 0 && this.moveTimer === null) this.armMoveTimer(MOVE_PAIR_MS)
  }

  private handle1 (e: RawEvent): void {
    if ((e.mask & IN_Q_OVERFLOW) !== 0) { this.batcher.push({ kind: 'overflow' }); return }
    const dir = this.wdToDir.get(e.wd)
    if (dir === undefined) return   // a watch we removed; its last events still arrive
    if ((e.mask & (IN_IGNORED | IN_DELETE_SELF)) !== 0) { this.forgetWd(e.wd); return }
    if ((e.mask & IN_MOVE_SELF) !== 0) {
      // A subfolder's move is handled by its parent's IN_MOVED_FROM/TO; the root has no parent here.
      if (dir === '') this.opts.onError(new Error(`the share folder ${this.root} itself was moved; its watch now follows the moved folder`), '')
      return
    }
    if (e.name === '') return   // other events about the watched folder itself (its own attributes)
    const rel = joinRel(dir, e.name)
    const ignored = this.opts.ignore(rel)
    const isDir = (e.mask & IN_ISDIR) !== 0
    if ((e.mask & IN_MOVED_FROM) !== 0) {
      this.movedFrom.set(e.cookie, { path: rel, dir: isDir, ignored, at: Date.now() })
      return
    }
    if ((e.mask & IN_MOVED_TO) !== 0) {
      const from = this.movedFrom.get(e.cookie)
      this.movedFrom.delete(e.cookie)
      if (from !== undefined && !from.ignored && !ignored) this.moved(from.path, rel, isDir)
      else {
        if (from !== undefined && !from.ignored) this.movedOut(from)
        if (!ignored) this.appeared(rel, isDir)
      }
      return
    }
    if (ignored) return
    if ((e.mask & IN_CREATE) !== 0) {
      if (isDir) this.appeared(rel, true)
      else this.touch(rel, true)   // announced when closed; a link, symlink or fifo is never opened: settles
    } else if ((e.mask & IN_MODIFY) !== 0) {
      if (!isDir) this.touch(rel, false)
    } else if ((e.mask & IN_CLOSE_WRITE) !== 0) {
      const s = this.settling.get(rel)
      if (s !== undefined) { clearTimeout(s.timer); this.settling.delete(rel) }
      this.batcher.push({ kind: s?.created === true ? 'create' : 'write', path: rel })
    } else if ((e.mask & IN_ATTRIB) !== 0) {
      // chmod, utimes, a new hard link: news for a file, unless it is still being written.
      if (!isDir && !this.settling.has(rel)) this.batcher.push({ kind: 'write', path: rel })
    } else if ((e.mask & IN_DELETE) !== 0) {
      this.forgetSettling(rel)
      this.batcher.push({ kind: 'delete', path: rel })
    }
  }

  /** A file created or modified and still open: announce it on close, or once it has been quiet. */
  private touch (rel: RelPath, created: boolean): void {
    const now = Date.now()
    const s = this.settling.get(rel)
    if (s !== undefined) { s.last = now; s.created ||= created; return }
    const timer = setTimeout(() => this.settle(rel), WRITE_SETTLE_MS)
    timer.unref()
    this.settling.set(rel, { last: now, created, timer })
  }

  private settle (rel: RelPath): void {
    const s = this.settling.get(rel)
    if (s === undefined || this.closed) return
    const wait = s.last + WRITE_SETTLE_MS - Date.now()
    if (wait > 0) { s.timer = setTimeout(() => this.settle(rel), wait); s.timer.unref(); return }
    this.settling.delete(rel)
    this.batcher.push({ kind: s.created ? 'create' : 'write', path: rel })
  }

  private forgetSettling (under: RelPath): void {
    for (const [p, s] of this.settling) if (isWithin(p, under)) { clearTimeout(s.timer); this.settling.delete(p) }
  }

  /** A rename inside the share: one event; a folder keeps its watches (and those below) under the new path. */
  private moved (from: RelPath, to: RelPath, dir: boolean): void {
    this.forgetSettling(to)   // whatever was at `to` was replaced
    if (dir) {
      for (const [d, wd] of [...this.dirToWd]) {
        if (!isWithin(d, from)) continue
        const nd = to + d.slice(from.length)
        this.dirToWd.delete(d)
        this.dirToWd.set(nd, wd)
        this.wdToDir.set(wd, nd)
      }
    }
    for (const [p, s] of [...this.settling]) {
      if (!isWithin(p, from)) continue
      this.settling.delete(p)
      const np = to + p.slice(from.length)
      clearTimeout(s.timer)
      s.timer = setTimeout(() => this.settle(np), WRITE_SETTLE_MS)
      s.timer.unref()
      this.settling.set(np, s)
    }
    this.batcher.push({ kind: 'move', from, to, dir })
  }

  /** Moved out of the share (or into an ignored folder): gone, and a folder's watches go too. */
  private movedOut (from: MovedFrom): void {
    this.forgetSettling(from.path)
    if (from.dir) this.remove(from.path)
    this.batcher.push({ kind: 'delete', path: from.path })
  }

  /** Created or moved in: a file is announced at once (it is complete), a folder is watched and listed. */
  private appeared (rel: RelPath, dir: boolean): void {
    if (!dir) { this.forgetSettling(rel); this.batcher.push({ kind: 'create', path: rel }); return }
    // Watch first, then list: whatever is created after the watch exists sends its own events,
    // whatever was created before it is found by the listing (reported twice at worst).
    if (!this.watch(rel)) return
    this.batcher.push({ kind: 'dir-create', path: rel })
    let entries: Dirent[]
    try { entries = readdirSync(join(this.root, rel), { withFileTypes: true }) } catch { return }   // gone again: its delete comes
    for (const d of entries) {
      const child = joinRel(rel, d.name)
      if (this.opts.ignore(child)) continue
      let isDir = d.isDirectory()
      if (!isDir && !d.isFile() && !d.isSymbolicLink()) {
        // A file system without d_type says nothing: ask.
        try { isDir = lstatSync(join(this.root, child)).isDirectory() } catch { continue }
      }
      this.appeared(child, isDir)
    }
  }

  private armMoveTimer (ms: number): void {
    this.moveTimerDue = Date.now() + ms
    this.moveTimer = setTimeout(() => this.resolveMoves(), ms)
    this.moveTimer.unref()
  }

  /**
   * IN_MOVED_FROM halves left unpaired are moves out of the share. A timer that fires late means
   * the loop was busy and the other half may sit unread in the kernel queue: look once more after
   * the loop has polled.
   */
  private resolveMoves (): void {
    this.moveTimer = null
    if (this.closed) return
    const now = Date.now()
    const late = now - this.moveTimerDue > MOVE_PAIR_MS
    let next = Infinity
    for (const [cookie, m] of [...this.movedFrom]) {
      const age = now - m.at
      if (age < MOVE_PAIR_MS) { next = Math.min(next, MOVE_PAIR_MS - age); continue }
      if (late && age < MOVE_PAIR_MAX_MS) { next = 1; continue }
      this.movedFrom.delete(cookie)
      if (!m.ignored) this.movedOut(m)
    }
    if (next !== Infinity) this.armMoveTimer(next)
  }
}
