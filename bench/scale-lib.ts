// Helpers for bench/scale.ts: generating a big tree quickly, reading a node's memory and inotify
// watches from /proc, waiting for events with the time they came, stopping a node within a bound,
// and the write → file-updated latency loop of bench/latency.ts.
import { openSync, writeSync, closeSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { join } from 'node:path'
import { randomBytes, randomFillSync, createHash } from 'node:crypto'
import type { BenchNode } from './lib.js'

/** Generated files are MIN_FILE..MAX_FILE bytes: each fits one 4 KiB ext4 block and one BEP 52 leaf. */
const MIN_FILE = 1024
const MAX_FILE = 4096
/** A stopped node gets this long after SIGTERM before SIGKILL, then this long again to be reaped. */
const STOP_GRACE_MS = 30_000
const KILL_WAIT_MS = 5_000
const KIB = 1024

/**
 * Writes `files` files of random bytes into `folders` folders under `dir` (flat: one folder) with
 * plain synchronous open/write/close: no promise or callback per file, so a million files cost
 * little more than the kernel's work. Every file is distinct random data (no accidental dedup).
 * Returns the bytes written.
 */
export function generateTree (dir: string, files: number, folders: number): number {
  const buf = Buffer.allocUnsafe(MAX_FILE)
  const perFolder = Math.ceil(files / folders)
  let bytes = 0
  let folder = ''
  for (let i = 0; i < files; i++) {
    if (i % perFolder === 0) { folder = join(dir, `d${i / perFolder}`); mkdirSync(folder, { recursive: true }) }
    const size = MIN_FILE + Math.floor(Math.random() * (MAX_FILE - MIN_FILE + 1))
    randomFillSync(buf, 0, size)
    const fd = openSync(`${folder}/f${i}.bin`, 'w')
    writeSync(fd, buf, 0, size)
    closeSync(fd)
    bytes += size
  }
  return bytes
}

/** A field of /proc/<pid>/status in MiB (VmRSS: now, VmHWM: peak resident so far); 0 once the process is gone. */
export function statusMiB (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) / KIB
  } catch { return 0 }
}

/** inotify watches a process holds: one `inotify wd:` line per watch in the fdinfo of each inotify fd. */
export function inotifyWatches (pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue }   // closed meanwhile
    if (target !== 'anon_inode:inotify') continue
    for (const line of readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').split('\n')) if (line.startsWith('inotify')) n++
  }
  return n
}

/** A UDP port free right now on loopback (QUIC is UDP): lets a peer be told where A will listen before A runs. */
export async function freeUdpPort (): Promise<number> {
  const sock = createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const port = sock.address().port
  await new Promise<void>(resolve => sock.close(() => resolve()))
  return port
}

/**
 * The time (performance.now()) of the first event matching `pred`, at most `ms` from now; rejects
 * at once if the node exits meanwhile, instead of waiting out a timeout sized for a million files.
 * The returned promise is marked handled: it may reject before anyone awaits it.
 */
export function timeOf (node: BenchNode, event: string, pred: (e: Record<string, unknown>) => boolean, ms: number): Promise<number> {
  let onExit: (() => void) | null = null
  const died = new Promise<never>((_resolve, reject) => {
    onExit = () => reject(new Error(`node exited (code ${node.proc.exitCode}, signal ${node.proc.signalCode}) while waiting for ${event}`))
    node.proc.once('exit', onExit)
  })
  const p = Promise.race([node.waitEvent(event, pred, ms).then(() => performance.now()), died])
    .finally(() => { node.proc.off('exit', onExit!) })
  p.catch(() => {})
  return p
}

/** SIGTERM, then SIGKILL if it has not exited within STOP_GRACE_MS; never waits unbounded. */
export async function stopBounded (node: BenchNode): Promise<void> {
  const proc = node.proc
  const gone = () => proc.exitCode !== null || proc.signalCode !== null
  if (gone()) return
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()))
  const within = (ms: number) => Promise.race([exited.then(() => true), sleep(ms).then(() => false)])
  proc.kill('SIGTERM')
  if (await within(STOP_GRACE_MS)) return
  proc.kill('SIGKILL')
  await within(KILL_WAIT_MS)
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/**
 * bench/latency.ts's measure: a 4 KiB file written into `srcDir` (a share folder of the sending
 * node) until `dst` reports that exact version in share `share` (path and root: a 4 KiB file is
 * one BEP 52 leaf, its root is its SHA-256); the copy in `dstDir` is checked. Milliseconds per try.
 */
export async function latencySamples (srcDir: string, dst: BenchNode, dstDir: string, share: string, tries: number, prefix: string): Promise<number[]> {
  const LAT_FILE = 4096
  const PER_TRY_MS = 10_000
  const PAUSE_MS = 5   // as latency.ts: one change at a time, not a burst
  const samples: number[] = []
  for (let i = 0; i < tries; i++) {
    const name = `${prefix}-${i}.bin`
    const data = randomBytes(LAT_FILE)
    const root = createHash('sha256').update(data).digest('hex')
    const arrived = timeOf(dst, 'file-updated', e => e.share === share && e.path === name && e.root === root, PER_TRY_MS)
    const t0 = performance.now()
    writeFileSync(join(srcDir, name), data)
    samples.push(await arrived - t0)
    if (!readFileSync(join(dstDir, name)).equals(data)) throw new Error(`${name} differs on the receiver`)
    await sleep(PAUSE_MS)
  }
  return samples
}
