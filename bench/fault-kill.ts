// fault-kill: a busy 3-node cluster on loopback while nodes are SIGKILLed and restarted.
//
//   npm run build && node dist/bench/fault-kill.js [--kills 50] [--converge-timeout 120] [--big 6] [--keep] [--inject]
//   node dist/bench/fault-kill.js --selftest      # the checks on made-up folders and op logs, no nodes
//
// Three `swarm share` processes (own folder, own --state, fixed UDP port on 127.0.0.1, each peered
// with the other two). A writer (this process) keeps changing random nodes' folders: new small
// files (1–64 KiB), a few big files (1–20 MiB, at most --big), edits of existing files, renames,
// deletions, and concurrent edits of one path on two nodes at the same instant. Every write is
// atomic (temp file beside the share on the same filesystem, then rename), the way careful
// applications write, so any partial file seen is the engine's. Writes go to stopped nodes'
// folders too (a user's files change while the daemon is down). Meanwhile, at random moments
// (0.3–2.5 s apart), a random node gets SIGKILL (its own pid) and is restarted at once on the same
// port, state dir and folder. After --kills kills the writer stops; the nodes run until converged
// (every folder the same tree, every node's last in-sync root the same and newer than its last
// change; bounded by --converge-timeout seconds); then they are stopped cleanly and checked.
//
// What is checked and counted:
//   partial_or_corrupt  files (in any folder, `.swarm/` ignored) that are not byte-equal to a version
//                       the writer put at that path, nor a conflict copy
//                       (`name.sync-conflict-YYYYMMDD-HHMMSS-<node>.ext`) of a version written at the
//                       original path. The writer keeps path → set of sha256 of every version it wrote
//                       there (a rename p → q records the moved content under q). Counted at the end
//                       and also on samples of a random folder every 1–2 s during the run
//                       (partial_or_corrupt_midrun, distinct path+content).
//   lost_versions       For each path, the writer's ops on it in the order it made them: writes
//                       (content, node, group) and removals (delete, or rename away). A concurrent
//                       edit is two writes of one path on two nodes in the same instant: one group.
//                       If the last op on a path is a removal, nothing is required there (a removal
//                       may or may not win against a write it raced with: both outcomes are allowed).
//                       Otherwise every write of the last group is REQUIRED: nothing the writer did
//                       afterwards can supersede it, and the engine's rules (a newer causal version
//                       replaces, concurrent versions keep the loser as a conflict copy, an edit beats
//                       a delete) never drop it. A required version is lost on a node if that node's
//                       final folder holds it neither at the path nor in a conflict copy of the path.
//                       lost_versions counts required (path, content) pairs lost on at least one node;
//                       lost_everywhere those gone from all three. Older superseded versions are not
//                       required (whether a remote edit had seen them is not known to the writer).
//   diverged_paths      paths (files and folders) not present with the same type and content in all
//                       three final folders.
// Exit status 1 if any of these is non-zero, if the cluster did not converge, or a node exited on
// its own or failed to restart.
//
// Self-check: `--selftest` runs the checks on made-up folders (truncated file, foreign file,
// unknown conflict copy, missing conflict copy, one flipped byte with mtime restored: each is caught)
// and the lost rule on made-up op logs. `--inject` does it on the real run: after the nodes are
// stopped it truncates one file in n1 and removes every copy of one required version from all
// three folders, so the figures must show partial_or_corrupt ≥ 1, lost_versions ≥ 1 and
// diverged_paths ≥ 1 (it prints `inject: …` lines saying what it did).
import * as fs from 'node:fs'
import { join, dirname, basename, extname } from 'node:path'
import {
  FaultNode, T0, VersionBook, atomicWrite, badFiles, boolFlag, divergedPaths, flag, freeUdpPort, holds, numFlag,
  onCleanup, pick, print, randomContent, rnd, runCleanups, selftestChecks, sha256, sleep, snapshotTree,
  waitConverged, waitUntil, workDir, writerFiles, type Bad, type Tree
} from './fault-lib.js'

interface Op { kind: 'w' | 'd', hash?: string, group: number, node: string, at: number }

/** The versions that must survive at a path, by the rule in the header. */
export function requiredVersions (ops: Op[]): Op[] {
  const last = ops[ops.length - 1]
  if (last === undefined || last.kind === 'd') return []
  return ops.filter(o => o.kind === 'w' && o.group === last.group)
}

