// The distribution jobs between real nodes (QUIC on loopback, SQLite, files): bcast reaches every
// node with verified copies traded among them, get fetches from several holders and resumes,
// the source may leave mid-transfer, the catalog converges after a partition, errors are clear.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, readFileSync, mkdirSync, existsSync, readdirSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, waitFor, collect, SECRET, type TestNode } from './helpers.js'
import { startNode } from '../src/index.js'
import { deflateStats } from '../src/transport/deflate.js'
import { PIECE_SIZE } from '../src/merkle/bep52.js'
import { hashFile } from '../src/merkle/hash-file.js'
import { isSwarmError } from '../src/errors.js'
import type { JobPeer } from '../src/jobs/remote.js'

async function mesh (c: Cluster, n: number): Promise<TestNode[]> {
  const nodes: TestNode[] = []
  for (let i = 0; i < n; i++) nodes.push(await c.add('n' + i))
  await waitFor('mesh', () => nodes.every(t => t.node.connectedPeers().length === n - 1))
  return nodes
}

/** Random content of `pieces` pieces published on `from` as `name`, once every node in `seen` knows the name. */
async function publish (c: Cluster, from: TestNode, seen: TestNode[], name: string, pieces: number): Promise<{ data: Buffer, root: Buffer }> {
  const data = randomBytes(pieces * PIECE_SIZE)
  const file = join(c.base, name)
  writeFileSync(file, data)
  const item = await from.node.jobs.put(file)
  await waitFor('the catalog reaches every node', () => seen.every(t => t.node.catalog.lookup(name) !== undefined))
  return { data, root: Buffer.from(item.root, 'hex') }
}

function catalogRoots (nodes: TestNode[]): string[] { return nodes.map(t => t.node.catalog.root().toString('hex')) }

test('bcast: every node holds a verified copy, downloaders trade pieces, the catalog root is the same everywhere', async () => {
  const c = new Cluster()
  try {
    const nodes = await mesh(c, 4)
    const [a] = nodes as [TestNode]
    const data = randomBytes(48 * PIECE_SIZE + 777)
    const file = join(c.base, 'video.bin')
    writeFileSync(file, data)
    const fetched = nodes.slice(1).map(t => collect(t, 'fetched'))
    const progress: number[] = []
    const r = await a.node.jobs.bcast(file, { onProgress: e => progress.push(e.nodes?.length ?? 0) })
    assert.equal(r.nodes.length, 4)
    assert.ok(r.nodes.every(n => n.state === 'done'), JSON.stringify(r.nodes))
    assert.ok(progress.length > 0 && progress.every(n => n === 4))
    for (const t of nodes) {
      const blob = t.node.blobs.get(Buffer.from(r.root, 'hex'), data.length)
      assert.ok(blob !== undefined, `${t.name} holds the blob`)
      const h = await hashFile(blob.path)
      assert.equal(h.root.toString('hex'), r.root, `${t.name}'s copy verifies`)
    }
    // Pieces came from downloaders too, not only from the source.
    const fromOthers = fetched.flat().filter(e => e.path === 'video.bin').reduce((n, e) => n + Object.entries(e.perPeer).filter(([p]) => p !== a.node.peerId).reduce((m, [, v]) => m + v, 0), 0)
    assert.ok(fromOthers > 0, 'downloaders traded pieces with each other')
    assert.ok(r.sourceCopies < 3, `source uploaded ${r.sourceCopies} copies for 3 downloaders`)
    await waitFor('catalog converges', () => new Set(catalogRoots(nodes)).size === 1 && nodes.every(t => t.node.jobs.ls().length === 1))
  } finally { await c.stop() }
})

