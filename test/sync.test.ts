// End-to-end replication between real nodes on loopback: initial sync, live changes, renames,
// empty files, three-node fan-out, conflicts, deletions that must not come back, and catch-up.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, rmSync, renameSync, readdirSync, existsSync, readFileSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, waitFor, waitConverged, sameTree, fileIs, settled, listing, entryOf, setMtime, collect } from './helpers.js'
import { conflictName } from '../src/model/paths.js'

test('a new empty replica receives the whole tree, and the roots converge', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    mkdirSync(join(a.dir, 'x/y/z'), { recursive: true })
    mkdirSync(join(a.dir, 'empty-dir'))
    writeFileSync(join(a.dir, 'top.txt'), 'top')
    writeFileSync(join(a.dir, 'x/y/z/deep.txt'), 'deep')
    writeFileSync(join(a.dir, 'x/empty'), '')
    writeFileSync(join(a.dir, 'x/big.bin'), randomBytes(3 * 1024 * 1024 + 17))
    await waitFor('a to index', () => a.node.shares.get('share')!.entryCount >= 8)
    const b = await c.add('b')
    const inSync: string[] = []
    b.node.on('in-sync', e => inSync.push(e.root))
    await waitFor('trees equal', () => sameTree(a.dir, b.dir) && settled([a, b]))
    await waitFor('in-sync event', () => inSync.length > 0)
    assert.equal(inSync.at(-1), a.node.shares.get('share')!.root().toString('hex'))
    assert.ok(!existsSync(join(b.dir, '.swarm', 'index.db')), 'bookkeeping stays under .swarm/')
  } finally { await c.stop() }
})

test('live create, modify, delete and rename of files and nested folders reach the peer', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    await waitFor('connected', () => a.node.connectedPeers().length === 1 && b.node.connectedPeers().length === 1)
    writeFileSync(join(a.dir, 'f.txt'), 'one')
    await waitFor('create', () => fileIs(join(b.dir, 'f.txt'), 'one'))
    writeFileSync(join(a.dir, 'f.txt'), 'two, longer')
    await waitFor('modify', () => fileIs(join(b.dir, 'f.txt'), 'two, longer'))
    writeFileSync(join(b.dir, 'empty.txt'), '')
    await waitFor('empty file b→a', () => fileIs(join(a.dir, 'empty.txt'), ''))
    mkdirSync(join(a.dir, 'd1/d2'), { recursive: true })
    writeFileSync(join(a.dir, 'd1/d2/n.txt'), 'nested')
    await waitFor('nested', () => fileIs(join(b.dir, 'd1/d2/n.txt'), 'nested'))
    renameSync(join(a.dir, 'f.txt'), join(a.dir, 'g.txt'))
    await waitFor('file rename', () => fileIs(join(b.dir, 'g.txt'), 'two, longer') && !existsSync(join(b.dir, 'f.txt')))
    renameSync(join(a.dir, 'd1'), join(a.dir, 'moved'))
    await waitFor('folder rename', () => fileIs(join(b.dir, 'moved/d2/n.txt'), 'nested') && !existsSync(join(b.dir, 'd1')))
    rmSync(join(b.dir, 'moved'), { recursive: true })
    await waitFor('folder delete b→a', () => !existsSync(join(a.dir, 'moved')))
    rmSync(join(a.dir, 'g.txt'))
    await waitFor('file delete', () => !existsSync(join(b.dir, 'g.txt')))
    await waitFor('converged', () => sameTree(a.dir, b.dir) && settled([a, b]))
  } finally { await c.stop() }
})

test('a renamed big file moves no file data', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const data = randomBytes(4 * 1024 * 1024)
    const fetched = collect(b, 'fetched')
    writeFileSync(join(a.dir, 'big.bin'), data)
    await waitFor('big file', () => fileIs(join(b.dir, 'big.bin'), data))
    // The first copy did come over the network, and the event says how much.
    assert.deepEqual(fetched.map(e => [e.path, e.bytes]), [['big.bin', data.length]])
    renameSync(join(a.dir, 'big.bin'), join(a.dir, 'renamed.bin'))
    await waitFor('rename', () => fileIs(join(b.dir, 'renamed.bin'), data) && !existsSync(join(b.dir, 'big.bin')))
    await waitConverged([a, b], 'converged')
    assert.deepEqual(fetched.slice(1), [], 'the rename fetched nothing: 0 bytes over the network')
  } finally { await c.stop() }
})

