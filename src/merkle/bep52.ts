// BitTorrent v2 (BEP 52) Merkle trees over file contents: leaf hashing, pieces
// roots, piece layers, rebuilding/verifying a root from a piece layer, piece
// verification, and an incremental hasher with flat memory for huge files.
// Pure functions over Buffers; SHA-256 from node:crypto. No I/O here.
//
// Tree shape (BEP 52): leaves are SHA-256 of the 16 KiB blocks of the file (the
// last block is hashed as-is, not zero-filled). The leaf count is padded up to a
// power of two with 32-zero-byte leaf hashes; inner node = SHA-256(left || right).
// A piece hash (piece size P) is the root of the subtree over P/16KiB leaves, the
// last piece including zero padding leaves. Piece layers exist only for files
// larger than one piece. An empty file has no pieces root in BEP 52; we use
// ZERO_ROOT (32 zero bytes).

import * as crypto from 'node:crypto'
import { SwarmError } from '../errors.js'

export const LEAF_SIZE = 16384
export const PIECE_SIZE = 256 * 1024            // the project's transfer piece size
const HASH_SIZE = 32

/** 32 zero bytes: the root we use for the empty file (also the padding leaf hash). */
export const ZERO_ROOT: Buffer = Buffer.alloc(HASH_SIZE)

// Private copy used for padding, so that a caller mutating ZERO_ROOT cannot
// corrupt our trees.
const ZERO_HASH: Buffer = Buffer.alloc(HASH_SIZE)

// ---------------------------------------------------------------------------
// hashing primitives

type OneShot = (algorithm: string, data: crypto.BinaryLike, outputEncoding: 'buffer') => Buffer
// crypto.hash (Node >= 20.12) avoids a Hash object per call; fall back otherwise.
const oneShot: OneShot | undefined = typeof (crypto as { hash?: unknown }).hash === 'function'
  ? (crypto as unknown as { hash: OneShot }).hash
  : undefined

function sha256 (data: Uint8Array): Buffer {
  if (oneShot !== undefined) return oneShot('sha256', data, 'buffer')
  return crypto.createHash('sha256').update(data).digest()
}

const pairScratch = Buffer.allocUnsafe(HASH_SIZE * 2)
/** SHA-256(left || right) of two 32-byte hashes. */
function hashPair (left: Buffer, right: Buffer): Buffer {
  left.copy(pairScratch, 0, 0, HASH_SIZE)
  right.copy(pairScratch, HASH_SIZE, 0, HASH_SIZE)
  return sha256(pairScratch)
}

// zeroRoots[k] = root of a perfect subtree of 2^k zero leaf hashes
const zeroRoots: Buffer[] = [ZERO_HASH]
function zeroRootAtLevel (level: number): Buffer {
  while (zeroRoots.length <= level) {
    const prev = zeroRoots[zeroRoots.length - 1]!
    zeroRoots.push(hashPair(prev, prev))
  }
  return zeroRoots[level]!
}

/**
 * Root of a subtree of `leafCount` zero leaf hashes (leafCount a power of two):
 * the padding hash BEP 52 uses when padding a piece layer.
 */
export function zeroSubtreeRoot (leafCount: number): Buffer {
  if (!isPowerOfTwo(leafCount)) throw new SwarmError('ERR_BAD_ARGUMENT', `zero subtree leaf count must be a power of two, got ${leafCount}`)
  return Buffer.from(zeroRootAtLevel(log2(leafCount)))
}

// ---------------------------------------------------------------------------
// small helpers

function isPowerOfTwo (n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n
}

function log2 (powerOfTwo: number): number {
  return Math.round(Math.log2(powerOfTwo))
}

function nextPowerOfTwo (n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}

function checkPieceSize (pieceSize: number): void {
  if (!isPowerOfTwo(pieceSize) || pieceSize < LEAF_SIZE) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `piece size must be a power of two >= ${LEAF_SIZE}, got ${pieceSize}`)
  }
}

