// The replication rules end to end, between real nodes: a live file beats a concurrent deletion,
// equal-mtime conflicts are broken the same way on every node, and a local edit the index has
// not seen yet is never silently overwritten by a remote version.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, rmSync, readFileSync, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, waitFor, waitConverged, fileIs, listing, entryOf, setMtime, collect } from './helpers.js'
import { fileRoot } from '../src/merkle/bep52.js'
import { bumpVersion } from '../src/model/version.js'
import { conflictName } from '../src/model/paths.js'
import type { Entry } from '../src/model/entry.js'

test('a live file beats a concurrent deletion: an edit made while a node was away wins over a delete', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'edited-on-a.txt'), 'v0')
    writeFileSync(join(a.dir, 'edited-on-b.txt'), 'v0')
    const b = await c.add('b')
    await waitConverged([a, b], 'initial', () => fileIs(join(b.dir, 'edited-on-a.txt'), 'v0') && fileIs(join(b.dir, 'edited-on-b.txt'), 'v0'))
    const m0 = entryOf(a, 'edited-on-a.txt')!.mtime
    // Both edits get an mtime older than the deleted version's: only the live-beats-deletion rule
    // (not "newer mtime wins") can keep them.
    const old = m0 - 3_600_000
    await a.node.stop()
    // b, running: deletes one file and edits the other.
    rmSync(join(b.dir, 'edited-on-a.txt'))
    writeFileSync(join(b.dir, 'edited-on-b.txt'), 'edited on b while a was away')
    setMtime(join(b.dir, 'edited-on-b.txt'), old)
    await waitFor('b indexed its changes', () => entryOf(b, 'edited-on-a.txt')?.deleted === true && entryOf(b, 'edited-on-b.txt')?.mtime === old)
    // a, stopped: edits the file b deleted and deletes the file b edited.
    writeFileSync(join(a.dir, 'edited-on-a.txt'), 'edited on a while away')
    setMtime(join(a.dir, 'edited-on-a.txt'), old)
    rmSync(join(a.dir, 'edited-on-b.txt'))
    await c.restart(a, [b.node.address])
    const inSync = collect(a, 'in-sync')
    await waitFor('a in sync after restart', () => inSync.length > 0)
    await waitConverged([a, b], 'converged')
    for (const n of [a, b]) {
      assert.equal(readFileSync(join(n.dir, 'edited-on-a.txt'), 'utf8'), 'edited on a while away', `${n.name}: the offline edit beat the delete`)
      assert.equal(readFileSync(join(n.dir, 'edited-on-b.txt'), 'utf8'), 'edited on b while a was away', `${n.name}: the edit beat the offline delete`)
      assert.deepEqual(listing(n.dir), ['edited-on-a.txt', 'edited-on-b.txt'], 'no conflict copy of a deletion')
      for (const p of ['edited-on-a.txt', 'edited-on-b.txt']) {
        const e = entryOf(n, p)!
        assert.equal(e.deleted, false)
        assert.equal(e.mtime, old)
      }
    }
  } finally { await c.stop() }
})

test('equal-mtime conflicts: the larger node id wins on every node, with the same conflict copy', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'tie.txt'), 'base')
    const b = await c.add('b')
    await waitConverged([a, b], 'base', () => fileIs(join(b.dir, 'tie.txt'), 'base'))
    const high = a.node.shortId > b.node.shortId ? a : b
    const low = high === a ? b : a
    // Contents picked so the root order disagrees with the node id order: a tie broken by root
    // (or by whichever side is local) gives a different answer than the node id rule.
    const [small, big] = ['edit one', 'edit two'].sort((x, y) => fileRoot(Buffer.from(x)).compare(fileRoot(Buffer.from(y))))
    const content = new Map([[high, small!], [low, big!]])
    const T = entryOf(a, 'tie.txt')!.mtime + 10_000
    await a.node.stop()
    writeFileSync(join(b.dir, 'tie.txt'), content.get(b)!)
    setMtime(join(b.dir, 'tie.txt'), T)
    await waitFor('b indexed its edit', () => entryOf(b, 'tie.txt')?.mtime === T && entryOf(b, 'tie.txt')!.root.equals(fileRoot(Buffer.from(content.get(b)!))))
    writeFileSync(join(a.dir, 'tie.txt'), content.get(a)!)
    setMtime(join(a.dir, 'tie.txt'), T)
    const conflictsB = collect(b, 'conflict')
    // A's conflict can come before restart() returns (it waits for A's sweep): A's count comes from
    // its status, whose counters start with the node.
    await c.restart(a, [b.node.address])
    const copy = conflictName('tie.txt', T, low.node.shortId)
    await waitConverged([a, b], 'converged', () => listing(a.dir).length === 2)
    for (const n of [a, b]) {
      assert.deepEqual(listing(n.dir), [copy, 'tie.txt'].sort(), `${n.name}: the copy is named after the loser (${low.name})`)
      assert.equal(readFileSync(join(n.dir, 'tie.txt'), 'utf8'), content.get(high), `${n.name}: the larger node id (${high.name}) wins`)
      assert.equal(readFileSync(join(n.dir, copy), 'utf8'), content.get(low))
      assert.equal(entryOf(n, 'tie.txt')!.by, high.node.shortId)
      assert.equal(entryOf(n, copy)!.by, low.node.shortId)
      assert.equal(entryOf(n, copy)!.mtime, T)
    }
    assert.deepEqual(conflictsB.map(e => ({ path: e.path, copy: e.copy })), [{ path: 'tie.txt', copy }])
    assert.equal(a.node.status().shares[0]!.conflicts, 1)
  } finally { await c.stop() }
})

