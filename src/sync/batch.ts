// One batch of a peer's entries while a Share applies it: the files it puts on disk wait here for
// one durability barrier, and the folder listings taken while deciding it stand in for an lstat
// per file. Share decides (merge rules, index); this file owns the order of the disk work:
//   1. inline files are written in the disk thread a chunk at a time, while the Share decides on;
//   2. every temp file is made durable with one barrier (ShareDisk.syncTemps);
//   3. into paths that held nothing, files are linked in the disk thread a chunk at a time, while
//      the Share records the chunk before; replacements go one by one on the event loop (checked
//      and renamed in one tick, Share.installTemp).
import type { Entry, LocalStat } from '../model/entry.js'
import { mapWriteError, type ShareDisk } from '../store/share-disk.js'

/**
 * Inline files go to the disk thread in chunks of this many as they are decided, and are linked
 * into place in chunks of this many: the event loop decides (or records) one chunk while the disk
 * thread writes (or links) the one before.
 */
export const DISK_CHUNK = 256
/** A batch with at least this many files is decided from folder listings (see absent); a smaller one lstats each path. */
export const LISTING_MIN_FILES = 16

/** A file of the batch: a temp file already made, or inline data still to write. */
interface Staged { entry: Entry, from: string, keepLocal: boolean, tmp?: string, local?: LocalStat, written?: Promise<void>, data?: Buffer }
type Ready = Staged & { tmp: string, local: LocalStat }

export interface BatchHost {
  readonly disk: ShareDisk
  /** whether the index holds a live version at `rel` (a replacement) or nothing (a new path) */
  holdsLive: (rel: string) => boolean
  /** puts a durable temp file in place over what the index holds (checked and renamed in one tick) and records it; throws if it cannot */
  installTemp: (tmp: string, entry: Entry, local: LocalStat, from: string, keepLocal: boolean) => void
  /** `entry` is in place with `local`: record it */
  recordInstalled: (entry: Entry, local: LocalStat, from: string) => void
  /** `entry` could not be put in place now: keep it wanted, try again later */
  /** The entry goes back to pending (with its inline data, if any, so a retry needs no fetch). */
  putBack: (entry: Entry, from: string, keepLocal: boolean, err: unknown, data?: Buffer) => void
}

export class RemoteBatch {
  private readonly staged: Staged[] = []
  private unsent: Array<{ s: Staged, data: Buffer }> = []
  private listings: Map<string, Set<string> | undefined> | null

  constructor (private readonly host: BatchHost, liveFiles: number) {
    this.listings = liveFiles >= LISTING_MIN_FILES ? new Map() : null
  }

  /**
   * True when the folder listing taken for this batch says nothing is at `rel`: no lstat per file
   * for a batch of new files. Something created there after the listing is still never
   * overwritten: a new file is linked into place, which fails if the path is taken, and the merge
   * rules then look again.
   */
  absent (rel: string): boolean {
    if (this.listings === null) return false
    const slash = rel.lastIndexOf('/')
    const dir = slash < 0 ? '' : rel.slice(0, slash)
    let names = this.listings.get(dir)
    if (!this.listings.has(dir)) { names = this.host.disk.namesIn(dir); this.listings.set(dir, names) }
    return names !== undefined && !names.has(rel.slice(slash + 1))
  }

  /** A temp file already made (a local copy): it waits for the barrier. */
  stageTemp (tmp: string, entry: Entry, local: LocalStat, from: string, keepLocal: boolean): void {
    this.staged.push({ tmp, entry, local, from, keepLocal })
  }

  /** Inline data: written in the disk thread a chunk at a time, while deciding goes on. */
  stageWrite (data: Buffer, entry: Entry, from: string, keepLocal: boolean): void {
    const s: Staged = { entry, from, keepLocal, data }
    this.staged.push(s)
    this.unsent.push({ s, data })
    if (this.unsent.length >= DISK_CHUNK) this.flushWrites()
  }

  /** Deciding is over (listings would go stale from here): writes, the barrier, then every file in place. */
  async install (): Promise<void> {
    this.listings = null
    this.flushWrites()
    await Promise.all(this.staged.map(s => s.written))
    const ready = this.staged.filter((s): s is Ready => s.tmp !== undefined && s.local !== undefined)
    if (ready.length === 0) return
    try {
      await this.host.disk.syncTemps(ready.map(s => s.tmp))
    } catch (err) {
      for (const s of ready) this.failed(s, err)
      return
    }
    const fresh: Ready[] = []
    for (const s of ready) {
      if (!this.host.holdsLive(s.entry.path)) { fresh.push(s); continue }
      try { this.host.installTemp(s.tmp, s.entry, s.local, s.from, s.keepLocal) } catch (err) {
        this.host.putBack(s.entry, s.from, s.keepLocal, err, s.data)   // installTemp discarded the temp file
      }
    }
    const chunks: Ready[][] = []
    for (let i = 0; i < fresh.length; i += DISK_CHUNK) chunks.push(fresh.slice(i, i + DISK_CHUNK))
    const linked = chunks.map(c => this.host.disk.installNew(c.map(s => ({ tmp: s.tmp, rel: s.entry.path }))))
    for (let k = 0; k < chunks.length; k++) {
      const errs = await linked[k]!
      errs.forEach((err, i) => {
        const s = chunks[k]![i]!
        if (err === null) this.host.recordInstalled(s.entry, s.local, s.from)
        else this.failed(s, mapWriteError(err))
      })
    }
  }

  /** Sends the inline files not yet sent to the disk thread; each gets its temp file or is put back. */
  private flushWrites (): void {
    const todo = this.unsent
    if (todo.length === 0) return
    this.unsent = []
    const done = this.host.disk.writeTemps(todo.map(({ s, data }) => ({ data, mtime: s.entry.mtime })))
    todo.forEach(({ s }, i) => {
      s.written = done.then(results => {
        const w = results[i]!
        if (w instanceof Error) this.failed(s, w)
        else { s.tmp = w.tmp; s.local = w.local }
      })
    })
  }

  private failed (s: Staged, err: unknown): void {
    if (s.tmp !== undefined) this.host.disk.discard(s.tmp)
    this.host.putBack(s.entry, s.from, s.keepLocal, err, s.data)
  }
}
