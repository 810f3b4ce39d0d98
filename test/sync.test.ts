// End-to-end replication between real nodes on loopback: initial sync, live changes, renames,
// empty files, three-node fan-out, conflicts, deletions that must not come back, and catch-up.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, rmSync, renameSync, readdirSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, waitFor, sameTree, fileIs, settled } from './helpers.js'

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
    writeFileSync(join(a.dir, 'big.bin'), data)
    await waitFor('big file', () => fileIs(join(b.dir, 'big.bin'), data))
    let fetched = 0
    b.node.on('log', e => { if (e.message.includes('fetching')) fetched++ })
    const downloadsBefore = (b.node as unknown as { downloads: Map<string, unknown> }).downloads.size
    renameSync(join(a.dir, 'big.bin'), join(a.dir, 'renamed.bin'))
    await waitFor('rename', () => fileIs(join(b.dir, 'renamed.bin'), data) && !existsSync(join(b.dir, 'big.bin')))
    assert.equal(downloadsBefore, 0)
    assert.equal(fetched, 0)
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
    await new Promise(r => setTimeout(r, 50))
    writeFileSync(join(a.dir, 'doc.txt'), 'edit on a, later')
    const conflicts: string[] = []
    b.node.on('conflict', e => conflicts.push(e.copy))
    await c.restart(a, [b.node.address])
    await waitFor('converged', () => sameTree(a.dir, b.dir) && settled([a, b]) && readdirSync(a.dir).length === 3)
    const names = readdirSync(a.dir).filter(n => n !== '.swarm').sort()
    const copy = names.find(n => n.includes('.sync-conflict-'))
    assert.ok(copy !== undefined, `conflict copy present: ${names.join(', ')}`)
    const versions = [readFileSync(join(a.dir, 'doc.txt'), 'utf8'), readFileSync(join(a.dir, copy), 'utf8')].sort()
    assert.deepEqual(versions, ['edit on a, later', 'edit on b'])
    assert.equal(readFileSync(join(a.dir, 'doc.txt'), 'utf8'), 'edit on a, later', 'newer mtime wins')
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
    await new Promise(r => setTimeout(r, 100))
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
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'secret-data.txt'), 'x')
    const logsA: string[] = []
    a.node.on('log', e => logsA.push(e.message))
    const b = await c.add('b', { secret: 'a-different-secret' })
    const logsB: string[] = []
    b.node.on('log', e => logsB.push(e.message))
    await waitFor('refusal logged on both sides', () => logsA.some(m => m.includes('wrong cluster secret')) && logsB.some(m => m.includes('wrong cluster secret')))
    await new Promise(r => setTimeout(r, 300))
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
    const a = await c.add('a', { peers: [`127.0.0.1:${port}`] })
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
    await new Promise(r => setTimeout(r, 30))
    writeFileSync(join(a.dir, 'page.html'), 'edited on a (offline, later)')
    await c.restart(a, [b.node.address, cc.node.address])
    const listing = (d: string) => readdirSync(d).filter(n => n !== '.swarm').sort()
    await waitFor('all converge', () => sameTree(a.dir, b.dir) && sameTree(b.dir, cc.dir) && settled([a, b, cc]) && listing(a.dir).length === 2, 30_000)
    for (const n of [a, b, cc]) {
      assert.equal(readFileSync(join(n.dir, 'page.html'), 'utf8'), 'edited on a (offline, later)')
      const copy = listing(n.dir).find(x => x.includes('.sync-conflict-'))!
      assert.equal(readFileSync(join(n.dir, copy), 'utf8'), 'edited on b')
    }
  } finally { await c.stop() }
})
