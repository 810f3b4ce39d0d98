// Shared plumbing of the fault benches (fault-kill, fault-partition, fault-disk): `swarm share`
// nodes as real child processes (optionally inside a network namespace) with their --json events,
// waits with deadlines, sha256 tree snapshots, Syncthing conflict-name parsing, the checks every
// fault bench makes (every visible file is a version someone wrote; trees equal), and cleanup that
// runs on every exit path. Only processes this bench started are ever signalled, by their own pid.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { createSocket } from 'node:dgram'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export { print } from './lib.js'

export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
export const SHARE_ID = 'fault'

export type Ev = Record<string, unknown> & { event: string }

/** When this bench started: node log lines and the benches' own records are stamped relative to it. */
export const T0 = Date.now()
/** Seconds since this bench started, for node log lines. */
const stamp = () => `+${((Date.now() - T0) / 1000).toFixed(3)}`

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms))
/** Blocks the thread (cleanup paths that must stay synchronous). */
export const sleepSync = (ms: number) => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }
export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
export const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1))
export const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!
export const randomContent = (size: number): Buffer => randomBytes(size)

// ---- command-line flags ------------------------------------------------------------------------

/** `--name value` / `--name=value` / `--flag`; numbers parsed by the caller. */
export function flag (name: string): string | undefined {
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === `--${name}`) return argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[i + 1] : 'true'
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3)
  }
  return undefined
}
export const numFlag = (name: string, dflt: number): number => { const v = flag(name); return v === undefined ? dflt : Number(v) }
export const boolFlag = (name: string): boolean => flag(name) !== undefined

// ---- cleanup on every exit path ----------------------------------------------------------------

const cleanups: Array<() => void> = []
let cleaned = false

/** Registers a synchronous cleanup step; steps run once, last registered first. */
export function onCleanup (fn: () => void): void { cleanups.push(fn) }

export function runCleanups (): void {
  if (cleaned) return
  cleaned = true
  for (const fn of cleanups.reverse()) { try { fn() } catch (err) { console.error(`cleanup: ${(err as Error).message}`) } }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => { console.error(`fault bench: ${sig}, cleaning up`); runCleanups(); process.exit(130) })
}
process.on('uncaughtException', err => { console.error(err); runCleanups(); process.exit(2) })
process.on('unhandledRejection', err => { console.error(err); runCleanups(); process.exit(2) })
process.on('exit', () => runCleanups())

export function workDir (prefix: string): string {
  return fs.mkdtempSync(join(tmpdir(), `swarm-${prefix}-`))
}

export function requireRoot (what: string): void {
  if (process.getuid?.() !== 0) { console.error(`${what} needs root`); process.exit(2) }
}

// ---- ports ---------------------------------------------------------------------------------------

/** A UDP port free on 127.0.0.1 right now (bound, read, released). */
export async function freeUdpPort (): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(0, '127.0.0.1', () => resolve()) })
  const port = s.address().port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

// ---- nodes ---------------------------------------------------------------------------------------

export interface NodeSpec {
  name: string
  dir: string          // the shared folder
  state: string        // --state
  listen: string       // host:port
  peers: string[]
  secretFile: string
  netns?: string       // run inside `ip netns exec <netns>`
  extraArgs?: string[] // more `swarm share` flags
  logFile: string      // every stdout/stderr line of every incarnation is appended here
}

/**
 * One node across restarts. Event bookkeeping (last in-sync root, last change time, log counts)
 * lives here; `start()` spawns a new `swarm share` process, `kill()` sends a signal to its pid.
 */
export class FaultNode {
  proc: ChildProcess | null = null
  peerId = ''
  address = ''
  starts = 0
  /** Last in-sync root of the current incarnation, and when it came. */
  inSyncRoot: string | null = null
  inSyncAt = 0
  /** When this node last reported a change (file-updated / file-deleted / conflict). */
  changeAt = 0
  readonly logCounts = { error: 0, warn: 0, info: 0 }
  readonly errors: string[] = []
  conflicts = 0
  /** Exits we did not cause (code or signal), with the last stderr lines. */
  readonly unexpectedExits: string[] = []
  private expectingExit = false
  private readonly listeners = new Set<(e: Ev) => void>()
  private readonly log: fs.WriteStream

