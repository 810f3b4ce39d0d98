// Owns how job progress and results look on a terminal: a bar redrawn in place for get/mget, a
// block of per-node bars redrawn in place for bcast, and the small formatters the job commands
// share (sizes, short peer ids, piece maps). Everything that reaches the terminal from a node
// (names, errors) goes through printable(): a name could carry an escape sequence.
import type { WriteStream } from 'node:tty'
import type { NodeProgress, ProgressEvent } from '../jobs/types.js'
import { printable } from '../model/printable.js'

/** Redraw at most this often: progress arrives ~10/s per request, a terminal needs no more. */
export const REDRAW_MS = 100
/** bcast shows at most this many node lines (and a count of the rest). */
export const MAX_NODE_LINES = 40
/** Width of a bar in characters, and of a piece map. */
const BAR_CHARS = 24
export const PIECE_MAP_CHARS = 64
/** Names on one progress or table line are cut to this many characters. */
const NAME_CHARS = 60

const ESC = '\x1b['
const CLEAR_LINE = `${ESC}2K`

export const show = (s: string, max = NAME_CHARS): string => printable(s, max)

/** The last 8 characters of a peer id: what `by` in the catalog and conflict names use. */
export function shortPeer (id: string): string {
  return printable(id.length > 16 ? id.slice(-8) : id, 64)
}

export function fmtBytes (n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let v = n
  let i = 0
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++ }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

export function fmtSeconds (s: number): string { return s < 10 ? s.toFixed(2) : s.toFixed(1) }

function bar (fraction: number, width = BAR_CHARS): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0))
  const full = Math.round(f * width)
  return '[' + '#'.repeat(full) + '.'.repeat(width - full) + ']'
}

function pct (fraction: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0))
  return `${(f * 100).toFixed(0).padStart(3)}%`
}

/**
 * A piece map squeezed to at most `width` characters: each character stands for a run of pieces,
 * '#' all held, '+' some, '.' none. `pieces` is 'all', 'none' or one 0/1 per piece (ChunkHolder).
 */
export function pieceMap (pieces: string, total: number, width = PIECE_MAP_CHARS): string {
  const cells = Math.max(1, Math.min(width, total))
  if (pieces === 'all') return '#'.repeat(cells)
  if (pieces === 'none' || total <= 0) return '.'.repeat(cells)
  let out = ''
  for (let c = 0; c < cells; c++) {
    const from = Math.floor(c * total / cells)
    const to = Math.max(from + 1, Math.floor((c + 1) * total / cells))
    let have = 0
    for (let i = from; i < to; i++) if (pieces[i] === '1') have++
    out += have === 0 ? '.' : have === to - from ? '#' : '+'
  }
  return out
}

/**
 * Progress on stderr while a job runs; does nothing unless stderr is a terminal (and not --json),
 * so pipes and logs only get the final lines.
 */
export class ProgressView {
  private readonly tty: WriteStream | null
  private readonly started = Date.now()
  private drawnLines = 0
  private lastDraw = 0
  private latest: ProgressEvent | null = null
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly mode: 'bar' | 'nodes', enabled: boolean) {
    this.tty = enabled && process.stderr.isTTY ? process.stderr : null
  }

  readonly update = (e: ProgressEvent): void => {
    if (this.tty === null) return
    this.latest = e
    const wait = this.lastDraw + REDRAW_MS - Date.now()
    if (wait <= 0) this.draw()
    else this.timer ??= setTimeout(() => { this.timer = null; this.draw() }, wait)
  }

  /** Stops redrawing: a bar is erased (the result line replaces it), node lines stay as the final picture. Idempotent. */
  done (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.tty === null || this.drawnLines === 0) return
    if (this.mode === 'bar') this.tty.write(this.rewind() + `${ESC}J`)
    else if (this.latest !== null) this.draw()
    this.drawnLines = 0
  }

  private rewind (): string {
    return this.drawnLines === 0 ? '\r' : `\r${ESC}${this.drawnLines}A`
  }

  private draw (): void {
    const tty = this.tty
    const e = this.latest
    if (tty === null || e === null) return
    this.lastDraw = Date.now()
    const lines = this.mode === 'bar' ? [this.barLine(e)] : this.nodeLines(e)
    const cols = Math.max(20, tty.columns || 80)
    // Every line is cut to the terminal's width: a wrapped line would break the cursor arithmetic.
    tty.write(this.rewind() + lines.map(l => CLEAR_LINE + l.slice(0, cols - 1) + '\n').join('') + `${ESC}J`)
    this.drawnLines = lines.length
  }

  private barLine (e: ProgressEvent): string {
    const f = e.size === 0 ? 1 : e.bytes / e.size
    const secs = (Date.now() - this.started) / 1000
    const rate = secs > 0 ? e.bytes / secs : 0
    const eta = rate > 0 && e.bytes < e.size ? ` ETA ${Math.ceil((e.size - e.bytes) / rate)} s` : ''
    const holders = e.holders === undefined ? '' : ` from ${e.holders} node${e.holders === 1 ? '' : 's'}`
    return `${show(e.name)} ${bar(f)} ${pct(f)} ${fmtBytes(e.bytes)}/${fmtBytes(e.size)} ${fmtBytes(rate)}/s${eta}${holders}`
  }

  private nodeLines (e: ProgressEvent): string[] {
    const nodes = e.nodes ?? []
    const done = nodes.filter(n => n.state === 'done').length
    const head = `${show(e.name)}: ${done}/${nodes.length} nodes done, ${fmtBytes(e.bytes)} of ${fmtBytes(e.size * Math.max(1, nodes.length))}`
    const rows = Math.max(3, (this.tty?.rows || 24) - 2)
    const room = Math.min(MAX_NODE_LINES, rows - 1)
    const shown = nodes.length > room ? nodes.slice(0, room - 1) : nodes
    const lines = [head, ...shown.map(nodeLine)]
    if (shown.length < nodes.length) lines.push(`  ... and ${nodes.length - shown.length} more`)
    return lines
  }
}

function nodeLine (n: NodeProgress): string {
  const f = n.total === 0 ? (n.state === 'done' ? 1 : 0) : n.have / n.total
  const state = n.state === 'failed' ? `failed: ${printable(n.error ?? '?', 80)}` : n.state
  return `  ${shortPeer(n.peerId).padEnd(8)} ${bar(f)} ${pct(f)} ${state}`
}
