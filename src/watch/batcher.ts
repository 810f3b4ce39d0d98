// Turns a backend's stream of events into batches for the consumer: events are collected for
// DEBOUNCE_MS of quiet (capped at MAX_DELAY_MS under a steady stream), so a burst (an unpacked
// archive, a rm -r) becomes one batch; exact repeats of an event in the same batch are merged.
// The debounce is the only delay on the close-write path: latency (write → peer) matters. The
// inotify backend needs no quiet period (it hands over everything the kernel queued at each
// wakeup, and announces a file only once it is closed): its batches go at the end of the
// event-loop turn (setImmediate), which saved ~1–2 ms per change against a 1 ms timer.
import type { WatchEvent } from './watcher.js'

export const DEBOUNCE_MS = 1
export const MAX_DELAY_MS = 50

function keyOf (e: WatchEvent): string {
  switch (e.kind) {
    case 'move': return `move\0${e.from}\0${e.to}`
    case 'overflow': return 'overflow'
    default: return `${e.kind}\0${e.path}`
  }
}

export class EventBatcher {
  private pending: WatchEvent[] = []
  private readonly keys = new Set<string>()
  private timer: NodeJS.Timeout | null = null
  private immediate: NodeJS.Immediate | null = null
  private firstAt = 0
  private lastAt = 0
  private closed = false

  /** quietMs 0: deliver at the end of this event-loop turn instead of after a quiet period. */
  constructor (private readonly deliver: (events: WatchEvent[]) => void, private readonly quietMs = DEBOUNCE_MS) {}

  push (e: WatchEvent): void {
    if (this.closed) return
    const key = keyOf(e)
    if (this.keys.has(key)) return
    // A path that comes back after a delete or a move is a new event, even if it was seen before.
    if (e.kind === 'delete' || e.kind === 'move') this.keys.clear()
    this.keys.add(key)
    const now = Date.now()
    if (this.pending.length === 0) this.firstAt = now
    this.lastAt = now
    this.pending.push(e)
    // One timer per batch, not one per event: a flood of events must stay cheap.
    if (this.quietMs === 0) { if (this.immediate === null) this.immediate = setImmediate(() => { this.immediate = null; this.flush() }); return }
    if (this.timer === null) this.timer = setTimeout(this.check, this.quietMs)
  }

  private readonly check = (): void => {
    this.timer = null
    const now = Date.now()
    if (now - this.lastAt < this.quietMs && now - this.firstAt < MAX_DELAY_MS) {
      this.timer = setTimeout(this.check, this.quietMs)
      return
    }
    this.flush()
  }

  /** Delivers what is pending now. */
  flush (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.immediate !== null) { clearImmediate(this.immediate); this.immediate = null }
    const batch = this.pending
    this.pending = []
    this.keys.clear()
    if (batch.length > 0 && !this.closed) this.deliver(batch)
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.immediate !== null) clearImmediate(this.immediate)
    this.timer = null
    this.immediate = null
    this.pending = []
    this.keys.clear()
  }
}
