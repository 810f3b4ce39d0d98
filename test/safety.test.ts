// Nothing lost, nothing escapes: each test here is one way user data was lost, corrupted or
// reached outside its share before, made to fail if it ever comes back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, rmSync, existsSync, renameSync, readFileSync, readdirSync, statSync, symlinkSync, chmodSync, chownSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { Cluster, SECRET, waitFor, fileIs, settled, type TestNode } from './helpers.js'
import { SwarmNode, startNode, isSwarmError } from '../src/index.js'
import { IndexDb } from '../src/store/db.js'
import { Share } from '../src/sync/share.js'
import { bumpVersion } from '../src/model/version.js'
import { MAX_CONCURRENT_FETCHES } from '../src/node/content.js'
import { decode, encode } from '../src/wire/control.js'
import { conflictName } from '../src/model/paths.js'
import { pieceLayerOf, fileRoot } from '../src/merkle/bep52.js'
import type { Entry } from '../src/model/entry.js'

const REMOTE = 'Rm9te1111'

/** Restarts a stopped test node with its folder and state, events subscribed before start. */
async function restart (t: TestNode, peers: string[], opts: { acceptEmpty?: boolean } = {}): Promise<{ node: SwarmNode, paused: string[], resumed: () => boolean }> {
  const node = new SwarmNode({ stateDir: t.state, secret: SECRET, listen: `127.0.0.1:${t.node.port}`, peers, shares: [{ dir: t.dir, id: 'share', acceptEmpty: opts.acceptEmpty }] })
  const paused: string[] = []
  let resumed = false
  node.on('share-paused', e => paused.push(e.reason))
  node.on('share-resumed', () => { resumed = true })
  await node.start()
  t.node = node
  return { node, paused, resumed: () => resumed }
}

function remoteEntry (path: string, data: Buffer, over: Partial<Entry> = {}): Entry {
  return { path, type: 'file', deleted: false, size: data.length, mtime: Date.now(), root: fileRoot(data), version: { [REMOTE]: 1 }, by: REMOTE, ...over }
}

test('an unmounted (replaced by an empty) share folder is paused, deletes nothing on peers, and resumes when it is back', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    writeFileSync(join(a.dir, 'x.txt'), 'x')
    mkdirSync(join(a.dir, 'd'))
    writeFileSync(join(a.dir, 'd', 'y.txt'), 'y')
    await waitFor('synced', () => fileIs(join(b.dir, 'd', 'y.txt'), 'y') && settled([a, b]))
    await b.node.stop()
    renameSync(b.dir, b.dir + '.real')
    mkdirSync(b.dir)                       // what an unmounted mount point looks like
    const r = await restart(b, [a.node.address])
    await waitFor('paused', () => r.paused.length > 0)
    assert.match(r.paused[0]!, /marker/)
    await waitFor('b connected to a', () => a.node.connectedPeers().includes(b.node.peerId))
    assert.ok(fileIs(join(a.dir, 'x.txt'), 'x') && fileIs(join(a.dir, 'd', 'y.txt'), 'y'), 'a keeps its files')
    assert.deepEqual(readdirSync(b.dir), [], 'nothing written into the empty mount point')
    rmSync(b.dir, { recursive: true })
    renameSync(b.dir + '.real', b.dir)    // mounted again
    await waitFor('resumed', r.resumed, 15_000)
    writeFileSync(join(a.dir, 'z.txt'), 'z')
    await waitFor('replicating again', () => fileIs(join(b.dir, 'z.txt'), 'z') && settled([a, b]))
    assert.ok(fileIs(join(a.dir, 'x.txt'), 'x') && fileIs(join(b.dir, 'd', 'y.txt'), 'y'))
  } finally { await c.stop() }
})

test('a folder emptied while its node was stopped is paused; with acceptEmpty the deletions go out', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    writeFileSync(join(a.dir, 'x.txt'), 'x')
    await waitFor('synced', () => fileIs(join(b.dir, 'x.txt'), 'x') && settled([a, b]))
    await b.node.stop()
    rmSync(join(b.dir, 'x.txt'))
    const r = await restart(b, [a.node.address])
    await waitFor('paused', () => r.paused.length > 0)
    assert.match(r.paused[0]!, /empty/)
    await waitFor('b connected to a', () => a.node.connectedPeers().includes(b.node.peerId))
    assert.ok(fileIs(join(a.dir, 'x.txt'), 'x'), 'a keeps its file')
    await b.node.stop()
    await restart(b, [a.node.address], { acceptEmpty: true })
    await waitFor('the deletion replicates', () => !existsSync(join(a.dir, 'x.txt')) && settled([a, b]))
  } finally { await c.stop() }
})