test('a local edit not indexed yet is never silently overwritten by a remote version', async () => {
  const c = new Cluster()
  try {
    // The files exist before the node starts, so it indexes them in its start scan and no watcher
    // event of theirs is still on the way when the edits below are made.
    const dir = join(c.base, 'a', 'share')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'remote-wins.txt'), 'indexed version')
    writeFileSync(join(dir, 'local-wins.txt'), 'indexed version')
    const a = await c.add('a', { peers: [] })
    const share = a.node.shares.get('share')!
    const conflicts = collect(a, 'conflict')
    const remoteVersion = (path: string, mtime: number): { entry: Entry, data: Buffer } => {
      const old = entryOf(a, path)!
      const data = Buffer.from(`remote version of ${path}`)
      // A version made by a peer that had seen ours: it dominates what the index holds.
      return { entry: { path, type: 'file', deleted: false, size: data.length, mtime, root: fileRoot(data), version: bumpVersion(old.version, 'peer0001'), by: 'peer0001' }, data }
    }
    const now = Date.now()
    const r1 = remoteVersion('remote-wins.txt', now + 3_600_000)   // newer than the local edit
    const r2 = remoteVersion('local-wins.txt', now - 3_600_000)    // older than the local edit
    // The edits land on disk, and in the same tick (before the watcher can report them) the peer's versions arrive.
    writeFileSync(join(a.dir, 'remote-wins.txt'), 'local edit 1')
    writeFileSync(join(a.dir, 'local-wins.txt'), 'local edit 2')
    const editMtime = Math.trunc(statSync(join(a.dir, 'remote-wins.txt')).mtimeMs)
    await share.applyRemoteBatch('peer-0001', [r1, r2])   // resolves once applied (the data is inline)
    const copy1 = conflictName('remote-wins.txt', editMtime, a.node.shortId)
    const copy2 = conflictName('local-wins.txt', r2.entry.mtime, 'peer0001')
    assert.deepEqual(listing(a.dir), [copy2, 'local-wins.txt', copy1, 'remote-wins.txt'].sort())
    // Newer remote version: installed, the local edit moved aside under its conflict name.
    assert.equal(readFileSync(join(a.dir, 'remote-wins.txt'), 'utf8'), 'remote version of remote-wins.txt')
    assert.equal(readFileSync(join(a.dir, copy1), 'utf8'), 'local edit 1')
    assert.ok(entryOf(a, 'remote-wins.txt')!.root.equals(r1.entry.root))
    assert.equal(entryOf(a, copy1)?.by, a.node.shortId, 'the copy is the local edit, as a version of this node')
    // Older remote version: the local edit stays, the remote version is kept as the conflict copy.
    assert.equal(readFileSync(join(a.dir, 'local-wins.txt'), 'utf8'), 'local edit 2')
    assert.equal(readFileSync(join(a.dir, copy2), 'utf8'), 'remote version of local-wins.txt')
    assert.equal(entryOf(a, 'local-wins.txt')?.by, a.node.shortId)
    assert.deepEqual(conflicts.map(e => `${e.path} → ${e.copy}`).sort(), [`local-wins.txt → ${copy2}`, `remote-wins.txt → ${copy1}`].sort())
    assert.ok(!existsSync(join(a.dir, '.swarm', 'tmp', 'remote-wins.txt')))
  } finally { await c.stop() }
})

test('a local edit made while the remote version is being fetched becomes a conflict too', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    writeFileSync(join(a.dir, 'f.bin'), 'v0')
    const b = await c.add('b')
    await waitConverged([a, b], 'v0', () => fileIs(join(b.dir, 'f.bin'), 'v0'))
    const big = randomBytes(48 * 1024 * 1024)   // big enough that the fetch is still running when a edits
    writeFileSync(join(b.dir, 'f.bin'), big)
    // a accepted b's version and is fetching it when the file is edited on a.
    await waitFor('a fetching', () => a.node.shares.get('share')!.pendingCount() > 0)
    writeFileSync(join(a.dir, 'f.bin'), 'edited on a during the fetch')
    await waitFor('b\'s version indexed on b', () => entryOf(b, 'f.bin')?.size === big.length)
    const copy = conflictName('f.bin', entryOf(b, 'f.bin')!.mtime, b.node.shortId)
    await waitConverged([a, b], 'converged', () => listing(a.dir).length === 2, 10_000)
    for (const n of [a, b]) {
      assert.deepEqual(listing(n.dir), [copy, 'f.bin'].sort(), n.name)
      assert.equal(readFileSync(join(n.dir, 'f.bin'), 'utf8'), 'edited on a during the fetch', 'the newer local edit wins')
      assert.ok(readFileSync(join(n.dir, copy)).equals(big), 'b\'s version is kept as the conflict copy')
    }
  } finally { await c.stop() }
})
