// Shared bench plumbing: run `swarm share` nodes as real child processes on loopback and read
// their --json event lines.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
export const SECRET = 'bench-secret-0123456789'

export interface BenchNode {
  proc: ChildProcess
  dir: string
  address: string
  peerId: string
  on (event: string, fn: (e: Record<string, unknown>) => void): void
  off (event: string, fn: (e: Record<string, unknown>) => void): void
  waitEvent (event: string, pred?: (e: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>
  stop (): Promise<void>
}

export function benchDir (): string { return mkdtempSync(join(tmpdir(), 'swarm-bench-')) }

/**
 * A bench folder on a freshly made ext4 filesystem (a sparse image file under the temp dir,
 * loop-mounted; root only), so figures do not depend on how aged the host's filesystem is:
 * measured on this VM's host ext4 after many bench runs, creating a file cost ~1 ms of kernel
 * CPU (the inode allocator scanning bitmaps past recently deleted inodes), on a fresh one 17 µs.
 * Falls back to benchDir() when not root or BENCH_FS=host. cleanup() unmounts and deletes.
 */
export interface FreshDirOptions {
  /** Inodes to make (mkfs -N): the default ratio (one per 16 KiB) is too few for a million small files. */
  inodes?: number
}

export function freshBenchDir (sizeGiB = 4, opts: FreshDirOptions = {}): { dir: string, cleanup: () => void, fresh: boolean } {
  const host = benchDir()
  if (process.getuid?.() !== 0 || process.env.BENCH_FS === 'host') {
    return { dir: host, fresh: false, cleanup: () => rmSync(host, { recursive: true, force: true }) }
  }
  const img = join(host, 'fs.img')
  const dir = join(host, 'mnt')
  mkdirSync(dir)
  execFileSync('truncate', ['-s', `${sizeGiB}G`, img])
  execFileSync('mkfs.ext4', ['-q', '-F', ...(opts.inodes === undefined ? [] : ['-N', String(Math.ceil(opts.inodes))]), img])
  execFileSync('mount', ['-o', 'loop', img, dir])
  let done = false
  const cleanup = (): void => {
    if (done) return
    done = true
    try { execFileSync('umount', [dir]) } catch { execFileSync('umount', ['-l', dir]) }
    rmSync(host, { recursive: true, force: true })
  }
  process.once('exit', cleanup)
  return { dir, fresh: true, cleanup }
}

export interface BenchNodeOptions {
  /** Folders to share as [dir, id] (default: one folder <base>/<name>/share as 'bench'); node.dir is the first. */
  shares?: Array<[dir: string, id: string]>
  /** host:port to listen on (default 127.0.0.1:0): a fixed port lets a peer dial before this node listens. */
  listen?: string
  /** How long to wait for the `listening` event (a node may scan its folders before it listens). */
  listenMs?: number
  /** Called right after spawn, before any output is read: listeners added here miss no event. */
  onSpawn?: (node: BenchNode) => void
}

export async function startBenchNode (base: string, name: string, peers: string[] = [], opts: BenchNodeOptions = {}): Promise<BenchNode> {
  const shares = opts.shares ?? [[join(base, name, 'share'), 'bench']]
  for (const [d] of shares) mkdirSync(d, { recursive: true })
  const dir = shares[0]![0]
  const args = [BIN, 'share', ...shares.map(([d, id]) => `${d}=${id}`), '--listen', opts.listen ?? '127.0.0.1:0', '--secret', SECRET, '--state', join(base, name, 'state'), '--json']
  for (const p of peers) args.push('--peer', p)
  // SWARM_PROF=<dir> writes a CPU profile of every node process there.
  if (process.env.SWARM_PROF !== undefined) args.unshift('--cpu-prof', '--cpu-prof-dir=' + process.env.SWARM_PROF)
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const listeners = new Map<string, Set<(e: Record<string, unknown>) => void>>()
  createInterface({ input: proc.stdout! }).on('line', line => {
    // Lines start {"event":"<name>" (daemon.ts): events nobody listens to are not parsed, which
    // matters when a node indexing a million files prints a file-updated line for each.
    const ev = EVENT_NAME.exec(line)?.[1]
    if (ev !== undefined && (listeners.get(ev)?.size ?? 0) === 0) return
    let e: Record<string, unknown>
    try { e = JSON.parse(line) } catch { return }
    for (const fn of listeners.get(e.event as string) ?? []) fn(e)
  })
  const node: BenchNode = {
    proc, dir, address: '', peerId: '',
    on (event, fn) { if (!listeners.has(event)) listeners.set(event, new Set()); listeners.get(event)!.add(fn) },
    off (event, fn) { listeners.get(event)?.delete(fn) },
    waitEvent (event, pred = () => true, ms = 120_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => { node.off(event, fn); reject(new Error(`${name}: no ${event} within ${ms} ms`)) }, ms)
        const fn = (e: Record<string, unknown>) => { if (pred(e)) { clearTimeout(t); node.off(event, fn); resolve(e) } }
        node.on(event, fn)
      })
    },
    async stop () {
      if (proc.exitCode !== null) return
      const exited = new Promise(r => proc.once('exit', r))
      proc.kill('SIGTERM')
      await exited
    }
  }
  opts.onSpawn?.(node)
  const l = await node.waitEvent('listening', undefined, opts.listenMs ?? 30_000)
  node.address = l.address as string
  node.peerId = l.peerId as string
  return node
}

const EVENT_NAME = /^\{"event":"([^"]+)"/

export function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

export function print (name: string, value: number | string): void {
  console.log(`${name}: ${typeof value === 'number' ? Number(value.toFixed(2)) : value}`)
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** user+system CPU seconds a live process has used so far (Linux /proc) */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / CLK_TCK
}
const CLK_TCK = 100
