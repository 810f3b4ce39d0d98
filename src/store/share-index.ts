// A share's entries as written to the index, and the manifest (merkle/manifest.ts) that follows
// them: every entry of a share or of the catalog is written through put(), which keeps the
// manifest, the version clock and the index rows in step.
//
// Start without reading the entries: the manifest's state is saved (saveSoon / save) together
// with the MAX(seq) of the rows it covers. At open, a saved state whose seq is still the
// share's MAX(seq) is exactly the manifest of the rows on disk and is loaded (2 MiB, whatever
// the share's size). Anything else (a crash after rows were written, an index from before the
// state was kept) is rebuilt from the rows, one at a time.
import type { IndexDb } from './db.js'
import { ManifestTree } from '../merkle/manifest.js'
import type { Entry, LocalStat, StoredEntry } from '../model/entry.js'
import { maxCounter } from '../model/version.js'

/** After a change, the manifest state is saved this much later (changes in between share one save). */
export const MANIFEST_SAVE_MS = 5000

export class ShareIndex {
  private readonly tree = new ManifestTree()
  /** The highest version counter seen in this share (bumpVersion's floor), kept across tombstone GC. */
  private clockValue: number
  private saveTimer: NodeJS.Timeout | null = null
  private unsaved = false
  /** How the manifest was obtained at open: for status and tests. */
  readonly loadedFrom: 'saved' | 'rows'

  constructor (private readonly db: IndexDb, readonly share: string) {
    this.clockValue = db.getClock(share)
    const saved = db.getManifest(share)
    if (saved !== undefined && saved.seq === db.storedMaxSeq(share) && this.tree.load(saved.state)) {
      this.clockValue = Math.max(this.clockValue, saved.clock)
      this.loadedFrom = 'saved'
      return
    }
    for (const e of db.iterateEntries(share)) {
      this.tree.add(e)
      this.clockValue = Math.max(this.clockValue, maxCounter(e.version))
    }
    this.loadedFrom = 'rows'
    this.unsaved = true
  }

  get clock (): number { return this.clockValue }
  get size (): number { return this.tree.size }
  root (): Buffer { return this.tree.root() }

  /**
   * Writes an entry (fresh seq) and moves the manifest from the row it replaces to it. `old`: that
   * row if the caller just read it (null: there is none), else it is read here. Returns the seq.
   */
  put (e: Entry, local: LocalStat | null, src = '', old?: StoredEntry | null): number {
    const before = old === undefined ? this.db.getEntry(this.share, e.path) : (old ?? undefined)
    const seq = this.db.putEntry(this.share, e, local, src)
    this.tree.replace(before, e)
    this.clockValue = Math.max(this.clockValue, maxCounter(e.version))
    this.saveSoon()
    return seq
  }

  /** Saves the manifest state within MANIFEST_SAVE_MS. */
  saveSoon (): void {
    this.unsaved = true
    if (this.saveTimer !== null) return
    // The index may be closed by then (a node stopped without close(), a test): nothing to save into.
    this.saveTimer = setTimeout(() => { this.saveTimer = null; if (this.db.db.open) this.save() }, MANIFEST_SAVE_MS)
    this.saveTimer.unref()
  }

  /** Saves the manifest state now if it changed (a state saved inside an open transaction could describe rows that are rolled back: then later). */
  save (): void {
    if (!this.unsaved) return
    if (this.db.db.inTransaction) { this.saveSoon(); return }
    if (this.saveTimer !== null) { clearTimeout(this.saveTimer); this.saveTimer = null }
    this.db.putManifest(this.share, this.clockValue, this.tree.save())
    this.unsaved = false
  }

  /** Saves and stops the timer (the node is stopping). */
  close (): void {
    if (this.saveTimer !== null) { clearTimeout(this.saveTimer); this.saveTimer = null }
    try { if (!this.db.db.inTransaction) this.save() } catch { /* the index may already be closed */ }
  }
}
