// Owns the job commands (put, mput, get, mget, bcast, diffuse, ls, nodes, chunks, local-chunks):
// their arguments and flags (declared for commander, which prints each one's --help), one request
// to the running node over its control socket, lines out. Paths are made
// absolute here, because the node's working directory is not the user's. --json prints nothing
// but the result, as one JSON value on stdout.
import { statSync } from 'node:fs'
import { join, posix, resolve } from 'node:path'
import { Command } from 'commander'
import { SwarmError, isSwarmError } from '../errors.js'
import { callControl } from '../control/client.js'
import type { ControlArgs, ControlCmd, ControlResults } from '../control/protocol.js'
import type { GetResult, ProgressEvent, PutResult } from '../jobs/types.js'
import { defaultStateDir } from './state-dir.js'
import { ProgressView, fmtBytes, fmtSeconds, pieceMap, show, shortPeer } from './progress.js'
import { EXIT_INTERRUPTED } from './exit-codes.js'

export const JOB_COMMANDS = ['put', 'mput', 'get', 'mget', 'bcast', 'diffuse', 'ls', 'nodes', 'chunks', 'local-chunks'] as const
export type JobCommand = typeof JOB_COMMANDS[number]
/** Commands whose interrupted work a second run picks up where it stopped. */
const RESUMABLE = new Set<string>(['get', 'mget', 'bcast', 'diffuse'])
/** Roots are given as 64 hex digits (BEP 52 SHA-256). */
const ROOT_RE = /^[0-9a-f]{64}$/i
/** ls shows this many hex digits of a root. */
const ROOT_CHARS = 16

interface Ctx { state: string, json: boolean, signal: AbortSignal }

/** Thrown out of a command when Ctrl-C aborted its request. */
class Interrupted extends Error {}

async function call<C extends ControlCmd> (ctx: Ctx, cmd: C, args: ControlArgs[C], onProgress?: (e: ProgressEvent) => void): Promise<ControlResults[C]> {
  try {
    return await callControl(ctx.state, cmd, args, { signal: ctx.signal, onProgress })
  } catch (err) {
    if (ctx.signal.aborted && isSwarmError(err, 'ERR_ABORTED')) throw new Interrupted()
    throw err
  }
}

/**
 * JSON.stringify escapes only C0 controls: C1 controls, line separators and bidi overrides in a
 * name a peer chose would reach the terminal raw. They are escaped too (still valid JSON).
 */
