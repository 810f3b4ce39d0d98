// Bench of the piece exchange (src/swarm/): a 256 MiB file fetched by a Download over loopback
// TCP from one FileSource holder, then from two. Holders run in worker threads (as they would
// be separate nodes); `-srcnoverify-` lines use FileSource({ verify: false }) on the holders;
// the `-inproc-` lines run everything on one thread for comparison.
// Every piece is SHA-256 verified twice (holder before sending, downloader before writing), so
// on CPUs without SHA extensions hashing bounds these numbers; SWARM_VERIFY_THREADS=<n> moves
// verification to n worker threads per process (default: 0 below 4 cores).
// Prints `name: value` lines. Run: npx tsc -p tsconfig.json && node dist/bench/pieces.js
import { randomFillSync, createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { Bep52Hasher } from '../src/merkle/bep52.js'
import { FileSource } from '../src/swarm/source.js'
import { serveWire } from '../src/swarm/serve.js'
import { Download } from '../src/swarm/download.js'

const SIZE = 256 * 1024 * 1024
const RUNS = 3

interface FileInfo { path: string, root: Buffer, size: number, layer: Buffer, mtimeMs: number, verify?: boolean }

function peerId (s: string): Buffer { return createHash('sha1').update(s).digest() }

/** a holder: serves `info` on a loopback port; returns the port */
async function startHolder (info: FileInfo, name: string): Promise<{ port: number, close: () => Promise<void> }> {
  const src = new FileSource({ path: info.path, root: Buffer.from(info.root), size: info.size, layer: Buffer.from(info.layer), mtimeMs: info.mtimeMs, verify: info.verify })
  const server = createServer((s) => {
    s.setNoDelay(true)
    serveWire(s, { peerId: peerId(name), lookup: (ih) => src.root.subarray(0, 20).equals(ih) ? src : undefined })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    close: async () => { server.close(); await src.close() }
  }
}

if (!isMainThread) {
  const h = await startHolder(workerData as FileInfo, 'worker')
  parentPort?.postMessage(h.port)
} else {
  await main()
}

async function dial (port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  await once(s, 'connect')
  s.setNoDelay(true)
  return s
}

async function fetchOnce (info: FileInfo, ports: number[], dir: string, run: string): Promise<number> {
  const partPath = join(dir, `${run}.part`)
  const dl = new Download({ root: info.root, size: info.size, partPath, peerId: peerId(run) })
  const t0 = performance.now()
  for (let i = 0; i < ports.length; i++) dl.addPeer(await dial(ports[i]), `h${i}`)
  await dl.start()
  const ms = performance.now() - t0
  dl.close()
  rmSync(partPath, { force: true })
  return ms
}

async function best (info: FileInfo, ports: number[], dir: string, tag: string): Promise<string> {
  let bestMs = Infinity
  for (let r = 0; r < RUNS; r++) bestMs = Math.min(bestMs, await fetchOnce(info, ports, dir, `${tag}-${r}`))
  return (SIZE / (1024 * 1024) / (bestMs / 1000)).toFixed(1)
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-bench-pieces-'))
  try {
    const path = join(dir, 'src.bin')
    const data = Buffer.allocUnsafe(SIZE)
    for (let off = 0; off < SIZE; off += 64 * 1024 * 1024) randomFillSync(data, off, 64 * 1024 * 1024)
    writeFileSync(path, data)
    const h = new Bep52Hasher()
    h.update(data)
    const { root, layer } = h.digest()
    const info: FileInfo = { path, root, size: SIZE, layer, mtimeMs: statSync(path).mtimeMs }

    // holders verify each piece before sending (FileSource default), then with verify: false
    for (const verify of [true, false]) {
      const workers: Worker[] = []
      const ports: number[] = []
      for (let i = 0; i < 2; i++) {
        const w = new Worker(new URL(import.meta.url), { workerData: { ...info, verify } })
        workers.push(w)
        ports.push((await once(w, 'message'))[0] as number)
      }
      const tag = verify ? '' : '-srcnoverify'
      console.log(`pieces-1-holder${tag}-MBps: ${await best(info, ports.slice(0, 1), dir, 'w1' + tag)}`)
      console.log(`pieces-2-holders${tag}-MBps: ${await best(info, ports, dir, 'w2' + tag)}`)
      for (const w of workers) await w.terminate()
    }

    const local = [await startHolder(info, 'l0'), await startHolder(info, 'l1')]
    console.log(`pieces-1-holder-inproc-MBps: ${await best(info, [local[0].port], dir, 'l1')}`)
    console.log(`pieces-2-holders-inproc-MBps: ${await best(info, local.map(l => l.port), dir, 'l2')}`)
    for (const l of local) await l.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
