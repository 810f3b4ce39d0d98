// The `swarm` command: a thin layer over the library API, its commands declared with commander
// (which prints each command's --help, `swarm help <command>`, --version, and "did you mean"
// for typos). Routes a command to its file: share and daemon run a node in the foreground
// (daemon.ts), the job commands talk to a running node over its control socket (jobs.ts).
// Errors are not printed here: they reach bin/swarm.js, which turns them into an exit code
// (exit-codes.ts) and one line, or one JSON object under --json.
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command, Option } from 'commander'
import { generateSecret, nodeId } from '../index.js'
import { SwarmError } from '../errors.js'
import { defaultStateDir } from './state-dir.js'
import { addNodeOptions, daemon, share, typedOptions } from './daemon.js'
import { addJobCommands } from './jobs.js'
import { EXIT_CODES_HELP, EXIT_OK } from './exit-codes.js'
import type { NodeFlags } from './config.js'
import { statusCommand, type StatusView } from './status.js'
import { packageVersion } from '../node/status.js'

/** Whether a fatal error is reported as JSON: --json on the command line, or json = true in the config. */
export const cliOutput = { json: false }

/** Mode of the file `swarm secret --out` writes: the owner alone reads the cluster secret. */
const SECRET_FILE_MODE = 0o600

const ENVIRONMENT_HELP = `Environment:
  SWARM_SECRET   the cluster secret, when neither --secret nor --secret-file (nor secret_file
                 in --config) gives one
  SWARM_STATE    the default --state dir`

/** `swarm secret --out <file>`: a new file only, mode 0600 from its first byte. */
function writeSecretFile (file: string): void {
  try {
    writeFileSync(file, generateSecret() + '\n', { mode: SECRET_FILE_MODE, flag: 'wx' })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EEXIST') throw new SwarmError('ERR_EXISTS', `${file} exists; swarm secret --out never overwrites a secret (remove the file first if you mean to replace it)`)
    throw new SwarmError('ERR_BAD_ARGUMENT', `cannot write secret file ${file}: ${e.message}`)
  }
  process.stderr.write(`swarm: wrote a new cluster secret to ${file} (mode 0600); copy it to every node\n`)
}

function buildProgram (done: (code: number) => void): Command {
  const program = new Command('swarm')
  const remember = (json: boolean) => { cliOutput.json = json }
  // Settings the subcommands inherit, so they are set before any command is added.
  program
    .description('Live multi-way folder replication and file distribution over QUIC.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      // Under --json the error is reported once, as a JSON object, by bin/swarm.js.
      outputError: (text, write) => { if (!cliOutput.json) write(text) },
      writeErr: text => { if (!cliOutput.json) process.stderr.write(text) }
    })
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}`)

  addNodeOptions(program.command('share')
    .summary('replicate folders with the other nodes (runs in the foreground)')
    .description('Replicate folders with the other nodes of the cluster; runs in the foreground until SIGINT or SIGTERM.')
    .argument('[dirs...]', '<dir> or <dir>=<id>: folders to replicate; the id defaults to the folder name'))
    .option('--accept-empty', 'the folders given here start although empty while their index lists files, and send those deletions')
    .addOption(new Option('--send-only', 'the folders given here send their changes and apply none from peers').conflicts('receiveOnly'))
    .option('--receive-only', 'the folders given here apply changes from peers and send none of their own')
    .action(async (dirs: string[], _opts: unknown, cmd: Command) => { done(await share(dirs, typedOptions(cmd), remember)) })

  addNodeOptions(program.command('daemon')
    .summary('run a node without folders, for the job commands')
    .description('Run a node that shares no folders, there for the job commands (put, get, bcast, ...); runs until SIGINT or SIGTERM.'))
    .action(async (_opts: unknown, cmd: Command) => { done(await daemon(typedOptions<NodeFlags>(cmd), remember)) })

  addJobCommands(program, done)

  const views: Array<[StatusView, string, string]> = [
    ['status', "this node: its peers, shares, transfers and recent errors", "Show this node's address and version, each peer (connected or not, since when, bytes both ways), each share (files, bytes, root, in sync with whom, what is left to fetch and to send), transfers in flight with rate and ETA, and the last warnings and errors."],
    ['peers', 'the peers of this node', 'Show each peer this node knows: connected or not, since when, address, bytes sent and received, shares in common.'],
    ['shares', 'the shares of this node', 'Show each share: folder, mode, files, bytes, root, in sync with whom, what is left to fetch from and to send to each peer.']
  ]
  for (const [view, summary, description] of views) {
    program.command(view)
      .summary(summary)
      .description(`${description} Asks the node running on --state (swarm share or swarm daemon).`)
      .option('--state <dir>', 'the state dir of the running node (default: $SWARM_STATE or ~/.local/state/swarm)')
      .option('--json', 'print it as one JSON value')
      .action(async (opts: { state?: string, json?: boolean }) => {
        done(await statusCommand(view, { state: resolve(opts.state ?? defaultStateDir()), json: opts.json === true }))
      })
  }

  program.command('secret')
    .summary('make a new random cluster secret')
    .description('Make a new random cluster secret (43 characters); printed, or written to a new file with --out.')
    .option('--out <file>', 'write it to this new file with mode 0600 instead of printing it (never overwrites)')
    .action((opts: { out?: string }) => {
      if (opts.out === undefined) process.stdout.write(generateSecret() + '\n')
      else writeSecretFile(opts.out)
      done(EXIT_OK)
    })

  program.command('id')
    .summary("print this node's PeerId")
    .description("Print this node's PeerId (made on first use and kept in the state dir).")
    .option('--state <dir>', 'state dir (default: $SWARM_STATE or ~/.local/state/swarm)')
    .action(async (opts: { state?: string }) => {
      process.stdout.write(await nodeId(opts.state ?? defaultStateDir()) + '\n')
      done(EXIT_OK)
    })

  program.command('demo')
    .summary('three local nodes replicating two files (see README)')
    .description('Three nodes on this machine replicating a small and a 20 MB file between temp folders.')
    .action(async () => { done(await (await import('./demo.js')).demo()) })

  // A wrong argument or flag is followed by the command's usage line (its options: swarm help <cmd>).
  for (const cmd of program.commands) cmd.showHelpAfterError(`usage: swarm ${cmd.name()} ${cmd.usage()} (swarm help ${cmd.name()} lists the options)`)
  return program
}

/** Runs the command line `argv` (without node and script); resolves with the exit code or rejects with the error. */
export async function main (argv: string[]): Promise<number> {
  const end = argv.indexOf('--')
  cliOutput.json = (end < 0 ? argv : argv.slice(0, end)).includes('--json')
  let code = EXIT_OK
  await buildProgram(c => { code = c }).parseAsync(argv, { from: 'user' })
  return code
}
