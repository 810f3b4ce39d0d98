// The one module that touches a share's files. Writing into a share without ever exposing a partial file: content goes to a temp file in
// <share>/.swarm/tmp (same filesystem), gets its mtime, and is renamed into place. Parent
// folders are created one component at a time and must be real folders, never symlinks, so a
// hostile path cannot lead a write outside the share.
import * as fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { SwarmError } from '../errors.js'
import { META_DIR } from '../model/paths.js'
import type { LocalStat } from '../model/entry.js'

export const TMP_DIR = join(META_DIR, 'tmp')

export class ShareDisk {
  readonly tmpDir: string
  private readonly knownDirs = new Set<string>([''])
  private readonly tmpPrefix = randomBytes(4).toString('hex')
  private tmpCounter = 0

  constructor (readonly root: string) {
    this.tmpDir = join(root, TMP_DIR)
  }

  init (): void {
    fs.mkdirSync(this.tmpDir, { recursive: true })
    // Leftover temp files of a crashed run are never visible in the share; drop them (not .part files: they resume).
    for (const name of fs.readdirSync(this.tmpDir)) {
      if (name.startsWith('w-')) fs.rmSync(join(this.tmpDir, name), { force: true })
    }
  }

  abs (rel: string): string { return join(this.root, rel) }

  tempPath (): string { return join(this.tmpDir, `w-${this.tmpPrefix}-${(this.tmpCounter++).toString(36)}`) }

  lstat (rel: string): fs.Stats | null {
    // throwIfNoEntry: a missing path is the common case when receiving; an exception per file costs more than the write.
    try { return fs.lstatSync(this.abs(rel), { throwIfNoEntry: false }) ?? null } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null
      throw err
    }
  }

  /** Makes sure every folder of `relDir` exists as a real folder inside the share. */
  ensureDir (relDir: string): void {
    if (this.knownDirs.has(relDir)) return
    let cur = ''
    for (const part of relDir.split('/')) {
      cur = cur === '' ? part : cur + '/' + part
      if (this.knownDirs.has(cur)) continue
      const st = this.lstat(cur)
      if (st === null) fs.mkdirSync(this.abs(cur))
      else if (!st.isDirectory()) throw new SwarmError('ERR_BAD_PATH', `${cur} is not a folder (symlink or file); not writing below it`)
      this.knownDirs.add(cur)
    }
  }

  forgetDirs (): void { this.knownDirs.clear(); this.knownDirs.add('') }

  /** Reads a whole (small) file; ERR_FILE_CHANGED if it changed while it was read. */
  readWhole (rel: string): { data: Buffer, local: LocalStat } {
    const fd = fs.openSync(this.abs(rel), 'r')
    try {
      const before = fs.fstatSync(fd)
      const data = Buffer.allocUnsafe(before.size)
      let off = 0
      while (off < data.length) {
        const n = fs.readSync(fd, data, off, data.length - off, off)
        if (n === 0) break
        off += n
      }
      const after = fs.fstatSync(fd)
      if (off !== before.size || after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
        throw new SwarmError('ERR_FILE_CHANGED', `${rel} changed while it was read`)
      }
      return { data, local: { size: after.size, mtimeMs: after.mtimeMs, ino: after.ino } }
    } finally { fs.closeSync(fd) }
  }

  /** Writes `data` to a temp file with the given mtime; returns the temp path and its stat. */
  writeTemp (data: Buffer, mtime: number): { tmp: string, local: LocalStat } {
    const tmp = this.tempPath()
    const fd = fs.openSync(tmp, 'wx', 0o644)
    try {
      let off = 0
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off)
      fs.futimesSync(fd, mtime / 1000, mtime / 1000)
      const st = fs.fstatSync(fd)
      return { tmp, local: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } }
    } catch (err) {
      fs.closeSync(fd)
      fs.rmSync(tmp, { force: true })
      throw mapWriteError(err)
    } finally {
      try { fs.closeSync(fd) } catch {}
    }
  }

  /** Copies a local file (reflink where the filesystem can) into a temp file with the given mtime. */
  copyToTemp (srcRel: string, mtime: number): { tmp: string, local: LocalStat } {
    const tmp = this.tempPath()
    try {
      fs.copyFileSync(this.abs(srcRel), tmp, fs.constants.COPYFILE_FICLONE)
      return { tmp, local: this.stampTemp(tmp, mtime) }
    } catch (err) {
      fs.rmSync(tmp, { force: true })
      throw mapWriteError(err)
    }
  }

  /** Sets the mtime of a finished temp file and returns its stat. */
  stampTemp (tmp: string, mtime: number): LocalStat {
    fs.utimesSync(tmp, mtime / 1000, mtime / 1000)
    const st = fs.statSync(tmp)
    return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
  }

  /** Renames a temp file into place at `rel`, creating parent folders. */
  install (tmp: string, rel: string): void {
    const slash = rel.lastIndexOf('/')
    if (slash > 0) this.ensureDir(rel.slice(0, slash))
    const st = this.lstat(rel)
    if (st !== null && st.isDirectory()) fs.rmSync(this.abs(rel), { recursive: false })
    fs.renameSync(tmp, this.abs(rel))
  }

  discard (tmp: string): void { fs.rmSync(tmp, { force: true }) }

  remove (rel: string, type: 'file' | 'dir'): void {
    const st = this.lstat(rel)
    if (st === null) return
    if (type === 'dir' && st.isDirectory()) {
      this.forgetDirs()
      try { fs.rmdirSync(this.abs(rel)) } catch (err) {
        // Something we do not replicate (a symlink, a special file) keeps it alive; leave it.
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err
      }
    } else if (!st.isDirectory()) {
      fs.unlinkSync(this.abs(rel))
    }
  }

  rename (fromRel: string, toRel: string): void {
    const slash = toRel.lastIndexOf('/')
    if (slash > 0) this.ensureDir(toRel.slice(0, slash))
    fs.renameSync(this.abs(fromRel), this.abs(toRel))
  }
}

export function mapWriteError (err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SwarmError('ERR_NO_SPACE', 'disk full while receiving; existing file left untouched', { cause: err })
  return err as Error
}
