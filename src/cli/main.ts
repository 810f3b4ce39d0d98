// The `swarm` command: a thin layer over the library API. Parses flags, starts a node, prints
// its events (one JSON object per line with --json, readable lines otherwise), and stops cleanly
// on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { SwarmNode, generateSecret, nodeId } from '../index.js'
import { SwarmError } from '../errors.js'
import { defaultStateDir } from './state-dir.js'
import { printable } from '../model/printable.js'

const USAGE = `usage:
  swarm share <dir>[=<id>]... --listen <host:port> [--peer <host:port>]... --secret <token>|--secret-file <path> [--state <dir>] [--json] [--accept-empty] [--no-peer-exchange]
  swarm secret
  swarm id [--state <dir>]
  swarm demo            (three local nodes replicating a file; see README)

The cluster secret may also come from the SWARM_SECRET environment variable.`

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'secret': console.log(generateSecret()); return 0
    case 'id': {
      const { values } = parseArgs({ args: rest, options: { state: { type: 'string' } } })
      console.log(await nodeId(values.state ?? defaultStateDir()))
      return 0
    }
    case 'share': return share(rest)
    case 'demo': return (await import('./demo.js')).demo()
    case undefined: case 'help': case '--help': case '-h': console.log(USAGE); return cmd === undefined ? 2 : 0
    default: console.error(`swarm: unknown command '${cmd}'\n${USAGE}`); return 2
  }
}

function readSecret (values: { secret?: string, 'secret-file'?: string }): string {
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

async function share (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      listen: { type: 'string', default: '0.0.0.0:4001' },
      peer: { type: 'string', multiple: true, default: [] },
      secret: { type: 'string' },
      'secret-file': { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean', default: false },
      'accept-empty': { type: 'boolean', default: false },
      'no-peer-exchange': { type: 'boolean', default: false }
    }
  })
  if (positionals.length === 0) throw new SwarmError('ERR_BAD_ARGUMENT', 'swarm share needs at least one folder')
  const shares = positionals.map(p => {
    const eq = p.lastIndexOf('=')
    const acceptEmpty = values['accept-empty'] === true
    return eq > 0 ? { dir: p.slice(0, eq), id: p.slice(eq + 1), acceptEmpty } : { dir: p, acceptEmpty }
  })
  const json = values.json === true
  // Lines are gathered and written once per event-loop turn: stdout to a pipe is synchronous on
  // Linux, and one write per file would cost more than replicating the file.
  let pendingOut = ''
  const out = (event: string, fields: Record<string, unknown>, human: string) => {
    if (pendingOut === '') setImmediate(() => { process.stdout.write(pendingOut); pendingOut = '' })
    pendingOut += json ? JSON.stringify({ event, ...fields }) + '\n' : `${new Date().toISOString().slice(11, 23)} ${human}\n`
  }
  // Subscribed before start: what the node says while it starts (an unreadable file, a paused share) reaches the terminal.
  const node = new SwarmNode({
    stateDir: values.state ?? defaultStateDir(),
    secret: readSecret(values),
    listen: values.listen,
    peers: values.peer,
    shares,
    peerExchange: values['no-peer-exchange'] !== true
  })
  node.on('listening', e => out('listening', e, `listening on ${e.address} as ${e.peerId}`))
  node.on('peer-connected', e => out('peer-connected', e, `peer connected: ${e.peerId} (${e.address})`))
  // Paths, share ids and reasons may come from peers: escaped on human lines (JSON escapes its own).
  const p = (s: string) => printable(s, 4096)
  node.on('peer-disconnected', e => out('peer-disconnected', e, `peer disconnected: ${e.peerId} (${p(e.reason)})`))
  node.on('file-updated', e => out('file-updated', e, `updated ${p(e.share)}/${p(e.path)}${e.from === node.peerId ? '' : ` from ${p(e.from.slice(-8))}`}`))
  node.on('file-deleted', e => out('file-deleted', e, `deleted ${p(e.share)}/${p(e.path)}`))
  node.on('conflict', e => out('conflict', e, `conflict on ${p(e.share)}/${p(e.path)}: other version kept as ${p(e.copy)}`))
  node.on('in-sync', e => out('in-sync', e, `share ${e.share} in sync, root ${e.root.slice(0, 16)}…`))
  node.on('fetched', e => { if (json) out('fetched', e, '') })
  node.on('share-paused', e => out('share-paused', e, `share ${e.share} PAUSED: ${e.reason}`))
  node.on('share-resumed', e => out('share-resumed', e, `share ${e.share} resumed`))
  node.on('log', e => {
    if (json) out('log', e, '')
    else process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${e.level}: ${e.message}\n`)
  })
  try {
    await node.start()
  } catch (err) {
    await node.stop().catch(() => {})
    throw err
  }
  await new Promise<void>(resolve => {
    const stop = () => { resolve() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await node.stop()
  return 0
}
