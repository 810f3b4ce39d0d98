// Streaming BEP 52 hashing of a file on disk (one fd, positional 1 MiB reads into
// a reused buffer, flat memory) with detection of files that change while being
// read; plus hashBuffer for small in-memory files.

import { open, type FileHandle } from 'node:fs/promises'
import { SwarmError } from '../errors.js'
import { Bep52Hasher, PIECE_SIZE } from './bep52.js'

export interface FileHash { root: Buffer, size: number, layer: Buffer, mtimeMs: number, ino: number }

/** Test hooks; not needed by normal callers. */
export interface HashFileHooks {
  /** Called after each read with the total number of bytes read so far. */
  afterRead?: (bytesSoFar: number) => void | Promise<void>
}

const READ_SIZE = 1024 * 1024

/** BEP 52 root/layer of an in-memory file. */
export function hashBuffer (data: Buffer, pieceSize: number = PIECE_SIZE): { root: Buffer, size: number, layer: Buffer } {
  const hasher = new Bep52Hasher(pieceSize)
  hasher.update(data)
  return hasher.digest()
}

/**
 * Hash a file on disk (a path, or a handle that is then owned and closed here). Opens it once, fstat's it, reads it to EOF in 1 MiB
 * positional reads, fstat's it again. Throws SwarmError('ERR_FILE_CHANGED') if the
 * bytes read differ from the size, or size or mtime changed while reading.
 * Other I/O errors (ENOENT, EISDIR, ...) propagate unchanged.
 */
export async function hashFile (file: string | FileHandle, pieceSize: number = PIECE_SIZE, hooks?: HashFileHooks): Promise<FileHash> {
  const hasher = new Bep52Hasher(pieceSize) // validates pieceSize before any I/O
  // A path is opened here; a handle the caller opened (e.g. without following symlinks) is closed here too.
  const fh = typeof file === 'string' ? await open(file, 'r') : file
  const path = typeof file === 'string' ? file : `file #${file.fd}`
  try {
    const before = await fh.stat()
    const size = before.size
    const buf = Buffer.allocUnsafe(READ_SIZE)
    let position = 0
    for (;;) {
      // Read to EOF rather than just `size` bytes, so an append is noticed even if
      // the mtime did not visibly change; stop as soon as we are past `size`.
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, position)
      if (bytesRead === 0) break
      position += bytesRead
      if (position > size) {
        throw new SwarmError('ERR_FILE_CHANGED', `${path} grew while it was being hashed (${size} bytes at open, more read)`)
      }
      hasher.update(buf.subarray(0, bytesRead))
      if (hooks?.afterRead !== undefined) await hooks.afterRead(position)
    }
    if (position !== size) {
      throw new SwarmError('ERR_FILE_CHANGED', `${path} changed while it was being hashed (${size} bytes at open, ${position} read)`)
    }
    const after = await fh.stat()
    if (after.size !== size || after.mtimeMs !== before.mtimeMs) {
      throw new SwarmError('ERR_FILE_CHANGED', `${path} changed while it was being hashed (size or mtime changed)`)
    }
    const { root, layer } = hasher.digest()
    return { root, size, layer, mtimeMs: before.mtimeMs, ino: before.ino }
  } finally {
    await fh.close()
  }
}
