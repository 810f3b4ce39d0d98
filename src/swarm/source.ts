// What a wire serves pieces from. PieceSource is the interface serveWire() needs (a complete
// file on disk, or a Download in progress that serves what it already has); FileSource is the
// complete, already-hashed file: it reads pieces with positional reads, and before handing a
// piece out it checks that the file still has the size/mtime it was hashed with and that the
// piece still matches the Merkle layer/root — otherwise ERR_FILE_CHANGED, so nothing wrong is
// ever sent.
import { EventEmitter } from 'node:events'
import { constants as fsConstants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { SwarmError } from '../errors.js'
import { PIECE_SIZE, pieceCount } from '../merkle/bep52.js'
import { shareLayer, verifyPieceOffThread } from './verify-pool.js'

export interface PieceSource extends EventEmitter { // emits 'have' (index) when a new piece becomes available
  readonly root: Buffer
  readonly size: number
  readonly pieceSize: number
  readonly numPieces: number
  has (index: number): boolean
  complete (): boolean
  /** rejects if the piece is not available or the underlying file changed */
  readPiece (index: number): Promise<Buffer>
  /** concatenated 32-byte piece hashes; null for single-piece (and empty) files */
  pieceLayer (): Promise<Buffer | null>
  /** optional: serveWire calls retain() when a wire starts serving from the source, release() when it closes */
  retain? (): void
  release? (): void
  /**
   * optional, super-seeding: may piece `index` be uploaded now? A complete source answers false for
   * a piece it already uploaded more often than some other piece: the downloader then gets it from
   * a peer that has it, and the source's uplink carries each piece about once.
   */
  claimUpload? (index: number): boolean
}

/** byte length of piece `index` of a file of `size` bytes */
export function pieceLength (index: number, size: number, pieceSize: number): number {
  return Math.min(pieceSize, size - index * pieceSize)
}

/** fills buf from pos; ERR_FILE_CHANGED if the file ends first */
export async function readFully (fh: FileHandle, buf: Buffer, pos: number, what: string): Promise<void> {
  let got = 0
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got)
    if (bytesRead === 0) throw new SwarmError('ERR_FILE_CHANGED', `${what} is shorter than expected`)
    got += bytesRead
  }
}

/** mtimes are compared to within this many ms (fs.stat's mtimeMs survives a round trip through a double) */
const MTIME_TOLERANCE_MS = 1

export interface FileSourceOptions {
  path: string
  root: Buffer
  size: number
  /** concatenated piece hashes (pieceLayerOf); null/empty for single-piece files */
  layer: Buffer | null
  /** fs.stat(path).mtimeMs at hashing time */
  mtimeMs: number
  pieceSize?: number
  /**
   * Hash every piece before sending it (default true). Catches a file rewritten in place with its
   * old size and mtime. A node serving its own index turns it off: the size/mtime check stays, and
   * the receiver verifies every piece anyway — it halves the CPU a seed spends per byte.
   */
  verify?: boolean
}

export class FileSource extends EventEmitter implements PieceSource {
  readonly path: string
  readonly root: Buffer
  readonly size: number
  readonly pieceSize: number
  readonly numPieces: number
  readonly mtimeMs: number
  private readonly layer: Buffer | null
  private readonly sharedLayer: SharedArrayBuffer | null
  private readonly verify: boolean
  private fh: Promise<FileHandle> | null = null
  private closed = false
  /** Times each piece was handed out (saturating), and how many pieces never were (super-seeding). */
  private uploads: Uint8Array | null = null
  /** The round in progress (fewest uploads of any piece) and how many pieces are still at it. */
  private level = 0
  private atLevel = 0

  constructor (opts: FileSourceOptions) {
    super()
    this.path = opts.path
    this.root = opts.root
    this.size = opts.size
    this.pieceSize = opts.pieceSize ?? PIECE_SIZE
    this.numPieces = pieceCount(this.size, this.pieceSize)
    this.mtimeMs = opts.mtimeMs
    this.verify = opts.verify ?? true
    this.layer = opts.layer !== null && opts.layer.length > 0 ? opts.layer : null
    if (this.root.length !== 32) throw new SwarmError('ERR_BAD_ARGUMENT', 'root must be 32 bytes')
    const want = this.numPieces > 1 ? this.numPieces * 32 : 0
    if ((this.layer?.length ?? 0) !== want) {
      throw new SwarmError('ERR_BAD_ARGUMENT', `piece layer is ${this.layer?.length ?? 0} bytes, expected ${want}`)
    }
    this.sharedLayer = shareLayer(this.layer)
  }

  has (index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.numPieces
  }

  complete (): boolean { return true }

  claimUpload (index: number): boolean {
    if (this.uploads === null) { this.uploads = new Uint8Array(this.numPieces); this.atLevel = this.numPieces }
    const n = this.uploads[index]!
    // Pieces go out in rounds: none a second time before every piece went out once, and so on.
    if (n > this.level && n < 255) return false
    this.uploads[index] = Math.min(n + 1, 255)
    if (n === this.level && --this.atLevel === 0) {
      this.level++
      for (const u of this.uploads) if (u === this.level) this.atLevel++
    }
    return true
  }

  async pieceLayer (): Promise<Buffer | null> { return this.layer }

  async readPiece (index: number): Promise<Buffer> {
    if (this.closed) throw new SwarmError('ERR_CLOSED', `source ${this.path} is closed`)
    if (!this.has(index)) throw new SwarmError('ERR_BAD_ARGUMENT', `piece ${index} is outside the file`)
    const fh = await this.handle()
    const len = pieceLength(index, this.size, this.pieceSize)
    const buf = Buffer.allocUnsafe(len)
    const [st] = await Promise.all([fh.stat(), readFully(fh, buf, index * this.pieceSize, this.path)])
    if (st.size !== this.size || Math.abs(st.mtimeMs - this.mtimeMs) >= MTIME_TOLERANCE_MS) {
      throw new SwarmError('ERR_FILE_CHANGED', `${this.path} changed since it was hashed`)
    }
    if (!this.verify) return buf
    const { ok, piece } = await verifyPieceOffThread(buf, index, this.layer, this.sharedLayer, this.root, this.size, this.pieceSize)
    if (!ok) throw new SwarmError('ERR_FILE_CHANGED', `${this.path} piece ${index} no longer matches its hash`)
    return piece
  }

  /** releases the file descriptor; later reads reject with ERR_CLOSED */
  async close (): Promise<void> {
    this.closed = true
    const fh = this.fh
    this.fh = null
    if (fh !== null) await fh.then(async h => await h.close(), () => {})
  }

  private async handle (): Promise<FileHandle> {
    if (this.fh === null) {
      this.fh = open(this.path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)   // the share's parents were checked by the caller; never a symlink
      this.fh.catch(() => { this.fh = null }) // let a later read retry the open
    }
    try {
      return await this.fh
    } catch (err) {
      throw new SwarmError('ERR_FILE_CHANGED', `${this.path} cannot be opened: ${(err as Error).message}`, { cause: err })
    }
  }
}