test('content fetched once, deleted, then needed again is fetched again, intact', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const data = randomBytes(4 * 1024 * 1024)
    writeFileSync(join(a.dir, 'big.bin'), data)
    await waitConverged([a, b], 'first copy', () => fileIs(join(b.dir, 'big.bin'), data))
    rmSync(join(b.dir, 'big.bin'))
    await waitConverged([a, b], 'deleted everywhere', () => !existsSync(join(a.dir, 'big.bin')))
    // The same content comes back under another name: b has no copy left, so it must fetch it.
    const fetched = collect(b, 'fetched')
    writeFileSync(join(a.dir, 'restored.bin'), data)
    await waitFor('b installed it', () => entryOf(b, 'restored.bin')?.local != null && b.node.shares.get('share')!.pendingCount() === 0)
    assert.ok(fileIs(join(b.dir, 'restored.bin'), data), 'b installed the right bytes')
    assert.deepEqual(fetched.map(e => [e.path, e.bytes]), [['restored.bin', data.length]])
  } finally { await c.stop() }
})

test('three nodes: a change on any node reaches the other two', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const cc = await c.add('c')
    await waitFor('mesh', () => [a, b, cc].every(n => n.node.connectedPeers().length === 2))
    writeFileSync(join(cc.dir, 'from-c.txt'), 'c')
    writeFileSync(join(a.dir, 'from-a.bin'), randomBytes(1024 * 1024))
    await waitFor('all equal', () => sameTree(a.dir, b.dir) && sameTree(b.dir, cc.dir) && settled([a, b, cc]))
    assert.ok(existsSync(join(b.dir, 'from-c.txt')))
  } finally { await c.stop() }
})

test('concurrent edits: same winner everywhere, loser kept as a conflict copy', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'doc.txt'), 'base')
    const b = await c.add('b')
    await waitFor('base', () => fileIs(join(b.dir, 'doc.txt'), 'base'))
    await a.node.stop()
    writeFileSync(join(b.dir, 'doc.txt'), 'edit on b')
    await waitFor('b indexed its edit', () => fileIs(join(b.dir, 'doc.txt'), 'edit on b') && entryOf(b, 'doc.txt')!.size === 'edit on b'.length)
    const editB = entryOf(b, 'doc.txt')!
    writeFileSync(join(a.dir, 'doc.txt'), 'edit on a, later')
    setMtime(join(a.dir, 'doc.txt'), editB.mtime + 1000)
    const conflictsB = collect(b, 'conflict')
    await c.restart(a, [b.node.address])
    const conflictsA = collect(a, 'conflict')
    await waitConverged([a, b], 'converged', () => listing(a.dir).length === 2)
    const copy = conflictName('doc.txt', editB.mtime, b.node.shortId)
    assert.deepEqual(listing(a.dir), [copy, 'doc.txt'].sort(), 'the loser is kept under its conflict name')
    assert.equal(readFileSync(join(a.dir, 'doc.txt'), 'utf8'), 'edit on a, later', 'newer mtime wins')
    assert.equal(readFileSync(join(a.dir, copy), 'utf8'), 'edit on b')
    // Both nodes report the conflict: a kept its version and received b's as the copy; b moved its own aside.
    assert.deepEqual(conflictsA, [{ share: 'share', path: 'doc.txt', copy }])
    assert.deepEqual(conflictsB, [{ share: 'share', path: 'doc.txt', copy }])
  } finally { await c.stop() }
})

test('stopped node: changes on both sides, restart, converged; deletions do not resurrect', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'keep.txt'), 'keep')
    writeFileSync(join(a.dir, 'doomed.txt'), 'doomed')
    const b = await c.add('b')
    await waitFor('initial', () => sameTree(a.dir, b.dir) && settled([a, b]))
    await b.node.stop()
    rmSync(join(a.dir, 'doomed.txt'))
    writeFileSync(join(a.dir, 'new-on-a.txt'), 'a')
    writeFileSync(join(b.dir, 'new-on-b.txt'), 'b')
    await waitFor('a indexed its changes', () => entryOf(a, 'doomed.txt')?.deleted === true && entryOf(a, 'new-on-a.txt') !== undefined)
    await c.restart(b, [a.node.address])
    await waitFor('converged', () => sameTree(a.dir, b.dir) && settled([a, b]))
    assert.ok(!existsSync(join(b.dir, 'doomed.txt')))
    assert.ok(fileIs(join(a.dir, 'new-on-b.txt'), 'b'))
    assert.ok(fileIs(join(b.dir, 'new-on-a.txt'), 'a'))
  } finally { await c.stop() }
})