function safeJson (value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

function print (ctx: Ctx, result: unknown, human: () => string[]): void {
  const lines = ctx.json ? [safeJson(result)] : human()
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
}

export async function jobCommand (cmd: JobCommand, positionals: string[], values: JobFlags): Promise<number> {
  const ac = new AbortController()
  const onSigint = () => ac.abort()
  // Ctrl-C closes the connection, which is how the node learns to stop the job.
  process.on('SIGINT', onSigint)
  const views: ProgressView[] = []
  const open: OpenView = (mode, ctx) => { const v = new ProgressView(mode, !ctx.json); views.push(v); return v }
  try {
    const ctx: Ctx = { state: resolve(values.state ?? defaultStateDir()), json: values.json === true, signal: ac.signal }
    return await COMMANDS[cmd](positionals, values, ctx, open)
  } catch (err) {
    // What was drawn is tidied before the error line, whatever the error.
    for (const v of views) v.done()
    if (!(err instanceof Interrupted)) throw err
    process.stderr.write(`swarm: interrupted${RESUMABLE.has(cmd) ? `; run the same ${cmd} again to resume` : ''}\n`)
    return EXIT_INTERRUPTED
  } finally {
    process.off('SIGINT', onSigint)
  }
}

/** Every job command's flags (each command declares the ones it takes). */
interface JobFlags { state?: string, json?: boolean, name?: string, prefix?: string, to?: string, force?: boolean }
type OpenView = (mode: 'bar' | 'nodes', ctx: Ctx) => ProgressView
type JobRun = (positionals: string[], values: JobFlags, ctx: Ctx, view: OpenView) => Promise<number>

const putLine = (r: PutResult) => `${show(r.name, 4096)} ${r.root} ${r.size}${r.placedOn === undefined ? '' : ` placed on ${shortPeer(r.placedOn)}`}`
const getLine = (r: GetResult) => `${show(r.dest, 4096)} ${r.size} bytes in ${fmtSeconds(r.seconds)} s`

/** Where `get` writes: dest as given (into it, if it is a folder), else the name's last part in the cwd. */
function destFor (name: string, dest: string | undefined): string {
  const leaf = posix.basename(name)
  const leafOk = leaf !== '' && leaf !== '.' && leaf !== '..'
  if (dest === undefined) {
    if (!leafOk) throw new SwarmError('ERR_BAD_ARGUMENT', `cannot make a file name from '${show(name)}': give a destination`)
    return resolve(leaf)
  }
  const abs = resolve(dest)
  let isDir = dest.endsWith('/')
  try { isDir ||= statSync(abs).isDirectory() } catch {}
  if (!isDir) return abs
  if (!leafOk) throw new SwarmError('ERR_BAD_ARGUMENT', `cannot make a file name from '${show(name)}': give a file as destination`)
  return join(abs, leaf)
}

const COMMANDS: Record<JobCommand, JobRun> = {
  async put (positionals, values, ctx) {
    const r = await call(ctx, 'put', { file: resolve(positionals[0]!), name: values.name, to: values.to })
    print(ctx, r, () => [putLine(r)])
    return 0
  },

  async mput (positionals, values, ctx) {
    const r = await call(ctx, 'mput', { dir: resolve(positionals[0]!), prefix: values.prefix, to: values.to })
    print(ctx, r, () => [...r.map(putLine), `${r.length} file${r.length === 1 ? '' : 's'} published, ${fmtBytes(r.reduce((s, x) => s + x.size, 0))}`])
    return 0
  },

  async get (positionals, values, ctx, view) {
    const name = positionals[0]!
    let leafFrom = name
    // A root carries no file name: the catalog's name for it gives the default destination.
    if (ROOT_RE.test(name) && positionals[1] === undefined) {
      leafFrom = (await call(ctx, 'ls', {})).find(i => i.root.toLowerCase() === name.toLowerCase())?.name ?? name
    }
    const v = view('bar', ctx)
    const r = await call(ctx, 'get', { name: ROOT_RE.test(name) ? name.toLowerCase() : name, dest: destFor(leafFrom, positionals[1]), force: values.force }, v.update)
    v.done()
    print(ctx, r, () => [getLine(r)])
    return 0
  },

  async mget (positionals, values, ctx, view) {
    const started = Date.now()
    const v = view('bar', ctx)
    const r = await call(ctx, 'mget', { prefix: positionals[0]!, destDir: resolve(positionals[1] ?? '.'), force: values.force }, v.update)
    v.done()
    const bytes = r.reduce((s, x) => s + x.size, 0)
    print(ctx, r, () => [...r.map(getLine), `${r.length} file${r.length === 1 ? '' : 's'}, ${bytes} bytes in ${fmtSeconds((Date.now() - started) / 1000)} s`])
    return 0
  },

  async bcast (positionals, values, ctx, view) {
    // A name in the catalog wins; otherwise a local file is sent as its absolute path.
    const arg = positionals[0]!
    let target = arg
    const named = (await call(ctx, 'ls', { prefix: arg })).some(i => i.name === arg)
    if (!named) { try { if (statSync(resolve(arg)).isFile()) target = resolve(arg) } catch {} }
    const v = view('nodes', ctx)
    const r = await call(ctx, 'bcast', { name: target }, v.update)
    v.done()
    const failed = r.nodes.filter(n => n.state === 'failed')
    const holders = r.nodes.filter(n => n.state === 'done').length
    print(ctx, r, () => [
      ...failed.map(n => `${shortPeer(n.peerId)} failed: ${show(n.error ?? 'unknown error', 4096)}`),
      `${show(r.name, 4096)}: ${holders} node${holders === 1 ? '' : 's'} hold it, ${fmtSeconds(r.seconds)} s, ${(r.bytesPerSecond / 1e6).toFixed(1)} MB/s, source uploaded ${r.sourceCopies.toFixed(1)} copies`
    ])
    // Some nodes without a copy is a failure a script should notice.
    return failed.length === 0 ? 0 : 1
  },

  async diffuse (positionals, values, ctx) {
    const r = await call(ctx, 'diffuse', { names: positionals })
    print(ctx, r, () => r.map(d => `${show(d.name, 4096)}: ${d.holders.length} holder${d.holders.length === 1 ? '' : 's'} ${d.holders.map(shortPeer).join(' ')}` +
      (d.added.length === 0 ? '' : ` (new: ${d.added.map(shortPeer).join(' ')})`)))
    return 0
  },

  async ls (positionals, values, ctx) {
    const r = await call(ctx, 'ls', positionals[0] === undefined ? {} : { prefix: positionals[0] })
    print(ctx, r, () => table(['SIZE', 'NAME', 'ROOT', 'BY'], r.map(i => [fmtBytes(i.size), show(i.name, 4096), i.root.slice(0, ROOT_CHARS), shortPeer(i.by)]), [true]))
    return 0
  },

  async nodes (positionals, values, ctx) {
    const r = await call(ctx, 'nodes', {})
    print(ctx, r, () => table(['PEER', 'ADDRESS', 'STATE'], r.map(n => [show(n.peerId, 128), show(n.address, 128), n.self === true ? 'self' : n.connected ? 'connected' : 'not connected'])))
    return 0
  },

  async chunks (positionals, values, ctx) {
    const r = await call(ctx, 'chunks', { name: positionals[0]! })
    print(ctx, r, () => [
      `${show(r.name, 4096)} ${r.root.slice(0, ROOT_CHARS)} ${r.size} bytes: ${r.pieces} piece${r.pieces === 1 ? '' : 's'} of ${fmtBytes(r.pieceSize)}`,
      ...r.holders.map(h => `  ${shortPeer(h.peerId).padEnd(8)} ${`${h.have}/${r.pieces}`.padStart(String(r.pieces).length * 2 + 1)} ${pieceMap(h.pieces, r.pieces)}`)
    ])
    return 0
  },

  async 'local-chunks' (positionals, values, ctx) {
    const r = await call(ctx, 'local-chunks', {})
    print(ctx, r, () => table(['ROOT', 'PIECES', 'SIZE', 'NAMES'], r.map(c => [c.root.slice(0, ROOT_CHARS), `${c.have}/${c.pieces}`, fmtBytes(c.size), c.names.map(n => show(n)).join(', ')]), [false, true, true]))
    return 0
  }
}

/** Columns padded to their widest cell (the last one is not padded); `right` marks right-aligned columns. No rows, no output. */
function table (head: string[], rows: string[][], right: boolean[] = []): string[] {
  if (rows.length === 0) return []
  const all = [head, ...rows]
  const widths = head.map((_, c) => Math.max(...all.map(r => r[c]!.length)))
  return all.map(r => r.map((cell, c) => c === r.length - 1 ? cell : right[c] === true ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)).join('  ').trimEnd())
}

