// big file: one 256 MiB file written on A until complete and verified on B (two `swarm share`
// processes, loopback QUIC), against one raw QUIC stream of the same binding measured in the same
// run (bench/quic.ts as a child). Goal: end to end ≤ 1.0 s, transfer ≥ 80 % of the raw stream.
// end-to-end starts when the write on A returns (A sees the file, hashes it, announces it); the
// transfer starts when A has indexed it. CPU is each process's user+system time from the write
// until B has the file, per GiB moved. Medians of RUNS runs (default 3), fresh nodes each run.
// Usage: node dist/bench/bigfile.js   (env SIZE_MB, RUNS)
import { execFileSync, spawn } from 'node:child_process'
import { writeFileSync, rmSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes, createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { benchDir, startBenchNode, print, median, cpuSeconds } from './lib.js'
import { fileRoot } from '../src/merkle/bep52.js'

const SIZE = Number(process.env.SIZE_MB ?? 256) * 1024 * 1024
const RUNS = Number(process.env.RUNS ?? 3)
const GIB = SIZE / 2 ** 30

/** one raw QUIC stream moving SIZE bytes to a child process, MB/s */
function rawQuic (): number {
  const out = execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'quic.js'), '--runs', '1', '--mib', String(SIZE / 2 ** 20)], { encoding: 'utf8' })
  const m = /quic-stream-MBps: ([\d.]+)/.exec(out)
  if (m === null) throw new Error(`quic bench printed no throughput: ${out}`)
  return Number(m[1])
}

interface Run { endToEnd: number, transfer: number, raw: number, cpuA: number, cpuB: number }

async function once (): Promise<Run> {
  const raw = rawQuic()
  const base = benchDir()
  const a = await startBenchNode(base, 'a')
  const b = await startBenchNode(base, 'b', [a.address])
  try {
    await b.waitEvent('peer-connected')
    await new Promise(r => setTimeout(r, 300))
    const data = randomBytes(SIZE)
    const root = fileRoot(data).toString('hex')
    const indexed = a.waitEvent('file-updated', e => e.path === 'big.bin' && e.root === root)
    const arrived = b.waitEvent('file-updated', e => e.path === 'big.bin' && e.root === root, 300_000)
    // Written elsewhere and moved in, as an upload handler does: the bench times replication,
    // not the page cache filling a 256 MiB write.
    const staged = join(base, 'staged.bin')
    writeFileSync(staged, data)
    // PERF_OUT=<file>: perf records both node processes (all threads) over the timed window only.
    const perf = process.env.PERF_OUT === undefined ? null : spawn('perf', ['record', '-F', '999', '-g', '-p', `${a.proc.pid!},${b.proc.pid!}`, '-o', process.env.PERF_OUT], { stdio: 'ignore' })
    if (perf !== null) { await new Promise(r => setTimeout(r, 500)); console.log(`# perf: A pid ${a.proc.pid!}, B pid ${b.proc.pid!}`) }
    const cpu0 = [cpuSeconds(a.proc.pid!), cpuSeconds(b.proc.pid!)]
    const tw = performance.now()
    execFileSync('mv', [staged, join(a.dir, 'big.bin')])
    await indexed
    const t1 = performance.now()
    await arrived
    const t2 = performance.now()
    const cpuA = cpuSeconds(a.proc.pid!) - cpu0[0]!
    const cpuB = cpuSeconds(b.proc.pid!) - cpu0[1]!
    if (perf !== null) { perf.kill('SIGINT'); await new Promise(r => perf.once('exit', r)) }
    const got = await readFile(join(b.dir, 'big.bin'))
    if (createHash('sha256').update(got).digest('hex') !== createHash('sha256').update(data).digest('hex')) throw new Error('file differs on B')
    const run = { endToEnd: (t2 - tw) / 1000, transfer: (t2 - t1) / 1000, raw, cpuA: cpuA / GIB, cpuB: cpuB / GIB }
    console.log(`# run: end-to-end ${run.endToEnd.toFixed(2)} s, transfer ${run.transfer.toFixed(2)} s (${(SIZE / 1e6 / run.transfer).toFixed(0)} MB/s), raw QUIC ${raw.toFixed(0)} MB/s, CPU A ${run.cpuA.toFixed(2)} B ${run.cpuB.toFixed(2)} s/GiB`)
    return run
  } finally {
    await Promise.all([a.stop(), b.stop()])
    rmSync(base, { recursive: true, force: true })
  }
}

const runs: Run[] = []
for (let i = 0; i < RUNS; i++) runs.push(await once())
const transfer = median(runs.map(r => r.transfer))
const raw = median(runs.map(r => r.raw))
const mbps = SIZE / 1e6 / transfer
print('bigfile-MiB', SIZE / 2 ** 20)
print('bigfile-end-to-end-s', median(runs.map(r => r.endToEnd)))
print('bigfile-transfer-s', transfer)
print('bigfile-transfer-MBps', mbps)
print('anchor-raw-quic-stream-MBps', raw)
print('bigfile-vs-raw-quic', median(runs.map(r => SIZE / 1e6 / r.transfer / r.raw)))
print('bigfile-cpu-s-per-GiB-sender', median(runs.map(r => r.cpuA)))
print('bigfile-cpu-s-per-GiB-receiver', median(runs.map(r => r.cpuB)))
print('goal-end-to-end-s', 1.0)
print('anchor-syncthing-s', 1.67)

