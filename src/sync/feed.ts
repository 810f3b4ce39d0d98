// What a share sends its peers: batches of entries after a peer's cursor, with the content of
// small files inline (the small-file fast path: no per-file round trip or stream), and the
// cache of freshly hashed small files that saves reading them again to send them. Entries the
// share withholds (a receive-only share's own versions, see rules.ts) are skipped, cursor and all.
import * as fs from 'node:fs'
import type { IndexDb } from '../store/db.js'
import type { WireEntry } from '../wire/control.js'
import { type StoredEntry, sameLocal } from '../model/entry.js'
import type { ShareDisk } from '../store/share-disk.js'

import { INLINE_MAX } from '../model/rules.js'
export { INLINE_MAX }
/** Bytes of recently hashed small files kept to send inline without reading them again. */
const INLINE_CACHE_BYTES = 32 * 1024 * 1024
/** Entries per batch when feeding a peer, and the inline bytes per batch. */
export const BATCH_ENTRIES = 2000
const BATCH_BYTES = 8 * 1024 * 1024

export class ShareFeed {
  private readonly inlineCache = new Map<string, Buffer>()
  private inlineCacheBytes = 0

  constructor (private readonly db: IndexDb, private readonly shareId: string, private readonly disk: ShareDisk,
    private readonly withholds: (e: StoredEntry) => boolean = () => false) {}

  /** Remembers the bytes of a small file just hashed, by root, oldest dropped first. */
  cacheInline (root: Buffer, data: Buffer): void {
    const key = root.toString('hex')
    if (this.inlineCache.has(key)) return
    this.inlineCache.set(key, data)
    this.inlineCacheBytes += data.length
    for (const [k, v] of this.inlineCache) {
      if (this.inlineCacheBytes <= INLINE_CACHE_BYTES) break
      this.inlineCache.delete(k)
      this.inlineCacheBytes -= v.length
    }
  }

  /** Small-file content for sending inline; undefined if the file changed since it was indexed. */
  private inlineData (e: StoredEntry): Buffer | undefined {
    if (e.deleted || e.type !== 'file' || e.size > INLINE_MAX) return undefined
    if (e.size === 0) return Buffer.alloc(0)
    const cached = this.inlineCache.get(e.root.toString('hex'))
    if (cached !== undefined) return cached
    // The index's stat check (size, mtime, inode unchanged since hashing) stands in for re-hashing every
    // file we send; the receiver verifies the root before writing anyway.
    let fd: number
    try { fd = this.disk.openRead(e.path) } catch { return undefined }
    try {
      const data = Buffer.allocUnsafe(e.size)
      const n = fs.readSync(fd, data, 0, e.size, 0)
      const st = fs.fstatSync(fd)
      if (n !== e.size || !sameLocal(e.local, st)) return undefined
      return data
    } catch { return undefined } finally { fs.closeSync(fd) }
  }

  /** The next batch of entries after `fromSeq` for peer `to`, small files inline. Versions that came from `to` are not echoed back. */
  entriesAfter (fromSeq: number, to: string): { entries: WireEntry[], upTo: number } {
    const rows = this.db.entriesAfter(this.shareId, fromSeq, BATCH_ENTRIES, to)
    const entries: WireEntry[] = []
    let bytes = 0
    // Rows left out came from `to` itself; when the query is not cut short, the cursor moves past them all.
    let upTo = rows.length < BATCH_ENTRIES ? this.db.currentSeq(this.shareId) : fromSeq
    for (const e of rows) {
      if (this.withholds(e)) { if (rows.length >= BATCH_ENTRIES) upTo = e.seq; continue }
      const data = bytes < BATCH_BYTES ? this.inlineData(e) : undefined
      if (data !== undefined) bytes += data.length
      entries.push(data === undefined ? { entry: e } : { entry: e, data })
      if (bytes >= BATCH_BYTES || rows.length >= BATCH_ENTRIES) upTo = e.seq
      if (bytes >= BATCH_BYTES) break
    }
    return { entries, upTo }
  }
}
