// fault-partition: three nodes in three network namespaces; node C is cut off from A and B,
// both sides edit, the partition heals, and nothing may be lost.
//
//   npm run build && node dist/bench/fault-partition.js [--subnet 10.231.0] [--mass 300] [--converge-timeout 120] [--keep] [--inject]
//   (--mass: files per mass-delete case; above 2000 a deletion spans more than one entry batch)
//   node dist/bench/fault-partition.js --selftest     # the checks on made-up folders, no namespaces
//
// Needs root and `ip netns`. Creates four namespaces named swfb<pid>-{hub,a,b,c}: `hub` holds a
// bridge, and a veth pair joins it to each node namespace (<subnet>.1/.2/.3/24 on eth0 there). The
// root namespace gets no interface, address or route: all traffic stays inside these namespaces.
// Each node is `ip netns exec swfb<pid>-x node bin/swarm.js share … --listen <subnet>.x:4001`
// peered with the other two; folders and state dirs are ordinary directories under $TMPDIR.
// The partition is `ip link set hc down` on C's port of the bridge (inside `hub`); healing sets it
// up again. Namespaces and node processes (signalled by their own pid) are removed on every exit
// path: normal end, error, SIGINT/SIGTERM/SIGHUP.
//
// Run: seed every case's files on A and wait until all three nodes hold the same tree; cut C off;
// round p1 of the cases runs at once (the QUIC connections are still up and losing packets); wait
// until A, B and C have each reported the others gone (peer-disconnected; bounded, 40 s); round p2
// of the cases runs (paths under p2/); wait until A and B are in sync with each other; heal; wait
// until all three report the same in-sync root and hold the same tree (bounded --converge-timeout).
// Every write is atomic (temp + rename).
//
// Each case states what must be there after healing — `keep`: a version (path, content) that must
// be on every node at the path or as a conflict copy of it; `gone`: a path deleted on one side and
// not edited on the other, which must be absent everywhere — see CASES below. The only allowed
// disappearance is a deletion, or a version superseded on its own side of the partition before the
// heal (case edit-chain). Counted:
//   lost_versions        `keep` versions missing on at least one node
//   resurrected_deletes  `gone` paths present on some node
//   partial_or_corrupt   files whose content is no version written at their path nor a conflict copy of one
//   diverged_paths       paths not identical on all three nodes
// Exit status 1 if any is non-zero, the cluster did not converge, or the partition did not hold
// (a file created on one side during the partition was on the other side before the heal).
//
// Self-check: `--selftest` runs the shared checks on made-up folders (see fault-lib.ts); `--inject`
// (real run) removes one `keep` version from all folders and overwrites one file on C with bytes
// never written, after the nodes stopped: lost_versions ≥ 1, partial_or_corrupt ≥ 1 and
// diverged_paths ≥ 1 must then be reported.
import * as fs from 'node:fs'
import { join, dirname } from 'node:path'
import {
  FaultNode, VersionBook, atomicWrite, badFiles, boolFlag, divergedPaths, flag, holds, numFlag, onCleanup, print,
  randomContent, requireRoot, runCleanups, runSync, selftestChecks, sha256, sleep, snapshotTree, waitConverged,
  waitUntil, workDir, type Tree
} from './fault-lib.js'

if (boolFlag('selftest')) { selftestChecks(); process.exit(0) }
requireRoot('fault-partition')

const SUBNET = flag('subnet') ?? '10.231.0'
const CONVERGE_S = numFlag('converge-timeout', 120)
const KEEP = boolFlag('keep')
const INJECT = boolFlag('inject')
const PORT = 4001

// ---- namespaces ----------------------------------------------------------------------------------

