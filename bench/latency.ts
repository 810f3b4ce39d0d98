// latency: a 4 KiB file written on A until it is complete on B, two nodes on loopback, N tries.
// Goal p50 ≤ 5 ms, p99 ≤ 25 ms. Anchors (same machine): Syncthing 1.19 at its minimum 1 s watcher
// delay p50 978 / p99 1500 ms; lsyncd with delay 0: p50 66 / p99 136 ms.
import { writeFileSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, createHash } from 'node:crypto'
import { benchDir, startBenchNode, percentile, print } from './lib.js'

const TRIES = Number(process.env.TRIES ?? 200)

const base = benchDir()
const a = await startBenchNode(base, 'a')
const b = await startBenchNode(base, 'b', [a.address])
await b.waitEvent('peer-connected')
await new Promise(r => setTimeout(r, 300))
const samples: number[] = []
const detect: number[] = []   // write → A has indexed it (watcher + debounce + hash + commit)
try {
  for (let i = 0; i < TRIES; i++) {
    const name = `lat-${i}.bin`
    const data = randomBytes(4096)
    // A 4 KiB file is one BEP 52 leaf: its root is its SHA-256. Wait for that version, not an earlier partial one.
    const root = createHash('sha256').update(data).digest('hex')
    const arrived = b.waitEvent('file-updated', e => e.path === name && e.root === root, 10_000)
    let tDetected = 0
    const detected = a.waitEvent('file-updated', e => e.path === name && e.root === root, 10_000).then(() => { tDetected = performance.now() })
    const t0 = performance.now()
    writeFileSync(join(a.dir, name), data)
    await arrived
    const t1 = performance.now()
    await detected
    detect.push(tDetected - t0)
    if (!readFileSync(join(b.dir, name)).equals(data)) throw new Error(`${name} differs on B`)
    samples.push(t1 - t0)
    await new Promise(r => setTimeout(r, 5))
  }
  print('latency-tries', samples.length)
  print('latency-p50-ms', percentile(samples, 50))
  print('latency-p99-ms', percentile(samples, 99))
  print('latency-max-ms', Math.max(...samples))
  print('latency-detect-on-A-p50-ms', percentile(detect, 50))
  print('anchor-syncthing-p50-ms', 978)
  print('anchor-syncthing-p99-ms', 1500)
  print('anchor-lsyncd-p50-ms', 66)
  print('anchor-lsyncd-p99-ms', 136)
} finally {
  await Promise.all([a.stop(), b.stop()])
  rmSync(base, { recursive: true, force: true })
}