function selftestLost (): void {
  const w = (hash: string, group: number): Op => ({ kind: 'w', hash, group, node: 'n0', at: 0 })
  const d = (group: number): Op => ({ kind: 'd', group, node: 'n1', at: 0 })
  const req = (ops: Op[]) => requiredVersions(ops).map(o => o.hash).join(',')
  const cases: Array<[Op[], string]> = [
    [[w('a', 1), w('b', 2)], 'b'],
    [[w('a', 1), d(2)], ''],
    [[d(1), w('a', 2)], 'a'],
    [[w('a', 1), w('b', 2), w('c', 2)], 'b,c'],
    [[w('b', 2), w('c', 2), w('d', 3)], 'd']
  ]
  for (const [ops, want] of cases) {
    const got = req(ops)
    if (got !== want) throw new Error(`selftest failed: required versions ${got} != ${want}`)
  }
  console.log('selftest ok: required-version rule on made-up op logs')
}

if (boolFlag('selftest')) {
  selftestChecks()
  selftestLost()
  process.exit(0)
}

const KILLS = numFlag('kills', 50)
const CONVERGE_S = numFlag('converge-timeout', 120)
const MAX_BIG = numFlag('big', 6)
const KEEP = boolFlag('keep')
const INJECT = boolFlag('inject')
const DIRS = ['', 'd0/', 'd1/', 'd1/d2/']

const base = workDir('fault-kill')
const secretFile = join(base, 'cluster.secret')
fs.writeFileSync(secretFile, 'fault-bench-secret-' + sha256(base).slice(0, 24) + '\n', { mode: 0o600 })
const names = ['n0', 'n1', 'n2']
const ports = [] as number[]
for (const _ of names) ports.push(await freeUdpPort())
const nodes = names.map((name, i) => new FaultNode({
  name,
  dir: join(base, name, 'share'),
  state: join(base, name, 'state'),
  listen: `127.0.0.1:${ports[i]}`,
  peers: ports.filter((_, j) => j !== i).map(p => `127.0.0.1:${p}`),
  secretFile,
  logFile: join(base, `${name}.log`)
}))
const staging = new Map(nodes.map(n => { const s = join(base, n.name, 'staging'); fs.mkdirSync(s, { recursive: true }); return [n.name, s] }))
let failed = false
onCleanup(() => {
  if (KEEP || failed) console.log(`workdir: ${base}  (node logs: ${names.map(n => n + '.log').join(', ')}; writer's ops per path: ops.json)`)
  else fs.rmSync(base, { recursive: true, force: true })
})

// ---- the writer ----------------------------------------------------------------------------------

const book = new VersionBook()
const ops = new Map<string, Op[]>()
let group = 0
let counter = 0
let bigLeft = MAX_BIG
const opCounts: Record<string, number> = { new: 0, big: 0, edit: 0, rename: 0, delete: 0, concurrent: 0 }
let versionsWritten = 0
const midrunBad = new Map<string, Bad>()

function logOp (path: string, op: Omit<Op, 'at'>): void {
  let l = ops.get(path)
  if (l === undefined) { l = []; ops.set(path, l) }
  l.push({ ...op, at: Date.now() - T0 })
}

function write (node: FaultNode, path: string, data: Buffer, g: number): void {
  book.add(path, sha256(data))   // recorded before it is visible: a sample can never see it unrecorded
  atomicWrite(staging.get(node.name)!, join(node.spec.dir, path), data)
  logOp(path, { kind: 'w', hash: sha256(data), group: g, node: node.name })
  versionsWritten++
}

const smallData = () => randomContent(rnd(1, 64) * 1024 - rnd(0, 1000))
const bigData = () => { bigLeft--; return randomContent(rnd(1 << 20, 20 << 20)) }

