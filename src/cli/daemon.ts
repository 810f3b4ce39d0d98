// Owns running a node in the foreground for `swarm share` and `swarm daemon`: the flags both
// commands take (declared once, for commander), their settings combined with --config, the
// node's events printed (node-events.ts), the control socket the job commands and `swarm status`
// talk to, the opt-in HTTP metrics and status page listener (--metrics), and a clean stop on
// SIGINT/SIGTERM.
import { Command, InvalidArgumentError, Option } from 'commander'
import { SwarmNode, type ShareSpec } from '../node/node.js'
import { SwarmError } from '../errors.js'
import { startControlServer, type ControlServer } from '../control/server.js'
import { serveNodeHttp, type HttpServer } from '../http/index.js'
import { parseHostPort } from '../node/address.js'
import { DEFAULT_SHARE_MODE, type ShareMode } from '../model/share-mode.js'
import { DEFAULT_LISTEN, nodeSettings, type NodeFlags, type NodeSettings } from './config.js'
import { linePrinter, printNodeEvents, type LinePrinter } from './node-events.js'

/** A host:port flag value, checked while parsing so a typo is a usage error (exit 2). */
export function hostPortArg (value: string): string {
  try { parseHostPort(value) } catch (err) { throw new InvalidArgumentError((err as Error).message) }
  return value
}

/** Adds the flags `swarm share` and `swarm daemon` have in common. */
export function addNodeOptions (cmd: Command): Command {
  return cmd
    .option('--config <file>', 'TOML config file (example: contrib/swarm.toml); flags override its keys, folders and --peer add to its own')
    .addOption(new Option('--listen <host:port>', 'address to listen on; the port is UDP (QUIC). IPv6 in brackets: [::1]:4001').default(DEFAULT_LISTEN).argParser(hostPortArg))
    .option('--peer <host:port>', 'a node to connect to (repeat for several); redialed until it answers', (v: string, prev: string[] = []) => [...prev, hostPortArg(v)])
    .addOption(new Option('--secret <token>', 'cluster secret (visible in ps: prefer --secret-file or SWARM_SECRET)').conflicts('secretFile'))
    .option('--secret-file <path>', 'file holding the cluster secret (mode 0600); SWARM_SECRET is used when neither is given')
    .option('--state <dir>', 'identity, index and control socket (default: $SWARM_STATE or ~/.local/state/swarm)')
    .option('--json', 'one JSON object per line on stdout, each with "event" and "time"')
    .addOption(new Option('-q, --quiet', 'print only warnings and errors').conflicts('verbose'))
    .option('-v, --verbose', 'also print each finished download, catalog sync and the settings in use')
    .option('--no-peer-exchange', 'connect only to the --peer addresses, not to the peers other nodes name')
    .option('--compress', 'deflate the piece streams this node downloads')
    .option('--metrics <host:port>', 'serve metrics and status over HTTP on this address (e.g. 127.0.0.1:9091)', hostPortArg)
}

/** The options the user typed (commander's defaults left out, so the config file can fill them). */
export function typedOptions<T> (cmd: Command): T {
  const all = cmd.opts()
  const typed: Record<string, unknown> = {}
  for (const key of Object.keys(all)) if (cmd.getOptionValueSource(key) === 'cli') typed[key] = all[key]
  return typed as T
}

/** `<dir>` or `<dir>=<id>` from the command line. */
export function shareArg (arg: string, extra: { acceptEmpty: boolean, mode?: ShareMode }): ShareSpec {
  const eq = arg.lastIndexOf('=')
  const spec: ShareSpec = eq > 0 ? { dir: arg.slice(0, eq), id: arg.slice(eq + 1) } : { dir: arg }
  if (spec.id === '') throw new SwarmError('ERR_BAD_ARGUMENT', `empty share id in '${arg}': write <dir>=<id> or just <dir>`)
  spec.acceptEmpty = extra.acceptEmpty
  if (extra.mode !== undefined) spec.mode = extra.mode
  return spec
}

