// Only changed pieces move: a changed big file is rebuilt on the receiver from the pieces of the
// old version it holds (equal hashes in the BEP 52 piece layers), from other local files with
// equal pieces, and only the rest crosses the network; every reused piece is verified first.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { IndexDb } from '../src/store/db.js'
import { Cluster, SECRET, collect, entryOf, fileIs, setMtime, waitConverged, waitFor, type TestNode } from './helpers.js'
import { startNode } from '../src/index.js'
import { PIECE_SIZE, fileRoot, pieceCount, pieceLayerOf } from '../src/merkle/bep52.js'

const MiB = 1024 * 1024

/** Overwrites bytes of a file in place (same size, same inode). */
function overwrite (path: string, at: number, data: Buffer): void {
  const fd = openSync(path, 'r+')
  try { writeSync(fd, data, 0, data.length, at) } finally { closeSync(fd) }
}

/** Waits until `b` holds `data` at `path`, with nothing pending; returns the fetched event of that version. */
async function arrived (b: TestNode, a: TestNode, path: string, data: Buffer, fetched: ReturnType<typeof collect<'fetched'>>) {
  const root = fileRoot(data).toString('hex')
  await waitConverged([a, b], `${path} on b`, () => fileIs(join(b.dir, path), data) && fetched.some(e => e.root === root))
  return fetched.find(e => e.root === root)!
}

test('a 4 KiB overwrite in the middle of a big file moves one piece; the rest is copied from the old version', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const data = randomBytes(6 * MiB)
    const fetched = collect(b, 'fetched')
    writeFileSync(join(a.dir, 'big.bin'), data)
    const first = await arrived(b, a, 'big.bin', data, fetched)
    assert.equal(first.bytes, data.length, 'the first copy came over the network')
    assert.equal(first.reusedPieces, 0)

    const edit = randomBytes(4096)
    const at = 3 * MiB + 1000 // inside piece 12
    overwrite(join(a.dir, 'big.bin'), at, edit)
    edit.copy(data, at)
    const e = await arrived(b, a, 'big.bin', data, fetched)
    const n = pieceCount(data.length)
    assert.equal(e.pieces, 1, `fetched ${e.pieces} pieces`)
    assert.equal(e.bytes, PIECE_SIZE)
    assert.equal(e.reusedPieces, n - 1)
    assert.equal(e.reusedBytes, data.length - PIECE_SIZE)
  } finally { await c.stop() }
})

test('an append moves only the old last piece and the new ones', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    let data = randomBytes(5 * MiB + 12345) // the last piece is partial: its hash changes with the append
    const fetched = collect(b, 'fetched')
    writeFileSync(join(a.dir, 'log.bin'), data)
    await arrived(b, a, 'log.bin', data, fetched)

    const tail = randomBytes(MiB + 100)
    appendFileSync(join(a.dir, 'log.bin'), tail)
    data = Buffer.concat([data, tail])
    const e = await arrived(b, a, 'log.bin', data, fetched)
    const kept = Math.floor((5 * MiB + 12345) / PIECE_SIZE) // the old whole pieces
    assert.equal(e.reusedPieces, kept)
    assert.equal(e.pieces, pieceCount(data.length) - kept, `fetched ${e.pieces} pieces`)
    assert.equal(e.bytes, data.length - kept * PIECE_SIZE)
  } finally { await c.stop() }
})

test('a new file sharing pieces with another file the receiver holds fetches only its new pieces', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const x = randomBytes(2 * MiB) // 8 pieces
    const fetched = collect(b, 'fetched')
    writeFileSync(join(a.dir, 'x.bin'), x)
    await arrived(b, a, 'x.bin', x, fetched)

    const y = Buffer.concat([x.subarray(0, 6 * PIECE_SIZE), randomBytes(MiB)]) // 6 pieces of x, then 4 new ones
    writeFileSync(join(a.dir, 'y.bin'), y)
    const e = await arrived(b, a, 'y.bin', y, fetched)
    assert.equal(e.reusedPieces, 6)
    assert.equal(e.pieces, 4, `fetched ${e.pieces} pieces`)
    assert.equal(e.bytes, MiB)
  } finally { await c.stop() }
})

test('a local old version changed on disk behind the index: its changed pieces fail verification and are fetched', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    let b = await c.add('b')
    const data = randomBytes(4 * MiB) // 16 pieces
    writeFileSync(join(a.dir, 'z.bin'), data)
    await arrived(b, a, 'z.bin', data, collect(b, 'fetched'))

    // While b is down, two of its pieces are rewritten in place and the old mtime put back:
    // size, mtime and inode still match the index, so b does not rehash it.
    const mtime = entryOf(b, 'z.bin')!.mtime
    await b.node.stop()
    const path = join(b.dir, 'z.bin')
    overwrite(path, 2 * PIECE_SIZE + 10, randomBytes(100))
    overwrite(path, 9 * PIECE_SIZE + 10, randomBytes(100))
    setMtime(path, mtime)
    b = await c.restart(b, [a.node.address])
    const fetched = collect(b, 'fetched')
    await waitFor('reconnected', () => b.node.connectedPeers().length === 1)
    assert.ok(!fileIs(path, data) && entryOf(b, 'z.bin')!.root.equals(fileRoot(data)), 'b still indexes the old content')

    const edit = randomBytes(4096)
    overwrite(join(a.dir, 'z.bin'), 5 * PIECE_SIZE + 7, edit)
    edit.copy(data, 5 * PIECE_SIZE + 7)
    const e = await arrived(b, a, 'z.bin', data, fetched)
    assert.equal(e.pieces, 3, 'the edited piece and the two changed on disk')
    assert.equal(e.reusedPieces, 13)
  } finally { await c.stop() }
})