/** One writer step; synchronous, so no snapshot interleaves with it. */
function step (): void {
  const node = pick(nodes)
  const dir = node.spec.dir
  const r = Math.random()
  const files = () => writerFiles(dir)
  if (r < 0.04 && bigLeft > 0) {
    opCounts.big!++
    write(node, `${pick(DIRS)}big${counter++}.dat`, bigData(), ++group)
  } else if (r < 0.36) {
    opCounts.new!++
    write(node, `${pick(DIRS)}s${counter++}.bin`, smallData(), ++group)
  } else if (r < 0.62) {
    const f = files(); if (f.length === 0) return
    const p = pick(f)
    opCounts.edit!++
    write(node, p, p.endsWith('.dat') && bigLeft > 0 && Math.random() < 0.5 ? bigData() : smallData(), ++group)
  } else if (r < 0.74) {
    const f = files(); if (f.length === 0) return
    const p = pick(f)
    const other = pick(nodes.filter(n => n !== node))
    opCounts.concurrent!++
    const g = ++group
    write(node, p, smallData(), g)
    write(other, p, smallData(), g)
  } else if (r < 0.85) {
    const f = files(); if (f.length === 0) return
    const p = pick(f)
    const ext = extname(p)
    const q = `${pick(DIRS)}${basename(p, ext).replace(/-r\d+$/, '')}-r${counter++}${ext}`
    fs.mkdirSync(dirname(join(dir, q)), { recursive: true })
    try { fs.renameSync(join(dir, p), join(dir, q)) } catch { return }   // gone meanwhile: nothing happened
    const hash = sha256(fs.readFileSync(join(dir, q)))
    if (!book.legit(p, hash)) midrunBad.set(`${node.name}:${p}:${hash}`, { node: node.name, path: p, why: 'writer renamed a file whose content was never written there' })
    book.add(q, hash)
    opCounts.rename!++
    const g = ++group
    logOp(p, { kind: 'd', group: g, node: node.name })
    logOp(q, { kind: 'w', hash, group: g, node: node.name })
  } else {
    const f = files(); if (f.length === 0) return
    const p = pick(f)
    try { fs.unlinkSync(join(dir, p)) } catch { return }
    opCounts.delete!++
    logOp(p, { kind: 'd', group: ++group, node: node.name })
  }
}

// ---- run -----------------------------------------------------------------------------------------

await Promise.all(nodes.map(n => n.start()))
if (!await waitUntil(() => nodes.every(n => n.inSyncRoot !== null), 30_000)) throw new Error('the three empty nodes did not report in-sync within 30 s')
console.error(`fault-kill: 3 nodes up in ${base}; ${KILLS} kills`)

let writing = true
let kills = 0
let restartFailures = 0
let crashRestarts = 0
let writerErrors = 0

const writer = (async () => {
  while (writing) {
    try { step() } catch (err) { writerErrors++; if (writerErrors <= 5) console.error(`fault-kill: writer step failed: ${(err as Error).message}`) }
    await sleep(rnd(10, 80))
  }
})()

const sampler = (async () => {
  while (writing) {
    await sleep(rnd(1000, 2000))
    const n = pick(nodes)
    for (const b of badFiles(n.name, snapshotTree(n.spec.dir), book)) midrunBad.set(`${b.node}:${b.path}:${b.why}`, b)
  }
})()

/** Restarts a node; up to 3 tries, after which it stays down (and convergence will fail). */
async function restart (n: FaultNode): Promise<void> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    try { await n.start(); return } catch (err) {
      restartFailures++
      console.error(`fault-kill: restart of ${n.name} failed (attempt ${attempt}): ${(err as Error).message}`)
      await n.kill('SIGKILL')
      await sleep(1000)
    }
  }
}

try {
  while (kills < KILLS) {
    await sleep(rnd(300, 2500))
    for (const n of nodes) if (!n.alive) { crashRestarts++; await restart(n) }   // died on its own
    const victim = pick(nodes)
    await victim.kill('SIGKILL')
    kills++
    await sleep(rnd(0, 400))
    await restart(victim)
    if (kills % 10 === 0) console.error(`fault-kill: ${kills} kills, ${versionsWritten} versions written`)
  }
} finally {
  writing = false
  await writer
  await sampler
}
for (const n of nodes) if (!n.alive) { crashRestarts++; await restart(n) }
console.error('fault-kill: writer stopped; waiting for convergence')
const conv = await waitConverged(nodes, CONVERGE_S * 1000)
await Promise.all(nodes.map(n => n.stop()))

if (INJECT) injectFaults()
const trees = nodes.map(n => snapshotTree(n.spec.dir))

// ---- checks --------------------------------------------------------------------------------------

const bad = nodes.flatMap((n, i) => badFiles(n.name, trees[i]!, book))
const lost: Array<{ path: string, op: Op, missingOn: string[] }> = []
for (const [path, list] of ops) {
  for (const op of requiredVersions(list)) {
    const missingOn = nodes.filter((_, i) => !holds(trees[i]!, path, op.hash!)).map(n => n.name)
    if (missingOn.length > 0) lost.push({ path, op, missingOn })
  }
}
const diverged = divergedPaths(trees)
const filesChecked = trees.reduce((s, t) => s + [...t.values()].filter(i => i.type !== 'dir').length, 0)
const unexpected = nodes.flatMap(n => n.unexpectedExits)

