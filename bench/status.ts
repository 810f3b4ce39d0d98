// status: what asking a node costs on a big share. One node (library API, in this process) shares
// FILES small files; then: node.status() the first time (counts the share's rows) and again
// (same root: cached), one Prometheus scrape through the HTTP listener, `swarm status --json`
// from a separate process over the control socket (wall time, process start included), and the
// CPU the process uses over IDLE_S seconds idle, before and after the metrics listener opens.
//
//   node dist/bench/status.js [--files 200000] [--folders 200] [--idle-s 10]
import { execFile } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode } from '../src/index.js'
import { serveNodeHttp } from '../src/http/index.js'
import { startControlServer } from '../src/control/server.js'
import { freshBenchDir, print, median, SECRET } from './lib.js'
import { generateTree } from './scale-lib.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}
const FILES = arg('files', 200_000)
const FOLDERS = arg('folders', 200)
const IDLE_S = arg('idle-s', 10)
const TRIES = 5

const ms = (f: () => void): number => { const t = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t) / 1e6 }
const msAsync = async (f: () => Promise<unknown>): Promise<number> => { const t = process.hrtime.bigint(); await f(); return Number(process.hrtime.bigint() - t) / 1e6 }

const { dir: base, cleanup } = freshBenchDir(4, { inodes: FILES * 2 + 10_000 })
try {
  const dir = join(base, 'share')
  generateTree(dir, FILES, FOLDERS)
  const node = await startNode({ stateDir: join(base, 'state'), secret: SECRET, listen: '127.0.0.1:0', shares: [{ dir, id: 'big' }] })
  await node.scanned()
  await new Promise(resolve => setTimeout(resolve, 2000))   // the sweep's last commits and checkpoints settle
  const idle = async (): Promise<number> => {
    const before = process.cpuUsage()
    await new Promise(resolve => setTimeout(resolve, IDLE_S * 1000))
    const used = process.cpuUsage(before)
    return (used.user + used.system) / 1e6 / IDLE_S * 100
  }
  const idleBare = await idle()
  const http = await serveNodeHttp(node, '127.0.0.1:0')
  const control = await startControlServer(node.stateDir, node.jobs, () => {}, () => node.status())
  try {
    const cold = ms(() => node.status())
    const warm = median(Array.from({ length: TRIES }, () => ms(() => node.status())))
    const scrapes: number[] = []
    for (let i = 0; i < TRIES; i++) scrapes.push(await msAsync(async () => { await (await fetch(`http://${http.address}/metrics`)).text() }))
    const cli: number[] = []
    for (let i = 0; i < TRIES; i++) {
      // The child process needs the event loop of this one (the node) to answer: run it asynchronously.
      cli.push(await msAsync(() => new Promise<void>((resolve, reject) => {
        execFile(process.execPath, [BIN, 'status', '--json', '--state', node.stateDir], err => err === null ? resolve() : reject(err))
      })))
    }
    const files = node.status().shares[0]!.files
    const idleListening = await idle()
    print('status-files', files)
    print('status-first-call-ms', cold.toFixed(1))
    print('status-cached-call-ms', warm.toFixed(2))
    print('metrics-scrape-ms', median(scrapes).toFixed(1))
    print('cli-status-json-ms', median(cli).toFixed(0))
    print('idle-cpu-percent-without-listener', idleBare.toFixed(2))
    print('idle-cpu-percent-with-metrics-listener', idleListening.toFixed(2))
  } finally {
    await control.close()
    await http.close()
    await node.stop()
  }
} finally { cleanup() }
