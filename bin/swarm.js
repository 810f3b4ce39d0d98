#!/usr/bin/env node
// Entry point of the `swarm` command: runs the compiled CLI and turns errors into one clear line.
// Exit 2 for a usage mistake (a bad flag or argument), 1 for anything else that failed.
import { main } from '../dist/src/cli/main.js'

main(process.argv.slice(2)).then(
  code => { process.exitCode = code; if (code === 0) setTimeout(() => process.exit(0), 200).unref() },
  err => {
    const code = err && err.code ? ` (${err.code})` : ''
    process.stderr.write(`swarm: ${err && err.message ? err.message : String(err)}${code}\n`)
    const usage = err && typeof err.code === 'string' && (err.code === 'ERR_BAD_ARGUMENT' || err.code.startsWith('ERR_PARSE_ARGS_'))
    process.exit(usage ? 2 : 1)
  }
)