print('kills', kills)
print('versions-written', versionsWritten)
print('ops', Object.entries(opCounts).map(([k, v]) => `${k} ${v}`).join(', '))
print('files-checked', filesChecked)
print('files-per-node', trees[0]!.size === 0 ? 0 : [...trees[0]!.values()].filter(i => i.type === 'file').length)
print('partial_or_corrupt', bad.length)
print('partial_or_corrupt_midrun', midrunBad.size)
print('lost_versions', lost.length)
print('lost_everywhere', lost.filter(l => l.missingOn.length === nodes.length).length)
print('diverged_paths', diverged.length)
print('converged', conv.converged ? 'yes' : `no (gave up after ${CONVERGE_S} s)`)
print('converge_seconds', conv.converged ? conv.seconds : -1)
print('conflicts_reported', nodes.reduce((s, n) => s + n.conflicts, 0))
print('error_logs', nodes.reduce((s, n) => s + n.logCounts.error, 0))
print('unexpected_exits', unexpected.length + crashRestarts)
print('restart_failures', restartFailures)
print('writer_errors', writerErrors)

const show = <T>(label: string, xs: T[], fmt: (x: T) => string) => { for (const x of xs.slice(0, 15)) console.log(`${label}: ${fmt(x)}`); if (xs.length > 15) console.log(`${label}: … ${xs.length - 15} more`) }
show('corrupt', bad, b => `${b.node} ${b.path}: ${b.why}`)
show('corrupt-midrun', [...midrunBad.values()], b => `${b.node} ${b.path}: ${b.why}`)
const opsText = (path: string) => ops.get(path)!.map(o => `${o.kind === 'w' ? 'write ' + o.hash!.slice(0, 8) : 'remove'} on ${o.node} at +${(o.at / 1000).toFixed(3)} s`).join(', ')
show('lost', lost, l => `${l.path} sha256 ${l.op.hash!.slice(0, 12)} missing on ${l.missingOn.join(',')}; writer's ops on the path: ${opsText(l.path)}`)
show('diverged', diverged, p => `${p}: ${trees.map((t, i) => `${names[i]}=${describe(t, p)}`).join(' ')}`)
show('node-error', nodes.flatMap(n => n.errors.map(e => `${n.name} ${e}`)).filter((e, i, a) => a.indexOf(e) === i), e => e)
show('unexpected-exit', unexpected, e => e)

failed = bad.length + midrunBad.size + lost.length + diverged.length + unexpected.length + crashRestarts + restartFailures > 0 || !conv.converged
if (failed || KEEP) fs.writeFileSync(join(base, 'ops.json'), JSON.stringify(Object.fromEntries(ops), null, 1))   // what the writer did, per path (at: ms, same clock as the node logs' +s stamps)
if (failed && INJECT) console.log('inject: the injected faults were reported (this is the expected outcome of --inject)')
process.exitCode = failed ? 1 : 0
runCleanups()

function describe (t: Tree, p: string): string {
  const i = t.get(p)
  return i === undefined ? '-' : i.type === 'file' ? `${i.hash.slice(0, 8)}/${i.size}` : i.type
}

/** --inject: after the nodes stopped, break what the checks must catch. */
function injectFaults (): void {
  const t1 = snapshotTree(nodes[1]!.spec.dir)
  const victim = [...t1].find(([, i]) => i.type === 'file' && i.size > 1)
  if (victim !== undefined) {
    fs.truncateSync(join(nodes[1]!.spec.dir, victim[0]), Math.floor(victim[1].size / 2))
    console.log(`inject: truncated n1/${victim[0]} to half`)
  }
  for (const [path, list] of ops) {
    const req = requiredVersions(list)
    if (req.length === 0 || path === victim?.[0]) continue
    for (const n of nodes) {
      for (const [p, i] of snapshotTree(n.spec.dir)) if (i.type === 'file' && i.hash === req[0]!.hash) fs.rmSync(join(n.spec.dir, p))
    }
    console.log(`inject: removed every copy of the last version of ${path} from all nodes`)
    break
  }
}
