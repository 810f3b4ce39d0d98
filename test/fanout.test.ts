// A file fans out: downloaders of one new file trade pieces with each other, and the source
// hands each piece out once before it hands any out twice (super-seeding).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdtempSync, rmSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, waitFor, fileIs } from './helpers.js'
import { FileSource } from '../src/swarm/source.js'
import { PIECE_SIZE, pieceLayerOf, fileRoot } from '../src/merkle/bep52.js'

test('a complete source hands each piece out once before it hands any out twice', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-test-'))
  try {
    const data = randomBytes(4 * PIECE_SIZE)
    const path = join(dir, 'f')
    writeFileSync(path, data)
    const src = new FileSource({ path, root: fileRoot(data), size: data.length, layer: pieceLayerOf(data), mtimeMs: 0 })
    assert.ok(src.claimUpload(2))
    assert.equal(src.claimUpload(2), false, 'a second upload of piece 2 waits until every piece went out once')
    for (const i of [0, 1, 3]) assert.ok(src.claimUpload(i))
    assert.ok(src.claimUpload(2), 'the second round has begun')
    assert.equal(src.claimUpload(2), false)
    assert.ok(src.claimUpload(0))
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('two downloaders of one new file get pieces from each other, not only from the source', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const cc = await c.add('c')
    await waitFor('mesh', () => [a, b, cc].every(n => n.node.connectedPeers().length === 2))
    const perPeer = new Map<string, Record<string, number>>()
    for (const n of [b, cc]) n.node.on('fetched', e => { if (e.path === 'big.bin') perPeer.set(n.node.peerId, e.perPeer) })
    const data = randomBytes(32 * PIECE_SIZE + 1234)
    writeFileSync(join(c.base, 'big.bin'), data)             // made outside the share, moved in whole
    renameSync(join(c.base, 'big.bin'), join(a.dir, 'big.bin'))
    await waitFor('both have it', () => fileIs(join(b.dir, 'big.bin'), data) && fileIs(join(cc.dir, 'big.bin'), data) && perPeer.size === 2, 60_000)
    const fromB = perPeer.get(cc.node.peerId)![b.node.peerId] ?? 0
    const fromC = perPeer.get(b.node.peerId)![cc.node.peerId] ?? 0
    assert.ok(fromB + fromC > 0, `b and c traded no piece: ${JSON.stringify([...perPeer])}`)
  } finally { await c.stop() }
})

test('downloaders that cannot reach each other still complete: a piece the source refused once is served when asked again', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b', { peers: [a.node.address], peerExchange: false })
    const cc = await c.add('c', { peers: [a.node.address], peerExchange: false })
    await waitFor('star', () => a.node.connectedPeers().length === 2)
    const data = randomBytes(16 * PIECE_SIZE + 99)
    writeFileSync(join(c.base, 'big.bin'), data)
    renameSync(join(c.base, 'big.bin'), join(a.dir, 'big.bin'))
    await waitFor('both have it', () => fileIs(join(b.dir, 'big.bin'), data) && fileIs(join(cc.dir, 'big.bin'), data), 30_000)
    assert.ok(!b.node.connectedPeers().includes(cc.node.peerId), 'b and c never met')
  } finally { await c.stop() }
})
