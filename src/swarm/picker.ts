// Piece choice for one Download: which piece to ask a given peer for next. Knows how many
// connected peers hold each piece (availability) and each piece's state (idle = wanted and
// not requested, requested, done); knows nothing about wires. Rarest first: idle pieces sit in
// buckets by availability and pick() scans the buckets from the rarest up, so with full holders
// a pick is O(1) and pieces go out roughly in file order. Endgame (duplicate requests) is the
// Download's business: pick() only ever returns idle pieces.

const IDLE = 0
const REQUESTED = 1
const DONE = 2

export class Picker {
  readonly numPieces: number
  private readonly avail: Uint32Array
  private readonly state: Uint8Array
  /** buckets[c]: idle pieces held by exactly c peers (insertion-ordered) */
  private readonly buckets: Array<Set<number>> = []
  private doneCount = 0

  constructor (numPieces: number, isDone: (index: number) => boolean) {
    this.numPieces = numPieces
    this.avail = new Uint32Array(numPieces)
    this.state = new Uint8Array(numPieces)
    const zero = this.bucket(0)
    for (let i = 0; i < numPieces; i++) {
      if (isDone(i)) {
        this.state[i] = DONE
        this.doneCount++
      } else {
        zero.add(i)
      }
    }
  }

  /** pieces not yet done (verified) */
  get remaining (): number { return this.numPieces - this.doneCount }

  isDone (index: number): boolean { return this.state[index] === DONE }
  /** how many connected peers hold `index` */
  holders (index: number): number { return this.avail[index]! }
  isIdle (index: number): boolean { return this.state[index] === IDLE }
  /** Idle pieces some connected peer holds: while there are any, nothing needs a duplicate request. */
  get idleHeld (): number {
    let n = 0
    for (let c = 1; c < this.buckets.length; c++) n += this.buckets[c]!.size
    return n
  }

  /** a connected peer now holds `index` */
  addHolder (index: number): void {
    const c = this.avail[index]++
    if (this.state[index] === IDLE) {
      this.bucket(c).delete(index)
      this.bucket(c + 1).add(index)
    }
  }

  /** a peer holding `index` went away (or refused it) */
  removeHolder (index: number): void {
    const c = this.avail[index]
    if (c === 0) return
    this.avail[index] = c - 1
    if (this.state[index] === IDLE) {
      this.bucket(c).delete(index)
      this.bucket(c - 1).add(index)
    }
  }

  /**
   * The rarest idle piece for which usable(index) holds (the peer has it and has not sent bad
   * data for it), or -1. Does not mark it; call markRequested.
   */
  pick (usable: (index: number) => boolean): number {
    for (let c = 1; c < this.buckets.length; c++) {
      const b = this.buckets[c]
      if (b === undefined || b.size === 0) continue
      for (const i of b) if (usable(i)) return i
    }
    return -1
  }

  markRequested (index: number): void {
    if (this.state[index] !== IDLE) return
    this.bucket(this.avail[index]).delete(index)
    this.state[index] = REQUESTED
  }

  /** a requested piece came back empty (peer gone, refused, bad data): make it pickable again */
  release (index: number): void {
    if (this.state[index] !== REQUESTED) return
    this.state[index] = IDLE
    this.bucket(this.avail[index]).add(index)
  }

  markDone (index: number): void {
    if (this.state[index] === DONE) return
    if (this.state[index] === IDLE) this.bucket(this.avail[index]).delete(index)
    this.state[index] = DONE
    this.doneCount++
  }

  private bucket (c: number): Set<number> {
    let b = this.buckets[c]
    if (b === undefined) {
      while (this.buckets.length <= c) this.buckets.push(new Set())
      b = this.buckets[c]
    }
    return b
  }
}
