// Owns how a running node's events reach the terminal or a log pipe for `swarm share` and
// `swarm daemon`: one JSON object per line with --json (each with "event" and "time"), readable
// lines otherwise, each starting with the full UTC timestamp (2026-12-03T08:01:02.345Z: a log
// line must say its date and zone on its own, and UTC sorts and compares across servers).
// --quiet keeps only warnings and errors; --verbose adds the per-download and catalog lines.
//
// A burst of changes from one source prints its first FILE_LINES_PER_BURST lines, then one line
// saying more follow, then the node's summary (N files, bytes, seconds): catching up 2,000 files
// is a screenful, not 2,000 lines (--verbose and --json get every one). On a terminal, large
// downloads show a progress line redrawn in place below the event lines (live-line.ts).
import type { SwarmNode } from '../node/node.js'
import { printable } from '../model/printable.js'
import type { OutputOptions } from './config.js'
import { LiveLine, progressText, summaryText } from './live-line.js'

/** Per-file lines shown for one burst of changes from one source before the rest waits for its summary. */
export const FILE_LINES_PER_BURST = 20

/** Paths, share ids and reasons on human lines are cut to this many characters. */
const MAX_FIELD_CHARS = 4096
/** Peer ids on human lines are shortened to their last characters, as conflict copies name them. */
const SHORT_PEER_CHARS = 8
/** Manifest roots on human lines show this many hex digits. */
const SHORT_ROOT_CHARS = 16

type Level = 'info' | 'warn' | 'error' | 'debug'

/** Which lines --quiet keeps. */
const QUIET_LEVELS = new Set<Level>(['warn', 'error'])

/** The printer of one process: lines gathered and written once per event-loop turn. */
export interface LinePrinter {
  /** An event: JSON with --json, else `human` (if any) at the event's level. */
  event (event: string, level: Level, fields: object, human: string | null): void
  /** A warning or error of the CLI itself (a secret on the command line, ...): a `log` event under --json. */
  log (level: 'warn' | 'error' | 'info', message: string): void
  /** --verbose: every per-file line, no collapsing. */
  readonly verbose: boolean
  /** Writes what is gathered now (before an error line, at exit). */
  flush (): void
  /** The progress line below the event lines (drawn only on a terminal, and not under --json). */
  readonly live: LiveLine
  /** Redraw the progress line soon (once per event-loop turn, with any lines gathered). */
  refresh (): void
}

export function linePrinter (output: OutputOptions): LinePrinter {
  // A reader that goes away (`swarm daemon --json | head -1`, a log pipe restarting) must not
  // take the node down: printing stops, the node runs on.
  let gone = false
  process.stdout.on('error', () => { gone = true })
  process.stderr.on('error', () => { gone = true })
  // Lines are gathered and written once per event-loop turn: stdout to a pipe is synchronous on
  // Linux, and one write per file would cost more than replicating the file.
  let pendingOut = ''
  let pendingErr = ''
  let scheduled = false
  const live = new LiveLine(process.stdout, process.stdout.isTTY === true && !output.json && !output.quiet)
  const flush = () => {
    scheduled = false
    if (!gone) {
      // The live line is taken down before lines go above it (stderr shares the terminal) and drawn again after.
      const clear = pendingOut !== '' || pendingErr !== '' ? live.clear() : ''
      if (clear !== '') process.stdout.write(clear)
      if (pendingErr !== '') process.stderr.write(pendingErr)
      const out = pendingOut + live.redraw()
      if (out !== '') process.stdout.write(out)
    }
    pendingOut = ''
    pendingErr = ''
  }
  const schedule = () => { if (!scheduled) { scheduled = true; setImmediate(flush) } }
  const queue = (toErr: boolean, line: string) => {
    if (gone) return
    schedule()
    if (toErr) pendingErr += line
    else pendingOut += line
  }
  // Scripts reading --json get the detail lines too; people get them with --verbose.
  const shown = (level: Level) => output.quiet ? QUIET_LEVELS.has(level) : level !== 'debug' || output.verbose || output.json
  const event = (name: string, level: Level, fields: object, human: string | null) => {
    if (!shown(level)) return
    const time = new Date().toISOString()
    if (output.json) queue(false, JSON.stringify({ event: name, time, ...fields }) + '\n')
    // Logs go to stderr as before; events to stdout.
    else if (human !== null) queue(name === 'log', `${time} ${human}\n`)
  }
  return {
    event,
    log: (level, message) => event('log', level, { level, message }, `${level}: ${message}`),
    flush: () => { if (live.enabled) { const c = live.clear(); if (c !== '' && !gone) process.stdout.write(c) } flush() },
    live,
    verbose: output.verbose,
    refresh: () => { if (live.enabled && !gone) schedule() }
  }
}