test('a wrong secret is refused on both sides and no data flows', async () => {
  const c = new Cluster()
  try {
    // a reports a wrong proof from one host once per wrong-secret delay: a short one here.
    const a = await c.add('a', { redial: { authFailedMs: 500 } })
    writeFileSync(join(a.dir, 'secret-data.txt'), 'x')
    const logsA: string[] = []
    a.node.on('log', e => logsA.push(e.message))
    // b retries a node that refused its proof only after the wrong-secret delay: a short one here.
    const b = await c.add('b', { secret: 'a-different-secret', redial: { authFailedMs: 500 } })
    const logsB: string[] = []
    b.node.on('log', e => logsB.push(e.message))
    await waitFor('refusal logged on both sides', () => logsA.some(m => m.includes('wrong cluster secret')) && logsB.some(m => m.includes('wrong cluster secret')))
    // b keeps redialing (it proves first, a refuses): wait until a second attempt was refused too, then nothing may have got through.
    const refusals = (logs: string[]) => logs.filter(m => m.includes('wrong cluster secret') && m.includes('connection refused')).length
    await waitFor('b\'s redial refused as well', () => refusals(logsA) >= 2)
    assert.equal(a.node.connectedPeers().length, 0)
    assert.equal(b.node.connectedPeers().length, 0)
    assert.ok(!existsSync(join(b.dir, 'secret-data.txt')))
  } finally { await c.stop() }
})

test('restart: unchanged files are not hashed again; a touched one is', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    for (let i = 0; i < 50; i++) writeFileSync(join(a.dir, `f${i}.txt`), `file ${i}`)
    await waitFor('indexed', () => a.node.shares.get('share')!.entryCount === 50)
    await a.node.stop()
    writeFileSync(join(a.dir, 'f7.txt'), 'changed while the node was down')
    await c.restart(a, [])
    assert.equal(a.node.shares.get('share')!.stats.filesHashed, 1)
  } finally { await c.stop() }
})

test('an unreachable peer address is retried with backoff while the node keeps serving', async () => {
  const c = new Cluster()
  try {
    const probe = await c.add('probe')
    const port = probe.node.port
    await probe.node.stop()   // now nothing listens on `port`
    const a = await c.add('a', { peers: [`127.0.0.1:${port}`], handshakeTimeoutMs: 1000 })
    const logs: string[] = []
    a.node.on('log', e => logs.push(e.message))
    writeFileSync(join(a.dir, 'early.txt'), 'written before the peer exists')
    await waitFor('unreachable logged', () => logs.some(m => m.includes('cannot reach peer')), 20_000)
    const b = await c.add('b', { peers: [] })
    await b.node.stop()
    // Bring a node up on the address `a` keeps dialing.
    b.node = await (await import('../src/index.js')).startNode({ stateDir: b.state, secret: 'test-secret-0123456789', listen: `127.0.0.1:${port}`, shares: [{ dir: b.dir, id: 'share' }] })
    await waitFor('connected after retries', () => a.node.connectedPeers().length === 1, 20_000)
    await waitFor('file replicated', () => fileIs(join(b.dir, 'early.txt'), 'written before the peer exists'))
  } finally { await c.stop() }
})

