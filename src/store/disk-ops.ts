// The batched filesystem operations of a received batch of small files, as plain synchronous
// functions: they run in the disk thread (disk-thread.ts), or inline on the event loop where no
// thread can be had. Paths are absolute and were checked by ShareDisk (parents are real folders
// inside the share) before they get here.
import fs from 'node:fs'

export interface TempWrite { tmp: string, data: Uint8Array, mtimeS: number }
export interface LinkNew { tmp: string, dest: string }
/** per item: the new file's stat, or the error's code and message */
export type OpResult = { ok: true, size: number, mtimeMs: number, ino: number } | { ok: false, code: string, message: string }

function failed (err: unknown): OpResult {
  const e = err as NodeJS.ErrnoException
  return { ok: false, code: e?.code ?? 'EUNKNOWN', message: e?.message ?? String(err) }
}

/** Creates each temp file (never over an existing one), writes it, sets its mtime; no fsync (one barrier per batch follows). */
export function writeTemps (items: TempWrite[]): OpResult[] {
  return items.map(({ tmp, data, mtimeS }) => {
    let fd = -1
    try {
      fd = fs.openSync(tmp, 'wx', 0o644)
      let off = 0
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off)
      fs.futimesSync(fd, mtimeS, mtimeS)
      const st = fs.fstatSync(fd)
      return { ok: true, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
    } catch (err) {
      if (fd >= 0) { try { fs.closeSync(fd) } catch {} fd = -1 }
      fs.rmSync(tmp, { force: true })
      return failed(err)
    } finally {
      if (fd >= 0) fs.closeSync(fd)
    }
  })
}

/**
 * Puts each temp file at a path that held nothing: link() fails with EEXIST if anything is
 * there (a file a local program just wrote is never replaced), then the temp name goes.
 */
export function linkNew (items: LinkNew[]): OpResult[] {
  return items.map(({ tmp, dest }) => {
    try {
      fs.linkSync(tmp, dest)
    } catch (err) { return failed(err) }
    try { fs.unlinkSync(tmp) } catch {}
    return { ok: true, size: 0, mtimeMs: 0, ino: 0 }
  })
}