  constructor (readonly spec: NodeSpec) {
    fs.mkdirSync(spec.dir, { recursive: true })
    fs.mkdirSync(spec.state, { recursive: true })
    this.log = fs.createWriteStream(spec.logFile, { flags: 'a' })
    onCleanup(() => this.killSync())
  }

  get name (): string { return this.spec.name }
  get alive (): boolean { return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null }
  get pid (): number | undefined { return this.proc?.pid }

  onEvent (fn: (e: Ev) => void): () => void { this.listeners.add(fn); return () => this.listeners.delete(fn) }

  /** Spawns the process and waits for its `listening` event. */
  async start (timeoutMs = 30_000): Promise<void> {
    const args = [BIN, 'share', `${this.spec.dir}=${SHARE_ID}`, '--listen', this.spec.listen, '--secret-file', this.spec.secretFile, '--state', this.spec.state, '--json']
    for (const p of this.spec.peers) args.push('--peer', p)
    args.push(...(this.spec.extraArgs ?? []))
    // SWARM_PROF=<dir> writes a CPU profile of every node process there (as bench/lib.ts does).
    if (process.env.SWARM_PROF !== undefined) args.unshift('--cpu-prof', '--cpu-prof-dir=' + process.env.SWARM_PROF)
    const [cmd, argv] = this.spec.netns !== undefined
      ? ['ip', ['netns', 'exec', this.spec.netns, process.execPath, ...args]]
      : [process.execPath, args]
    this.starts++
    this.inSyncRoot = null
    this.expectingExit = false
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    const n = this.starts
    const stderrTail: string[] = []
    this.log.write(`# ${new Date().toISOString()} start #${n} pid ${proc.pid}\n`)
    createInterface({ input: proc.stderr! }).on('line', line => {
      this.log.write(`[${n} ${stamp()} stderr] ${line}\n`)
      stderrTail.push(line); if (stderrTail.length > 20) stderrTail.shift()
    })
    createInterface({ input: proc.stdout! }).on('line', line => {
      this.log.write(`[${n} ${stamp()}] ${line}\n`)
      let e: Ev
      try { e = JSON.parse(line) } catch { return }
      if (this.proc !== proc) return
      this.record(e)
      for (const fn of [...this.listeners]) fn(e)
    })
    proc.on('exit', (code, signal) => {
      this.log.write(`# ${new Date().toISOString()} exit #${n} code ${code} signal ${signal}\n`)
      if (!this.expectingExit && this.proc === proc) this.unexpectedExits.push(`${this.name} #${n} exited code ${code} signal ${signal}: ${stderrTail.slice(-5).join(' | ')}`)
    })
    const exited = new Promise<Ev>((resolve) => proc.once('exit', (code, signal) => resolve({ event: 'exit', code, signal })))
    const l = await Promise.race([this.waitEvent('listening', undefined, timeoutMs), exited])
    if (l.event === 'exit') throw new Error(`${this.name}: exited before listening (code ${String(l.code)} signal ${String(l.signal)}); see ${this.spec.logFile}`)
    this.peerId = l.peerId as string
    this.address = l.address as string
  }

  private record (e: Ev): void {
    switch (e.event) {
      case 'in-sync': this.inSyncRoot = e.root as string; this.inSyncAt = Date.now(); break
      case 'file-updated': case 'file-deleted': this.changeAt = Date.now(); break
      case 'conflict': this.changeAt = Date.now(); this.conflicts++; break
      case 'log': {
        const level = e.level as 'error' | 'warn' | 'info'
        if (level in this.logCounts) this.logCounts[level]++
        if (level === 'error' && this.errors.length < 200) this.errors.push(String(e.message))
        break
      }
    }
  }

  waitEvent (event: string, pred: (e: Ev) => boolean = () => true, ms = 60_000): Promise<Ev> {
    return new Promise((resolve, reject) => {
      const off = this.onEvent(e => { if (e.event === event && pred(e)) { clearTimeout(t); off(); resolve(e) } })
      const t = setTimeout(() => { off(); reject(new Error(`${this.name}: no ${event} within ${ms} ms`)) }, ms)
    })
  }