/** What commander shows for each job command: its arguments, a one-line summary, its own flags. */
const JOB_HELP: Record<JobCommand, { args: string, summary: string, flags: Array<[string, string]> }> = {
  put: { args: '<file>', summary: 'publish a file in the cluster catalog', flags: [['--name <name>', 'catalog name (default: the file name)'], ['--to <peerId|random>', 'also place a copy on that node']] },
  mput: { args: '<dir>', summary: 'publish every file under a folder', flags: [['--prefix <prefix>', 'put before each name'], ['--to <peerId|random>', 'also place a copy on that node']] },
  get: { args: '<name|root> [dest]', summary: 'fetch a file from the nodes that hold it (Ctrl-C stops, run again to resume)', flags: [['--force', 'replace a different file at dest']] },
  mget: { args: '<prefix> [destdir]', summary: 'fetch every file whose name starts with prefix', flags: [['--force', 'replace different files at their dest']] },
  bcast: { args: '<file|name>', summary: 'every node fetches a copy; Ctrl-C stops, run again to resume', flags: [] },
  diffuse: { args: '<name...>', summary: 'at least two nodes hold each name, new copies on the emptiest nodes', flags: [] },
  ls: { args: '[prefix]', summary: 'list the catalog', flags: [] },
  nodes: { args: '', summary: 'list the nodes this node knows', flags: [] },
  chunks: { args: '<name>', summary: 'which node holds which pieces of a file', flags: [] },
  'local-chunks': { args: '', summary: 'the content this node holds', flags: [] }
}

/**
 * Declares the job commands on `program`; each one's action runs the command and hands its exit
 * code to `done` (commander's actions return nothing useful).
 */
export function addJobCommands (program: Command, done: (code: number) => void): void {
  for (const name of JOB_COMMANDS) {
    const help = JOB_HELP[name]
    const cmd = program.command(`${name}${help.args === '' ? '' : ` ${help.args}`}`)
      .summary(help.summary)
      .description(`${help.summary}. Sent to the node running on --state (swarm share or swarm daemon).`)
    for (const [flags, text] of help.flags) cmd.option(flags, text)
    cmd.option('--state <dir>', 'the state dir of the running node (default: $SWARM_STATE or ~/.local/state/swarm)')
      .option('--json', 'print only the result, as one JSON value')
      .action(async (...args: unknown[]) => {
        const command = args[args.length - 1] as Command
        const positionals = command.processedArgs.flat().filter((a): a is string => typeof a === 'string')
        done(await jobCommand(name, positionals, command.opts<JobFlags>()))
      })
  }
}