test('get: fetches from several holders, writes the destination whole, refuses to overwrite, resumes after an interruption', async () => {
  const c = new Cluster()
  try {
    const nodes = await mesh(c, 4)
    const [a, b, cc, d] = nodes as [TestNode, TestNode, TestNode, TestNode]
    const data = randomBytes(64 * PIECE_SIZE)
    const file = join(c.base, 'data.bin')
    writeFileSync(file, data)
    await a.node.jobs.put(file, { name: 'sets/data.bin' })
    await waitFor('catalog reaches b and c', () => b.node.catalog.lookup('sets/data.bin') !== undefined && cc.node.catalog.lookup('sets/data.bin') !== undefined)
    await b.node.jobs.get('sets/data.bin', join(c.base, 'b.bin'))
    await cc.node.jobs.get('sets/data.bin', join(c.base, 'c.bin'))
    assert.ok(readFileSync(join(c.base, 'b.bin')).equals(data))
    await waitFor('catalog reaches d', () => d.node.catalog.lookup('sets/data.bin') !== undefined)
    const fetched = collect(d, 'fetched')
    const out = join(c.base, 'out')
    mkdirSync(out)
    const r = await d.node.jobs.get('sets/data.bin', out)
    assert.equal(r.dest, join(out, 'data.bin'))
    assert.ok(readFileSync(r.dest).equals(data))
    const perPeer = fetched.find(e => e.path === 'sets/data.bin')!.perPeer
    assert.ok(Object.keys(perPeer).length >= 2, `pieces from several holders: ${JSON.stringify(perPeer)}`)
    assert.deepEqual(readdirSync(out), ['data.bin'], 'no temp file is left beside the destination')
    // The same content already there: done, nothing fetched (an interrupted mget run again).
    assert.equal((await d.node.jobs.get('sets/data.bin', r.dest)).bytesFetched, 0)
    writeFileSync(r.dest, 'something else')
    await assert.rejects(d.node.jobs.get('sets/data.bin', r.dest), (err: unknown) => isSwarmError(err, 'ERR_EXISTS'))
    await d.node.jobs.get('sets/data.bin', r.dest, { force: true })
    assert.ok(readFileSync(r.dest).equals(data))
    await assert.rejects(d.node.jobs.get('nope'), (err: unknown) => isSwarmError(err, 'ERR_UNKNOWN_NAME'))
    // chunks: every node holds all pieces now.
    const ch = await d.node.jobs.chunks('sets/data.bin')
    assert.equal(ch.pieces, 64)
    assert.equal(ch.holders.length, 4)
    assert.ok(ch.holders.every(h => h.pieces === 'all'))
  } finally { await c.stop() }
})

test('get: an interrupted get keeps its verified pieces and the next one resumes; nobody online holding it is a clear error', async () => {
  const c = new Cluster()
  try {
    const [a, b] = await mesh(c, 2) as [TestNode, TestNode]
    const { data } = await publish(c, a, [b], 'big.bin', 400)
    const ac = new AbortController()
    const dest = join(c.base, 'got.bin')
    const first = b.node.jobs.get('big.bin', dest, { signal: ac.signal, onProgress: e => { if (e.bytes > 0 && e.bytes < e.size / 2) ac.abort() } })
    await assert.rejects(first, (err: unknown) => isSwarmError(err, 'ERR_ABORTED'))
    assert.equal(existsSync(dest), false, 'nothing at the destination after an interruption')
    await waitFor('partial saved', () => b.node.jobs.localChunks().some(l => l.have > 0 && l.have < l.pieces))
    const logs = collect(b, 'log')
    const r = await b.node.jobs.get('big.bin', dest)
    assert.ok(logs.some(l => /^resuming big\.bin: \d+ of 400 pieces verified in an earlier run$/.test(l.message)), 'the resume is reported, not silent')
    assert.ok(readFileSync(dest).equals(data))
    assert.ok(r.bytesFetched < data.length, `resumed: fetched ${r.bytesFetched} of ${data.length}`)
    // Published on a node that then leaves: nobody online holds it.
    const other = join(c.base, 'other.bin')
    writeFileSync(other, randomBytes(3 * PIECE_SIZE))
    await b.node.jobs.put(other)
    await waitFor('catalog back', () => a.node.catalog.lookup('other.bin') !== undefined)
    await b.node.stop()
    await waitFor('b gone', () => a.node.connectedPeers().length === 0)
    await assert.rejects(a.node.jobs.get('other.bin', join(c.base, 'x.bin')), (err: unknown) => isSwarmError(err, 'ERR_NO_HOLDER'))
  } finally { await c.stop() }
})

