// Piece verification off the event loop. SHA-256 is the dominant CPU cost of the exchange
// (each piece is hashed by the sender before sending and by the receiver before writing);
// on CPUs without SHA extensions a core hashes only ~300 MB/s, so both sides hand whole
// pieces to a small process-wide pool of worker threads running bep52's verifyPiece. Pieces
// move by transfer (no copy when the piece owns its ArrayBuffer) and come back the same way.
// Small pieces are verified inline; if a worker dies the pool degrades to inline verification.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { verifyPiece } from '../merkle/bep52.js'

/**
 * Default worker threads in the pool (0 = always verify inline). Only machines with cores to
 * spare get threads: on 2 cores the event loop, the peer and the transport already use them
 * (measured on 2 vCPUs: inline was as fast or faster). SWARM_VERIFY_THREADS overrides it.
 */
export const VERIFY_THREADS = threadsFromEnv() ?? (availableParallelism() >= 4 ? Math.min(4, availableParallelism() - 2) : 0)

function threadsFromEnv (): number | undefined {
  const v = process.env.SWARM_VERIFY_THREADS
  if (v === undefined || v === '' || !/^\d+$/.test(v)) return undefined
  return Math.min(16, Number(v))
}
/** pieces shorter than this are verified on the calling thread: a hop costs more than the hash */
export const VERIFY_INLINE_BELOW = 64 * 1024

export interface VerifyJob {
  id: number
  buf: ArrayBuffer
  off: number
  len: number
  index: number
  layer: SharedArrayBuffer | null
  root: Uint8Array
  size: number
  pieceSize: number
}

export interface VerifyResult { id: number, ok: boolean, buf: ArrayBuffer }

/** a piece layer in shared memory, so jobs can carry it without copying */
export function shareLayer (layer: Buffer | null): SharedArrayBuffer | null {
  if (layer === null || layer.length === 0) return null
  const sab = new SharedArrayBuffer(layer.length)
  new Uint8Array(sab).set(layer)
  return sab
}

interface Slot { worker: Worker, busy: number, retired: boolean }
interface Pending { resolve: (r: { ok: boolean, piece: Buffer }) => void, reject: (e: Error) => void, off: number, len: number, slot: Slot }

class VerifyPool {
  private slots: Slot[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private broken = false
  threads = VERIFY_THREADS

  /** change the thread count; running workers finish their jobs and exit */
  setThreads (n: number): void {
    for (const slot of this.slots) {
      slot.retired = true
      if (slot.busy === 0) void slot.worker.terminate()
    }
    this.slots = []
    this.threads = n
    this.broken = false
  }

  private start (): void {
    const url = new URL('./verify-worker.js', import.meta.url)
    for (let i = 0; i < this.threads; i++) {
      const worker = new Worker(url)
      const slot: Slot = { worker, busy: 0, retired: false }
      worker.on('message', (res: VerifyResult) => {
        const p = this.pending.get(res.id)
        if (p === undefined) return
        this.pending.delete(res.id)
        if (--slot.busy === 0) {
          worker.unref()
          if (slot.retired) void worker.terminate()
        }
        p.resolve({ ok: res.ok, piece: Buffer.from(res.buf, p.off, p.len) })
      })
      const die = (err: Error): void => {
        if (!slot.retired) this.broken = true
        for (const [id, p] of this.pending) {
          if (p.slot !== slot) continue
          this.pending.delete(id)
          p.reject(err)
        }
      }
      worker.on('error', die)
      worker.on('exit', () => die(new Error('verify worker exited')))
      worker.unref() // after adding listeners: a 'message' listener re-refs the worker's port
      this.slots.push(slot)
    }
  }

  /**
   * Verifies piece; resolves with the verdict and the piece (a new Buffer over the same memory:
   * the one passed in may have been detached). Rejects only if a worker died mid-job (the
   * piece is then lost).
   */
  async verify (piece: Buffer, index: number, layer: Buffer | null, sharedLayer: SharedArrayBuffer | null,
    root: Buffer, size: number, pieceSize: number): Promise<{ ok: boolean, piece: Buffer }> {
    if (this.threads === 0 || this.broken || piece.length < VERIFY_INLINE_BELOW) {
      return { ok: verifyPiece(piece, index, layer, root, size, pieceSize), piece }
    }
    if (this.slots.length === 0) this.start()
    // hand over the piece's own memory when it is (nearly) all the piece, else a copy
    let buf = piece.buffer as ArrayBuffer
    let off = piece.byteOffset
    const owns = !(buf instanceof SharedArrayBuffer) && buf.byteLength - piece.length <= 256
    if (!owns) {
      buf = new ArrayBuffer(piece.length)
      new Uint8Array(buf).set(piece)
      off = 0
    }
    let slot = this.slots[0]
    for (const s of this.slots) if (s.busy < slot.busy) slot = s
    const id = this.nextId++
    const job: VerifyJob = { id, buf, off, len: piece.length, index, layer: sharedLayer, root: new Uint8Array(root), size, pieceSize }
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, off, len: piece.length, slot })
      if (slot.busy++ === 0) slot.worker.ref()
      slot.worker.postMessage(job, [buf])
    })
  }
}

const pool = new VerifyPool()

/** sets the pool's thread count at run time (0 = verify inline) */
export function setVerifyThreads (n: number): void {
  pool.setThreads(Math.max(0, Math.min(16, Math.floor(n))))
}

/** verifyPiece on the pool; see VerifyPool.verify */
export async function verifyPieceOffThread (piece: Buffer, index: number, layer: Buffer | null, sharedLayer: SharedArrayBuffer | null,
  root: Buffer, size: number, pieceSize: number): Promise<{ ok: boolean, piece: Buffer }> {
  return await pool.verify(piece, index, layer, sharedLayer, root, size, pieceSize)
}
