// The catalog: names → (root, size) of the files published with put/mput/bcast, replicated to
// every node. It travels exactly like a share's entries (SUBSCRIBE / ENTRIES / ACK / ROOT under
// the reserved share id CATALOG_ID, cursors and tombstone GC in the index) but has no folder:
// applying a peer's entry only records it, and content moves only when a job asks for it.
//
// Every node ends with the same catalog root: a name's versions are ordered by their version
// vectors, and two concurrent publications of one name are settled as shares settle them (the
// newer publication wins, then the node id, then the root), with the merged vector.
import { EventEmitter } from 'node:events'
import type { IndexDb } from '../store/db.js'
import { ShareIndex } from '../store/share-index.js'
import { type Entry, type StoredEntry, pickWinner } from '../model/entry.js'
import { bumpVersion, compareVersions, mergeVersions } from '../model/version.js'
import { pathProblem } from '../model/paths.js'
import type { WireEntry } from '../wire/control.js'
import { SwarmError } from '../errors.js'

/** The share id the catalog replicates under. '~' cannot start a user's share id (node.ts refuses it). */
export const CATALOG_ID = '~catalog'
/** Entries per ENTRIES batch when feeding a peer the catalog. */
const CATALOG_BATCH = 2000

export class Catalog extends EventEmitter<{ changed: [] }> {
  readonly id = CATALOG_ID
  readonly indexId: string
  readonly paused = false
  private readonly index: ShareIndex

  constructor (private readonly db: IndexDb, private readonly shortId: string) {
    super()
    this.indexId = db.openShare(CATALOG_ID, '').indexId
    this.index = new ShareIndex(db, CATALOG_ID)
  }

  root (): Buffer { return this.index.root() }

  /** Saves the manifest state (the node is stopping). */
  close (): void { this.index.close() }
  pendingCount (): number { return 0 }
  /** The catalog has no folder to sweep. */
  readonly isScanning = false

  /** The live entry for a name, or undefined. */
  lookup (name: string): StoredEntry | undefined {
    const e = this.db.getEntry(CATALOG_ID, name)
    return e === undefined || e.deleted ? undefined : e
  }

  /** Names that hold this content. */
  namesOf (root: Buffer, size: number): string[] { return this.db.entriesWithRoot(CATALOG_ID, root, size).map(e => e.path) }

  /** A live entry with this root (any size), or undefined. */
  byRoot (root: Buffer): StoredEntry | undefined { return this.db.entriesWithRoot(CATALOG_ID, root)[0] }

  list (prefix = ''): StoredEntry[] { return this.db.liveWithPrefix(CATALOG_ID, prefix) }

  /** Publishes `name` → (root, size) as a new version of the name, after every version seen. */
  publish (name: string, root: Buffer, size: number): Entry {
    const problem = pathProblem(name)
    if (problem !== null) throw new SwarmError('ERR_BAD_ARGUMENT', `name ${JSON.stringify(name)}: ${problem}`)
    const cur = this.db.getEntry(CATALOG_ID, name)
    if (cur !== undefined && !cur.deleted && cur.root.equals(root) && cur.size === size) return cur
    const e: Entry = { path: name, type: 'file', deleted: false, size, mtime: Date.now(), root, version: bumpVersion(cur?.version, this.shortId, this.index.clock), by: this.shortId }
    this.put(e, '')
    this.emit('changed')
    return e
  }

  /** The next batch of catalog entries after `fromSeq` for peer `to` (entries that came from `to` are not echoed). */
  entriesAfter (fromSeq: number, to: string): { entries: WireEntry[], upTo: number } {
    const rows = this.db.entriesAfter(CATALOG_ID, fromSeq, CATALOG_BATCH, to)
    const upTo = rows.length < CATALOG_BATCH ? this.db.currentSeq(CATALOG_ID) : rows[rows.length - 1]!.seq
    return { entries: rows.map(entry => ({ entry })), upTo }
  }

  /** A peer's catalog entries (already checked by the wire gate): newer versions replace ours, concurrent ones merge. */
  async applyRemoteBatch (from: string, items: WireEntry[]): Promise<boolean> {
    let changed = false
    this.db.transaction(() => {
      for (const { entry: remote } of items) {
        if (remote.type !== 'file') continue   // the catalog names files only; anything else is ignored
        const local = this.db.getEntry(CATALOG_ID, remote.path)
        if (local === undefined) { this.put(remote, from); changed = true; continue }
        const order = compareVersions(remote.version, local.version)
        if (order === 'equal' || order === 'lesser') continue
        if (order === 'greater') { this.put(remote, from); changed = true; continue }
        const winner = pickWinner(local, remote)
        // A merged version is news to the sender too: it is recorded as ours, so it is sent back.
        this.put({ ...winner, version: mergeVersions(local.version, remote.version) }, '')
        changed = true
      }
    })
    if (changed) this.emit('changed')
    return true
  }

  private put (e: Entry, src: string): void {
    this.index.put(e, null, src)   // a tombstone leaves the manifest
  }
}
