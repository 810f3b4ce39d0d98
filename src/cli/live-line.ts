// Owns the one line at the bottom of a terminal that `swarm share` and `swarm daemon` redraw in
// place while large downloads run (size, rate, ETA, holders), and the summary line that ends a
// burst of changes. Event lines are printed above it: the live line is cleared first and redrawn
// after. Not on a terminal, nothing here writes a control character: progress is then left to
// --json (bounded by the node's own rate) and the summaries are plain lines.
import type { ProgressInfo, SummaryInfo } from '../node/activity.js'
import { fmtBytes, show, shortPeer } from './progress.js'

/** The live line is cut to the terminal's width, and to this when the width is unknown. */
const DEFAULT_COLUMNS = 100
/** A download not heard of for this long is dropped from the line (finished, failed or stalled). */
const STALE_MS = 3000

export class LiveLine {
  private readonly downloads = new Map<string, { p: ProgressInfo, at: number }>()
  private shown = ''

  constructor (private readonly stream: NodeJS.WriteStream, private readonly tty = stream.isTTY === true) {}

  /** Whether progress lines are drawn at all (only on a terminal). */
  get enabled (): boolean { return this.tty }

  /** Clear the live line so a normal line can be written; call redraw() after writing it. */
  clear (): string {
    if (!this.tty || this.shown === '') return ''
    this.shown = ''
    return '\r\x1b[2K'
  }

  /** The live line as it should look now ('' when nothing is in flight), with the codes to draw it. */
  redraw (now = Date.now()): string {
    if (!this.tty) return ''
    for (const [k, d] of this.downloads) if (now - d.at > STALE_MS || d.p.bytes >= d.p.size) this.downloads.delete(k)
    const text = this.text()
    if (text === this.shown) return ''
    const out = '\r\x1b[2K' + text
    this.shown = text
    return out
  }

  progress (p: ProgressInfo, now = Date.now()): void { this.downloads.set(p.share + '/' + p.path, { p, at: now }) }

  /** A finished download leaves the line at once. */
  done (share: string, path: string): void { this.downloads.delete(share + '/' + path) }

  private text (): string {
    const all = [...this.downloads.values()].map(d => d.p)
    if (all.length === 0) return ''
    const first = all[0]!
    const more = all.length > 1 ? ` (+${all.length - 1} more)` : ''
    const line = `${progressText(first)}${more}`
    const cols = Math.max(20, this.stream.columns ?? DEFAULT_COLUMNS) - 1
    return line.length > cols ? line.slice(0, cols - 1) + '…' : line
  }
}

/** `uploads/video.mp4  312.0 MB of 1.07 GB (29%)  95.2 MB/s  ETA 8 s  3 holders` */
export function progressText (p: ProgressInfo): string {
  const pct = p.size === 0 ? 100 : Math.floor(p.bytes / p.size * 100)
  const eta = p.etaSeconds === null ? '' : `  ETA ${fmtEta(p.etaSeconds)}`
  return `${show(p.share)}/${show(p.path)}  ${fmtBytes(p.bytes)} of ${fmtBytes(p.size)} (${pct}%)  ${fmtBytes(p.rate)}/s${eta}  ${p.holders} holder${p.holders === 1 ? '' : 's'}`
}

/** `share uploads: 2000 files (84.1 MB), 3 deleted, from 3xYz1234 in 3.20 s` */
export function summaryText (s: SummaryInfo, self: string): string {
  const parts: string[] = []
  if (s.updated > 0) parts.push(`${s.updated} file${s.updated === 1 ? '' : 's'} (${fmtBytes(s.bytes)})`)
  if (s.deleted > 0) parts.push(`${s.deleted} deleted`)
  const from = s.from === self ? 'found in the folder' : `from ${shortPeer(s.from)}`
  return `share ${show(s.share)}: ${parts.join(', ')} ${from} in ${s.seconds.toFixed(2)} s`
}

function fmtEta (s: number): string {
  if (s < 90) return `${s} s`
  if (s < 5400) return `${Math.round(s / 60)} min`
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
}