/** Prints what the node says, from before start() on: an unreadable file or a paused share during start reaches the terminal. */
export function printNodeEvents (node: SwarmNode, out: LinePrinter): void {
  // Paths, share ids and reasons may come from peers: escaped on human lines (JSON escapes its own).
  const p = (s: string) => printable(s, MAX_FIELD_CHARS)
  const from = (peer: string) => peer === node.peerId ? '' : ` from ${p(peer.slice(-SHORT_PEER_CHARS))}`
  const verbose = out.verbose
  // Addresses come bracketed from the node ([::1]:4001), the form --listen and --peer accept back.
  node.on('listening', e => out.event('listening', 'info', e, `listening on ${e.address} (UDP, QUIC) as ${e.peerId}`))
  node.on('peer-connected', e => out.event('peer-connected', 'info', e, `peer connected: ${e.peerId} (${p(e.address)})`))
  node.on('peer-disconnected', e => out.event('peer-disconnected', 'info', e, `peer disconnected: ${e.peerId} (${p(e.reason)})`))
  // Lines of the burst in progress, by share and source; the node's summary ends the burst.
  const shownInBurst = new Map<string, number>()
  const fileLine = (share: string, source: string, line: string): string | null => {
    if (verbose) return line
    const key = share + '\0' + source
    const n = (shownInBurst.get(key) ?? 0) + 1
    shownInBurst.set(key, n)
    if (n <= FILE_LINES_PER_BURST) return line
    return n === FILE_LINES_PER_BURST + 1 ? `more changes in ${p(share)}${from(source) === '' ? ' found in the folder' : from(source)}; a summary follows when they stop` : null
  }
  node.on('file-updated', e => {
    out.live.done(e.share, e.path)
    out.event('file-updated', 'info', e, fileLine(e.share, e.from, `updated ${p(e.share)}/${p(e.path)}${from(e.from)}`))
  })
  node.on('file-deleted', e => out.event('file-deleted', 'info', e, fileLine(e.share, e.from, `deleted ${p(e.share)}/${p(e.path)}${from(e.from)}`)))
  node.on('summary', e => {
    shownInBurst.delete(e.share + '\0' + e.from)
    // One change already had its own line: a summary of one says nothing new to a person.
    out.event('summary', 'info', e, e.updated + e.deleted > 1 ? summaryText(e, node.peerId) : null)
  })
  node.on('transfer-progress', e => {
    if (out.live.enabled) { out.live.progress(e); out.refresh() }
    else out.event('progress', 'debug', e, null)   // --json: `progress` events; plain lines: nothing (no control characters off a terminal)
  })
  node.on('share-mismatch', e => out.event('share-mismatch', 'debug', e, null))   // its warning is a log line
  node.on('auth-failed', e => out.event('auth-failed', 'debug', e, null))         // its error is a log line
  node.on('not-applied', e => out.event('not-applied', 'debug', e, null))         // its line is a log line
  node.on('conflict', e => out.event('conflict', 'warn', e, `conflict on ${p(e.share)}/${p(e.path)}: other version kept as ${p(e.copy)}`))
  node.on('scan-done', e => out.event('scan-done', 'info', e, `share ${p(e.share)} scanned: ${e.files} entries in ${e.ms} ms`))
  node.on('in-sync', e => out.event('in-sync', 'info', e, `share ${p(e.share)} in sync, root ${e.root.slice(0, SHORT_ROOT_CHARS)}…`))
  node.on('catalog-in-sync', e => out.event('catalog-in-sync', 'debug', e, `catalog in sync with every connected node, root ${e.root.slice(0, SHORT_ROOT_CHARS)}…`))
  // One line per finished download: noise for people, useful to scripts.
  node.on('fetched', e => out.event('fetched', 'debug', e,
    `fetched ${p(e.share)}/${p(e.path)}: ${e.pieces} pieces, ${e.bytes} bytes over the network, ${e.reusedPieces} pieces reused locally`))
  node.on('share-paused', e => out.event('share-paused', 'warn', e, `share ${p(e.share)} PAUSED: ${p(e.reason)}`))
  node.on('share-resumed', e => out.event('share-resumed', 'info', e, `share ${p(e.share)} resumed`))
  node.on('log', e => out.event('log', e.level, e, `${e.level}: ${e.message}`))
}