test('a second process on the same state dir is refused with ERR_LOCKED; the lock goes with the node', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    await assert.rejects(startNode({ stateDir: a.state, secret: SECRET, listen: '127.0.0.1:0', shares: [] }), (err: unknown) => isSwarmError(err, 'ERR_LOCKED'))
    await a.node.stop()
    const again = await startNode({ stateDir: a.state, secret: SECRET, listen: '127.0.0.1:0', shares: [] })
    await again.stop()
  } finally { await c.stop() }
})

test('a --peer that is the node itself is dialed once and dropped with a clear message', async () => {
  const port = await new Promise<number>(resolve => {
    const s = createSocket('udp4')
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
  const c = new Cluster()
  try {
    const node = new SwarmNode({ stateDir: join(c.base, 'self'), secret: SECRET, listen: `127.0.0.1:${port}`, peers: [`127.0.0.1:${port}`], shares: [] })
    const logs: string[] = []
    let connected = 0
    node.on('log', e => logs.push(e.message))
    node.on('peer-connected', () => { connected++ })
    await node.start()
    c.nodes.push({ node, dir: '', state: '', name: 'self' })
    await waitFor('self-dial noticed', () => logs.some(l => l.includes("this node's own address")))
    const dials = logs.filter(l => l.includes("this node's own address")).length
    assert.equal(dials, 1)
    assert.equal(connected, 0)
  } finally { await c.stop() }
})

test('type changes replicate: a file becomes a folder and a folder becomes a file', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    writeFileSync(join(a.dir, 'x'), 'file')
    await waitFor('file x on b', () => fileIs(join(b.dir, 'x'), 'file'))
    rmSync(join(a.dir, 'x'))
    mkdirSync(join(a.dir, 'x'))
    writeFileSync(join(a.dir, 'x', 'inner.txt'), 'inner')
    await waitFor('folder x on b', () => fileIs(join(b.dir, 'x', 'inner.txt'), 'inner') && settled([a, b]))
    assert.ok(statSync(join(b.dir, 'x')).isDirectory())
    rmSync(join(a.dir, 'x'), { recursive: true })
    writeFileSync(join(a.dir, 'x'), 'file again')
    await waitFor('file x on b again', () => fileIs(join(b.dir, 'x'), 'file again') && settled([a, b]))
  } finally { await c.stop() }
})

test('a folder deleted with more entries than one feed batch stays deleted on the peer', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    mkdirSync(join(a.dir, 'many', 'sub'), { recursive: true })
    for (let i = 0; i < 2100; i++) writeFileSync(join(a.dir, 'many', i < 1000 ? 'sub' : '', `f${i}`), String(i))
    await waitFor('copied', () => fileIs(join(b.dir, 'many', 'f2099'), '2099') && settled([a, b]), 60_000)
    rmSync(join(a.dir, 'many'), { recursive: true })
    await waitFor('deleted on b', () => !existsSync(join(b.dir, 'many')) && settled([a, b]), 60_000)
    writeFileSync(join(a.dir, 'marker.txt'), 'after')    // one more round trip: the folder has not come back
    await waitFor('after', () => fileIs(join(b.dir, 'marker.txt'), 'after') && settled([a, b]))
    assert.ok(!existsSync(join(b.dir, 'many')) && !existsSync(join(a.dir, 'many')))
  } finally { await c.stop() }
})

test('a conflict copy whose name is taken never overwrites it; the local loser is kept under a numbered name', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    writeFileSync(join(a.dir, 'doc.txt'), 'mine')
    await waitFor('indexed', () => share.entryCount === 1)
    const mine = a.node.db.getEntry('share', 'doc.txt')!
    const taken = conflictName('doc.txt', mine.mtime, mine.by)
    writeFileSync(join(a.dir, taken), 'precious')
    await waitFor('indexed too', () => share.entryCount === 2)
    const theirs = Buffer.from('theirs')
    await share.applyRemoteBatch(REMOTE, [{ entry: remoteEntry('doc.txt', theirs, { mtime: mine.mtime + 60_000 }), data: theirs }])
    assert.equal(readFileSync(join(a.dir, 'doc.txt'), 'utf8'), 'theirs')
    assert.equal(readFileSync(join(a.dir, taken), 'utf8'), 'precious', 'the existing file is untouched')
    const numbered = taken.replace(/\.txt$/, '-2.txt')
    assert.equal(readFileSync(join(a.dir, numbered), 'utf8'), 'mine', 'the local loser is kept')
  } finally { await c.stop() }
})

