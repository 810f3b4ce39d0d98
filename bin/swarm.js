#!/usr/bin/env node
// Entry point of the `swarm` command: runs the compiled CLI and turns errors into one clear line.
import { main } from '../dist/src/cli/main.js'

main(process.argv.slice(2)).then(
  code => { process.exitCode = code; if (code === 0) setTimeout(() => process.exit(0), 200).unref() },
  err => {
    const code = err && err.code ? ` (${err.code})` : ''
    process.stderr.write(`swarm: ${err && err.message ? err.message : String(err)}${code}\n`)
    process.exit(1)
  }
)