/** `swarm share`: the folders on the command line and those of the config file. */
export async function share (dirs: string[], flags: NodeFlags & { acceptEmpty?: boolean, sendOnly?: boolean, receiveOnly?: boolean }, onJson: (json: boolean) => void): Promise<number> {
  const mode: ShareMode | undefined = flags.sendOnly === true ? 'send-only' : flags.receiveOnly === true ? 'receive-only' : undefined
  const settings = nodeSettings(flags, dirs.map(d => shareArg(d, { acceptEmpty: flags.acceptEmpty === true, mode })), onJson)
  if (settings.options.shares!.length === 0) {
    throw new SwarmError('ERR_BAD_ARGUMENT', 'swarm share needs at least one folder: on the command line, or as a [[share]] table in --config (swarm daemon runs a node without folders)')
  }
  return runNode(settings)
}

/** `swarm daemon`: a node with no shared folders, there for the job commands (put, get, bcast, ...). */
export async function daemon (flags: NodeFlags, onJson: (json: boolean) => void): Promise<number> {
  const settings = nodeSettings(flags, [], onJson)
  if (settings.options.shares!.length > 0) {
    throw new SwarmError('ERR_CONFIG', `config ${settings.configPath}: swarm daemon shares no folders; use swarm share with a config that has [[share]] tables`)
  }
  return runNode(settings)
}

/** The settings in use, for --verbose: what a config file plus flags came to. */
function describeSettings (s: NodeSettings, out: LinePrinter): void {
  const o = s.options
  if (s.configPath !== undefined) out.log('info', `config file ${s.configPath}`)
  out.log('info', `state ${o.stateDir}, listen ${o.listen} (UDP), peers ${o.peers!.length === 0 ? 'none' : o.peers!.join(' ')}, peer exchange ${o.peerExchange === false ? 'off' : 'on'}, compress ${o.compress === true ? 'on' : 'off'}${o.metrics === undefined ? '' : `, metrics ${o.metrics}`}`)
  for (const sh of o.shares ?? []) {
    out.log('info', `share ${sh.dir}${sh.id === undefined ? '' : ` as ${sh.id}`} (${sh.mode ?? DEFAULT_SHARE_MODE}${sh.ignore === undefined || sh.ignore.length === 0 ? '' : `, ignoring ${sh.ignore.join(' ')}`}${sh.acceptEmpty === true ? ', accept empty' : ''})`)
  }
}

/**
 * Starts a node and its control socket, prints its events, and runs until SIGINT or SIGTERM.
 * Rejects with a SwarmError (bad folder, port in use, state dir locked) and leaves nothing running.
 * `settings.options.metrics` is the HTTP metrics/status address, for the listener beside the node.
 */
export async function runNode (settings: NodeSettings): Promise<number> {
  const out = linePrinter(settings.output)
  for (const w of settings.warnings) out.log('warn', w)
  if (settings.output.verbose) describeSettings(settings, out)
  const { metrics, ...nodeOptions } = settings.options
  const node = new SwarmNode(nodeOptions)
  printNodeEvents(node, out)
  let control: ControlServer | undefined
  let http: HttpServer | undefined
  try {
    await node.start()
    control = await startControlServer(node.stateDir, node.jobs, (level, message) => node.log(level, message), () => node.status())
    if (metrics !== undefined) {
      http = await serveNodeHttp(node, metrics)
      if (!isLoopback(metrics)) out.log('warn', `the metrics and status page listener ${metrics} is not a loopback address and has no password: anyone who can reach it sees this node's peers, shares and file names`)
    }
  } catch (err) {
    await control?.close().catch(() => {})
    await node.stop().catch(() => {})
    // What the node said while starting comes before the error line.
    out.flush()
    throw err
  }
  await new Promise<void>(resolve => {
    const stop = () => { resolve() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  // The control socket first: running jobs are aborted while the node can still tidy up after them.
  await http?.close()
  await control.close()
  await node.stop()
  out.flush()
  return 0
}

/** Whether a host:port listens on this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopback (address: string): boolean {
  const { host } = parseHostPort(address)
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}
