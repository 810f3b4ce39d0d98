// Fuzz bench: the control codecs (decode(), FrameSplitter.push()) and the piece wire (serveWire()
// and Download.addPeer() over in-process duplex pairs) fed random bytes and mutations of valid
// frames from one seeded PRNG (test/fuzz-lib.ts). A crash is a codec throwing anything but
// SwarmError ERR_PROTOCOL, or anything reaching uncaughtException / unhandledRejection.
// Prints `name: value` lines, then each crash (target, input hex, stack) on stderr; exits 1 if
// there was any. Run: npx tsc -p tsconfig.json && node dist/bench/fuzz.js [count] [seed]
import { rmSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Fuzzer, forceGc, mib, TARGETS, type Crash } from '../test/fuzz-lib.js'
import { print } from './lib.js'

/** default input count: enough to cover each target well past a hundred thousand times */
const DEFAULT_COUNT = 1_000_000
/** crashes printed in full (the count is always printed) */
const MAX_PRINTED = 20

const count = process.argv[2] !== undefined ? Number(process.argv[2]) : DEFAULT_COUNT
const seed = process.argv[3] !== undefined ? Number(process.argv[3]) : (Date.now() >>> 0)
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: node dist/bench/fuzz.js [count] [seed]')
  process.exit(2)
}

function printCrashes (title: string, crashes: Crash[]): void {
  for (const c of crashes.slice(0, MAX_PRINTED)) console.error(`--- ${title} (${c.target})\ninput: ${c.input}\n${c.error}\n`)
}

const dir = mkdtempSync(join(tmpdir(), 'swarm-fuzz-'))
forceGc()
const heap0 = process.memoryUsage().heapUsed
const t0 = performance.now()
const report = await new Fuzzer(seed, join(dir, 'fuzz.part')).run(count)
const seconds = (performance.now() - t0) / 1000
forceGc()
rmSync(dir, { recursive: true, force: true })

print('seed', seed)
print('inputs', count)
for (const t of TARGETS) print(`inputs-${t}`, report.inputs[t])
print('sessions-serve', report.sessions.serve)
print('sessions-download', report.sessions.download)
print('peers-dropped', report.peerDropped)
print('peers-dropped-not-reading', report.notReading)
print('downloads-completed', report.downloadsCompleted)
print('parser-throws', report.parserThrows.length)
print('crashes', report.crashes.length)
print('seconds', seconds)
print('inputs-per-second', Math.round(count / seconds))
print('peak-rss-MiB', process.resourceUsage().maxRSS / 1024)
print('heap-growth-MiB', mib(process.memoryUsage().heapUsed - heap0))
print('max-wire-buffered-bytes', report.maxWireBuffered)
print('max-queued-send-bytes', report.maxQueued)
printCrashes('crash', report.crashes)
printCrashes('parser throw (caught by guardWire)', report.parserThrows)
process.exitCode = report.crashes.length > 0 ? 1 : 0
