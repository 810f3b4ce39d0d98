// scale: one node sharing a big tree (default 1,000,000 files of 1–4 KiB in 10,000 folders;
// --flat: 200,000 files in one folder). What the issue asks of that node, phase by phase:
//   1. first start, no index: how soon it listens, answers a peer and serves it a file, how long
//      its startup scan takes, its peak memory and CPU;
//   2. restart with nothing changed: the same, and how soon it is back in sync with the peer;
//   3. idle: CPU while nothing happens, and the inotify watches it holds;
//   4. latency: a 4 KiB file to the peer while the big tree is watched, against a pair of nodes
//      with only a small share measured right after in the same run.
// A shares the big tree (`big`) and a small folder (`lat`, one seed file); B, running with empty
// folders when A starts, shares `lat` only, or `big` too with --peer (a full replica: slow at a
// million files, so not the default). As root, A and B each get a fresh ext4 image
// (bench/lib.ts freshBenchDir) with inodes for every file. Timings are from A's spawn.
// Usage: node dist/bench/scale.js [--files N] [--folders F] [--flat] [--peer] [--idle-s S] [--tries T]
import { parseArgs } from 'node:util'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { freshBenchDir, startBenchNode, print, percentile, cpuSeconds, type BenchNode, type BenchNodeOptions } from './lib.js'
import { generateTree, statusMiB, inotifyWatches, freeUdpPort, timeOf, stopBounded, sleep, latencySamples } from './scale-lib.js'

const DEFAULT_FILES = 1_000_000
const DEFAULT_FLAT_FILES = 200_000
const DEFAULT_FOLDERS = 10_000
/** Waits scale with the tree: a fixed part plus so much per file (the issue measured ~70 µs per file to index). */
const WAIT_BASE_MS = 120_000
const INDEX_MS_PER_FILE = 1
const REPLICA_MS_PER_FILE = 5
/** Let the last acks, root announcements and tombstone collection finish before idle is measured. */
const SETTLE_MS = 3000
/** Image size per file (one 4 KiB block, its inode, its index row) and the fixed part (journal, state). */
const IMAGE_KIB_PER_FILE = 8
const IMAGE_BASE_GIB = 2
const MIN_IMAGE_GIB = 4
/** Spare inodes beyond one per file and folder (state dir, latency files, lost+found). */
const SPARE_INODES = 20_000
const SEED_FILE = 4096
const MIB = 2 ** 20

