// The disk half of a sweep of one folder, as one synchronous function: list the folder, lstat
// every file, and read and hash (BEP 52 root) each small file whose stat differs from what the
// index holds. It runs in the disk thread (disk-thread.ts) so that a sweep's syscalls and
// hashing run beside the event loop, which keeps the index writes; or inline where no thread can
// be had. The folder's path is absolute and was checked by ShareDisk (a real folder inside the
// share); files are opened without following symlinks, and a file that changes while it is read
// is reported as such, never hashed half-old. Ignored names (model/ignore.ts) are left out
// unread: folders and files that would be read are matched; a file whose stat is what the index
// holds is not (it was matched when indexed, and if it is ignored now its row stays as it is).
import fs from 'node:fs'
import { join } from 'node:path'
import { fileRoot } from '../merkle/bep52.js'
import { IgnoreRules } from '../model/ignore.js'
import { joinRel } from '../model/paths.js'

/** What the index holds for a file of the folder: name, size, mtimeMs, inode. */
export type KnownStat = [name: string, size: number, mtimeMs: number, ino: number]

export type FolderItem =
  | { name: string, t: 'dir' }
  | { name: string, t: 'same' }   // a file whose stat is what the index holds: not read
  | { name: string, t: 'file', size: number, mtimeMs: number, ino: number, root?: Uint8Array }   // root: small files only
  | { name: string, t: 'other' }   // symlink, device, FIFO, socket: the event loop decides what to say
  | { name: string, t: 'error', code: string, message: string }

export type FolderResult = { ok: true, items: FolderItem[] } | { ok: false, code: string, message: string }

/** The share's ignore patterns (IgnoreRules.patterns) and the folder's share-relative path. */
export interface FolderIgnore { patterns: readonly string[], relDir: string }

/** The matcher of the patterns seen last: a sweep sends the same patterns with every folder. */
let lastRules: IgnoreRules | null = null

function rulesOf (patterns: readonly string[]): IgnoreRules {
  if (lastRules === null || lastRules.patterns.length !== patterns.length || !lastRules.patterns.every((p, i) => p === patterns[i])) {
    lastRules = new IgnoreRules(patterns)
  }
  return lastRules
}

// O_NONBLOCK: a file swapped for a FIFO between lstat and open must not hang the thread.
const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK

function errorOf (err: unknown): { code: string, message: string } {
  const e = err as NodeJS.ErrnoException
  return { code: e?.code ?? 'EUNKNOWN', message: e?.message ?? String(err) }
}

export function scanFolderDisk (dir: string, known: KnownStat[], inlineMax: number, ignore: FolderIgnore | null = null): FolderResult {
  let dirents: fs.Dirent[]
  try { dirents = fs.readdirSync(dir, { withFileTypes: true }) } catch (err) { return { ok: false, ...errorOf(err) } }
  const index = new Map<string, KnownStat>()
  for (const k of known) index.set(k[0], k)
  const items: FolderItem[] = []
  const rules = ignore === null ? null : rulesOf(ignore.patterns)
  const ignored = (name: string, isDir: boolean): boolean => rules !== null && rules.ignores(joinRel(ignore!.relDir, name), isDir)
  for (const d of dirents) {
    const name = d.name
    if (d.isDirectory()) { if (!ignored(name, true)) items.push({ name, t: 'dir' }); continue }
    if (!d.isFile()) { items.push({ name, t: 'other' }); continue }
    const path = join(dir, name)
    try {
      const st = fs.lstatSync(path, { throwIfNoEntry: false })
      if (st === undefined) continue   // gone since the listing: as if never listed
      if (!st.isFile()) { items.push({ name, t: st.isDirectory() ? 'dir' : 'other' }); continue }
      const k = index.get(name)
      if (k !== undefined && k[1] === st.size && k[2] === st.mtimeMs && k[3] === st.ino) { items.push({ name, t: 'same' }); continue }
      if (ignored(name, false)) continue
      if (st.size > inlineMax) { items.push({ name, t: 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }); continue }
      items.push(readSmall(name, path))
    } catch (err) {
      items.push({ name, t: 'error', ...errorOf(err) })
    }
  }
  return { ok: true, items }
}

/** Reads a small file whole and hashes it; a file that changed while read is an ERR_FILE_CHANGED error item. */
function readSmall (name: string, path: string): FolderItem {
  const fd = fs.openSync(path, O_READ)
  try {
    const read = readOpenFile(fd)
    if (read === 'not-a-file') return { name, t: 'other' }
    if (read === 'changed') return { name, t: 'error', code: 'ERR_FILE_CHANGED', message: `${name} changed while it was read` }
    // A copy of its own: a root that is a view into a shared 8 KiB pool would be cloned whole
    // when the result is posted from the thread (200,000 files in one folder: 1.6 GB).
    return { name, t: 'file', size: read.st.size, mtimeMs: read.st.mtimeMs, ino: read.st.ino, root: new Uint8Array(fileRoot(read.data)) }
  } finally { fs.closeSync(fd) }
}

/**
 * Reads an open file whole, between two fstats: 'changed' if its size or mtime moved meanwhile
 * (the data would be a mix of versions), 'not-a-file' if the descriptor is not a regular file.
 */
export function readOpenFile (fd: number): { data: Buffer, st: fs.Stats } | 'changed' | 'not-a-file' {
  const before = fs.fstatSync(fd)
  if (!before.isFile()) return 'not-a-file'
  const data = Buffer.allocUnsafe(before.size)
  let off = 0
  while (off < data.length) {
    const n = fs.readSync(fd, data, off, data.length - off, off)
    if (n === 0) break
    off += n
  }
  const after = fs.fstatSync(fd)
  if (off !== before.size || after.size !== before.size || after.mtimeMs !== before.mtimeMs) return 'changed'
  return { data, st: after }
}