test('piece index: layers are indexed by piece hash, pruned rows come back with the layer, an older index is backfilled', () => {
  const state = mkdtempSync(join(tmpdir(), 'swarm-test-'))
  let db = new IndexDb(state)
  try {
    const x = randomBytes(3 * PIECE_SIZE)
    const y = Buffer.concat([randomBytes(PIECE_SIZE), x.subarray(PIECE_SIZE)]) // pieces 1 and 2 of x
    const [rx, ry, lx, ly] = [fileRoot(x), fileRoot(y), pieceLayerOf(x), pieceLayerOf(y)]
    db.putLayer(rx, lx)
    db.putLayer(ry, ly)
    const at = (layer: Buffer, i: number) => db.piecesWithHash(layer.subarray(i * 32, i * 32 + 32)).map(r => `${r.root.equals(rx) ? 'x' : 'y'}${r.idx}`).sort()
    assert.deepEqual(at(lx, 0), ['x0'])
    assert.deepEqual(at(lx, 2), ['x2', 'y2'])
    db.forgetLayerPieces(rx)
    assert.deepEqual(at(lx, 2), ['y2'])
    assert.ok(db.getLayer(rx)?.equals(lx), 'the layer itself stays')
    db.putLayer(rx, lx) // the content is back (rehashed or fetched again)
    assert.deepEqual(at(lx, 1), ['x1', 'y1'])
    // An index made before the piece index existed gets it filled from its layers when opened.
    db.db.exec('DROP TABLE layer_pieces')
    db.close()
    db = new IndexDb(state)
    assert.deepEqual(at(ly, 0), ['y0'])
    assert.deepEqual(at(lx, 1), ['x1', 'y1'])
  } finally { db.close(); rmSync(state, { recursive: true, force: true }) }
})

test('jobs: a new version of a published file is fetched from the pieces of the old blob the node holds', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    await waitFor('connected', () => a.node.connectedPeers().length === 1 && b.node.connectedPeers().length === 1)
    const data = randomBytes(16 * PIECE_SIZE)
    const file = join(c.base, 'set.bin')
    writeFileSync(file, data)
    await a.node.jobs.put(file, { name: 'v1.bin' })
    await waitFor('v1 in the catalog on b', () => b.node.catalog.lookup('v1.bin') !== undefined)
    assert.equal((await b.node.jobs.get('v1.bin', join(c.base, 'b1.bin'))).bytesFetched, data.length)

    randomBytes(100).copy(data, 9 * PIECE_SIZE + 5)
    writeFileSync(file, data)
    await a.node.jobs.put(file, { name: 'v2.bin' })
    await waitFor('v2 in the catalog on b', () => b.node.catalog.lookup('v2.bin') !== undefined)
    const fetched = collect(b, 'fetched')
    const r = await b.node.jobs.get('v2.bin', join(c.base, 'b2.bin'))
    assert.ok(fileIs(r.dest, data))
    assert.equal(r.bytesFetched, PIECE_SIZE, 'only the changed piece crossed the network')
    assert.equal(fetched.find(e => e.path === 'v2.bin')?.reusedPieces, 15)
  } finally { await c.stop() }
})

test('pieces of a file in another share are never used: knowing its hashes must not get its bytes into this share', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    // b also holds a share a does not replicate, with a file whose first pieces y repeats.
    const secretDir = join(c.base, 'b', 'private')
    mkdirSync(secretDir, { recursive: true })
    const x = randomBytes(2 * MiB)
    writeFileSync(join(secretDir, 'x.bin'), x)
    const dir = join(c.base, 'b', 'share')
    mkdirSync(dir, { recursive: true })
    const node = await startNode({
      stateDir: join(c.base, 'b', 'state'), secret: SECRET, listen: '127.0.0.1:0', peers: [a.node.address],
      shares: [{ dir, id: 'share' }, { dir: secretDir, id: 'private' }]
    })
    const b: TestNode = { node, dir, state: join(c.base, 'b', 'state'), name: 'b' }
    c.nodes.push(b)
    await waitFor('b indexed its private file', () => node.db.getEntry('private', 'x.bin')?.local != null)
    const fetched = collect(b, 'fetched')
    const y = Buffer.concat([x.subarray(0, 6 * PIECE_SIZE), randomBytes(MiB)])
    writeFileSync(join(a.dir, 'y.bin'), y)
    const e = await arrived(b, a, 'y.bin', y, fetched)
    assert.equal(e.reusedPieces, 0)
    assert.equal(e.pieces, pieceCount(y.length))
  } finally { await c.stop() }
})
