// The `swarm` command: a thin layer over the library API. Routes a command to its file: share
// and daemon run a node in the foreground (daemon.ts), the job commands talk to a running node
// over its control socket (jobs.ts).
import { parseArgs } from 'node:util'
import { generateSecret, nodeId } from '../index.js'
import { SwarmError } from '../errors.js'
import { defaultStateDir } from './state-dir.js'
import { NODE_FLAGS, daemon, readSecret, runNode } from './daemon.js'
import { JOB_COMMANDS, jobCommand, type JobCommand } from './jobs.js'

const USAGE = `usage:
  swarm share <dir>[=<id>]... --listen <host:port> [--peer <host:port>]... --secret <token>|--secret-file <path> [--state <dir>] [--json] [--accept-empty] [--no-peer-exchange] [--compress]
  swarm daemon --listen <host:port> [--peer <host:port>]... --secret <token>|--secret-file <path> [--state <dir>] [--json] [--no-peer-exchange] [--compress]

  Jobs, sent to the node running on --state (share or daemon):
  swarm put <file> [--name <name>] [--to <peerId>|random]
  swarm mput <dir> [--prefix <prefix>] [--to <peerId>|random]
  swarm get <name|root> [dest] [--force]
  swarm mget <prefix> [destdir] [--force]
  swarm bcast <file|name>          every node fetches a copy; Ctrl-C stops, run again to resume
  swarm diffuse <name>...          at least two nodes hold each name, new copies on the emptiest nodes
  swarm ls [prefix]
  swarm nodes
  swarm chunks <name>
  swarm local-chunks
  (each takes [--state <dir>] [--json]; --json prints only the result, as one JSON value)

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
    case 'daemon': return daemon(rest)
    case 'demo': return (await import('./demo.js')).demo()
    case undefined: case 'help': case '--help': case '-h': console.log(USAGE); return cmd === undefined ? 2 : 0
    default:
      if ((JOB_COMMANDS as readonly string[]).includes(cmd)) return jobCommand(cmd as JobCommand, rest)
      console.error(`swarm: unknown command '${cmd}'\n${USAGE}`); return 2
  }
}

async function share (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...NODE_FLAGS, 'accept-empty': { type: 'boolean' as const, default: false } }
  })
  if (positionals.length === 0) throw new SwarmError('ERR_BAD_ARGUMENT', 'swarm share needs at least one folder')
  const acceptEmpty = values['accept-empty'] === true
  const shares = positionals.map(p => {
    const eq = p.lastIndexOf('=')
    return eq > 0 ? { dir: p.slice(0, eq), id: p.slice(eq + 1), acceptEmpty } : { dir: p, acceptEmpty }
  })
  return runNode({
    stateDir: values.state ?? defaultStateDir(),
    secret: readSecret(values),
    listen: values.listen,
    peers: values.peer,
    shares,
    peerExchange: values['no-peer-exchange'] !== true,
    compress: values.compress === true
  }, values.json === true)
}