test('the decoder refuses what no honest node sends: traversal in `by`, unsafe counters, huge sizes, bad ids', () => {
  const data = Buffer.from('x')
  const ok = remoteEntry('ok', data)
  // A bad entry is dropped alone (the rest of its batch still counts); a bad share id fails the frame.
  const refused = (e: Entry) => {
    const msg = decode(encode.entries('share', 1, [{ entry: e }, { entry: ok }]).subarray(4))
    assert.ok(msg.type === 'entries' && msg.rejected.length === 1 && msg.entries.length === 1 && msg.entries[0]!.entry.path === 'ok', JSON.stringify({ ...e, root: undefined }))
  }
  refused(remoteEntry('f', data, { by: 'x/../../outside/f', version: { 'x/../../outside/f': 1 } }))
  refused(remoteEntry('f', data, { version: { [REMOTE]: 2 ** 53 - 1 } }))
  refused(remoteEntry('f', data, { version: { [REMOTE]: 1, ['__proto__']: 1 } }))
  refused(remoteEntry('f', data, { size: 4 * 2 ** 40 }))
  refused(remoteEntry('f', data, { version: {} }))
  for (const share of ['a/b', 'bad\nid']) {
    assert.throws(() => decode(encode.entries(share, 1, [{ entry: ok }]).subarray(4)), (err: unknown) => isSwarmError(err, 'ERR_PROTOCOL'), share)
  }
  assert.throws(() => decode(encode.subscribe('share', 'abcd', -1).subarray(4)), (err: unknown) => isSwarmError(err, 'ERR_PROTOCOL'))
})

test('a symlinked folder inside a share is never followed for reads or deletes', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    const outside = join(c.base, 'outside')
    mkdirSync(outside)
    writeFileSync(join(outside, 'f.txt'), 'keep me')
    symlinkSync(outside, join(a.dir, 'link'))
    const gone: Entry = { ...remoteEntry('link/f.txt', Buffer.alloc(0)), deleted: true, size: 0 }
    await share.applyRemoteBatch(REMOTE, [{ entry: gone }])
    assert.equal(readFileSync(join(outside, 'f.txt'), 'utf8'), 'keep me', 'not deleted through the symlink')
    assert.equal(share.disk.lstat('link/f.txt'), null)
    assert.throws(() => share.disk.openRead('link/f.txt'), (err: unknown) => isSwarmError(err, 'ERR_BAD_PATH'))
  } finally { await c.stop() }
})

test('a root does not stand for content of another size: a 64-byte file with a big file\'s root is never copied in its place', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    const big = randomBytes(512 * 1024)
    const evil = pieceLayerOf(big)                     // two piece hashes: its own root is the big file's root
    assert.equal(evil.length, 64)
    assert.ok(fileRoot(evil).equals(fileRoot(big)))
    writeFileSync(join(a.dir, 'evil.bin'), evil)
    await waitFor('indexed', () => share.entryCount === 1)
    await share.applyRemoteBatch(REMOTE, [{ entry: remoteEntry('big.bin', big) }])
    assert.ok(!existsSync(join(a.dir, 'big.bin')), 'nothing installed: the content must be fetched')
    assert.equal(share.pendingCount(), 1)
  } finally { await c.stop() }
})

