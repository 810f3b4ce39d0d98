// Backoff for writes into a share that cannot be done yet (disk full, no permission, a folder
// still in the way): per path, the next try comes RETRY_FIRST_MS later, doubling up to
// RETRY_MAX_MS, and each distinct reason is logged once — a retry loop never floods the log.
import { isSwarmError } from '../errors.js'

/** First wait before a failed write is tried again. */
export const RETRY_FIRST_MS = 100
/** Longest wait between tries. */
export const RETRY_MAX_MS = 30_000

export class RetryBackoff {
  private readonly failures = new Map<string, { why: string, attempt: number }>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private stopped = false

  constructor (
    private readonly retry: (rel: string) => void,
    private readonly log: (level: 'warn' | 'error', msg: string) => void
  ) {}

  /** `rel` could not be written: log why (once per reason) and try again after the backoff. */
  failed (rel: string, err: unknown): void {
    const why = (err as Error).message
    const f = this.failures.get(rel) ?? { why: '', attempt: 0 }
    if (f.why !== why) this.log(isSwarmError(err, 'ERR_NO_SPACE') ? 'error' : 'warn', `cannot write ${rel} yet: ${why}; will retry`)
    f.why = why
    this.failures.set(rel, f)
    if (this.timers.has(rel) || this.stopped) return
    f.attempt++
    const delay = Math.min(RETRY_FIRST_MS * 2 ** (f.attempt - 1), RETRY_MAX_MS)
    const t = setTimeout(() => { this.timers.delete(rel); this.retry(rel) }, delay)
    t.unref()
    this.timers.set(rel, t)
  }

  /** `rel` was written: the next failure starts the backoff from the beginning. */
  succeeded (rel: string): void { this.failures.delete(rel) }

  stop (): void {
    this.stopped = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }
}