  /** Sends `sig` to this node's own pid and waits for it to exit. */
  async kill (sig: NodeJS.Signals = 'SIGKILL', ms = 15_000): Promise<void> {
    const proc = this.proc
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return
    this.expectingExit = true
    const exited = new Promise(resolve => proc.once('exit', resolve))
    proc.kill(sig)
    const t = setTimeout(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') }, ms)
    await exited
    clearTimeout(t)
  }

  /** Clean stop (SIGTERM, SIGKILL after `ms`). */
  stop (ms = 15_000): Promise<void> { return this.kill('SIGTERM', ms) }

  killSync (): void {
    const proc = this.proc
    if (proc !== null && proc.exitCode === null && proc.signalCode === null) { this.expectingExit = true; proc.kill('SIGKILL') }
  }
}

/** Resolves when `cond()` holds (polled every `everyMs`), or false after `ms`. */
export async function waitUntil (cond: () => boolean | Promise<boolean>, ms: number, everyMs = 250): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return true
    if (Date.now() >= end) return false
    await sleep(everyMs)
  }
}

// ---- trees -----------------------------------------------------------------------------------------

export interface TreeItem { type: 'file' | 'dir' | 'other', hash: string, size: number }
export type Tree = Map<string, TreeItem>

const hashCache = new Map<string, { key: string, hash: string }>()

/**
 * Every file and folder under `root` (`.swarm/` at the top skipped), files with their sha256.
 * Synchronous on purpose: no writer step of the bench can interleave with a snapshot. Hashes are
 * cached by (inode, size, mtime ns, ctime ns), so an unchanged file is read once.
 */
export function snapshotTree (root: string): Tree {
  const out: Tree = new Map()
  const walk = (rel: string) => {
    let names: string[]
    try { names = fs.readdirSync(rel === '' ? root : join(root, rel)) } catch { return }
    for (const name of names.sort()) {
      const r = rel === '' ? name : `${rel}/${name}`
      if (r === '.swarm') continue
      const abs = join(root, r)
      let st: fs.BigIntStats
      try { st = fs.lstatSync(abs, { bigint: true }) } catch { continue }
      if (st.isDirectory()) { out.set(r, { type: 'dir', hash: '', size: 0 }); walk(r); continue }
      if (!st.isFile()) { out.set(r, { type: 'other', hash: '', size: 0 }); continue }
      const key = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
      const c = hashCache.get(abs)
      if (c !== undefined && c.key === key) { out.set(r, { type: 'file', hash: c.hash, size: Number(st.size) }); continue }
      let data: Buffer
      try { data = fs.readFileSync(abs) } catch { continue }
      const hash = sha256(data)
      hashCache.set(abs, { key, hash })
      out.set(r, { type: 'file', hash, size: data.length })
    }
  }
  walk('')
  return out
}

export function treeKey (t: Tree): string {
  return sha256([...t].map(([p, i]) => `${p}\0${i.type}\0${i.hash}`).join('\n'))
}

/** Paths where the trees do not all hold the same thing (missing somewhere, or different type/content). */
export function divergedPaths (trees: Tree[]): string[] {
  const all = new Set<string>()
  for (const t of trees) for (const p of t.keys()) all.add(p)
  const out: string[] = []
  for (const p of [...all].sort()) {
    const items = trees.map(t => t.get(p))
    const first = items[0]
    if (items.some(i => i === undefined || first === undefined || i.type !== first.type || i.hash !== first.hash)) out.push(p)
  }
  return out
}

// ---- conflict names ----------------------------------------------------------------------------------

// A taken copy name gets -2, -3… after the node id (src/model/paths.ts numberedName).
const CONFLICT_RE = /^(.*)\.sync-conflict-(\d{8})-(\d{6})-([1-9A-HJ-NP-Za-km-z]+)(?:-\d+)?(\.[^.]*)?$/

/** `dir/name.sync-conflict-YYYYMMDD-HHMMSS-<node>.ext` → `{ original: 'dir/name.ext', by, stamp }`, else null. */
export function parseConflict (path: string): { original: string, by: string, stamp: string } | null {
  const slash = path.lastIndexOf('/')
  const dir = slash < 0 ? '' : path.slice(0, slash + 1)
  const m = CONFLICT_RE.exec(path.slice(slash + 1))
  if (m === null || m[1] === '') return null
  return { original: dir + m[1] + (m[5] ?? ''), by: m[4]!, stamp: `${m[2]}-${m[3]}` }
}

/** The path a (possibly repeated) conflict copy descends from; the path itself when it is no copy. */
export function originalPath (path: string): string {
  let p = path
  for (let c = parseConflict(p); c !== null; c = parseConflict(p)) p = c.original
  return p
}

