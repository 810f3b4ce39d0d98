// Pieces of a file being downloaded that this node already holds on its own disk: the LocalPieces
// a Download copies from instead of fetching (swarm/download.ts). A changed file usually keeps
// most of its pieces, and an appended one all but its tail; equal piece hashes in the BEP 52 piece
// layers say which.
//
// Where a piece is looked for, in order:
// 1. the old version of the same path (its layer, from the index): the common case, an edit;
// 2. the piece index (db.ts layer_pieces: piece hash → root, index), for any root whose content is
//    still here — a live file of the same share (checked on disk: same size, mtime, inode as
//    indexed), or a blob of the jobs' store.
// Content of another share is never used: a peer of this share that knows only the piece hashes
// of a file in a share it does not replicate could otherwise have us build that file here and
// then fetch it from us. Blobs are readable by every node of the cluster anyway, so a share may
// use them, but a blob download uses nothing but blobs.
//
// Nothing here is trusted: the Download verifies every piece against the new layer (a file
// rewritten in place with its old size and mtime costs a wasted read, never a wrong byte). Index
// rows of content held nowhere any more are pruned when a lookup meets them (and come back when
// the content does: db.putLayer indexes a layer again).
import type { FileHandle } from 'node:fs/promises'
import type { IndexDb } from '../store/db.js'
import { PIECE_KEY_BYTES } from '../store/db.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Share } from '../sync/share.js'
import { type LocalStat, sameLocal } from '../model/entry.js'
import { PIECE_SIZE } from '../merkle/bep52.js'
import type { LocalPieces } from '../swarm/local-copy.js'
import { readFully } from '../swarm/source.js'

/** Local files one download keeps open to copy pieces from; the least recently opened idle one is closed past this. */
export const REUSE_MAX_OPEN_FILES = 16
/**
 * Index rows of content held nowhere are dropped only for layers up to this many pieces (4 GiB):
 * the deletes run on the event loop (~3 µs a row). A bigger stale layer stays; it costs each
 * download that meets it one lookup of its root.
 */
export const PRUNE_MAX_PIECES = 16_384

export interface LocalPiecesHost {
  readonly db: IndexDb
  readonly blobs: BlobStore
}

/** A local file holding some root's content, and how to open it for reading. */
interface Source {
  key: string
  open: () => Promise<FileHandle | null>
  /** it could not be opened as the indexed file: not asked again */
  gone: boolean
}

interface OpenFile { fh: Promise<FileHandle | null>, users: number }

function keyOf (hash: Buffer): string { return hash.toString('latin1', 0, PIECE_KEY_BYTES) }

export class LocalPieceFinder implements LocalPieces {
  /** Pieces of the old version of the same path: hash key → index there. */
  private readonly oldPieces = new Map<string, number>()
  private readonly oldSource: Source | null = null
  /** Roots looked at so far: where their content is here, or null if nowhere (usable). */
  private readonly roots = new Map<string, Source | null>()
  private readonly files = new Map<string, OpenFile>()
  /** Roots found held nowhere: their index rows are dropped at close(), off the download's critical start. */
  private readonly dead: Buffer[] = []
  private closed = false

  /**
   * share: the share the file is for (null: a blob of the jobs' store); path: its path there,
   * whose indexed version (if any) is looked at first.
   */
  constructor (private readonly host: LocalPiecesHost, private readonly share: Share | null, path?: string) {
    if (share === null || path === undefined || share.paused) return
    const old = host.db.getEntry(share.id, path)
    if (old === undefined || old.deleted || old.type !== 'file' || old.local === null) return
    const layer = host.db.getLayer(old.root)
    if (layer === null) return
    let st
    try { st = share.disk.lstat(path) } catch { return }
    if (st === null || !st.isFile() || !sameLocal(old.local, st)) return // changed since indexed: the rescan will tell
    for (let i = layer.length / 32 - 1; i >= 0; i--) this.oldPieces.set(keyOf(layer.subarray(i * 32)), i) // the first index wins
    this.oldSource = this.shareSource(share, path, old.local)
  }

