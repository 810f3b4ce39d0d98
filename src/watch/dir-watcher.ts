// The first watch backend: one fs.watch (one inotify watch) per directory of the share, so
// 100 k files in 200 folders cost 200 watches, not 100 k. Events for a path are collected for
// DEBOUNCE_MS of quiet (capped at MAX_DELAY_MS under a steady stream of events) and handed to
// the sync layer as one batch of share-relative paths. It reports *which paths to look at*;
// what changed is decided by stat-ing them against the index.
//
// Limits of this backend, fixed by the native inotify backend (its own issue): no close-write
// events (a file still being written is picked up mid-way and again when it settles) and no
// overflow signal.
import { watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { joinRel } from '../model/paths.js'

export const DEBOUNCE_MS = 1
export const MAX_DELAY_MS = 50

export interface TreeWatcherOptions {
  onPaths: (paths: Set<string>) => void
  onError: (err: Error, dir: string) => void
  ignore: (relPath: string) => boolean
}

export class DirWatcher {
  private readonly watchers = new Map<string, FSWatcher>()
  private pending = new Set<string>()
  private timer: NodeJS.Timeout | null = null
  private firstPendingAt = 0
  private closed = false

  constructor (private readonly root: string, private readonly opts: TreeWatcherOptions) {}

  /** Starts watching one directory (share-relative, '' is the root). Idempotent. */
  add (relDir: string): void {
    if (this.closed || this.watchers.has(relDir) || (relDir !== '' && this.opts.ignore(relDir))) return
    let w: FSWatcher
    try {
      w = watch(join(this.root, relDir), { persistent: false }, (_event, name) => {
        if (name === null || name === undefined) { this.queue(relDir); return }
        const rel = joinRel(relDir, name.toString())
        if (!this.opts.ignore(rel)) this.queue(rel)
      })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') this.opts.onError(e, relDir)
      return
    }
    w.on('error', (err) => {
      this.remove(relDir)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.onError(err, relDir)
    })
    this.watchers.set(relDir, w)
  }

  /** Stops watching a directory and everything below it. */
  remove (relDir: string): void {
    for (const [dir, w] of this.watchers) {
      if (dir === relDir || (relDir === '' ? true : dir.startsWith(relDir + '/'))) {
        w.close()
        this.watchers.delete(dir)
      }
    }
  }

  get watchCount (): number { return this.watchers.size }

  private queue (rel: string): void {
    if (this.closed) return
    if (this.pending.size === 0) this.firstPendingAt = Date.now()
    this.pending.add(rel)
    if (this.timer !== null) clearTimeout(this.timer)
    const waited = Date.now() - this.firstPendingAt
    this.timer = setTimeout(() => this.flush(), waited >= MAX_DELAY_MS ? 0 : DEBOUNCE_MS)
  }

  private flush (): void {
    this.timer = null
    const batch = this.pending
    this.pending = new Set()
    if (batch.size > 0 && !this.closed) this.opts.onPaths(batch)
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
  }
}
