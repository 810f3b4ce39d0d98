// Owns how a running node's events reach the terminal or a log pipe for `swarm share` and
// `swarm daemon`: one JSON object per line with --json (each with "event" and "time"), readable
// lines otherwise, each starting with the full UTC timestamp (2026-12-03T08:01:02.345Z: a log
// line must say its date and zone on its own, and UTC sorts and compares across servers).
// --quiet keeps only warnings and errors; --verbose adds the per-download and catalog lines.
import type { SwarmNode } from '../node/node.js'
import { printable } from '../model/printable.js'
import type { OutputOptions } from './config.js'

/** Paths, share ids and reasons on human lines are cut to this many characters. */
const MAX_FIELD_CHARS = 4096
/** Peer ids on human lines are shortened to their last characters, as conflict copies name them. */
const SHORT_PEER_CHARS = 8
/** Manifest roots on human lines show this many hex digits. */
const SHORT_ROOT_CHARS = 16

type Level = 'info' | 'warn' | 'error' | 'debug'

/** Which lines --quiet keeps. */
const QUIET_LEVELS = new Set<Level>(['warn', 'error'])

/** An IPv6 host:port in the form --listen and --peer accept back: '[::1]:4001'. */
export function bracketAddress (address: string): string {
  const i = address.lastIndexOf(':')
  if (i < 0 || address.startsWith('[')) return address
  const host = address.slice(0, i)
  return host.includes(':') ? `[${host}]:${address.slice(i + 1)}` : address
}

/** The printer of one process: lines gathered and written once per event-loop turn. */
export interface LinePrinter {
  /** An event: JSON with --json, else `human` (if any) at the event's level. */
  event (event: string, level: Level, fields: object, human: string | null): void
  /** A warning or error of the CLI itself (a secret on the command line, ...): a `log` event under --json. */
  log (level: 'warn' | 'error' | 'info', message: string): void
  /** Writes what is gathered now (before an error line, at exit). */
  flush (): void
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
  const flush = () => {
    if (!gone && pendingOut !== '') process.stdout.write(pendingOut)
    if (!gone && pendingErr !== '') process.stderr.write(pendingErr)
    pendingOut = ''
    pendingErr = ''
  }
  const queue = (toErr: boolean, line: string) => {
    if (gone) return
    if (pendingOut === '' && pendingErr === '') setImmediate(flush)
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
    flush
  }
}

/** Prints what the node says, from before start() on: an unreadable file or a paused share during start reaches the terminal. */
export function printNodeEvents (node: SwarmNode, out: LinePrinter): void {
  // Paths, share ids and reasons may come from peers: escaped on human lines (JSON escapes its own).
  const p = (s: string) => printable(s, MAX_FIELD_CHARS)
  const from = (peer: string) => peer === node.peerId ? '' : ` from ${p(peer.slice(-SHORT_PEER_CHARS))}`
  node.on('listening', e => {
    const address = bracketAddress(e.address)
    out.event('listening', 'info', { ...e, address }, `listening on ${address} (UDP, QUIC) as ${e.peerId}`)
  })
  node.on('peer-connected', e => {
    const address = bracketAddress(e.address)
    out.event('peer-connected', 'info', { ...e, address }, `peer connected: ${e.peerId} (${p(address)})`)
  })
  node.on('peer-disconnected', e => out.event('peer-disconnected', 'info', e, `peer disconnected: ${e.peerId} (${p(e.reason)})`))
  node.on('file-updated', e => out.event('file-updated', 'info', e, `updated ${p(e.share)}/${p(e.path)}${from(e.from)}`))
  node.on('file-deleted', e => out.event('file-deleted', 'info', e, `deleted ${p(e.share)}/${p(e.path)}${from(e.from)}`))
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
