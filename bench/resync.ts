// resync: the issue's "100,000-file share on two nodes, one stopped, 1 % of files changed on the
// other (and a few on both), restart: converged in ≤ 2 s, bytes exchanged ≤ 1.1× the changed
// bytes plus metadata linear in the changed entries".
// Both nodes run in this process through the library API (real QUIC on loopback, real folders;
// as root each on its own fresh ext4 image, bench/lib.ts freshBenchDir). B replicates A's tree,
// stops; A rewrites, deletes and adds files while B rewrites a few of the same files (conflicts);
// B restarts on the same state and port. The resync's bytes are B's connection counters
// (peerTraffic): the connection is new after the restart, so they hold exactly the resync.
// Usage: node dist/bench/resync.js [--files N] [--folders F] [--changed-pct P] [--both K] [--size-min B] [--size-max B]
import { parseArgs } from 'node:util'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { randomFillSync } from 'node:crypto'
import { startNode, type SwarmNode } from '../src/index.js'
import { freshBenchDir, print } from './lib.js'

const SECRET = 'bench-secret-0123456789'
const SHARE = 'bench'
/** Deleted and added files on A, each as a fraction of the tree (beside the --changed-pct rewrites). */
const DELETED_FRACTION = 0.001
const ADDED_FRACTION = 0.001
/** A's edits count as indexed once its root has not moved for this long (and every new version is hashed). */
const QUIET_MS = 300
/** Waits scale with the tree: a fixed part plus so much per file (first replica ~0.2–0.5 ms per file here). */
const WAIT_BASE_MS = 60_000
const REPLICA_MS_PER_FILE = 3
const RESCAN_MS_PER_FILE = 1
const STOP_MS = 30_000
const POLL_MS = 5
/** After convergence, trailing acks and root announcements still belong to the resync: read the counters this much later. */
const SETTLE_MS = 1000
/** Image per file (a 4 KiB block, its inode, its index row), the fixed part (journal, state); spare inodes for state and new files. */
const IMAGE_KIB_PER_FILE = 8
const IMAGE_BASE_GIB = 2
const SPARE_INODES = 20_000
const GOAL_CONVERGED_S = 2
const GOAL_BYTES_RATIO = 1.1

const { values: opt } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    folders: { type: 'string', default: '1000' },
    'changed-pct': { type: 'string', default: '1' },
    both: { type: 'string', default: '5' },
    'size-min': { type: 'string', default: '1024' },
    'size-max': { type: 'string', default: '4096' }
  }
})
const FILES = Number(opt.files)
const FOLDERS = Number(opt.folders)
const CHANGED_PCT = Number(opt['changed-pct'])
const BOTH = Number(opt.both)
const SIZE_MIN = Number(opt['size-min'])
const SIZE_MAX = Number(opt['size-max'])
const N_CHANGED = Math.round(FILES * CHANGED_PCT / 100)
const N_DELETED = Math.round(FILES * DELETED_FRACTION)
const N_ADDED = Math.round(FILES * ADDED_FRACTION)
if (![FILES, FOLDERS, SIZE_MIN, SIZE_MAX].every(v => Number.isInteger(v) && v >= 1) || SIZE_MAX < SIZE_MIN) throw new Error('bad --files/--folders/--size-min/--size-max')
if (!Number.isInteger(BOTH) || BOTH < 0 || BOTH > N_CHANGED) throw new Error('--both must be between 0 and the number of changed files')
if (N_CHANGED + N_DELETED > FILES) throw new Error('--changed-pct too high')

const PER_FOLDER = Math.ceil(FILES / FOLDERS)
/** Folders actually made: --folders rounded so every folder holds PER_FOLDER files (the last fewer). */
const FOLDER_COUNT = Math.ceil(FILES / PER_FOLDER)
const pathOf = (i: number): string => `d${Math.floor(i / PER_FOLDER)}/f${i}.bin`
const buf = Buffer.allocUnsafe(SIZE_MAX)
/** Writes fresh random content of a random size in range; plain sync calls: no promise per file at 100 k files. */
function writeRandom (path: string): Buffer {
  const size = SIZE_MIN + Math.floor(Math.random() * (SIZE_MAX - SIZE_MIN + 1))
  randomFillSync(buf, 0, size)
  const fd = openSync(path, 'w')
  writeSync(fd, buf, 0, size)
  closeSync(fd)
  return Buffer.from(buf.subarray(0, size))
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
async function waitFor (what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(POLL_MS)
  }
}
function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  return Promise.race([p, timeout]).finally(() => clearTimeout(t))
}