function checkFileSize (fileSize: number): void {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `file size must be a non-negative integer, got ${fileSize}`)
  }
}

/**
 * Root of a layer of hashes padded up to `width` (a power of two >= hashes.length)
 * with `pad` (the root of a zero subtree of the layer's level).
 */
function reduceLayer (hashes: Buffer[], width: number, padLevel: number): Buffer {
  if (hashes.length === 0) return Buffer.from(zeroRootAtLevel(padLevel + log2(width)))
  let layer = hashes
  let level = padLevel
  let w = width
  while (w > 1) {
    const next: Buffer[] = []
    const pad = zeroRootAtLevel(level)
    for (let i = 0; i < layer.length; i += 2) {
      next.push(hashPair(layer[i]!, i + 1 < layer.length ? layer[i + 1]! : pad))
    }
    layer = next
    level++
    w /= 2
  }
  return layer.length === 1 && layer === hashes ? Buffer.from(layer[0]!) : layer[0]!
}

// ---------------------------------------------------------------------------
// one-shot functions (straightforward pad-and-reduce; the incremental hasher
// below uses a different algorithm, and the tests cross-check the two)

/** One 32-byte SHA-256 per 16 KiB block (the last block may be shorter). Empty input -> []. */
export function hashLeaves (data: Buffer): Buffer[] {
  const leaves: Buffer[] = []
  for (let off = 0; off < data.length; off += LEAF_SIZE) {
    leaves.push(sha256(data.subarray(off, Math.min(off + LEAF_SIZE, data.length))))
  }
  return leaves
}

/** BEP 52 pieces root of a whole in-memory file (ZERO_ROOT for the empty file). */
export function fileRoot (data: Buffer): Buffer {
  if (data.length === 0) return Buffer.from(ZERO_HASH)
  const leaves = hashLeaves(data)
  return reduceLayer(leaves, nextPowerOfTwo(leaves.length), 0)
}

/** Number of pieces of a file; 0 for the empty file. */
export function pieceCount (fileSize: number, pieceSize: number = PIECE_SIZE): number {
  checkFileSize(fileSize)
  checkPieceSize(pieceSize)
  return Math.ceil(fileSize / pieceSize)
}

/** Hash of one piece: root of pieceSize/16KiB leaves, zero-leaf padded. */
export function pieceHash (piece: Buffer, pieceSize: number = PIECE_SIZE): Buffer {
  checkPieceSize(pieceSize)
  if (piece.length > pieceSize) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `piece of ${piece.length} bytes exceeds piece size ${pieceSize}`)
  }
  return reduceLayer(hashLeaves(piece), pieceSize / LEAF_SIZE, 0)
}

/** Concatenated 32-byte piece hashes; empty Buffer if data.length <= pieceSize. */
export function pieceLayerOf (data: Buffer, pieceSize: number = PIECE_SIZE): Buffer {
  checkPieceSize(pieceSize)
  if (data.length <= pieceSize) return Buffer.alloc(0)
  const n = Math.ceil(data.length / pieceSize)
  const out = Buffer.allocUnsafe(n * HASH_SIZE)
  for (let i = 0; i < n; i++) {
    pieceHash(data.subarray(i * pieceSize, Math.min((i + 1) * pieceSize, data.length)), pieceSize).copy(out, i * HASH_SIZE)
  }
  return out
}

function splitLayer (layer: Buffer): Buffer[] {
  const hashes: Buffer[] = []
  for (let off = 0; off < layer.length; off += HASH_SIZE) hashes.push(layer.subarray(off, off + HASH_SIZE))
  return hashes
}

/**
 * Rebuild the pieces root from a piece layer: the layer is padded to a power of
 * two with the root of a subtree of pieceSize/16KiB zero leaf hashes.
 * Throws ERR_BAD_ARGUMENT if the file has no piece layer (fileSize <= pieceSize)
 * or the layer is not exactly pieceCount * 32 bytes.
 */
