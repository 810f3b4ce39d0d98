// The Merkle root of a share's manifest, kept up to date incrementally.
//
// Every entry hashes to 32 bytes (canonical encoding of the replicated fields only). Entries
// fall into BUCKETS buckets by a hash of their path; a bucket's hash covers its entries in path
// order, and the root hashes the bucket hashes in order. A change re-hashes one bucket and the
// root (BUCKETS × 32 bytes), so a 100 k-file share costs microseconds per change, not a rescan.
// Two nodes holding the same entries hold the same root; comparing bucket hashes finds where
// two manifests differ. Tombstones are not in the root: two nodes that hold the same live files
// are in sync however long each keeps the record of a deletion, so tombstones can be
// garbage-collected on each node at its own pace without making roots differ.
import { createHash } from 'node:crypto'
import type { Entry } from '../model/entry.js'
import { encodeVersion } from '../model/version.js'

export const BUCKETS = 1024
const EMPTY = Buffer.alloc(32)

export function entryHash (e: Entry): Buffer {
  const h = createHash('sha256')
  h.update(e.path).update('\0')
  h.update(`${e.type}|${e.deleted ? 1 : 0}|${e.size}|${e.mtime}|${e.by}|${encodeVersion(e.version)}\0`)
  h.update(e.root)
  return h.digest()
}

/** FNV-1a over the UTF-16 code units: spreads paths evenly, and is ~50× cheaper than a SHA-256 per change. */
function bucketOf (path: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) { h ^= path.charCodeAt(i); h = Math.imul(h, 0x01000193) }
  return (h >>> 0) % BUCKETS
}

export class ManifestTree {
  private readonly buckets: Array<Map<string, Buffer>> = Array.from({ length: BUCKETS }, () => new Map())
  private readonly bucketHashes: Buffer[] = Array.from({ length: BUCKETS }, () => EMPTY)
  private readonly dirty = new Set<number>()
  private cachedRoot: Buffer | null = null

  set (e: Entry): void {
    if (e.deleted) { this.delete(e.path); return }
    const b = bucketOf(e.path)
    this.buckets[b]!.set(e.path, entryHash(e))
    this.dirty.add(b)
    this.cachedRoot = null
  }

  delete (path: string): void {
    const b = bucketOf(path)
    if (this.buckets[b]!.delete(path)) { this.dirty.add(b); this.cachedRoot = null }
  }

  /** Live entries (files and folders) in the manifest. */
  get size (): number { let n = 0; for (const b of this.buckets) n += b.size; return n }

  root (): Buffer {
    if (this.cachedRoot !== null) return this.cachedRoot
    for (const b of this.dirty) {
      const m = this.buckets[b]!
      if (m.size === 0) { this.bucketHashes[b] = EMPTY; continue }
      const h = createHash('sha256')
      for (const k of [...m.keys()].sort()) h.update(m.get(k)!)
      this.bucketHashes[b] = h.digest()
    }
    this.dirty.clear()
    this.cachedRoot = createHash('sha256').update(Buffer.concat(this.bucketHashes)).digest()
    return this.cachedRoot
  }

  /** Bucket hashes, for a Merkle walk against a peer's manifest. */
  bucketHashList (): Buffer[] { this.root(); return [...this.bucketHashes] }
}
