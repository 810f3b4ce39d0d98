// Pieces a Download needs that are already on this machine: the old version of the same file,
// another file with equal pieces (LocalPieces, implemented above this floor by
// node/local-pieces.ts: the swarm floor knows no index and no share). Equal piece hashes in the
// BEP 52 layers say which; an edit in the middle of a big file then moves one piece, not the file.
//
// Once its Download knows the layer and has the part file open, and before the first request
// goes out, a LocalCopy asks which missing pieces are held locally and reserves those in the
// picker (so no peer is asked for them); then a few workers read each one, have the Download
// verify it exactly like a received piece and accept it (written, announced, counted as reused,
// not fetched). A piece that cannot be read or fails verification — a local file changed behind
// the index's back — is given back to the picker and fetched like any other.

/**
 * Where pieces may be found locally. Nothing it returns is trusted: every piece is verified
 * against the layer, so a wrong answer costs a wasted read, never a wrong byte.
 */
export interface LocalPieces {
  /** Whether some local file is believed to hold a piece with this 32-byte hash: lookups only, no reading. */
  has (hash: Buffer): boolean
  /** `length` bytes that should be that piece, read from a local file; null if none can be read. */
  read (hash: Buffer, length: number): Promise<Buffer | null>
  /** Lets go of the files it opened; called once, when the download needs it no more. */
  close (): void
}

/**
 * Local pieces read, verified and written at once. A local copy outruns the network many times
 * over; more readers would only queue on the same disk and hashing core.
 */
export const REUSE_CONCURRENCY = 4
/** Pieces looked up per event-loop turn while finding the local ones (a huge file's lookups must not hold the loop). */
export const REUSE_PLAN_BATCH = 2048

/** What a LocalCopy needs of its Download. */
export interface LocalCopyHost {
  readonly numPieces: number
  /** the download succeeded, failed or was aborted: stop */
  readonly stopped: boolean
  pieceLength (index: number): number
  /** Still missing and not requested (not verified in an earlier run)? */
  wanted (index: number): boolean
  /** Reserves a wanted piece: no peer is asked for it while it is copied. */
  reserve (index: number): void
  /** Verifies a piece read locally like a received one: the piece if it matches, else null. */
  verify (index: number, piece: Buffer): Promise<Buffer | null>
  /** Takes a verified local piece (done, written, announced); resolves once written. */
  accept (index: number, piece: Buffer): Promise<void>
  /** A reserved piece could not be copied: fetch it from peers after all. */
  giveBack (index: number): void
  /** Looking for local pieces failed part way (they are fetched instead). */
  onError (err: unknown): void
  /** Planning is over: requests may go out. */
  onPlanned (): void
}

export class LocalCopy {
  private state: 'idle' | 'planning' | 'copying' | 'done' = 'idle'
  private queue: number[] = [] // reserved pieces, in file order
  private next = 0
  private workers = 0
  private local: LocalPieces | null

  constructor (private readonly host: LocalCopyHost, local: LocalPieces) { this.local = local }

  /** Until planning is over no request may go out: it would fetch pieces that are here. */
  get planning (): boolean { return this.state === 'planning' }
  /** Looking up or copying: the download is making progress even with no request in flight. */
  get busy (): boolean { return this.state === 'planning' || this.workers > 0 }

  /** Starts with the verified layer (null: a file of one piece, which has none: nothing to do). */
  start (layer: Buffer | null): void {
    if (this.state !== 'idle') return
    if (layer === null || this.host.stopped) { this.finish(); return }
    this.state = 'planning'
    void this.plan(layer)
  }

  /** The download is over: lets go of the files now, or when the copies under way have ended. */
  stop (): void { if (!this.busy) this.finish() }

  private async plan (layer: Buffer): Promise<void> {
    const local = this.local as LocalPieces
    try {
      for (let i = 0; i < this.host.numPieces && !this.host.stopped; i++) {
        if (i % REUSE_PLAN_BATCH === REUSE_PLAN_BATCH - 1) await new Promise(resolve => setImmediate(resolve))
        if (this.host.stopped || !this.host.wanted(i) || !local.has(layer.subarray(i * 32, i * 32 + 32))) continue
        this.host.reserve(i)
        this.queue.push(i)
      }
    } catch (err) {
      this.host.onError(err) // what was found is copied, the rest fetched
    }
    this.state = 'copying'
    if (!this.host.stopped) {
      const n = Math.min(REUSE_CONCURRENCY, this.queue.length)
      for (let k = 0; k < n; k++) { this.workers++; void this.work(layer, local) }
    }
    if (this.workers === 0) this.finish()
    this.host.onPlanned()
  }

  private async work (layer: Buffer, local: LocalPieces): Promise<void> {
    while (!this.host.stopped && this.next < this.queue.length) {
      const i = this.queue[this.next++]!
      const len = this.host.pieceLength(i)
      const read = await local.read(layer.subarray(i * 32, i * 32 + 32), len).catch(() => null)
      const piece = read !== null && read.length === len && !this.host.stopped ? await this.host.verify(i, read) : null
      if (this.host.stopped) break
      if (piece !== null) await this.host.accept(i, piece)
      else this.host.giveBack(i)
    }
    if (--this.workers === 0) this.finish()
  }

  private finish (): void {
    this.state = 'done'
    this.queue = []
    const local = this.local
    this.local = null
    local?.close()
  }
}