export function rootFromPieceLayer (layer: Buffer, fileSize: number, pieceSize: number = PIECE_SIZE): Buffer {
  const n = pieceCount(fileSize, pieceSize)
  if (fileSize <= pieceSize) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `a file of ${fileSize} bytes has no piece layer at piece size ${pieceSize}`)
  }
  if (layer.length !== n * HASH_SIZE) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `piece layer is ${layer.length} bytes, expected ${n * HASH_SIZE} for ${n} pieces`)
  }
  return reduceLayer(splitLayer(layer), nextPowerOfTwo(n), log2(pieceSize / LEAF_SIZE))
}

/**
 * True iff the layer has the right length for the file AND rebuilds to root.
 * A file of at most one piece has no piece layer: then only an empty layer is
 * accepted (and, for the empty file, root must be ZERO_ROOT); the data itself is
 * checked against the root by verifyPiece.
 */
export function verifyPieceLayer (layer: Buffer, root: Buffer, fileSize: number, pieceSize: number = PIECE_SIZE): boolean {
  const n = pieceCount(fileSize, pieceSize)
  if (root.length !== HASH_SIZE) return false
  if (fileSize === 0) return layer.length === 0 && root.equals(ZERO_HASH)
  if (fileSize <= pieceSize) return layer.length === 0
  if (layer.length !== n * HASH_SIZE) return false
  return rootFromPieceLayer(layer, fileSize, pieceSize).equals(root)
}

/**
 * Verify one piece of a file.
 * - single-piece file (fileSize <= pieceSize; layer null/empty): index must be 0,
 *   piece.length === fileSize and fileRoot(piece) must equal root;
 * - otherwise the layer must have already been checked with verifyPieceLayer;
 *   the piece must have the right length (pieceSize, except the last) and its
 *   pieceHash must equal layer[index].
 */
export function verifyPiece (piece: Buffer, index: number, layer: Buffer | null, root: Buffer, fileSize: number, pieceSize: number = PIECE_SIZE): boolean {
  const n = pieceCount(fileSize, pieceSize)
  if (!Number.isSafeInteger(index) || index < 0 || index >= n) return false
  if (fileSize <= pieceSize) {
    if (layer !== null && layer.length !== 0) return false
    return piece.length === fileSize && root.length === HASH_SIZE && fileRoot(piece).equals(root)
  }
  if (layer === null || layer.length !== n * HASH_SIZE) return false
  const expectedLength = index < n - 1 ? pieceSize : fileSize - (n - 1) * pieceSize
  if (piece.length !== expectedLength) return false
  return pieceHash(piece, pieceSize).equals(layer.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE))
}

// ---------------------------------------------------------------------------
// incremental hasher

/**
 * A stack of perfect subtrees, like a binary counter: slots[k] holds the root of
 * 2^k consecutive leaves, or null. Holds at most log2(width)+1 hashes.
 */
class SubtreeStack {
  slots: Array<Buffer | null> = []
  count = 0

  push (leaf: Buffer): void {
    let node = leaf
    let k = 0
    while (k < this.slots.length && this.slots[k] !== null) {
      node = hashPair(this.slots[k]!, node)
      this.slots[k] = null
      k++
    }
    if (k === this.slots.length) this.slots.push(node)
    else this.slots[k] = node
    this.count++
  }

