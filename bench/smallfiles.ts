// small files: 20,000 files of 1–8 KiB in 200 folders on A, then an empty B joins; time until B
// holds them all and reports in-sync. Goal ≤ 3 s. Anchors (same machine): Syncthing 43.6 s,
// rsync daemon 2.74 s.
import { writeFileSync, mkdirSync, rmSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { benchDir, startBenchNode, print } from './lib.js'

const FILES = Number(process.env.FILES ?? 20000)
const FOLDERS = 200

const base = benchDir()
const seedDir = join(base, 'a', 'share')
let bytes = 0
for (let d = 0; d < FOLDERS; d++) {
  mkdirSync(join(seedDir, `dir-${d}`), { recursive: true })
  for (let f = 0; f < FILES / FOLDERS; f++) {
    const size = 1024 + Math.floor(Math.random() * 7 * 1024)
    bytes += size
    writeFileSync(join(seedDir, `dir-${d}`, `file-${f}.bin`), randomBytes(size))
  }
}
const t0 = performance.now()
const a = await startBenchNode(base, 'a')
const tIndexed = performance.now()
try {
  const t1 = performance.now()
  const b = await startBenchNode(base, 'b', [a.address])
  try {
    await b.waitEvent('in-sync', undefined, 600_000)
    const t2 = performance.now()
    let n = 0
    for (const d of readdirSync(b.dir)) if (d.startsWith('dir-')) n += readdirSync(join(b.dir, d)).length
    if (n !== FILES) throw new Error(`B has ${n} files, expected ${FILES}`)
    print('smallfiles-files', FILES)
    print('smallfiles-MB', bytes / 1e6)
    print('smallfiles-initial-index-on-A-s', (tIndexed - t0) / 1000)
    print('smallfiles-empty-peer-sync-s', (t2 - t1) / 1000)
    print('anchor-syncthing-s', 43.6)
    print('anchor-rsync-daemon-s', 2.74)
  } finally { await b.stop() }
} finally {
  await a.stop()
  rmSync(base, { recursive: true, force: true })
}
