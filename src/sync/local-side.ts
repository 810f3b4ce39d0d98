// The local side of a running share: its watcher, the start sweep and the rescan after a
// watcher overflow. It decides when a sweep runs and what a watcher batch asks the scanner to
// look at; the work itself goes through the share's local queue (one piece at a time, in
// order), so peers' batches interleave with it. The share owns the index and the disk.
// The watcher is told the share's ignore rules: ignored folders are never watched.
import type { LocalScanner, FullScan } from './scan.js'
import { createWatcher, type Watcher, type WatchEvent } from '../watch/index.js'
import { META_DIR } from '../model/paths.js'

export interface LocalSideHost {
  readonly id: string
  readonly dir: string
  readonly scanner: LocalScanner
  /** Runs `fn` in the share's local queue (skipped once the share stopped or paused). */
  enqueue (fn: () => Promise<void>): Promise<void>
  /** False once the share stopped or paused: a sweep in progress gives up. */
  running (): boolean
  /** Whether the share's rules ignore `rel` (type unknown: see ShareRules.ignoresPath). */
  ignoresPath (rel: string): boolean
  /** The start sweep is complete. */
  swept (scan: FullScan): void
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export class LocalSide {
  watcher: Watcher | null = null
  /** The start sweep while it runs. */
  private scanning: Promise<void> | null = null
  /** A rescan after a watcher overflow is queued and has not started yet. */
  private rescanQueued = false

  constructor (private readonly host: LocalSideHost) {}

  /** Watches the folder and starts the start sweep in the background: the share serves what its index knows meanwhile. */
  start (): void {
    this.watcher = createWatcher(this.host.dir, {
      ignore: (rel) => rel === META_DIR || rel.startsWith(META_DIR + '/') || this.host.ignoresPath(rel),
      onEvents: (events) => { this.onEvents(events) },
      onError: (err, dir) => this.host.log('warn', `share ${this.host.id}: ${dir === '' ? 'watcher' : `cannot watch ${dir}`}: ${err.message}`)
    })
    this.watcher.add('')
    this.scanning = this.startSweep()
  }

  close (): void {
    this.watcher?.close()
    this.watcher = null
  }

  /** Resolves once the start sweep is complete (at once if none is running). */
  async scanned (): Promise<void> { while (this.scanning !== null) await this.scanning }

  /** True while the start sweep runs: the share's root may not yet reflect the disk. */
  get isScanning (): boolean { return this.scanning !== null }

  private async startSweep (): Promise<void> {
    await this.watcher?.ready   // chokidar misses what changes during its first crawl: the sweep comes after it
    const scan = await this.sweep()
    this.scanning = null
    if (scan !== null) this.host.swept(scan)   // null: stopped or paused; a resume starts a new sweep
  }

  /**
   * A full sweep of the folder, a step (~50 ms of folders, one transaction) per turn of the local
   * queue. Resolves with the sweep once complete, or null if the share stopped or paused first.
   * `onStart` runs when its first step does.
   */
  private async sweep (onStart?: () => void): Promise<FullScan | null> {
    const scan = this.host.scanner.startFullScan()
    let more = true
    let first = true
    while (more && this.host.running()) {
      await this.host.enqueue(async () => {
        if (first) { first = false; onStart?.() }
        more = await scan.step()
      })
      // A step is mostly synchronous work chained by promises: without a turn of the event loop
      // between steps, no connection, timer or watcher event would be served until the sweep ends.
      await new Promise(resolve => setImmediate(resolve))
    }
    return more ? null : scan
  }

  /** Sweeps the whole folder again (in the local queue), e.g. after lost events or changed ignore rules. */
  rescan (level: 'info' | 'warn', why: string): void {
    if (this.rescanQueued || this.watcher === null) return   // one rescan not yet started covers this one too; a stopped side's start sweeps anyway
    this.rescanQueued = true
    this.host.log(level, `share ${this.host.id}: ${why}; rescanning the folder`)
    void this.sweep(() => { this.rescanQueued = false })
  }

  /**
   * A watcher batch: the paths it names are looked at against the index (a move: both of its
   * paths; a new folder: the folder, which examinePaths walks). An overflow lost events: rescan.
   */
  private onEvents (events: WatchEvent[]): void {
    if (events.some(e => e.kind === 'overflow')) {
      this.rescan('warn', 'the watcher lost events (kernel queue overflow)')
      return
    }
    const paths = new Set<string>()
    for (const e of events) {
      if (e.kind === 'move') { paths.add(e.from); paths.add(e.to) } else if (e.kind !== 'overflow') paths.add(e.path)
    }
    void this.host.enqueue(() => this.host.scanner.examinePaths([...paths]))
  }
}