const { values: opt } = parseArgs({
  options: {
    files: { type: 'string' },
    folders: { type: 'string' },
    flat: { type: 'boolean', default: false },
    peer: { type: 'boolean', default: false },
    'idle-s': { type: 'string', default: '60' },
    tries: { type: 'string', default: '200' }
  }
})
const FLAT = opt.flat === true
const FILES = Number(opt.files ?? (FLAT ? DEFAULT_FLAT_FILES : DEFAULT_FILES))
const FOLDERS = FLAT ? 1 : Number(opt.folders ?? DEFAULT_FOLDERS)
const PEER = opt.peer === true
const IDLE_S = Number(opt['idle-s'])
const TRIES = Number(opt.tries)
for (const [k, v] of Object.entries({ files: FILES, folders: FOLDERS, 'idle-s': IDLE_S, tries: TRIES })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`)
}
const INDEX_WAIT_MS = WAIT_BASE_MS + FILES * INDEX_MS_PER_FILE
const REPLICA_WAIT_MS = WAIT_BASE_MS + FILES * REPLICA_MS_PER_FILE

const imageGiB = Math.max(MIN_IMAGE_GIB, Math.ceil(FILES * IMAGE_KIB_PER_FILE / MIB + IMAGE_BASE_GIB))
const inodes = FILES + FOLDERS + SPARE_INODES
const fsA = freshBenchDir(imageGiB, { inodes })
// B needs room for the tree only when it replicates it.
const fsB = PEER ? freshBenchDir(imageGiB, { inodes }) : freshBenchDir()
const nodes = new Set<BenchNode>()
// Ctrl-C or a kill of the bench: stop the nodes by their own pids; the images are unmounted by
// freshBenchDir's exit hook.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { for (const n of nodes) n.proc.kill('SIGKILL'); process.exit(130) })
}

const bigA = join(fsA.dir, 'a', 'big')
const latA = join(fsA.dir, 'a', 'lat')
const bigB = join(fsB.dir, 'b', 'big')
const latB = join(fsB.dir, 'b', 'lat')
const aShares: Array<[string, string]> = [[bigA, 'big'], [latA, 'lat']]
const bShares: Array<[string, string]> = PEER ? [[bigB, 'big'], [latB, 'lat']] : [[latB, 'lat']]

/** startBenchNode that registers the node for cleanup before it can fail, and lets `early` hook its events first. */
function start (base: string, name: string, peers: string[], o: BenchNodeOptions, early: (n: BenchNode) => void = () => {}): Promise<BenchNode> {
  return startBenchNode(base, name, peers, { ...o, onSpawn: n => { nodes.add(n); early(n) } })
}
const s = (ms: number) => ms / 1000
const always = () => true

try {
  console.log(`# ${FILES} files of 1–4 KiB in ${FOLDERS} folder(s)${PEER ? ', B replicates the big share' : ''}; ` +
    (fsA.fresh ? `A and B on fresh ext4 images (A: ${imageGiB} GiB, ${inodes} inodes)` : 'on the host temp dir (BENCH_FS=host or not root)'))
  const tGen = performance.now()
  const bytes = generateTree(bigA, FILES, FOLDERS)
  mkdirSync(latA, { recursive: true })
  // The seed lets B get a file from A even when B does not take the big share (first_serving_ms).
  writeFileSync(join(latA, 'seed.bin'), randomBytes(SEED_FILE))
  spawnSync('sync')   // the tree is on disk before A is timed, not in flight in the page cache
  print('files', FILES)
  print('folders', FOLDERS)
  print('share_mib', bytes / MIB)
  print('generate_s', s(performance.now() - tGen))

  // ---- 1. first start: no index. B runs already (its own start is not timed) and dials A's
  // port; A is told B's address too, so the first connection is whichever comes first, not B's
  // redial backoff (up to 5 s) waiting out a node that took long to listen.
  const port = await freeUdpPort()
  const aAddr = `127.0.0.1:${port}`
  let bConnected!: Promise<number>
  let bFirstFile!: Promise<number>
  let bSynced!: Promise<number>
  const b = await start(fsB.dir, 'b', [aAddr], { shares: bShares }, n => {
    bConnected = timeOf(n, 'peer-connected', always, INDEX_WAIT_MS)
    bFirstFile = timeOf(n, 'file-updated', always, INDEX_WAIT_MS)
    bSynced = timeOf(n, 'in-sync', e => e.share === (PEER ? 'big' : 'lat'), PEER ? REPLICA_WAIT_MS : INDEX_WAIT_MS)
  })
  let listen1!: Promise<number>
  let scanBig!: Promise<number>
  let scanEvent: Record<string, unknown> = {}
  const t0 = performance.now()
  const a1 = await start(fsA.dir, 'a', [b.address], { shares: aShares, listen: aAddr, listenMs: INDEX_WAIT_MS }, n => {
    listen1 = timeOf(n, 'listening', always, INDEX_WAIT_MS)
    scanBig = timeOf(n, 'scan-done', e => { if (e.share === 'big') scanEvent = e; return e.share === 'big' }, INDEX_WAIT_MS)
  })
  // A's `listening` line on stdout. Today's node binds its socket before the scan, but the line
  // (written from setImmediate) and any connection wait until the scan yields the event loop:
  // this is when A can act on its socket, not when the socket was bound.
  print('first_listening_ms', await listen1 - t0)
  // A answers: B's session with A is authenticated and ready (B's peer-connected).
  print('first_connected_ms', await bConnected - t0)
  // A serves: B has written its first file from A (B's first file-updated, `big` or the `lat` seed).
  print('first_serving_ms', await bFirstFile - t0)
  // A's startup scan of the big share is complete (A's scan-done).
  print('first_index_s', s(await scanBig - t0))
  print('first_index_entries', Number(scanEvent.files))
  print('first_index_node_ms', Number(scanEvent.ms))   // the node's own figure: from the share's start
  print(PEER ? 'first_replica_s' : 'first_lat_in_sync_s', s(await bSynced - t0))
  print('first_peak_rss_mib', statusMiB(a1.proc.pid!, 'VmHWM'))
  print('first_cpu_s', cpuSeconds(a1.proc.pid!))

  // ---- 2. restart, nothing changed: same port, state and folders; A dials B itself. ---------
  await stopBounded(a1)
  nodes.delete(a1)
  const syncShare = PEER ? 'big' : 'lat'
  let listen2!: Promise<number>
  let rescan!: Promise<number>
  let resync!: Promise<number>
  const t1 = performance.now()
  const a = await start(fsA.dir, 'a', [b.address], { shares: aShares, listen: aAddr, listenMs: INDEX_WAIT_MS }, n => {
    listen2 = timeOf(n, 'listening', always, INDEX_WAIT_MS)
    rescan = timeOf(n, 'scan-done', e => e.share === 'big', INDEX_WAIT_MS)
    resync = timeOf(n, 'in-sync', e => e.share === syncShare, INDEX_WAIT_MS)
  })
  print('restart_listening_ms', await listen2 - t1)
  print('restart_scan_s', s(await rescan - t1))
  // In sync on `big` with B's replica (--peer), otherwise on `lat`: A has its index back and B agrees.
  console.log(`# restart_in_sync_s: A's in-sync on share ${syncShare}`)
  print('restart_in_sync_s', s(await resync - t1))
  print('restart_peak_rss_mib', statusMiB(a.proc.pid!, 'VmHWM'))
  print('restart_cpu_s', cpuSeconds(a.proc.pid!))

  // ---- 3. idle ---------------------------------------------------------------------------------
  await sleep(SETTLE_MS)
  const idle0 = [cpuSeconds(a.proc.pid!), cpuSeconds(b.proc.pid!)]
  await sleep(IDLE_S * 1000)
  print('idle_s', IDLE_S)
  print('idle_cpu_pct', (cpuSeconds(a.proc.pid!) - idle0[0]!) / IDLE_S * 100)
  print('idle_cpu_pct_b', (cpuSeconds(b.proc.pid!) - idle0[1]!) / IDLE_S * 100)
  print('inotify_watches', inotifyWatches(a.proc.pid!))
  print('idle_rss_mib', statusMiB(a.proc.pid!, 'VmRSS'))

  // ---- 4. latency on `lat` while A watches the big tree, then the small-share pair ----------
  const big = await latencySamples(latA, b, latB, 'lat', TRIES, 'lat')
  print('latency_tries', TRIES)
  print('latency_p50_ms', percentile(big, 50))
  print('latency_p99_ms', percentile(big, 99))
  print('latency_max_ms', Math.max(...big))
  print('nodes_rss_mib', statusMiB(a.proc.pid!, 'VmRSS') + statusMiB(b.proc.pid!, 'VmRSS'))
  await Promise.all([stopBounded(a), stopBounded(b)])
  // The same measure with no big tree anywhere: a fresh pair sharing only a small folder.
  const smallC = join(fsA.dir, 'c', 'lat')
  const smallD = join(fsB.dir, 'd', 'lat')
  const c = await start(fsA.dir, 'c', [], { shares: [[smallC, 'lat']] })
  const d = await start(fsB.dir, 'd', [c.address], { shares: [[smallD, 'lat']] })
  await d.waitEvent('peer-connected', always, WAIT_BASE_MS)
  await sleep(SETTLE_MS)
  const small = await latencySamples(smallC, d, smallD, 'lat', TRIES, 'small')
  print('latency_small_p50_ms', percentile(small, 50))
  print('latency_small_p99_ms', percentile(small, 99))
  print('latency_p50_over_small_ms', percentile(big, 50) - percentile(small, 50))
} finally {
  await Promise.all([...nodes].map(n => stopBounded(n)))
  fsA.cleanup()
  fsB.cleanup()
}