test('three nodes: a conflict resolves to the same winner and copy on all of them', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'page.html'), 'v0')
    const b = await c.add('b')
    const cc = await c.add('c')
    await waitFor('v0 everywhere', () => fileIs(join(b.dir, 'page.html'), 'v0') && fileIs(join(cc.dir, 'page.html'), 'v0'))
    await a.node.stop()
    writeFileSync(join(b.dir, 'page.html'), 'edited on b')
    await waitFor('b → c', () => fileIs(join(cc.dir, 'page.html'), 'edited on b'))
    const editB = entryOf(b, 'page.html')!
    writeFileSync(join(a.dir, 'page.html'), 'edited on a (offline, later)')
    setMtime(join(a.dir, 'page.html'), editB.mtime + 1000)
    const conflicts = [collect(b, 'conflict'), collect(cc, 'conflict')]
    await c.restart(a, [b.node.address, cc.node.address])
    conflicts.push(collect(a, 'conflict'))
    await waitConverged([a, b, cc], 'all converge', () => listing(a.dir).length === 2, 30_000)
    const copy = conflictName('page.html', editB.mtime, b.node.shortId)
    for (const n of [a, b, cc]) {
      assert.deepEqual(listing(n.dir), [copy, 'page.html'].sort(), n.name)
      assert.equal(readFileSync(join(n.dir, 'page.html'), 'utf8'), 'edited on a (offline, later)')
      assert.equal(readFileSync(join(n.dir, copy), 'utf8'), 'edited on b')
    }
    // Every node that had to resolve the conflict reports it with the same path and copy.
    const reported = conflicts.flat()
    assert.ok(reported.length >= 2, `conflict events: ${JSON.stringify(reported)}`)
    for (const e of reported) assert.deepEqual(e, { share: 'share', path: 'page.html', copy })
  } finally { await c.stop() }
})

test('deletions made while a node was stopped become tombstones on restart, and peers delete too', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    mkdirSync(join(a.dir, 'gone-dir/sub'), { recursive: true })
    writeFileSync(join(a.dir, 'keep.txt'), 'keep')
    writeFileSync(join(a.dir, 'gone.txt'), 'gone')
    writeFileSync(join(a.dir, 'gone-dir/x.txt'), 'x')
    writeFileSync(join(a.dir, 'gone-dir/sub/y.bin'), randomBytes(200 * 1024))
    const b = await c.add('b')
    await waitConverged([a, b], 'initial', () => existsSync(join(b.dir, 'gone-dir/sub/y.bin')))
    await b.node.stop()
    rmSync(join(b.dir, 'gone.txt'))
    rmSync(join(b.dir, 'gone-dir'), { recursive: true })
    await c.restart(b, [a.node.address])
    const inSync = collect(b, 'in-sync')
    // b's start scan has run (restart resolves after it); in sync means a has applied what b sent.
    await waitFor('in sync after restart', () => inSync.length > 0)
    for (const p of ['gone.txt', 'gone-dir', 'gone-dir/x.txt', 'gone-dir/sub', 'gone-dir/sub/y.bin']) {
      assert.equal(entryOf(b, p)?.deleted, true, `b recorded a tombstone for ${p}`)
      assert.equal(entryOf(a, p)?.deleted, true, `a took the tombstone for ${p}`)
    }
    assert.deepEqual(listing(a.dir), ['keep.txt'], 'a deleted what b deleted while it was stopped')
    assert.deepEqual(listing(b.dir), ['keep.txt'], 'nothing came back to b')
    await waitConverged([a, b], 'converged')
  } finally { await c.stop() }
})

test('more than one feed batch: a new replica receives > 2000 entries and > 8 MiB of inline data', async () => {
  const c = new Cluster()
  try {
    // Made before the node starts: one start scan indexes them all, so they are all waiting in the feed.
    const dir = join(c.base, 'a', 'share')
    mkdirSync(join(dir, 'many'), { recursive: true })
    for (let i = 0; i < 2300; i++) writeFileSync(join(dir, 'many', `f${i}.txt`), `small file ${i}`)
    const a = await c.add('a')
    assert.equal(a.node.shares.get('share')!.entryCount, 2301)
    // Then 80 files just under the inline limit (~9.6 MiB): they come last in the feed, in a batch
    // that is cut short by its bytes, not by its entry count.
    mkdirSync(join(a.dir, 'inline'))
    for (let i = 0; i < 80; i++) writeFileSync(join(a.dir, 'inline', `g${i}.bin`), randomBytes(120 * 1024))
    await waitFor('a indexed them', () => a.node.shares.get('share')!.entryCount === 2382)
    const b = await c.add('b')
    const fetched = collect(b, 'fetched')
    // b's cursor on a's feed reaches a's last sequence number once b has applied every batch it was sent.
    const lastSeq = a.node.db.currentSeq('share')
    await waitFor('b read a\'s whole feed', () => (b.node.db.getCursor(a.node.peerId, 'share')?.seq ?? 0) >= lastSeq, 30_000)
    assert.equal(b.node.shares.get('share')!.entryCount, 2382, 'no entry was skipped')
    await waitConverged([a, b], 'all entries')
    assert.equal(readdirSync(join(b.dir, 'many')).length, 2300)
    assert.equal(readdirSync(join(b.dir, 'inline')).length, 80)
    assert.ok(sameTree(a.dir, b.dir))
    assert.deepEqual(fetched, [], 'every small file travelled inline, none was fetched')
  } finally { await c.stop() }
})