const tag = `swfb${process.pid}`
const ns = { hub: `${tag}-hub`, a: `${tag}-a`, b: `${tag}-b`, c: `${tag}-c` }
const created: string[] = []
onCleanup(() => { for (const n of created.reverse()) runSync('ip', ['netns', 'del', n], true) })
const existing = runSync('ip', ['netns', 'list'], true)
for (const n of Object.values(ns)) if (existing.split('\n').some(l => l.split(' ')[0] === n)) throw new Error(`namespace ${n} already exists`)
const ip = (...args: string[]) => runSync('ip', args)
for (const n of Object.values(ns)) { ip('netns', 'add', n); created.push(n) }
ip('-n', ns.hub, 'link', 'add', 'br0', 'type', 'bridge')
ip('-n', ns.hub, 'link', 'set', 'br0', 'up')
const nodeNames = ['a', 'b', 'c'] as const
nodeNames.forEach((x, i) => {
  ip('-n', ns.hub, 'link', 'add', `h${x}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[x])
  ip('-n', ns.hub, 'link', 'set', `h${x}`, 'master', 'br0')
  ip('-n', ns.hub, 'link', 'set', `h${x}`, 'up')
  ip('-n', ns[x], 'addr', 'add', `${SUBNET}.${i + 1}/24`, 'dev', 'eth0')
  ip('-n', ns[x], 'link', 'set', 'eth0', 'up')
  ip('-n', ns[x], 'link', 'set', 'lo', 'up')
})
const setLink = (x: 'a' | 'b' | 'c', state: 'up' | 'down') => ip('-n', ns.hub, 'link', 'set', `h${x}`, state)

// ---- nodes ---------------------------------------------------------------------------------------

const base = workDir('fault-partition')
let failed = false
onCleanup(() => {
  if (KEEP || failed) console.log(`workdir: ${base}  (node logs: a.log, b.log, c.log)`)
  else fs.rmSync(base, { recursive: true, force: true })
})
const secretFile = join(base, 'cluster.secret')
fs.writeFileSync(secretFile, 'fault-partition-secret-' + sha256(base).slice(0, 24) + '\n', { mode: 0o600 })
const addr = (i: number) => `${SUBNET}.${i + 1}:${PORT}`
const [A, B, C] = nodeNames.map((x, i) => new FaultNode({
  name: x,
  dir: join(base, x, 'share'),
  state: join(base, x, 'state'),
  listen: addr(i),
  peers: [0, 1, 2].filter(j => j !== i).map(addr),
  secretFile,
  netns: ns[x],
  logFile: join(base, `${x}.log`)
})) as [FaultNode, FaultNode, FaultNode]
const nodes = [A, B, C]
const staging = new Map(nodes.map(n => { const s = join(base, n.name, 'staging'); fs.mkdirSync(s, { recursive: true }); return [n, s] }))

// ---- writer helpers --------------------------------------------------------------------------------

const book = new VersionBook()
let versionsWritten = 0
const small = () => randomContent(1000 + Math.floor(Math.random() * 60_000))
const tiny = () => randomContent(100 + Math.floor(Math.random() * 2000))
const MASS = numFlag('mass', 300)
const big = () => randomContent((3 << 20) + Math.floor(Math.random() * (1 << 20)))

function w (n: FaultNode, path: string, data: Buffer = small()): string {
  const h = sha256(data)
  book.add(path, h)
  atomicWrite(staging.get(n)!, join(n.spec.dir, path), data)
  versionsWritten++
  return h
}
const del = (n: FaultNode, path: string) => fs.rmSync(join(n.spec.dir, path), { recursive: true })
function mv (n: FaultNode, from: string, to: string): void {
  fs.mkdirSync(dirname(join(n.spec.dir, to)), { recursive: true })
  fs.renameSync(join(n.spec.dir, from), join(n.spec.dir, to))
  book.add(to, sha256(fs.readFileSync(join(n.spec.dir, to))))
}
const fileHash = (n: FaultNode, path: string) => { try { return sha256(fs.readFileSync(join(n.spec.dir, path))) } catch { return '' } }

// ---- cases -----------------------------------------------------------------------------------------

interface Expect { keep: Array<[string, string]>, gone: string[] }
interface Case {
  name: string
  what: string
  /** Files written on A before the partition: path → content hash. */
  seed (p: (rel: string) => string): Record<string, string>
  /** During the partition; returns what must hold after the heal. */
  run (p: (rel: string) => string, s: Record<string, string>): Expect | Promise<Expect>
}

const CASES: Case[] = [
  { name: 'untouched', what: 'a file nobody touches during the partition stays',
    seed: p => ({ f: w(A, p('f')) }), run: (p, s) => ({ keep: [[p('f'), s.f!]], gone: [] }) },
  { name: 'edit-edit', what: 'A and C edit the same file: both versions kept',
    seed: p => ({ f: w(A, p('f.txt')) }),
    run: p => ({ keep: [[p('f.txt'), w(A, p('f.txt'))], [p('f.txt'), w(C, p('f.txt'))]], gone: [] }) },
  { name: 'edit-chain', what: 'A edits, B edits after it has A\'s version, C edits: B\'s and C\'s versions kept (A\'s is superseded on its own side)',
    seed: p => ({ f: w(A, p('f.txt')) }),
    run: async p => {
      const a = w(A, p('f.txt'))
      if (!await waitUntil(() => fileHash(B, p('f.txt')) === a, 15_000, 50)) console.log(`note: ${p('f.txt')}: A's edit did not reach B within 15 s`)
      return { keep: [[p('f.txt'), w(B, p('f.txt'))], [p('f.txt'), w(C, p('f.txt'))]], gone: [] }
    } },
  { name: 'different-files', what: 'B edits one file, C another: both edits kept',
    seed: p => ({ f1: w(A, p('f1')), f2: w(A, p('f2')) }),
    run: p => ({ keep: [[p('f1'), w(B, p('f1'))], [p('f2'), w(C, p('f2'))]], gone: [] }) },
  { name: 'create-create', what: 'A and C create the same new path with different content: both kept',
    seed: () => ({}), run: p => ({ keep: [[p('new.txt'), w(A, p('new.txt'))], [p('new.txt'), w(C, p('new.txt'))]], gone: [] }) },
  { name: 'create-same-content', what: 'B and C create the same path with the same bytes: kept',
    seed: () => ({}), run: p => { const d = small(); w(B, p('same.bin'), d); return { keep: [[p('same.bin'), w(C, p('same.bin'), d)]], gone: [] } } },
  { name: 'create-apart', what: 'B and C create different new files (C in a new folder): all kept',
    seed: () => ({}),
    run: p => ({ keep: [[p('b.bin'), w(B, p('b.bin'))], [p('cdir/x.bin'), w(C, p('cdir/x.bin'))], [p('cdir/sub/y.bin'), w(C, p('cdir/sub/y.bin'))]], gone: [] }) },
  { name: 'delete-vs-edit', what: 'A deletes a file C edits: C\'s edit survives',
    seed: p => ({ f: w(A, p('f.txt')) }), run: p => { del(A, p('f.txt')); return { keep: [[p('f.txt'), w(C, p('f.txt'))]], gone: [] } } },
  { name: 'edit-vs-delete', what: 'B edits a file C deletes: B\'s edit survives',
    seed: p => ({ f: w(A, p('f.txt')) }), run: p => { const b = w(B, p('f.txt')); del(C, p('f.txt')); return { keep: [[p('f.txt'), b]], gone: [] } } },
  { name: 'delete-minority', what: 'C deletes a file nobody else touches: gone everywhere',
    seed: p => ({ f: w(A, p('f')) }), run: p => { del(C, p('f')); return { keep: [], gone: [p('f')] } } },
  { name: 'delete-majority', what: 'B deletes a file nobody else touches: gone everywhere',
    seed: p => ({ f: w(A, p('f')) }), run: p => { del(B, p('f')); return { keep: [], gone: [p('f')] } } },
  { name: 'delete-delete', what: 'A and C delete the same file: gone everywhere',
    seed: p => ({ f: w(A, p('f')) }), run: p => { del(A, p('f')); del(C, p('f')); return { keep: [], gone: [p('f')] } } },
  { name: 'big-edit-edit', what: 'A and C rewrite the same 3–4 MiB file: both kept (piece exchange after the heal)',
    seed: p => ({ f: w(A, p('big.dat'), big()) }),
    run: p => ({ keep: [[p('big.dat'), w(A, p('big.dat'), big())], [p('big.dat'), w(C, p('big.dat'), big())]], gone: [] }) },
  { name: 'big-delete-vs-edit', what: 'C deletes a big file A rewrites: A\'s version survives',
    seed: p => ({ f: w(A, p('big.dat'), big()) }), run: p => { del(C, p('big.dat')); return { keep: [[p('big.dat'), w(A, p('big.dat'), big())]], gone: [] } } },
  { name: 'rename-vs-edit', what: 'A renames f to g while C edits f: g has the old content, f has C\'s edit',
    seed: p => ({ f: w(A, p('f.txt')) }),
    run: (p, s) => { mv(A, p('f.txt'), p('g.txt')); return { keep: [[p('g.txt'), s.f!], [p('f.txt'), w(C, p('f.txt'))]], gone: [] } } },
  { name: 'folder-delete-vs-edit', what: 'C removes a folder (rm -r) in which A edits one file: A\'s edit survives, the other file is gone',
    seed: p => ({ x: w(A, p('dir/x.bin')), y: w(A, p('dir/y.bin')) }),
    run: p => { del(C, p('dir')); return { keep: [[p('dir/x.bin'), w(A, p('dir/x.bin'))]], gone: [p('dir/y.bin')] } } },
  { name: 'folder-emptied', what: 'C deletes every file of a folder in which A adds a file: A\'s file stays, C\'s deletions hold',
    seed: p => ({ f1: w(A, p('e/1')), f2: w(A, p('e/2')) }),
    run: p => { del(C, p('e/1')); del(C, p('e/2')); return { keep: [[p('e/3'), w(A, p('e/3'))]], gone: [p('e/1'), p('e/2')] } } },
  { name: 'mass-delete-minority', what: `C removes a folder of ${MASS} files, A edits one of them: that edit stays, the rest is gone`,
    seed: p => { for (let i = 0; i < MASS; i++) w(A, p(`m/${i}`), tiny()); return {} },
    run: p => { del(C, p('m')); return { keep: [[p('m/7'), w(A, p('m/7'))]], gone: Array.from({ length: MASS }, (_, i) => p(`m/${i}`)).filter(x => x !== p('m/7')) } } },
  { name: 'mass-delete-majority', what: `B removes a folder of ${MASS} files, C edits one of them: that edit stays, the rest is gone`,
    seed: p => { for (let i = 0; i < MASS; i++) w(A, p(`m/${i}`), tiny()); return {} },
    run: p => { del(B, p('m')); return { keep: [[p('m/7'), w(C, p('m/7'))]], gone: Array.from({ length: MASS }, (_, i) => p(`m/${i}`)).filter(x => x !== p('m/7')) } } }
]

