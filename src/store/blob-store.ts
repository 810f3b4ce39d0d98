// The jobs' blob store: complete, verified files addressed by (root, size), in <state>/blobs.
// It owns every filesystem operation on those files: importing a user's file (put), adopting a
// finished download, reading one for serving, and exporting one to a destination the user
// names (get) without ever leaving a partial file there. Which blobs are complete is recorded
// in the index (db.ts `blobs`); a file in blobs/ without a row is a leftover and is ignored.
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import type { IndexDb } from './db.js'
import { hashFile } from '../merkle/hash-file.js'
import { ZERO_ROOT } from '../merkle/bep52.js'
import { SwarmError } from '../errors.js'

export interface Blob { root: Buffer, size: number, path: string }

export class BlobStore {
  readonly dir: string
  /** Part files of downloads in progress and imports being hashed. */
  readonly tmpDir: string
  private readonly known = new Map<string, Blob>()

  constructor (stateDir: string, private readonly db: IndexDb) {
    this.dir = join(stateDir, 'blobs')
    this.tmpDir = join(this.dir, 'tmp')
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 })
    for (const { root, size } of db.allBlobs()) {
      const path = this.pathOf(root, size)
      // A row whose file is gone (deleted by hand) is forgotten rather than served.
      if (fs.statSync(path, { throwIfNoEntry: false })?.size === size) this.known.set(key(root, size), { root, size, path })
      else db.deleteBlob(root, size)
    }
    // Imports interrupted by a crash leave temp files nobody will finish; a blob file without its
    // row was renamed in place just before a crash (not yet recorded): it goes too.
    for (const f of fs.readdirSync(this.tmpDir)) if (f.startsWith('import-') || f.startsWith('tmp-')) fs.rmSync(join(this.tmpDir, f), { force: true })
    const recorded = new Set([...this.known.values()].map(b => basename(b.path)))
    for (const f of fs.readdirSync(this.dir)) if (/^[0-9a-f]{64}-\d+$/.test(f) && !recorded.has(f)) fs.rmSync(join(this.dir, f), { force: true })
  }

  private pathOf (root: Buffer, size: number): string { return join(this.dir, `${root.toString('hex')}-${size}`) }

  get (root: Buffer, size: number): Blob | undefined { return this.known.get(key(root, size)) }
  has (root: Buffer, size: number): boolean { return this.known.has(key(root, size)) }

  /** A complete blob whose root starts with this 20-byte info hash (what a piece stream asks for). */
  byInfoHash (infoHash: Buffer): Blob | undefined {
    for (const b of this.known.values()) if (b.root.subarray(0, 20).equals(infoHash)) return b
    return undefined
  }

  /** A complete blob with this root, whatever its size. */
  withRoot (root: Buffer): Blob | undefined {
    for (const b of this.known.values()) if (b.root.equals(root)) return b
    return undefined
  }

  /** Opens a blob's file for reading (never through a symlink someone put in the store). */
  openRead (blob: Blob): Promise<fsp.FileHandle> { return fsp.open(blob.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW) }

  list (): Blob[] { return [...this.known.values()] }
  bytes (): number { let n = 0; for (const b of this.known.values()) n += b.size; return n }

  /** Where the download of (root, size) keeps its part file between runs. */
  partPath (root: Buffer, size: number): string { return join(this.tmpDir, `${root.toString('hex')}-${size}.part`) }
  tempPath (): string { return join(this.tmpDir, `tmp-${randomBytes(8).toString('hex')}`) }

  /**
   * Copies a user's file into the store (a reflink where the filesystem can) and hashes the copy:
   * what is published is exactly what is served, even if the original changes later. A file that
   * changes while it is copied is refused (ERR_FILE_CHANGED), not published half-old.
   */
  async import (file: string): Promise<Blob & { layer: Buffer }> {
    let st: fs.Stats
    try { st = fs.statSync(file) } catch { throw new SwarmError('ERR_BAD_ARGUMENT', `${file} does not exist`) }
    if (!st.isFile()) throw new SwarmError('ERR_BAD_ARGUMENT', `${file} is not a regular file`)
    const tmp = join(this.tmpDir, `import-${randomBytes(8).toString('hex')}`)
    try {
      // Asynchronous (libuv's thread pool): a multi-GB copy must not stop the node serving others.
      await fsp.copyFile(file, tmp, fs.constants.COPYFILE_FICLONE)
      const after = fs.statSync(file)
      if (after.size !== st.size || after.mtimeMs !== st.mtimeMs) throw new SwarmError('ERR_FILE_CHANGED', `${file} changed while it was copied; try again once it is written`)
      const fh = await fsp.open(tmp, 'r')
      try { await fh.sync() } finally { await fh.close() }   // so adopt()'s own fsync finds nothing left to write
      const h = await hashFile(tmp)
      if (h.size !== st.size) throw new SwarmError('ERR_FILE_CHANGED', `${file} changed while it was copied; try again once it is written`)
      const blob = this.adopt(tmp, h.root, h.size)
      return { ...blob, layer: h.layer }
    } catch (err) {
      fs.rmSync(tmp, { force: true })
      throw mapNoSpace(err, 'the blob store')
    }
  }

  /** Makes a verified temp file durable and files it under (root, size); the same content twice is kept once. */
  adopt (tmp: string, root: Buffer, size: number): Blob {
    const path = this.pathOf(root, size)
    const existing = this.get(root, size)
    if (existing !== undefined) { fs.rmSync(tmp, { force: true }); return existing }
    const fd = fs.openSync(tmp, 'r')
    try { fs.fsyncSync(fd) } finally { fs.closeSync(fd) }
    fs.chmodSync(tmp, 0o644)
    fs.renameSync(tmp, path)
    this.db.putBlob(root, size)
    const blob = { root, size, path }
    this.known.set(key(root, size), blob)
    return blob
  }

  /** Files the empty blob: no bytes to fetch, but the root must be the empty file's. */
  adoptEmpty (root: Buffer): Blob {
    if (!root.equals(ZERO_ROOT)) throw new SwarmError('ERR_VERIFY_FAILED', 'an empty file with a root that is not the empty root')
    const tmp = this.tempPath()
    fs.writeFileSync(tmp, Buffer.alloc(0), { mode: 0o644 })
    return this.adopt(tmp, root, 0)
  }

  /**
   * Writes a blob to `dest`: copied to a hidden temp file beside it, made durable, then put in
   * place — linked when `dest` must not exist (so a file created meanwhile is not overwritten),
   * renamed over it with `force`. A full disk leaves nothing behind and says so.
   */
  async export (blob: Blob, dest: string, force: boolean, signal?: AbortSignal): Promise<void> {
    const dir = dirname(dest)
    const dst = fs.statSync(dest, { throwIfNoEntry: false })
    if (dst !== undefined && !force) throw new SwarmError('ERR_EXISTS', `${dest} exists (use --force to replace it)`)
    if (dst?.isDirectory() === true) throw new SwarmError('ERR_EXISTS', `${dest} is a directory`)
    if (fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) throw new SwarmError('ERR_BAD_ARGUMENT', `destination folder ${dir} does not exist`)
    // A short name of its own (the destination's name may already be near the 255-byte limit).
    const tmp = join(dir, `.swarm-get-${randomBytes(6).toString('hex')}.tmp`)
    try {
      await fsp.copyFile(blob.path, tmp, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL)
      const fh = await fsp.open(tmp, 'r')
      try { await fh.sync() } finally { await fh.close() }
      // Interrupted while copying: nothing goes in place (and the temp file goes below).
      if (signal?.aborted === true) throw new SwarmError('ERR_ABORTED', `get of ${dest} interrupted before it was put in place; run it again`)
      if (force) fs.renameSync(tmp, dest)
      else {
        try { fs.linkSync(tmp, dest) } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SwarmError('ERR_EXISTS', `${dest} appeared while it was written (use --force to replace it)`)
          throw err
        }
        fs.rmSync(tmp, { force: true })
      }
    } catch (err) {
      fs.rmSync(tmp, { force: true })
      throw mapNoSpace(err, dest)
    }
  }
}

function key (root: Buffer, size: number): string { return root.toString('hex') + ':' + size }

function mapNoSpace (err: unknown, where: string): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SwarmError('ERR_NO_SPACE', `disk full writing ${where}; nothing was left behind`, { cause: err })
  return err
}
