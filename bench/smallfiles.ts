// small files: 20,000 files of 1–8 KiB in 200 folders on A, then an empty B joins; time until B
// holds them all and reports in-sync. Anchor in the same run: an rsync daemon on loopback
// (started here; Debian's `rsync`) copying the same tree into an empty folder. Goal ≤ 2.5 s and
// faster than rsync. A indexes once; each run starts a fresh, empty B (and a fresh rsync target),
// alternating swarm and rsync; medians of RUNS runs (default 3). CPU is each process's
// user+system time during the sync, per GiB. Received files are durable on B (one syncfs per
// batch); rsync does not fsync. As root, everything lives on a freshly made ext4 filesystem
// (bench/lib.ts freshBenchDir); copies are kept until the end, as deleting 20,000 files slows
// the next creates on ext4.
// Usage: node dist/bench/smallfiles.js   (env FILES, RUNS)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { freshBenchDir, startBenchNode, print, median, cpuSeconds } from './lib.js'

const FILES = Number(process.env.FILES ?? 20000)
const RUNS = Number(process.env.RUNS ?? 3)
const FOLDERS = 200

// A and B on separate filesystems, as on two machines: B's durability barrier (one syncfs per
// batch) then flushes B's writes, not A's freshly generated tree.
const fsA = freshBenchDir()
const fsB = freshBenchDir()
const base = fsA.dir
const baseB = fsB.dir
console.log(`# folders on ${fsA.fresh ? 'two fresh ext4 filesystems (loop-mounted images), one for A, one for B and the rsync copies' : 'the host temp dir (BENCH_FS=host or not root)'}`)
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
const GIB = bytes / 2 ** 30
spawnSync('sync')   // the generated tree is on disk before anything is timed

function countFiles (dir: string): number {
  let n = 0
  for (const d of readdirSync(dir)) if (d.startsWith('dir-')) n += readdirSync(join(dir, d)).length
  return n
}

async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise(resolve => srv.close(resolve))
  return port
}

async function startRsyncDaemon (): Promise<{ port: number, proc: ChildProcess }> {
  if (spawnSync('rsync', ['--version']).status !== 0) throw new Error('rsync is not installed (Debian: apt-get install rsync)')
  const port = await freePort()
  const conf = join(baseB, 'rsyncd.conf')
  writeFileSync(conf, `use chroot = no\n[seed]\n  path = ${seedDir}\n  read only = yes\n  uid = root\n  gid = root\n`)
  const proc = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    if (spawnSync('rsync', [`rsync://127.0.0.1:${port}/`]).status === 0) return { port, proc }
    await new Promise(r => setTimeout(r, 50))
  }
  proc.kill()
  throw new Error('rsync daemon did not start')
}

function rsyncOnce (port: number, dest: string): number {
  const t0 = performance.now()
  const r = spawnSync('rsync', ['-a', `rsync://127.0.0.1:${port}/seed/`, dest + '/'])
  const s = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`rsync failed: ${String(r.stderr)}`)
  if (countFiles(dest) !== FILES) throw new Error('rsync copied the wrong number of files')
  return s
}

const t0 = performance.now()
const a = await startBenchNode(base, 'a')
const tIndexed = performance.now()
const rsyncd = await startRsyncDaemon()
const swarmS: number[] = []
const rsyncS: number[] = []
const cpuA: number[] = []
const cpuB: number[] = []
try {
  for (let run = 0; run < RUNS; run++) {
    const dest = join(baseB, `rsync-${run}`)
    mkdirSync(dest)
    rsyncS.push(rsyncOnce(rsyncd.port, dest))
    spawnSync('sync')   // rsync does not flush its copy; B's first barrier must not pay for it

    const t1 = performance.now()
    const b = await startBenchNode(baseB, `b${run}`, [a.address])
    const a0 = cpuSeconds(a.proc.pid!)
    const b0 = cpuSeconds(b.proc.pid!)
    try {
      await b.waitEvent('in-sync', undefined, 600_000)
      swarmS.push((performance.now() - t1) / 1000)
      cpuA.push((cpuSeconds(a.proc.pid!) - a0) / GIB)
      cpuB.push((cpuSeconds(b.proc.pid!) - b0) / GIB)
      const n = countFiles(b.dir)
      if (n !== FILES) throw new Error(`B has ${n} files, expected ${FILES}`)
    } finally { await b.stop() }
    console.log(`# run ${run + 1}: swarm ${swarmS.at(-1)!.toFixed(2)} s, rsync daemon ${rsyncS.at(-1)!.toFixed(2)} s`)
  }
  print('smallfiles-files', FILES)
  print('smallfiles-MB', bytes / 1e6)
  print('smallfiles-initial-index-on-A-s', (tIndexed - t0) / 1000)
  print('smallfiles-empty-peer-sync-s', median(swarmS))
  print('anchor-rsync-daemon-s', median(rsyncS))
  print('smallfiles-vs-rsync', median(swarmS.map((s, i) => s / rsyncS[i]!)))
  print('smallfiles-cpu-s-per-GiB-sender', median(cpuA))
  print('smallfiles-cpu-s-per-GiB-receiver', median(cpuB))
  print('goal-s', 2.5)
  print('anchor-syncthing-s', 43.6)
} finally {
  rsyncd.proc.kill()
  await a.stop()
  fsA.cleanup()
  fsB.cleanup()
}