  has (hash: Buffer): boolean { return this.locate(hash) !== null }

  async read (hash: Buffer, length: number): Promise<Buffer | null> {
    const at = this.locate(hash)
    if (at === null || this.closed) return null
    const file = this.take(at.source)
    try {
      const fh = await file.fh
      if (fh === null) { at.source.gone = true; return null }
      const buf = Buffer.allocUnsafe(length)
      await readFully(fh, buf, at.idx * PIECE_SIZE, 'a local copy')
      return buf
    } catch {
      return null // shorter than indexed, unreadable: the piece is fetched instead
    } finally {
      this.give(at.source.key, file)
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    for (const [key, f] of this.files) if (f.users === 0) this.drop(key, f)
    try {
      for (const root of this.dead) {
        // Looked at again: the content may have arrived meanwhile (a download installed it).
        if (this.host.db.hasLocalWithRoot(root) || this.host.blobs.withRoot(root) !== undefined) continue
        const layer = this.host.db.getLayer(root)
        if (layer !== null && layer.length / 32 <= PRUNE_MAX_PIECES) this.host.db.forgetLayerPieces(root)
      }
    } catch {
      // the node stopped (its index is closed): stale rows only cost lookups
    }
  }

  private locate (hash: Buffer): { source: Source, idx: number } | null {
    if (this.oldSource !== null && !this.oldSource.gone) {
      const idx = this.oldPieces.get(keyOf(hash))
      if (idx !== undefined) return { source: this.oldSource, idx }
    }
    for (const c of this.host.db.piecesWithHash(hash)) {
      const source = this.resolve(c.root)
      if (source !== null && !source.gone) return { source, idx: c.idx }
    }
    return null
  }

  /** Where the content of `root` is on this node, if anywhere this download may use. */
  private resolve (root: Buffer): Source | null {
    const k = root.toString('hex')
    const known = this.roots.get(k)
    if (known !== undefined) return known
    let found: Source | null = null
    if (this.share !== null && !this.share.paused) {
      for (const e of this.host.db.entriesWithRoot(this.share.id, root)) {
        if (e.type !== 'file' || e.local === null) continue
        let st
        try { st = this.share.disk.lstat(e.path) } catch { continue }
        if (st !== null && st.isFile() && sameLocal(e.local, st)) { found = this.shareSource(this.share, e.path, e.local); break }
      }
    }
    const blob = found === null ? this.host.blobs.withRoot(root) : undefined
    if (blob !== undefined) found = { key: 'blob:' + blob.path, gone: false, open: async () => await this.host.blobs.openRead(blob).catch(() => null) }
    // Held nowhere (no share's live file, no blob): its rows only slow later lookups down.
    if (found === null && !this.host.db.hasLocalWithRoot(root)) this.dead.push(root)
    this.roots.set(k, found)
    return found
  }

  /** A share file, opened without following symlinks, and only while it is still the indexed file. */
  private shareSource (share: Share, path: string, local: LocalStat): Source {
    return {
      key: 'share:' + path,
      gone: false,
      open: async () => {
        let fh: FileHandle
        try { fh = await share.disk.openReadHandle(path) } catch { return null }
        const st = await fh.stat().catch(() => null)
        if (st !== null && st.isFile() && sameLocal(local, st)) return fh
        await fh.close().catch(() => {})
        return null
      }
    }
  }

  private take (source: Source): OpenFile {
    let f = this.files.get(source.key)
    if (f === undefined) {
      f = { fh: source.open(), users: 1 }
      this.files.set(source.key, f)
      for (const [key, old] of this.files) {
        if (this.files.size <= REUSE_MAX_OPEN_FILES) break
        if (old.users === 0) this.drop(key, old)
      }
      return f
    }
    f.users++
    return f
  }

  private give (key: string, f: OpenFile): void {
    if (--f.users === 0 && (this.closed || this.files.get(key) !== f)) this.drop(key, f)
  }

  private drop (key: string, f: OpenFile): void {
    if (this.files.get(key) === f) this.files.delete(key)
    void f.fh.then(fh => fh?.close()).catch(() => {})
  }
}