// ---- run -----------------------------------------------------------------------------------------

const rounds = ['p1', 'p2'] as const
const seeds = new Map<string, Record<string, string>>()
const expects = new Map<string, Expect>()
const pathOf = (round: string, c: Case) => (rel: string) => `${round}/${c.name}/${rel}`

await Promise.all(nodes.map(n => n.start()))
if (!await waitUntil(() => nodes.every(n => n.inSyncRoot !== null), 30_000)) throw new Error('the three nodes did not connect (no in-sync within 30 s)')
for (const r of rounds) for (const c of CASES) seeds.set(`${r}/${c.name}`, c.seed(pathOf(r, c)))
const seeded = await waitConverged(nodes, 60_000)
if (!seeded.converged) throw new Error('seed files did not replicate to all three nodes within 60 s')
console.error(`fault-partition: seeded ${book.count} files on 3 nodes in ${ns.a}/${ns.b}/${ns.c}; cutting C off`)

async function runRound (r: string): Promise<void> {
  for (const c of CASES) expects.set(`${r}/${c.name}`, await c.run(pathOf(r, c), seeds.get(`${r}/${c.name}`)!))
}

const gone = (n: FaultNode, others: FaultNode[]) => others.map(o => n.waitEvent('peer-disconnected', e => e.peerId === o.peerId, 40_000).then(() => true, () => false))
const disconnects = [...gone(C, [A, B]), ...gone(A, [C]), ...gone(B, [C])]
const tCut = Date.now()
setLink('c', 'down')
await runRound('p1')
const seen = await Promise.all(disconnects)
const disconnectSeconds = (Date.now() - tCut) / 1000
await runRound('p2')
const majority = await waitUntil(() => A.inSyncRoot !== null && A.inSyncRoot === B.inSyncRoot && A.inSyncAt >= A.changeAt && B.inSyncAt >= B.changeAt && fileHash(A, 'p2/create-apart/b.bin') !== '', 30_000)
const partitionSeconds = (Date.now() - tCut) / 1000
// The partition really held: what B and C created during it has not crossed.
const held = rounds.every(r => fileHash(C, `${r}/create-apart/b.bin`) === '' && fileHash(A, `${r}/create-apart/cdir/x.bin`) === '')
console.error(`fault-partition: healing after ${partitionSeconds.toFixed(1)} s`)
setLink('c', 'up')
const conv = await waitConverged(nodes, CONVERGE_S * 1000)
await Promise.all(nodes.map(n => n.stop()))
if (INJECT) injectFaults()
const trees = nodes.map(n => snapshotTree(n.spec.dir))

