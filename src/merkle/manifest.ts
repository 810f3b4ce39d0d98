// The Merkle root of a share's manifest, kept up to date incrementally, in constant memory.
//
// Every live entry (canonical encoding of the replicated fields only) falls into one of BUCKETS
// buckets by a hash of its path. A bucket holds the LtHash16 (lthash.ts) of its entries: adding
// or removing an entry is one 1024-lane vector add, so neither the entries nor their paths stay
// in memory (2 MiB per share, whatever its size), and the state can be saved and loaded as one
// blob instead of re-reading a million index rows at start. The root is the SHA-256 of the
// buckets' digests in order; a change re-digests one bucket and the root (BUCKETS × 32 bytes).
// Two nodes holding the same entries hold the same root; comparing bucket digests finds where
// two manifests differ. Tombstones are not in the root: two nodes that hold the same live files
// are in sync however long each keeps the record of a deletion, so tombstones can be
// garbage-collected on each node at its own pace without making roots differ.
//
// The lanes are read and summed in the host's byte order: every platform Node supports here
// (x64, arm64) is little-endian, and roots are only compared between nodes, never stored as
// content.
import { createHash } from 'node:crypto'
import type { Entry } from '../model/entry.js'
import { encodeVersion } from '../model/version.js'
import { LANES, addInto, elementVector, subInto } from './lthash.js'

export const BUCKETS = 1024
const EMPTY = Buffer.alloc(32)
/** First bytes of a saved state; a state saved by another layout is rebuilt, not misread. */
const STATE_MAGIC = 'swarm-manifest-lthash16-v1\0'

/** The bytes an entry contributes: path, replicated fields and content root. */
function entryBytes (e: Entry): Buffer {
  return Buffer.concat([
    Buffer.from(`${e.path}\0${e.type}|${e.size}|${e.mtime}|${e.by}|${encodeVersion(e.version)}\0`),
    e.root
  ])
}

/** FNV-1a over the UTF-16 code units: spreads paths evenly, and is ~50× cheaper than a SHA-256 per change. */
function bucketOf (path: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) { h ^= path.charCodeAt(i); h = Math.imul(h, 0x01000193) }
  return (h >>> 0) % BUCKETS
}

export class ManifestTree {
  private readonly sums = new Uint16Array(BUCKETS * LANES)
  private readonly counts = new Uint32Array(BUCKETS)
  private readonly bucketHashes: Buffer[] = Array.from({ length: BUCKETS }, () => EMPTY)
  private readonly dirty = new Set<number>()
  private cachedRoot: Buffer | null = null
  private live = 0

  /** Adds a live entry (a tombstone is not in the manifest). */
  add (e: Entry): void {
    if (e.deleted) return
    const b = bucketOf(e.path)
    addInto(this.sums, b * LANES, elementVector(entryBytes(e)))
    this.counts[b]!++
    this.live++
    this.touch(b)
  }

  /** Removes a live entry that was added before (exactly as added). */
  remove (e: Entry): void {
    if (e.deleted) return
    const b = bucketOf(e.path)
    if (this.counts[b] === 0) return
    subInto(this.sums, b * LANES, elementVector(entryBytes(e)))
    this.counts[b]!--
    this.live--
    this.touch(b)
  }

  /** The path's entry changes from `old` (what the index held, if anything) to `next`. */
  replace (old: Entry | undefined, next: Entry): void {
    if (old !== undefined) this.remove(old)
    this.add(next)
  }

  private touch (b: number): void {
    this.dirty.add(b)
    this.cachedRoot = null
  }

  /** Live entries (files and folders) in the manifest. */
  get size (): number { return this.live }

  root (): Buffer {
    if (this.cachedRoot !== null) return this.cachedRoot
    for (const b of this.dirty) {
      this.bucketHashes[b] = this.counts[b] === 0
        ? EMPTY
        : createHash('sha256').update(new Uint8Array(this.sums.buffer, b * LANES * 2, LANES * 2)).digest()
    }
    this.dirty.clear()
    this.cachedRoot = createHash('sha256').update(Buffer.concat(this.bucketHashes)).digest()
    return this.cachedRoot
  }

  /** Bucket digests, for a Merkle walk against a peer's manifest. */
  bucketHashList (): Buffer[] { this.root(); return [...this.bucketHashes] }

  /** The whole state as one blob (counts and sums), for IndexDb to keep across restarts. */
  save (): Buffer {
    return Buffer.concat([
      Buffer.from(STATE_MAGIC),
      Buffer.from(this.counts.buffer, this.counts.byteOffset, this.counts.byteLength),
      Buffer.from(this.sums.buffer, this.sums.byteOffset, this.sums.byteLength)
    ])
  }

  /** Loads a blob made by save(); false (and nothing changed) if it is not one. */
  load (blob: Buffer): boolean {
    const head = Buffer.byteLength(STATE_MAGIC)
    if (blob.length !== head + this.counts.byteLength + this.sums.byteLength || blob.subarray(0, head).toString() !== STATE_MAGIC) return false
    Buffer.from(this.counts.buffer).set(blob.subarray(head, head + this.counts.byteLength))
    Buffer.from(this.sums.buffer).set(blob.subarray(head + this.counts.byteLength))
    this.live = 0
    for (let b = 0; b < BUCKETS; b++) { this.live += this.counts[b]!; this.dirty.add(b) }
    this.cachedRoot = null
    return true
  }
}
