#!/usr/bin/env node
// Entry point of the `swarm` command: runs the compiled CLI and turns an error into its exit code
// (src/cli/exit-codes.ts: 2 usage, 3 configuration, 4 no running node, 130 interrupted, 1 other)
// and one clear line on stderr, or one JSON object on stdout under --json.
import { main, cliOutput } from '../dist/src/cli/main.js'
import { exitCodeFor, fatalReport } from '../dist/src/cli/exit-codes.js'

main(process.argv.slice(2)).then(
  code => { process.exitCode = code; if (code === 0) setTimeout(() => process.exit(0), 200).unref() },
  err => {
    const report = fatalReport(err, cliOutput.json)
    if (report !== '') (cliOutput.json ? process.stdout : process.stderr).write(report)
    process.exitCode = exitCodeFor(err)
    // Let the report reach a pipe before leaving; anything still running (a half-started node) must not hold the process.
    setTimeout(() => process.exit(), 50).unref()
  }
)