export const isConflictCopy = (path: string) => parseConflict(path) !== null

// ---- what was written ----------------------------------------------------------------------------------

/** path → every content hash the bench ever put at that path (by write, or by rename into it). */
export class VersionBook {
  readonly byPath = new Map<string, Set<string>>()
  count = 0
  add (path: string, hash: string): void {
    let s = this.byPath.get(path)
    if (s === undefined) { s = new Set(); this.byPath.set(path, s) }
    if (!s.has(hash)) { s.add(hash); this.count++ }
  }
  has (path: string, hash: string): boolean { return this.byPath.get(path)?.has(hash) === true }
  /** A file at `path` with `hash` is legitimate: a version written at it, or a conflict copy of one. */
  legit (path: string, hash: string): boolean {
    if (this.has(path, hash)) return true
    for (let c = parseConflict(path); c !== null; c = parseConflict(c.original)) if (this.has(c.original, hash)) return true
    return false
  }
}

export interface Bad { node: string, path: string, why: string }

/** Check (a): every file in `tree` is byte-equal to a version written at its path or is a conflict copy of one. */
export function badFiles (node: string, tree: Tree, book: VersionBook): Bad[] {
  const out: Bad[] = []
  for (const [p, i] of tree) {
    if (i.type === 'dir') continue
    if (i.type === 'other') { out.push({ node, path: p, why: 'not a regular file' }); continue }
    if (book.legit(p, i.hash)) continue
    const orig = originalPath(p)
    const why = !book.byPath.has(orig) ? `unknown path (${i.size} bytes)` : `content matches no version written at ${orig} (${i.size} bytes, sha256 ${i.hash.slice(0, 12)})`
    out.push({ node, path: p, why })
  }
  return out
}

/** Is version `hash` of `path` in `tree`, at the path itself or as a conflict copy of it? */
export function holds (tree: Tree, path: string, hash: string): boolean {
  if (tree.get(path)?.hash === hash) return true
  for (const [p, i] of tree) if (i.type === 'file' && i.hash === hash && p !== path && originalPath(p) === path) return true
  return false
}

/** Atomic write the way careful applications do it: temp file on the same filesystem, then rename. */
export function atomicWrite (staging: string, target: string, data: Buffer): void {
  fs.mkdirSync(dirname(target), { recursive: true })
  const tmp = join(staging, `w-${process.pid}-${randomBytes(6).toString('hex')}`)
  fs.writeFileSync(tmp, data)
  fs.renameSync(tmp, target)
}

/** Files (not folders, not conflict copies) of a share as the writer sees them right now. */
export function writerFiles (root: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    let ds: fs.Dirent[]
    try { ds = fs.readdirSync(rel === '' ? root : join(root, rel), { withFileTypes: true }) } catch { return }
    for (const d of ds) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`
      if (r === '.swarm') continue
      if (d.isDirectory()) walk(r)
      else if (d.isFile() && !isConflictCopy(r)) out.push(r)
    }
  }
  walk('')
  return out
}

/**
 * Polls until every node's folder holds the same tree and every node's last in-sync root (of its
 * current process) is the same and came after its last reported change, on two polls in a row.
 */
export async function waitConverged (nodes: FaultNode[], ms: number): Promise<{ converged: boolean, seconds: number, trees: Tree[] }> {
  const t0 = Date.now()
  let lastKey = ''
  let trees: Tree[] = []
  const ok = await waitUntil(() => {
    trees = nodes.map(n => snapshotTree(n.spec.dir))
    const keys = trees.map(treeKey)
    const roots = nodes.map(n => n.inSyncRoot)
    const fresh = nodes.every(n => n.alive && n.inSyncRoot !== null && n.inSyncAt >= n.changeAt)
    const same = keys.every(k => k === keys[0]) && roots.every(r => r === roots[0])
    const key = keys[0] + (roots[0] ?? '')
    const stable = same && fresh && key === lastKey
    lastKey = same && fresh ? key : ''
    return stable
  }, ms, 500)
  return { converged: ok, seconds: (Date.now() - t0) / 1000, trees }
}

export function runSync (cmd: string, args: string[], quiet = false): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'pipe'] })
  } catch (err) {
    if (quiet) return ''
    const e = err as { stderr?: string, message: string }
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`)
  }
}

