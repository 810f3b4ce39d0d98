// Owns running a node in the foreground for `swarm share` and `swarm daemon`: the cluster secret
// from flag, file or environment, the node's events printed the same way for both (one JSON
// object per line with --json, readable lines otherwise), the control socket the job commands
// talk to, and a clean stop on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { SwarmNode, type NodeOptions } from '../node/node.js'
import { SwarmError } from '../errors.js'
import { startControlServer } from '../control/server.js'
import { defaultStateDir } from './state-dir.js'
import { printable } from '../model/printable.js'

/** The listen address when --listen is not given. */
export const DEFAULT_LISTEN = '0.0.0.0:4001'

/** The flags `swarm share` and `swarm daemon` have in common. */
export const NODE_FLAGS = {
  listen: { type: 'string' as const, default: DEFAULT_LISTEN },
  peer: { type: 'string' as const, multiple: true as const, default: [] as string[] },
  secret: { type: 'string' as const },
  'secret-file': { type: 'string' as const },
  state: { type: 'string' as const },
  json: { type: 'boolean' as const, default: false },
  'no-peer-exchange': { type: 'boolean' as const, default: false },
  compress: { type: 'boolean' as const, default: false }
}

export function readSecret (values: { secret?: string, 'secret-file'?: string }): string {
  if (values.secret !== undefined) return values.secret
  if (values['secret-file'] !== undefined) {
    try { return readFileSync(values['secret-file'], 'utf8').trim() } catch (err) {
      throw new SwarmError('ERR_BAD_ARGUMENT', `cannot read secret file ${values['secret-file']}: ${(err as Error).message}`)
    }
  }
  const env = process.env.SWARM_SECRET
  if (env !== undefined && env !== '') return env
  throw new SwarmError('ERR_BAD_ARGUMENT', 'no cluster secret: pass --secret, --secret-file or set SWARM_SECRET (swarm secret makes one)')
}

/** Prints what the node says, from before start() on: an unreadable file or a paused share during start reaches the terminal. */
export function printNodeEvents (node: SwarmNode, json: boolean): void {
  // A reader that goes away (`swarm daemon --json | head -1`, a log pipe restarting) must not
  // take the node down: printing stops, the node runs on.
  let quiet = false
  process.stdout.on('error', () => { quiet = true })
  process.stderr.on('error', () => { quiet = true })
  // Lines are gathered and written once per event-loop turn: stdout to a pipe is synchronous on
  // Linux, and one write per file would cost more than replicating the file.
  let pendingOut = ''
  const out = (event: string, fields: object, human: string) => {
    if (quiet) return
    if (pendingOut === '') setImmediate(() => { if (!quiet) process.stdout.write(pendingOut); pendingOut = '' })
    pendingOut += json ? JSON.stringify({ event, ...fields }) + '\n' : `${new Date().toISOString().slice(11, 23)} ${human}\n`
  }
  node.on('listening', e => out('listening', e, `listening on ${e.address} as ${e.peerId}`))
  node.on('peer-connected', e => out('peer-connected', e, `peer connected: ${e.peerId} (${e.address})`))
  // Paths, share ids and reasons may come from peers: escaped on human lines (JSON escapes its own).
  const p = (s: string) => printable(s, 4096)
  node.on('peer-disconnected', e => out('peer-disconnected', e, `peer disconnected: ${e.peerId} (${p(e.reason)})`))
  node.on('file-updated', e => out('file-updated', e, `updated ${p(e.share)}/${p(e.path)}${e.from === node.peerId ? '' : ` from ${p(e.from.slice(-8))}`}`))
  node.on('file-deleted', e => out('file-deleted', e, `deleted ${p(e.share)}/${p(e.path)}`))
  node.on('conflict', e => out('conflict', e, `conflict on ${p(e.share)}/${p(e.path)}: other version kept as ${p(e.copy)}`))
  node.on('scan-done', e => out('scan-done', e, `share ${p(e.share)} scanned: ${e.files} entries in ${e.ms} ms`))
  node.on('in-sync', e => out('in-sync', e, `share ${e.share} in sync, root ${e.root.slice(0, 16)}…`))
  node.on('fetched', e => { if (json) out('fetched', e, '') })
  node.on('share-paused', e => out('share-paused', e, `share ${e.share} PAUSED: ${e.reason}`))
  node.on('share-resumed', e => out('share-resumed', e, `share ${e.share} resumed`))
  node.on('log', e => {
    if (json) out('log', e, '')
    else if (!quiet) process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${e.level}: ${e.message}\n`)
  })
}

/**
 * Starts a node and its control socket, prints its events, and runs until SIGINT or SIGTERM.
 * Rejects with a SwarmError (bad folder, port in use, state dir locked) and leaves nothing running.
 */
export async function runNode (opts: NodeOptions, json: boolean): Promise<number> {
  const node = new SwarmNode(opts)
  printNodeEvents(node, json)
  let control
  try {
    await node.start()
    control = await startControlServer(node.stateDir, node.jobs, (level, message) => node.log(level, message))
  } catch (err) {
    await node.stop().catch(() => {})
    throw err
  }
  await new Promise<void>(resolve => {
    const stop = () => { resolve() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  // The control socket first: running jobs are aborted while the node can still tidy up after them.
  await control.close()
  await node.stop()
  return 0
}

/** `swarm daemon`: a node with no shared folders, there for the job commands (put, get, bcast, ...). */
export async function daemon (args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: NODE_FLAGS })
  return runNode({
    stateDir: values.state ?? defaultStateDir(),
    secret: readSecret(values),
    listen: values.listen,
    peers: values.peer,
    shares: [],
    peerExchange: values['no-peer-exchange'] !== true,
    compress: values.compress === true
  }, values.json === true)
}
