// Owns what a node remembers of its recent past for the people watching it: counters per share
// (files updated, deleted, conflicts) since start, the last finished transfers, the last warnings
// and errors, the peers that went away (status reports what they still have to apply), and the
// two derived event streams a terminal or a log pipe wants instead of one line per file:
//
//   transfer-progress  a download larger than PROGRESS_MIN_BYTES, at most every PROGRESS_INTERVAL_MS
//   summary            a burst of changes from one source (a peer or this folder) once it goes quiet
//
// It only listens to the node's own events and polls the running downloads while there are any:
// an idle node runs no timer here.
import type { SwarmNode } from './node.js'

/** Downloads smaller than this finish before a progress line would help: no progress events. */
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024
/** How often a download's progress is reported (bounded rate for terminals and --json pipes). */
export const PROGRESS_INTERVAL_MS = 500
/** A burst of changes from one source ends when none has come for this long: then one summary. */
export const SUMMARY_QUIET_MS = 700
/** How many finished transfers and warning/error lines status keeps. */
export const KEEP_FINISHED = 20
export const KEEP_ERRORS = 20
/**
 * Peers that went away remembered at most (the most recent ones): status asks the index about
 * each of them per share, and peer ids cost whoever holds the secret nothing.
 */
export const KEEP_DEPARTED = 1_000

export interface ProgressInfo {
  share: string, path: string, size: number, bytes: number,
  /** Bytes per second over this run of the download; 0 until a piece arrived. */
  rate: number,
  /** Seconds left at that rate, or null while the rate is unknown. */
  etaSeconds: number | null,
  holders: number
}

export interface SummaryInfo {
  share: string,
  /** The peer the changes came from, or this node's id for changes found in the folder. */
  from: string,
  updated: number, deleted: number,
  /** Bytes of the updated files (their sizes, however many of the bytes were fetched). */
  bytes: number,
  seconds: number
}

export interface FinishedTransfer {
  share: string, path: string, size: number,
  /** Bytes that came over the network; the rest was copied from local files. */
  fetchedBytes: number,
  seconds: number,
  /** When it finished (ms epoch). */
  at: number
}

export interface LogRecord { time: number, level: 'warn' | 'error', message: string }

export interface ShareCounters { updated: number, deleted: number, conflicts: number }

/** What this module reads and writes of the node: its events, and the downloads in flight. */
export type ActivityHost = Pick<SwarmNode, 'peerId' | 'on' | 'emit' | 'transfers'>

interface Burst extends SummaryInfo { started: number, last: number }

export class NodeActivity {
  readonly startedAt = Date.now()
  readonly counters = new Map<string, ShareCounters>()
  readonly finished: FinishedTransfer[] = []
  readonly errors: LogRecord[] = []
  /** Each peer we were connected to and that went away: its address and when it left (kept while it stays away). */
  readonly departed = new Map<string, { address: string, at: number, reason: string }>()
  private readonly addresses = new Map<string, string>()
  private readonly bursts = new Map<string, Burst>()
  private burstTimer: NodeJS.Timeout | null = null
  private progressTimer: NodeJS.Timeout | null = null
  private stopped = false

  constructor (private readonly host: ActivityHost, private readonly progressIntervalMs = PROGRESS_INTERVAL_MS) {
    host.on('file-updated', e => { this.count(e.share).updated++; this.burst(e.share, e.from).updated++; this.burst(e.share, e.from).bytes += e.size })
    host.on('file-deleted', e => { this.count(e.share).deleted++; this.burst(e.share, e.from).deleted++ })
    host.on('conflict', e => { this.count(e.share).conflicts++ })
    host.on('fetched', e => {
      if (e.share === '') return   // the jobs' blobs report through their own progress
      this.finished.push({ share: e.share, path: e.path, size: e.bytes + e.reusedBytes, fetchedBytes: e.bytes, seconds: e.ms / 1000, at: Date.now() })
      if (this.finished.length > KEEP_FINISHED) this.finished.shift()
    })
    host.on('log', e => {
      if (e.level !== 'warn' && e.level !== 'error') return
      this.errors.push({ time: Date.now(), level: e.level, message: e.message })
      if (this.errors.length > KEEP_ERRORS) this.errors.shift()
    })
    host.on('peer-connected', e => { this.addresses.set(e.peerId, e.address); this.departed.delete(e.peerId) })
    host.on('peer-disconnected', e => {
      this.departed.delete(e.peerId)   // re-inserted last: the map stays in order of departure
      this.departed.set(e.peerId, { address: this.addresses.get(e.peerId) ?? '', at: Date.now(), reason: e.reason })
      this.addresses.delete(e.peerId)
      if (this.departed.size > KEEP_DEPARTED) this.departed.delete(this.departed.keys().next().value!)
    })
  }

  stop (): void {
    this.stopped = true
    if (this.burstTimer !== null) clearTimeout(this.burstTimer)
    if (this.progressTimer !== null) clearInterval(this.progressTimer)
    this.flushBursts(true)
  }

  /** A download got its slot: report its progress while downloads run (content.ts calls this). */
  downloadStarted (): void {
    if (this.progressTimer !== null || this.stopped) return
    this.progressTimer = setInterval(() => { this.reportProgress() }, this.progressIntervalMs)
    this.progressTimer.unref()
  }

  /** Progress of each download in flight, with its rate and ETA. */
  progress (now = Date.now()): ProgressInfo[] {
    return this.host.transfers().map(t => {
      const secs = (now - t.startedAt) / 1000
      const rate = secs > 0 && t.bytesThisRun > 0 ? t.bytesThisRun / secs : 0
      return {
        share: t.share, path: t.path, size: t.size, bytes: t.bytes, rate: Math.round(rate),
        etaSeconds: rate > 0 ? Math.ceil((t.size - t.bytes) / rate) : null, holders: t.holders
      }
    })
  }

  private reportProgress (): void {
    const all = this.progress()
    if (all.length === 0) {
      if (this.progressTimer !== null) clearInterval(this.progressTimer)
      this.progressTimer = null
      return
    }
    for (const p of all) if (p.size >= PROGRESS_MIN_BYTES && p.bytes < p.size) this.host.emit('transfer-progress', p)
  }

  private count (share: string): ShareCounters {
    let c = this.counters.get(share)
    if (c === undefined) { c = { updated: 0, deleted: 0, conflicts: 0 }; this.counters.set(share, c) }
    return c
  }

  private burst (share: string, from: string): Burst {
    const key = share + '\0' + from
    const now = Date.now()
    let b = this.bursts.get(key)
    if (b === undefined) {
      b = { share, from, updated: 0, deleted: 0, bytes: 0, seconds: 0, started: now, last: now }
      this.bursts.set(key, b)
    }
    b.last = now
    if (this.burstTimer === null && !this.stopped) {
      this.burstTimer = setTimeout(() => { this.burstTimer = null; this.flushBursts(false) }, SUMMARY_QUIET_MS)
      this.burstTimer.unref()
    }
    return b
  }

  private flushBursts (all: boolean): void {
    const now = Date.now()
    for (const [key, b] of this.bursts) {
      if (!all && now - b.last < SUMMARY_QUIET_MS) continue
      this.bursts.delete(key)
      const { started, last, ...info } = b
      this.host.emit('summary', { ...info, seconds: (last - started) / 1000 })
    }
    if (this.bursts.size > 0 && !this.stopped && this.burstTimer === null) {
      this.burstTimer = setTimeout(() => { this.burstTimer = null; this.flushBursts(false) }, SUMMARY_QUIET_MS)
      this.burstTimer.unref()
    }
  }
}