test('tombstones are garbage-collected once every peer has applied them, and deletions still hold', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    for (const n of ['x', 'y']) writeFileSync(join(a.dir, n), n)
    await waitFor('synced', () => fileIs(join(b.dir, 'y'), 'y') && settled([a, b]))
    rmSync(join(a.dir, 'x'))
    await waitFor('deleted on b', () => !existsSync(join(b.dir, 'x')))
    writeFileSync(join(a.dir, 'z'), 'z')           // a newer change: the tombstone is no longer the newest row
    await waitFor('z on b', () => fileIs(join(b.dir, 'z'), 'z') && settled([a, b]))
    await waitFor('tombstones collected on both', () => a.node.db.tombstoneCount('share') === 0 && b.node.db.tombstoneCount('share') === 0)
    writeFileSync(join(b.dir, 'w'), 'w')
    await waitFor('w on a', () => fileIs(join(a.dir, 'w'), 'w') && settled([a, b]))
    assert.ok(!existsSync(join(a.dir, 'x')) && !existsSync(join(b.dir, 'x')), 'the deleted file did not come back')
  } finally { await c.stop() }
})

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
const NOBODY = 65534

test('an unreadable file is logged on the terminal (at startup too) and skipped; the rest of the scan goes on', async (t) => {
  // Root reads everything, so the node runs as `nobody` and the file belongs to root, mode 0600.
  const canRun = process.getuid?.() === 0 && spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)})`], { uid: NOBODY, gid: NOBODY }).status === 0
  if (!canRun) { t.skip('needs root and a checkout that user nobody can read'); return }
  const c = new Cluster()
  chmodSync(c.base, 0o755)
  const bDir = join(c.base, 'b', 'share')
  const bState = join(c.base, 'b', 'state')
  mkdirSync(join(bDir, 'sub'), { recursive: true })
  mkdirSync(bState, { recursive: true })
  writeFileSync(join(bDir, 'ok1.txt'), 'one')
  writeFileSync(join(bDir, 'sub', 'ok2.txt'), 'two')
  writeFileSync(join(bDir, 'secret.txt'), 'root only')
  for (const p of [join(c.base, 'b'), bDir, join(bDir, 'sub'), join(bDir, 'ok1.txt'), join(bDir, 'sub', 'ok2.txt'), bState]) chownSync(p, NOBODY, NOBODY)
  chmodSync(join(bDir, 'secret.txt'), 0o600)
  const run = () => {
    const child = spawn(process.execPath, [BIN, 'share', `${bDir}=share`, '--listen', '127.0.0.1:0', '--peer', a.node.address, '--secret', SECRET, '--state', bState], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    return { child, stderr: () => err, stop: async () => { child.kill('SIGTERM'); await new Promise(r => child.once('exit', r)) } }
  }
  const a = await c.add('a')
  try {
    let b = run()
    try {
      await waitFor('the readable files reach a', () => fileIs(join(a.dir, 'ok1.txt'), 'one') && fileIs(join(a.dir, 'sub', 'ok2.txt'), 'two'), 30_000)
      await waitFor('the unreadable file is reported on the terminal', () => /cannot read secret\.txt/.test(b.stderr()))
      assert.ok(!existsSync(join(a.dir, 'secret.txt')))
    } finally { await b.stop() }
    rmSync(join(bDir, 'ok1.txt'))                    // deleted while the node is down
    b = run()
    try {
      await waitFor('the deletion made while stopped reaches a', () => !existsSync(join(a.dir, 'ok1.txt')), 30_000)
      await waitFor('reported again at startup', () => /cannot read secret\.txt/.test(b.stderr()))
      assert.ok(fileIs(join(a.dir, 'sub', 'ok2.txt'), 'two'))
    } finally { await b.stop() }
  } finally { await c.stop() }
})

test('a local edit recorded while a remote version is being fetched is not overwritten: the merge rules decide again', async () => {
  const base = join(new Cluster().base)
  const dir = join(base, 'share')
  mkdirSync(dir)
  writeFileSync(join(dir, 'f.txt'), 'original')
  const db = new IndexDb(base)
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let n = 0
  const share: Share = new Share({
    db, shortId: 'MEaaaaaa', peerId: 'me',
    // The "network": content arrives once the test releases it (the bytes are the remote version's).
    fetch: async (s) => { await gate; const t = join(s.disk.tmpDir, `fetched-${n++}`); writeFileSync(t, 'REMOTE-V'); return t },
    log: () => {}
  }, db.openShare('s', dir))
  try {
    await share.start()
    await share.scanned()
    const mine = db.getEntry('s', 'f.txt')!
    const remote: Entry = { path: 'f.txt', type: 'file', deleted: false, size: 8, mtime: mine.mtime - 100_000, root: Buffer.alloc(32, 7), version: { ...mine.version, PEERbbbb: 5 }, by: 'PEERbbbb' }
    await share.applyRemoteBatch('peerB', [{ entry: remote }])
    assert.equal(share.pendingCount(), 1)
    writeFileSync(join(dir, 'f.txt'), 'USER EDIT, newer')
    await waitFor('the watcher records the edit', () => db.getEntry('s', 'f.txt')!.version.MEaaaaaa! > mine.version.MEaaaaaa!)
    release()
    await waitFor('the remote version kept as a conflict copy', () => readdirSync(dir).some(f => f.includes('sync-conflict') && readFileSync(join(dir, f), 'utf8') === 'REMOTE-V'))
    assert.equal(readFileSync(join(dir, 'f.txt'), 'utf8'), 'USER EDIT, newer')
  } finally { share.stop(); db.close(); rmSync(base, { recursive: true, force: true }) }
})

test('a file re-created after its tombstone was collected sorts after that tombstone on peers that still hold it', () => {
  const base = new Cluster().base
  const db = new IndexDb(base)
  try {
    const e = (v: Record<string, number>, deleted: boolean, path = 'x'): Entry => ({ path, type: 'file', deleted, size: deleted ? 0 : 1, mtime: 1, root: Buffer.alloc(32), version: v, by: 'Aaaa' })
    db.putEntry('s', e({ Aaaa: 1 }, false), null)
    db.putEntry('s', e({ Aaaa: 2 }, true), null)          // deleted here; a peer holds this tombstone
    db.putEntry('s', e({ Aaaa: 3 }, false, 'y'), null)    // a newer row, so the tombstone is not the newest
    db.setCursor('Peer', 's', 'abcd', 1)
    db.setAck('Peer', 's', db.currentSeq('s'))
    assert.equal(db.collectTombstones('s'), 1)
    assert.equal(db.getEntry('s', 'x'), undefined)
    // What the share's clock would be on restart: the collected tombstone's counter is remembered.
    const clock = Math.max(db.getClock('s'), ...db.allEntries('s').map(r => Math.max(...Object.values(r.version))))
    assert.ok(db.getClock('s') >= 2)
    const recreated = bumpVersion(undefined, 'Aaaa', clock)
    assert.ok(recreated.Aaaa! > 2, `recreated ${JSON.stringify(recreated)} must dominate the tombstone {Aaaa:2}`)
  } finally { db.close(); rmSync(base, { recursive: true, force: true }) }
})

test('the local loser whose conflict copy already arrived from a peer is replaced, not retried forever', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    writeFileSync(join(a.dir, 'x.dat'), 'mine')
    await waitFor('indexed', () => share.entryCount === 1)
    const mine = a.node.db.getEntry('share', 'x.dat')!
    // The peer that resolved this conflict first sends the copy of our version, then the winner.
    const copy: Entry = { ...mine, path: conflictName('x.dat', mine.mtime, mine.by) }
    const theirs = Buffer.from('theirs')
    await share.applyRemoteBatch(REMOTE, [{ entry: copy, data: Buffer.from('mine') }])
    await share.applyRemoteBatch(REMOTE, [{ entry: remoteEntry('x.dat', theirs, { mtime: mine.mtime + 60_000 }), data: theirs }])
    assert.equal(readFileSync(join(a.dir, 'x.dat'), 'utf8'), 'theirs')
    assert.equal(readFileSync(join(a.dir, copy.path), 'utf8'), 'mine')
    assert.equal(share.pendingCount(), 0)
  } finally { await c.stop() }
})

test('a peer announcing many big files gets at most MAX_CONCURRENT_FETCHES downloads set up at once', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    const wanted = Array.from({ length: 20 }, (_, i) => remoteEntry(`big-${i}.bin`, Buffer.alloc(0), { size: 8 * 2 ** 30, root: randomBytes(32) }))
    await share.applyRemoteBatch(REMOTE, wanted.map(entry => ({ entry })))
    assert.equal(share.pendingCount(), 20)
    const content = (a.node as unknown as { content: { downloads: Map<string, { dl: unknown }> } }).content
    await waitFor('fetches queued', () => content.downloads.size === 20)
    const started = [...content.downloads.values()].filter(d => d.dl !== null).length
    assert.equal(started, MAX_CONCURRENT_FETCHES)
  } finally { await c.stop() }
})
