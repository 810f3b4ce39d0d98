// Start-up at scale: the manifest is kept without the entries in memory and saved across
// restarts, a node serves its index before its start sweep is done, the sweep goes folder by
// folder, and a resync after a break moves the changed data, not the index.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync, rmSync, mkdtempSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { IndexDb } from '../src/store/db.js'
import { ShareIndex } from '../src/store/share-index.js'
import { ManifestTree } from '../src/merkle/manifest.js'
import { LocalScanner } from '../src/sync/scan.js'
import type { Entry } from '../src/model/entry.js'
import { Cluster, waitFor, waitConverged, sameTree, collect, entryOf, fileIs } from './helpers.js'
import { execFileSync } from 'node:child_process'

function entry (path: string, n: number, deleted = false): Entry {
  return { path, type: 'file', deleted, size: n, mtime: 1_700_000_000_000 + n, root: Buffer.alloc(32, n % 251), version: { nodeaaaa: n }, by: 'nodeaaaa' }
}

test('the manifest root follows every change without the entries in memory, and a saved state or the rows give the same root', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-manifest-'))
  try {
    let db = new IndexDb(dir)
    let idx = new ShareIndex(db, 's')
    const emptyRoot = idx.root()
    // Adds, replacements, deletions and re-creations, in one order...
    for (let i = 0; i < 600; i++) idx.put(entry(`d${i % 7}/f${i}`, i), null)
    for (let i = 0; i < 600; i += 3) idx.put(entry(`d${i % 7}/f${i}`, i + 1000), null)
    for (let i = 1; i < 600; i += 5) idx.put(entry(`d${i % 7}/f${i}`, i + 2000, true), null)
    for (let i = 1; i < 100; i += 5) idx.put(entry(`d${i % 7}/f${i}`, i + 3000), null)
    const root = Buffer.from(idx.root())
    const size = idx.size
    assert.notDeepEqual(root, emptyRoot)
    // ...equal the same live set built from scratch in another order.
    const fresh = new ManifestTree()
    for (const e of [...db.iterateEntries('s')].reverse()) fresh.add(e)
    assert.deepEqual(fresh.root(), root)
    assert.equal(fresh.size, size)
    // A clean stop saves the state; the next open loads it instead of reading the rows.
    idx.close()
    db.db.close()
    db = new IndexDb(dir)
    idx = new ShareIndex(db, 's')
    assert.equal(idx.loadedFrom, 'saved')
    assert.deepEqual(idx.root(), root)
    assert.equal(idx.size, size)
    // Rows written after the last save (a crash before the next one): the saved state no longer
    // matches MAX(seq), so the manifest is rebuilt from the rows, and is right.
    idx.put(entry('late/one', 42), null)
    const after = Buffer.from(idx.root())
    db.db.close()   // no close(): nothing saved
    db = new IndexDb(dir)
    idx = new ShareIndex(db, 's')
    assert.equal(idx.loadedFrom, 'rows')
    assert.deepEqual(idx.root(), after)
    // Deleting every live entry brings the root back to the empty manifest's.
    for (const e of [...db.iterateEntries('s')]) if (!e.deleted) idx.put({ ...e, deleted: true, version: { ...e.version, nodeaaaa: 99_999 } }, null)
    assert.deepEqual(idx.root(), emptyRoot)
    assert.equal(idx.size, 0)
    db.db.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a node with a large index answers a peer before its start sweep is done; in-sync only after it', async () => {
  const c = new Cluster()
  const original = LocalScanner.prototype.scanFolder
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  try {
    const dirA = join(c.base, 'a', 'share')
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(dirA, `d${d}`), { recursive: true })
      for (let f = 0; f < 50; f++) writeFileSync(join(dirA, `d${d}`, `f${f}.txt`), `file ${d}/${f}`)
    }
    const a = await c.add('a', { peers: [] })
    assert.equal(a.node.shares.get('share')!.entryCount, 1020)
    await a.node.stop()
    // The restarted A's sweep is held at its first folder: only its index can answer.
    // (Only the first call is held: that is A's, which starts first; B's own sweep runs freely.)
    let held = false
    LocalScanner.prototype.scanFolder = async function (...args) {
      if (!held) { held = true; await gate }
      return await original.apply(this, args)
    }
    await c.restart(a, [], { scanInBackground: true })
    const share = a.node.shares.get('share')!
    assert.equal(share.isScanning, true)
    const scanned = collect(a, 'scan-done')
    const inSync = collect(a, 'in-sync')
    const b = await c.add('b', { peers: [a.node.address] })
    await waitFor('b received every file from A\'s index', () => b.node.shares.get('share')!.entryCount === 1020)
    assert.equal(share.isScanning, true, 'A served while its sweep was still held')
    assert.deepEqual(scanned, [])
    assert.deepEqual(inSync, [], 'no in-sync before the sweep')
    release()
    await a.node.scanned()
    assert.equal(scanned.length, 1)
    await waitFor('A reports in sync after its sweep', () => inSync.length > 0)
    assert.ok(sameTree(a.dir, b.dir))
  } finally {
    LocalScanner.prototype.scanFolder = original
    release()
    await c.stop()
  }
})