test('the source leaving mid-transfer does not stop a get when the others hold every piece', async () => {
  const c = new Cluster()
  try {
    const [a, b, cc] = await mesh(c, 3) as [TestNode, TestNode, TestNode]
    const data = randomBytes(300 * PIECE_SIZE)
    const file = join(c.base, 'f.bin')
    writeFileSync(file, data)
    await a.node.jobs.put(file)
    await waitFor('catalog', () => [b, cc].every(t => t.node.catalog.lookup('f.bin') !== undefined))
    await b.node.jobs.get('f.bin', join(c.base, 'b.bin'))
    let stopped: Promise<void> | null = null
    let stoppedAt = 0
    const r = await cc.node.jobs.get('f.bin', join(c.base, 'c.bin'), {
      onProgress: e => { if (stopped === null && e.bytes > 0 && e.bytes < e.size) { stoppedAt = e.bytes; stopped = a.node.stop() } }
    })
    await stopped
    assert.ok(stopped !== null && stoppedAt < data.length, 'the source stopped during the transfer')
    assert.ok(readFileSync(r.dest).equals(data))
  } finally { await c.stop() }
})

test('the catalog converges after a partition: both sides publish, concurrent publications of one name settle the same way', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a', { peers: [] })
    const b = await c.add('b', { peers: [] })
    const f1 = join(c.base, 'one'); writeFileSync(f1, 'from a')
    const f2 = join(c.base, 'two'); writeFileSync(f2, 'from b')
    await a.node.jobs.put(f1, { name: 'only-a' })
    await b.node.jobs.put(f2, { name: 'only-b' })
    await a.node.jobs.put(f1, { name: 'both' })
    await b.node.jobs.put(f2, { name: 'both' })
    assert.notEqual(a.node.catalog.root().toString('hex'), b.node.catalog.root().toString('hex'))
    await b.node.stop()
    await c.restart(b, [a.node.address])
    await waitFor('catalog converges', () => a.node.catalog.root().equals(b.node.catalog.root()) && a.node.jobs.ls().length === 3)
    assert.deepEqual(a.node.jobs.ls().map(i => i.name), ['both', 'only-a', 'only-b'])
    assert.equal(a.node.catalog.lookup('both')!.root.toString('hex'), b.node.catalog.lookup('both')!.root.toString('hex'))
  } finally { await c.stop() }
})

test('--compress: deflated piece streams carry the same verified bytes, fewer of them for text', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await startNode({ stateDir: join(c.base, 'b-state'), secret: SECRET, listen: '127.0.0.1:0', peers: [a.node.address], compress: true })
    try {
      const text = Buffer.from('{"level":"info","path":"/api/items","status":200}\n'.repeat(200_000))
      const file = join(c.base, 'log.txt')
      writeFileSync(file, text)
      await a.node.jobs.put(file)
      await waitFor('catalog', () => b.catalog.lookup('log.txt') !== undefined)
      const before = deflateStats.wireBytes
      const r = await b.jobs.get('log.txt', join(c.base, 'got.txt'))
      assert.ok(readFileSync(r.dest).equals(text))
      const wire = deflateStats.wireBytes - before
      assert.ok(wire > 0 && wire < text.length / 4, `deflated: ${wire} bytes on the wire for ${text.length}`)
    } finally { await b.stop() }
  } finally { await c.stop() }
})

/** The session `from` holds to `to` (the jobs' view of a connected peer). */
function peerOf (from: TestNode, to: TestNode): JobPeer {
  const p = (from.node as unknown as { sessions: Map<string, JobPeer> }).sessions.get(to.node.peerId)
  assert.ok(p !== undefined)
  return p
}