// ---- self-test of the checks ---------------------------------------------------------------------------

function expect (cond: boolean, what: string): void {
  if (!cond) throw new Error(`selftest failed: ${what}`)
  console.log(`selftest ok: ${what}`)
}

/**
 * The checks on made-up folders: a clean pair passes; a truncated file, a foreign file, a file
 * with content never written, a missing file and a conflict copy of unknown content are each caught.
 */
export function selftestChecks (): void {
  const base = workDir('fault-selftest')
  try {
    expect(parseConflict('d/a.sync-conflict-20250102-030405-AbCd1234.txt')?.original === 'd/a.txt', 'conflict name with extension parses')
    expect(parseConflict('noext.sync-conflict-20250102-030405-AbCd1234')?.original === 'noext', 'conflict name without extension parses')
    expect(parseConflict('d/a.sync-conflict-20250102-030405-AbCd1234-2.txt')?.original === 'd/a.txt', 'numbered conflict name parses')
    expect(originalPath('x.tar.sync-conflict-20250102-030405-AbCd1234.sync-conflict-20250102-030406-Zz9.gz') === 'x.tar.gz', 'conflict copy of a conflict copy parses')
    expect(parseConflict('a.txt') === null && parseConflict('a.sync-conflict-2025-x.txt') === null, 'plain names are not conflict copies')
    const book = new VersionBook()
    const dirs = ['n0', 'n1'].map(n => join(base, n))
    const v1 = randomContent(40_000); const v2 = randomContent(70_000); const big = randomContent(3 << 20)
    book.add('a.bin', sha256(v1)); book.add('a.bin', sha256(v2)); book.add('sub/big.dat', sha256(big))
    for (const d of dirs) {
      fs.mkdirSync(join(d, 'sub'), { recursive: true }); fs.mkdirSync(join(d, '.swarm', 'tmp'), { recursive: true })
      fs.writeFileSync(join(d, 'a.bin'), v2)
      fs.writeFileSync(join(d, 'a.sync-conflict-20250102-030405-AbCd1234.bin'), v1)
      fs.writeFileSync(join(d, 'sub', 'big.dat'), big)
      fs.writeFileSync(join(d, '.swarm', 'tmp', 'junk.part'), big.subarray(0, 1000))   // ignored: .swarm/
    }
    let trees = dirs.map(snapshotTree)
    expect(trees.every(t => badFiles('n', t, book).length === 0), 'clean folders: no bad file')
    expect(divergedPaths(trees).length === 0, 'clean folders: no diverged path')
    expect(holds(trees[0]!, 'a.bin', sha256(v1)) && holds(trees[0]!, 'a.bin', sha256(v2)), 'versions found at path and as conflict copy')
    // Corruptions, each on n1 only.
    fs.truncateSync(join(dirs[1]!, 'sub', 'big.dat'), 1 << 20)                                          // partial
    fs.writeFileSync(join(dirs[1]!, 'stray.bin'), 'x')                                                  // unknown path
    fs.writeFileSync(join(dirs[1]!, 'a.sync-conflict-20250102-030405-Qq.bin'), randomContent(10))     // conflict copy of nothing written
    fs.rmSync(join(dirs[1]!, 'a.sync-conflict-20250102-030405-AbCd1234.bin'))                          // lost conflict copy
    trees = dirs.map(snapshotTree)
    const bad = badFiles('n1', trees[1]!, book).map(b => b.path).sort()
    expect(JSON.stringify(bad) === JSON.stringify(['a.sync-conflict-20250102-030405-Qq.bin', 'stray.bin', 'sub/big.dat']), `corrupt files caught: ${bad.join(', ')}`)
    expect(!holds(trees[1]!, 'a.bin', sha256(v1)), 'lost version caught')
    const div = divergedPaths(trees)
    expect(div.length === 4, `diverged paths caught: ${div.join(', ')}`)
    // Same size, one byte flipped, same mtime restored: the hash cache must not hide it.
    const p = join(dirs[0]!, 'a.bin'); const st = fs.statSync(p); const flipped = Buffer.from(v2); flipped[123] ^= 1
    fs.writeFileSync(p, flipped); fs.utimesSync(p, st.atime, st.mtime)
    expect(badFiles('n0', snapshotTree(dirs[0]!), book).some(b => b.path === 'a.bin'), 'one flipped byte caught (same size and mtime)')
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
}