test('file mtimes are replicated, to the millisecond, whichever way the content travels', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const base = Date.UTC(2021, 4, 6, 7, 8, 9, 0)
    const files: Array<[string, Buffer, number]> = [
      ['inline.txt', Buffer.from('small, sent inline'), base + 123],
      ['empty.txt', Buffer.alloc(0), base + 456],
      ['fetched.bin', randomBytes(600 * 1024), base + 789],   // over the inline limit: piece exchange
      ['d/nested.txt', Buffer.from('in a folder'), base + 1]
    ]
    mkdirSync(join(a.dir, 'd'))
    for (const [p, data, m] of files) { writeFileSync(join(a.dir, p), data); setMtime(join(a.dir, p), m) }
    const b = await c.add('b')
    const mtimeOk = (n: typeof a, p: string, m: number) => entryOf(n, p)?.mtime === m && existsSync(join(n.dir, p))
    await waitConverged([a, b], 'initial', () => files.every(([p, , m]) => mtimeOk(a, p, m) && mtimeOk(b, p, m)))
    // Same content under a new name on a: b copies it locally (no fetch); the copy gets a's mtime too.
    writeFileSync(join(a.dir, 'copied.bin'), files[2]![1])
    setMtime(join(a.dir, 'copied.bin'), base + 999)
    // Only the mtime changes: b rewrites no data, only the time.
    setMtime(join(a.dir, 'inline.txt'), base + 5_000_321)
    files.push(['copied.bin', files[2]![1], base + 999])
    files[0]![2] = base + 5_000_321
    await waitConverged([a, b], 'changes', () => files.every(([p, , m]) => mtimeOk(a, p, m) && mtimeOk(b, p, m)))
    for (const [p, data, m] of files) {
      for (const n of [a, b]) {
        const st = statSync(join(n.dir, p))
        assert.ok(readFileSync(join(n.dir, p)).equals(data), `${n.name}:${p} content`)
        // In the replicated millisecond, give or take the microsecond a double number of seconds can lose (see the next test).
        assert.ok(st.mtimeMs > m - 0.01 && st.mtimeMs < m + 1, `${n.name}:${p} mtime ${st.mtimeMs}, expected ${m}`)
      }
    }
  } finally { await c.stop() }
})

test('a replicated mtime reads back as the same millisecond, and a rename on the receiving side keeps it', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    // A millisecond value whose seconds, as a double, lie just below it (as about half of all values do).
    const probe = join(c.base, 'probe')
    writeFileSync(probe, '')
    let m = Date.UTC(2022, 0, 2, 3, 4, 5, 123)
    for (;; m++) { utimesSync(probe, m / 1000, m / 1000); if (Math.floor(statSync(probe).mtimeMs) !== m) break }
    writeFileSync(join(a.dir, 'f.txt'), 'content')
    setMtime(join(a.dir, 'f.txt'), m)
    const b = await c.add('b')
    await waitConverged([a, b], 'replicated', () => fileIs(join(b.dir, 'f.txt'), 'content'))
    assert.equal(entryOf(b, 'f.txt')!.mtime, m)
    assert.equal(Math.floor(statSync(join(b.dir, 'f.txt')).mtimeMs), m, 'b\'s copy reads back as the same millisecond')
    // b renames it: the new entry's mtime comes from b's disk, and must still be m on both nodes.
    renameSync(join(b.dir, 'f.txt'), join(b.dir, 'g.txt'))
    await waitConverged([a, b], 'rename', () => fileIs(join(a.dir, 'g.txt'), 'content') && !existsSync(join(a.dir, 'f.txt')))
    assert.equal(entryOf(b, 'g.txt')!.mtime, m, 'a rename does not change the replicated mtime')
    assert.equal(Math.floor(statSync(join(a.dir, 'g.txt')).mtimeMs), m)
  } finally { await c.stop() }
})