test('hostile FETCHes for content the catalog does not name are refused and hold nothing up; a share still syncs', async () => {
  const c = new Cluster()
  try {
    const [a, b] = await mesh(c, 2) as [TestNode, TestNode]
    const asks = Array.from({ length: 12 }, () => b.node.jobs.remote.requestFetch(peerOf(b, a), { root: randomBytes(32), size: 2 ** 30 }, 'junk'))
    const data = randomBytes(3 * PIECE_SIZE)
    writeFileSync(join(b.dir, 'share-file.bin'), data)
    await waitFor('the share file reaches a', () => existsSync(join(a.dir, 'share-file.bin')) && readFileSync(join(a.dir, 'share-file.bin')).equals(data), 20_000)
    for (const r of await Promise.allSettled(asks)) {
      assert.equal(r.status, 'rejected')
      assert.match(String((r as PromiseRejectedResult).reason.message), /not in this node's catalog|too many/)
    }
    assert.deepEqual(readdirSync(a.node.blobs.tmpDir), [], 'no part file left behind')
  } finally { await c.stop() }
})

test('an empty file travels; an aborted get returns at once even while a peer still wants the same blob; mget refuses a name that is also a folder', async () => {
  const c = new Cluster()
  try {
    const [a, b, cc] = await mesh(c, 3) as [TestNode, TestNode, TestNode]
    writeFileSync(join(c.base, 'empty'), '')
    await a.node.jobs.put(join(c.base, 'empty'))
    await waitFor('catalog', () => b.node.catalog.lookup('empty') !== undefined)
    const r = await b.node.jobs.get('empty', join(c.base, 'got-empty'))
    assert.equal(readFileSync(r.dest).length, 0)

    // A blob only `a` holds, big enough to take a while; `c` asks `b` to fetch it, then `b`'s own get is aborted.
    const data = randomBytes(600 * PIECE_SIZE)
    writeFileSync(join(c.base, 'big'), data)
    await a.node.jobs.put(join(c.base, 'big'))
    await waitFor('catalog', () => [b, cc].every(t => t.node.catalog.lookup('big') !== undefined))
    const e = b.node.catalog.lookup('big')!
    const remote = cc.node.jobs.remote.requestFetch(peerOf(cc, b), { root: e.root, size: e.size }, 'big')
    const ac = new AbortController()
    const t0 = Date.now()
    const got = b.node.jobs.get('big', join(c.base, 'b-big'), { signal: ac.signal })
    setTimeout(() => ac.abort(), 100)
    await assert.rejects(got, (err: unknown) => isSwarmError(err, 'ERR_ABORTED'))
    assert.ok(Date.now() - t0 < 3000, `the aborted get returned after ${Date.now() - t0} ms`)
    assert.equal(existsSync(join(c.base, 'b-big')), false)
    await remote   // the other caller's fetch still completes
    assert.ok(b.node.blobs.has(e.root, e.size))

    for (const [name, body] of [['docs', 'a file'], ['docs/readme', 'in a folder']] as const) {
      writeFileSync(join(c.base, 'x'), body)
      await a.node.jobs.put(join(c.base, 'x'), { name })
    }
    await assert.rejects(a.node.jobs.mget('docs', join(c.base, 'm')), (err: unknown) => isSwarmError(err, 'ERR_EXISTS') && /both a file and a folder/.test((err as Error).message))
  } finally { await c.stop() }
})

test('Ctrl-C on bcast stops the other nodes too (CANCEL); a relative path is a name, never a file of the node', async () => {
  const c = new Cluster()
  try {
    const [a, b] = await mesh(c, 2) as [TestNode, TestNode]
    const { data, root } = await publish(c, a, [b], 'huge.bin', 800)
    const ac = new AbortController()
    const r = a.node.jobs.bcast('huge.bin', { signal: ac.signal, onProgress: e => { if ((e.nodes ?? []).some(n => n.peerId === b.node.peerId && n.have > 0)) ac.abort() } })
    await assert.rejects(r, (err: unknown) => isSwarmError(err, 'ERR_ABORTED'))
    const blobBits = (b.node as unknown as { content: { blobBits: (r: Buffer, s: number) => unknown } }).content
    await waitFor('b stops fetching', () => blobBits.blobBits(root, data.length) === undefined, 5000)
    assert.equal(b.node.blobs.has(root, data.length), false, 'b did not go on to fetch the whole file')
    await assert.rejects(a.node.jobs.bcast('huge-not-a-name.bin'), (err: unknown) => isSwarmError(err, 'ERR_UNKNOWN_NAME'))
  } finally { await c.stop() }
})

test('a state dir other users can write to is refused (they could replace the control socket)', async () => {
  const c = new Cluster()
  try {
    const state = join(c.base, 'open-state')
    mkdirSync(state)
    chmodSync(state, 0o777)
    await assert.rejects(startNode({ stateDir: state, secret: SECRET, listen: '127.0.0.1:0' }), (err: unknown) => isSwarmError(err, 'ERR_STATE_DIR') && /writable by other users/.test((err as Error).message))
  } finally { await c.stop() }
})