// ---- checks --------------------------------------------------------------------------------------

let lostCount = 0
let resurrected = 0
for (const [name, ex] of expects) {
  const c = CASES.find(x => name.endsWith('/' + x.name))!
  const problems: string[] = []
  for (const [path, hash] of ex.keep) {
    const missing = nodes.filter((_, i) => !holds(trees[i]!, path, hash)).map(n => n.name)
    if (missing.length > 0) { lostCount++; problems.push(`LOST ${path} sha256 ${hash.slice(0, 12)} on ${missing.join(',')}`) }
  }
  for (const path of ex.gone) {
    const present = nodes.filter((_, i) => trees[i]!.has(path)).map(n => n.name)
    if (present.length > 0) { resurrected++; problems.push(`RESURRECTED ${path} on ${present.join(',')}`) }
  }
  const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; … ${problems.length - 5} more` : '')
  console.log(`tried: ${name}: ${c.what} → ${problems.length === 0 ? 'ok' : shown}`)
}
const bad = nodes.flatMap((n, i) => badFiles(n.name, trees[i]!, book))
const diverged = divergedPaths(trees)
const describe = (t: Tree, p: string) => { const i = t.get(p); return i === undefined ? '-' : i.type === 'file' ? `${i.hash.slice(0, 8)}/${i.size}` : i.type }
for (const b of bad.slice(0, 15)) console.log(`corrupt: ${b.node} ${b.path}: ${b.why}`)
for (const p of diverged.slice(0, 15)) console.log(`diverged: ${p}: ${trees.map((t, i) => `${nodes[i]!.name}=${describe(t, p)}`).join(' ')}`)
const unexpected = nodes.flatMap(n => n.unexpectedExits)
for (const u of unexpected) console.log(`unexpected-exit: ${u}`)

print('cases', expects.size)
print('versions-written', versionsWritten)
print('partition_seconds', partitionSeconds)
print('disconnect_seen', seen.every(Boolean) ? `yes, after ${disconnectSeconds.toFixed(1)} s` : `no (${seen.filter(Boolean).length} of ${seen.length} peer-disconnected events within 40 s)`)
print('majority_in_sync_before_heal', majority ? 'yes' : 'no')
print('partition_held', held ? 'yes' : 'NO: files crossed the partition, the run proves nothing')
print('lost_versions', lostCount)
print('resurrected_deletes', resurrected)
print('partial_or_corrupt', bad.length)
print('diverged_paths', diverged.length)
print('converged', conv.converged ? 'yes' : `no (gave up after ${CONVERGE_S} s)`)
print('converge_seconds', conv.converged ? conv.seconds : -1)
print('conflicts_reported', nodes.reduce((s, n) => s + n.conflicts, 0))
print('error_logs', nodes.reduce((s, n) => s + n.logCounts.error, 0))
print('unexpected_exits', unexpected.length)

failed = lostCount + resurrected + bad.length + diverged.length + unexpected.length > 0 || !conv.converged || !held
if (failed && INJECT) console.log('inject: the injected faults were reported (this is the expected outcome of --inject)')
process.exitCode = failed ? 1 : 0
runCleanups()

/** --inject: after the nodes stopped, break what the checks must catch. */
function injectFaults (): void {
  const [path, hash] = expects.get('p1/edit-edit')!.keep[0]!
  for (const n of nodes) for (const [p, i] of snapshotTree(n.spec.dir)) if (i.type === 'file' && i.hash === hash) fs.rmSync(join(n.spec.dir, p))
  console.log(`inject: removed every copy of ${path} sha256 ${hash.slice(0, 12)} from all nodes`)
  fs.writeFileSync(join(C.spec.dir, 'p1/untouched/f'), randomContent(500))
  console.log('inject: overwrote c/p1/untouched/f with bytes never written')
}