  /** Root of the leaves pushed so far (plus `extra`), zero-padded to `width` leaves. Non-destructive. */
  root (width: number, extra: Buffer | null): Buffer {
    const slots = this.slots.slice()
    let count = this.count
    if (extra !== null) {
      // push extra onto the copy
      let node = extra
      let k = 0
      while (k < slots.length && slots[k] !== null) {
        node = hashPair(slots[k]!, node)
        slots[k] = null
        k++
      }
      if (k === slots.length) slots.push(node)
      else slots[k] = node
      count++
    }
    const height = log2(width)
    if (count === width) return slots[height]!
    if (count === 0) return Buffer.from(zeroRootAtLevel(height))
    // fold bottom-up: acc = root of the rightmost level-k subtree (null = all padding)
    let acc: Buffer | null = null
    for (let k = 0; k < height; k++) {
      const s = k < slots.length ? slots[k] : null
      if (s !== null && s !== undefined) acc = hashPair(s, acc ?? zeroRootAtLevel(k))
      else if (acc !== null) acc = hashPair(acc, zeroRootAtLevel(k))
    }
    return acc!
  }

  reset (): void {
    this.slots = []
    this.count = 0
  }
}

/**
 * Incremental BEP 52 hasher: feed chunks of any size. Memory: one 16 KiB partial
 * block, a per-piece stack of O(log(pieceSize/16KiB)) hashes, and the piece-layer
 * hashes (32 bytes per piece).
 */
export class Bep52Hasher {
  private readonly pieceSize: number
  private readonly leavesPerPiece: number
  private readonly partial = Buffer.allocUnsafe(LEAF_SIZE)
  private partialLen = 0
  private readonly piece = new SubtreeStack()
  private readonly pieceHashes: Buffer[] = []
  private size = 0

  constructor (pieceSize: number = PIECE_SIZE) {
    checkPieceSize(pieceSize)
    this.pieceSize = pieceSize
    this.leavesPerPiece = pieceSize / LEAF_SIZE
  }

  update (chunk: Buffer): void {
    let off = 0
    const len = chunk.length
    this.size += len
    if (this.partialLen > 0) {
      const take = Math.min(LEAF_SIZE - this.partialLen, len)
      chunk.copy(this.partial, this.partialLen, 0, take)
      this.partialLen += take
      off = take
      if (this.partialLen < LEAF_SIZE) return
      this.addLeaf(sha256(this.partial))
      this.partialLen = 0
    }
    // Full blocks are hashed in place. A trailing full block is still hashed now:
    // the file's last block is hashed the same whether it is full or short.
    while (len - off >= LEAF_SIZE) {
      this.addLeaf(sha256(chunk.subarray(off, off + LEAF_SIZE)))
      off += LEAF_SIZE
    }
    if (off < len) {
      chunk.copy(this.partial, 0, off, len)
      this.partialLen = len - off
    }
  }

  private addLeaf (leaf: Buffer): void {
    this.piece.push(leaf)
    if (this.piece.count === this.leavesPerPiece) {
      this.pieceHashes.push(this.piece.root(this.leavesPerPiece, null))
      this.piece.reset()
    }
  }

  /** Non-destructive: more data may be fed afterwards. layer is empty when size <= pieceSize. */
  digest (): { root: Buffer, size: number, layer: Buffer } {
    const size = this.size
    if (size === 0) return { root: Buffer.from(ZERO_HASH), size, layer: Buffer.alloc(0) }
    const tail = this.partialLen > 0 ? sha256(this.partial.subarray(0, this.partialLen)) : null
    if (size <= this.pieceSize) {
      if (this.pieceHashes.length === 1) {
        // exactly one full piece: its hash is the root
        return { root: Buffer.from(this.pieceHashes[0]!), size, layer: Buffer.alloc(0) }
      }
      const leaves = this.piece.count + (tail !== null ? 1 : 0)
      return { root: this.piece.root(nextPowerOfTwo(leaves), tail), size, layer: Buffer.alloc(0) }
    }
    const hashes = this.pieceHashes.slice()
    if (this.piece.count > 0 || tail !== null) hashes.push(this.piece.root(this.leavesPerPiece, tail))
    const layer = Buffer.concat(hashes, hashes.length * HASH_SIZE)
    const root = reduceLayer(hashes, nextPowerOfTwo(hashes.length), log2(this.leavesPerPiece))
    return { root, size, layer }
  }
}
