// Owns the `swarm` command's exit codes: the named numbers scripts and service managers rely on,
// the one mapping from an error (SwarmError code, commander's parse errors) to its exit code, and
// how a fatal error is reported: one line on stderr, or under --json one JSON object on stdout (the
// stream a --json consumer already reads, so the error arrives in order after the last event).

/** Done; also after a clean shutdown on SIGINT/SIGTERM of `share` / `daemon`. */
export const EXIT_OK = 0
/** The work failed (a job failed, a file exists, a peer could not be reached...). */
export const EXIT_FAILURE = 1
/** The command line is wrong: an unknown command or flag, a missing or bad argument. */
export const EXIT_USAGE = 2
/** The setup is wrong: config file, secret file, share folder, state dir, port in use. */
export const EXIT_CONFIG = 3
/** No node is running for the state dir (the job commands need one). */
export const EXIT_NO_NODE = 4
/** Stopped by Ctrl-C (128 + SIGINT, as a shell reports it). */
export const EXIT_INTERRUPTED = 130

/** The table at the end of `swarm --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  ${EXIT_OK}    ok (share/daemon: clean shutdown on SIGINT/SIGTERM)
  ${EXIT_FAILURE}    failure (a job failed, a destination exists, ...)
  ${EXIT_USAGE}    usage: unknown command or flag, bad or missing argument
  ${EXIT_CONFIG}    configuration: bad config file, unreadable secret, bad share folder,
       state dir unusable or locked, port in use
  ${EXIT_NO_NODE}    no running node for --state (job commands)
  ${EXIT_INTERRUPTED}  interrupted (Ctrl-C); get, mget, bcast and diffuse resume when run again
With --json a fatal error is one JSON object on stdout:
  {"event":"error","time":"<ISO>","code":"ERR_...","exit":<n>,"message":"..."}`

/** SwarmError codes that mean the setup, not the work, is wrong. */
const CONFIG_CODES = new Set(['ERR_CONFIG', 'ERR_NOT_A_DIRECTORY', 'ERR_STATE_DIR', 'ERR_ADDRESS_IN_USE', 'ERR_LOCKED', 'ERR_WATCH_LIMIT'])

/** commander's own error codes (CommanderError.code) that are not usage mistakes. */
const COMMANDER_NOT_ERRORS = new Set(['commander.helpDisplayed', 'commander.version'])

function codeOf (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** True for the errors commander throws (parse errors, help, version) under exitOverride(). */
export function isCommanderError (err: unknown): boolean {
  return codeOf(err)?.startsWith('commander.') === true
}

/** The exit code for an error that ended the command: the one place errors become numbers. */
export function exitCodeFor (err: unknown): number {
  const code = codeOf(err)
  if (code === undefined) return EXIT_FAILURE
  if (COMMANDER_NOT_ERRORS.has(code)) return EXIT_OK
  // help() after a mistake (`swarm` alone) exits 1 in commander's terms; plain `swarm help` exits 0.
  if (code === 'commander.help') return (err as { exitCode?: number }).exitCode === 0 ? EXIT_OK : EXIT_USAGE
  if (code.startsWith('commander.')) return EXIT_USAGE
  if (code === 'ERR_BAD_ARGUMENT' || code.startsWith('ERR_PARSE_ARGS_')) return EXIT_USAGE
  if (CONFIG_CODES.has(code)) return EXIT_CONFIG
  if (code === 'ERR_NO_DAEMON') return EXIT_NO_NODE
  if (code === 'ERR_ABORTED') return EXIT_INTERRUPTED
  return EXIT_FAILURE
}

/**
 * What to print for a fatal error, or '' when commander has printed it already (its parse errors
 * and help go out through configureOutput). Text: `swarm: <message> (<code>)`. JSON: one object.
 */
export function fatalReport (err: unknown, json: boolean): string {
  const exit = exitCodeFor(err)
  const commander = isCommanderError(err)
  if (commander && (exit === EXIT_OK || codeOf(err) === 'commander.help')) return ''
  const raw = err instanceof Error ? err.message : String(err)
  if (!json) return commander ? '' : `swarm: ${raw}${codeOf(err) === undefined ? '' : ` (${codeOf(err)})`}\n`
  // commander's messages start with "error: " and may carry a "(Did you mean ...?)" line.
  const message = raw.replace(/^error: /, '').replace(/\n+/g, ' ').trim()
  const code = commander ? 'ERR_BAD_ARGUMENT' : codeOf(err) ?? 'ERR_INTERNAL'
  return JSON.stringify({ event: 'error', time: new Date().toISOString(), code, exit, message }) + '\n'
}