const share = (n: SwarmNode) => n.shares.get(SHARE)!
const rootHex = (n: SwarmNode): string => share(n).root().toString('hex')
/** The test helpers' settled(): same root on both, nothing pending, and no start sweep still running. */
const settled = (a: SwarmNode, b: SwarmNode): boolean =>
  rootHex(a) === rootHex(b) && share(a).pendingCount() === 0 && share(b).pendingCount() === 0 && !share(a).isScanning && !share(b).isScanning

/** Every file below `dir` outside .swarm, by relative path (folders end in '/'). */
function listTree (dir: string, rel = '', out: string[] = []): string[] {
  for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? d.name : `${rel}/${d.name}`
    if (r === '.swarm') continue
    if (d.isDirectory()) { out.push(r + '/'); listTree(dir, r, out) } else out.push(r)
  }
  return out
}
/** The test helpers' sameTree(), one file at a time so 100 k files are not all in memory at once. */
function sameTree (a: string, b: string): boolean {
  const x = listTree(a)
  const y = new Set(listTree(b))
  return x.length === y.size && x.every(p => y.has(p) && (p.endsWith('/') || readFileSync(join(a, p)).equals(readFileSync(join(b, p)))))
}
/** The conflict copy of `path` in `dir` (conflictName(): <stem>.sync-conflict-<stamp>-<by><ext>), or undefined. */
function conflictCopy (dir: string, path: string): string | undefined {
  const slash = path.lastIndexOf('/')
  const stem = path.slice(slash + 1, path.lastIndexOf('.'))
  const name = readdirSync(join(dir, path.slice(0, slash))).find(n => n.startsWith(`${stem}.sync-conflict-`))
  return name === undefined ? undefined : `${path.slice(0, slash)}/${name}`
}