test('the start sweep, folder by folder: changes, deletions, a folder become a file, a vanished tree', async () => {
  const c = new Cluster()
  try {
    const dir = join(c.base, 'a', 'share')
    mkdirSync(join(dir, 'keep'), { recursive: true })
    mkdirSync(join(dir, 'tree', 'sub'), { recursive: true })
    mkdirSync(join(dir, 'becomes-file'), { recursive: true })
    for (let i = 0; i < 30; i++) writeFileSync(join(dir, 'keep', `k${i}`), `k${i}`)
    writeFileSync(join(dir, 'tree', 'sub', 'deep'), 'deep')
    writeFileSync(join(dir, 'becomes-file', 'inner'), 'inner')
    writeFileSync(join(dir, 'top.txt'), 'top')
    const a = await c.add('a', { peers: [] })
    await a.node.stop()
    writeFileSync(join(dir, 'keep', 'k3'), 'changed while stopped')
    unlinkSync(join(dir, 'keep', 'k4'))
    writeFileSync(join(dir, 'keep', 'new'), 'new while stopped')
    rmSync(join(dir, 'tree'), { recursive: true })
    rmSync(join(dir, 'becomes-file'), { recursive: true })
    writeFileSync(join(dir, 'becomes-file'), 'now a file')
    await c.restart(a, [])
    const live = (p: string): boolean => { const e = entryOf(a, p); return e !== undefined && !e.deleted }
    assert.ok(live('keep/k3') && entryOf(a, 'keep/k3')!.size === 'changed while stopped'.length)
    assert.ok(!live('keep/k4'))
    assert.ok(live('keep/new'))
    assert.ok(!live('tree') && !live('tree/sub') && !live('tree/sub/deep'))
    assert.equal(entryOf(a, 'becomes-file')?.type, 'file')
    assert.ok(!live('becomes-file/inner'))
    assert.ok(live('top.txt') && live('keep/k0'))
    assert.equal(a.node.shares.get('share')!.entryCount, 1 + 30 + 1 + 1)   // keep/, its 30 files (k4 gone, new), becomes-file, top.txt
  } finally { await c.stop() }
})

test('resync after a break moves the changed bytes and metadata in proportion to the changes, not the index', async (t) => {
  const c = new Cluster()
  const FILES = 400
  const SIZE = 4096
  try {
    const dirA = join(c.base, 'a', 'share')
    mkdirSync(join(dirA, 'd'), { recursive: true })
    for (let i = 0; i < FILES; i++) writeFileSync(join(dirA, 'd', `f${i}.bin`), randomBytes(SIZE))
    const a = await c.add('a', { peers: [] })
    const b = await c.add('b', { peers: [a.node.address] })
    await waitConverged([a, b], 'first replica')
    await b.node.stop()
    // While B is down: 1 % of A's files change, and one file changes on B too.
    const changedOnA = 4
    for (let i = 0; i < changedOnA; i++) writeFileSync(join(a.dir, 'd', `f${i * 50}.bin`), randomBytes(SIZE))
    await waitFor('A indexed its edits', () => a.node.shares.get('share')!.stats.filesHashed >= FILES + changedOnA)
    writeFileSync(join(b.dir, 'd', 'f7.bin'), randomBytes(SIZE))
    await c.restart(b, [a.node.address])
    await waitConverged([a, b], 'resync')
    assert.ok(sameTree(a.dir, b.dir))
    const traffic = a.node.peerTraffic().find(p => p.peerId === b.node.peerId)!
    const moved = traffic.sent + traffic.received
    const changedBytes = (changedOnA + 1) * SIZE
    // Handshake, share lists, roots and acks are a fixed cost; each changed entry costs its
    // metadata (~200 bytes); the index of 400 unchanged files (~80 KB of entries) must not move.
    const budget = 1.1 * changedBytes + 400 * (changedOnA + 1) + 8192
    t.diagnostic(`moved ${moved} bytes for ${changedBytes} changed bytes (budget ${budget})`)
    assert.ok(moved <= budget, `moved ${moved} bytes for ${changedBytes} changed bytes (budget ${budget})`)
  } finally { await c.stop() }
})

test('a small file whose write waits (its path is blocked) keeps its content: it lands after a restart with its sender gone', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a', { peers: [] })
    const b = await c.add('b', { peers: [a.node.address] })
    mkdirSync(join(b.dir, 'blocked'))
    await waitFor('the folder reached A', () => entryOf(a, 'blocked')?.type === 'dir')
    // A FIFO is never replicated, and keeps B's folder from being replaced by A's file.
    execFileSync('mkfifo', [join(b.dir, 'blocked', 'fifo')])
    rmSync(join(a.dir, 'blocked'), { recursive: true })
    writeFileSync(join(a.dir, 'blocked'), 'small file content')
    await waitFor('B holds the version as pending', () => b.node.shares.get('share')!.pendingCount() === 1)
    await a.node.stop()
    await b.node.stop()
    unlinkSync(join(b.dir, 'blocked', 'fifo'))
    await c.restart(b, [])   // nobody to fetch from
    await waitFor('the kept content is written', () => fileIs(join(b.dir, 'blocked'), 'small file content'), 20_000)
    assert.equal(b.node.shares.get('share')!.pendingCount(), 0)
  } finally { await c.stop() }
})

test('the index WAL is checkpointed by the disk thread once it passes its threshold, not inside a commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-wal-'))
  try {
    const db = new IndexDb(dir)
    assert.equal(db.db.pragma('wal_autocheckpoint', { simple: true }), 0)
    // ~6 MiB of piece layers: past WAL_CHECKPOINT_BYTES, and no commit checkpoints by itself.
    for (let i = 0; i < 24; i++) db.putLayer(randomBytes(32), randomBytes(256 * 1024))
    await waitFor('a checkpoint ran', () => db.checkpoints > 0, 5000)
    // The next write starts the WAL over: only the frames written since are in it.
    db.putLayer(randomBytes(32), randomBytes(32))
    const [row] = db.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>
    assert.ok(row!.log < 100, `WAL holds ${row!.log} frames after the thread's checkpoint`)
    db.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