const imageGiB = Math.max(4, IMAGE_BASE_GIB + Math.ceil(FILES * IMAGE_KIB_PER_FILE / 2 ** 20))
const inodes = FILES + FOLDERS + SPARE_INODES
const imgA = freshBenchDir(imageGiB, { inodes })
const imgB = freshBenchDir(imageGiB, { inodes })
let a: SwarmNode | null = null
let b: SwarmNode | null = null
/** Errors only: each conflict logs a warning, and those are expected here. */
const logErrors = (name: string, n: SwarmNode): void => { n.on('log', e => { if (e.level === 'error') console.error(`${name} error: ${e.message}`) }) }
try {
  const dirA = join(imgA.dir, 'share')
  const dirB = join(imgB.dir, 'share')
  const stateB = join(imgB.dir, 'state')
  mkdirSync(dirB, { recursive: true })
  for (let f = 0; f < FOLDER_COUNT; f++) mkdirSync(join(dirA, `d${f}`), { recursive: true })
  for (let i = 0; i < FILES; i++) writeRandom(join(dirA, pathOf(i)))
  print('fresh_fs', imgA.fresh ? 'yes' : 'no (host filesystem)')

  // 1–2. A indexes its tree; B starts empty and replicates all of it.
  let t0 = performance.now()
  a = await startNode({ stateDir: join(imgA.dir, 'state'), secret: SECRET, listen: '127.0.0.1:0', shares: [{ dir: dirA, id: SHARE }] })
  logErrors('A', a)
  await within(a.scanned(), WAIT_BASE_MS + FILES * RESCAN_MS_PER_FILE, 'A indexing its tree')
  print('index_s', (performance.now() - t0) / 1000)
  // B listens on a port the system picks, then on that same port again after its restart.
  let bPort = 0
  const startB = () => startNode({ stateDir: stateB, secret: SECRET, listen: `127.0.0.1:${bPort}`, peers: [a!.address], shares: [{ dir: dirB, id: SHARE }] })
  t0 = performance.now()
  b = await startB()
  bPort = b.port
  const nA = a
  let nB: SwarmNode = b
  await waitFor('B replicating the tree', () => settled(nA, nB) && share(nB).entryCount === share(nA).entryCount, WAIT_BASE_MS + FILES * REPLICA_MS_PER_FILE)
  print('replicate_s', (performance.now() - t0) / 1000)

  // 3. B stops; A rewrites, deletes and adds files; B rewrites BOTH of A's rewritten files differently.
  await within(b.stop(), STOP_MS, 'stopping B')
  b = null
  const picks = Array.from({ length: FILES }, (_, i) => i)
  for (let i = 0; i < N_CHANGED + N_DELETED; i++) {   // a partial Fisher–Yates shuffle: distinct random files
    const j = i + Math.floor(Math.random() * (FILES - i))
    ;[picks[i], picks[j]] = [picks[j]!, picks[i]!]
  }
  const rewritten = picks.slice(0, N_CHANGED).map(pathOf)
  const deleted = picks.slice(N_CHANGED, N_CHANGED + N_DELETED).map(pathOf)
  const added = Array.from({ length: N_ADDED }, (_, n) => `d${n % FOLDER_COUNT}/new${n}.bin`)
  const expectA = new Map<string, Buffer>()
  const hashedBefore = share(a).stats.filesHashed
  let changedBytes = 0
  for (const p of [...rewritten, ...added]) { const data = writeRandom(join(dirA, p)); expectA.set(p, data); changedBytes += data.length }
  for (const p of deleted) unlinkSync(join(dirA, p))
  const conflicts = rewritten.slice(0, BOTH)
  const expectB = new Map<string, Buffer>()
  for (const p of conflicts) { const data = writeRandom(join(dirB, p)); expectB.set(p, data); changedBytes += data.length }
  const changedEntries = rewritten.length + deleted.length + added.length + conflicts.length
  let lastRoot = rootHex(a)
  let movedAt = Date.now()
  await waitFor('A indexing its edits', () => {
    const r = rootHex(nA)
    if (r !== lastRoot) { lastRoot = r; movedAt = Date.now() }
    return share(nA).stats.filesHashed >= hashedBefore + rewritten.length + added.length && share(nA).pendingCount() === 0 && Date.now() - movedAt >= QUIET_MS
  }, WAIT_BASE_MS + FILES * RESCAN_MS_PER_FILE)
  print('changed_bytes', changedBytes)
  print('changed_entries', changedEntries)

  // 4. B restarts on the same state and port; every figure below counts from this call.
  t0 = performance.now()
  b = await within(startB(), WAIT_BASE_MS, 'restarting B')
  const listeningMs = performance.now() - t0
  nB = b
  logErrors('B', b)
  let connections = 0
  b.on('peer-connected', () => { connections++ })
  const scanS = b.scanned().then(() => (performance.now() - t0) / 1000)
  const copiesPresent = (): boolean => conflicts.every(p => conflictCopy(dirA, p) !== undefined && conflictCopy(dirB, p) !== undefined)
  await waitFor('the resync converging', () => settled(nA, nB) && copiesPresent(), WAIT_BASE_MS + FILES * RESCAN_MS_PER_FILE)
  const convergedS = (performance.now() - t0) / 1000
  const bytesAt = (): number => { const t = nB.peerTraffic().find(p => p.peerId === nA.peerId); return t === undefined ? NaN : t.sent + t.received }
  const convergedBytes = bytesAt()
  await sleep(SETTLE_MS)
  const resyncBytes = bytesAt()
  print('resync_listening_ms', listeningMs)
  print('resync_scan_s', await within(scanS, WAIT_BASE_MS, 'B scan'))
  print('resync_converged_s', convergedS)
  print('goal_converged_s', GOAL_CONVERGED_S)
  print('resync_connections', connections)
  print('resync_bytes_at_converged', convergedBytes)
  print('resync_bytes', resyncBytes)
  print('resync_bytes_ratio', Number((resyncBytes / changedBytes).toFixed(3)))
  print('goal_bytes_ratio', GOAL_BYTES_RATIO)
  print('resync_bytes_per_entry_overhead', (resyncBytes - changedBytes) / changedEntries)
  // The goal allows 1.1× the changed bytes plus metadata per entry: this is the metadata per entry that would take.
  print('resync_bytes_per_entry_beyond_goal_ratio', (resyncBytes - GOAL_BYTES_RATIO * changedBytes) / changedEntries)

  // 5. Same trees; deleted files gone; A's versions everywhere but the conflicts, where both versions survive (one at the path, one as the copy).
  const problems: string[] = []
  if (!sameTree(dirA, dirB)) problems.push('trees differ')
  for (const p of deleted) if (existsSync(join(dirB, p))) problems.push(`${p} not deleted`)
  for (const [p, data] of expectA) if (!conflicts.includes(p) && !readFileSync(join(dirB, p)).equals(data)) problems.push(`${p} is not A's version`)
  for (const p of conflicts) {
    const copy = conflictCopy(dirB, p)
    const got = [readFileSync(join(dirB, p)), copy === undefined ? Buffer.alloc(0) : readFileSync(join(dirB, copy))]
    const want = [expectA.get(p)!, expectB.get(p)!]
    if (!want.every(w => got.some(g => g.equals(w)))) problems.push(`${p}: the two versions are not both kept`)
  }
  for (const msg of problems.slice(0, 10)) console.error(msg)
  print('correct', problems.length === 0 ? 'yes' : 'no')
  process.exitCode = problems.length === 0 ? 0 : 1
} finally {
  for (const n of [b, a]) if (n !== null) await within(n.stop(), STOP_MS, 'stopping a node').catch(err => console.error(String(err)))
  imgB.cleanup()
  imgA.cleanup()
}
