// The watcher contract (src/watch/watcher.ts), run against both backends: the native inotify
// addon (skipped, saying why, where it did not build) and chokidar. Then the inotify overflow at
// share level (every file of a flood that overflowed the kernel queue is indexed and replicated),
// the watch-limit error, and that an open watcher does not keep the process alive.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, truncateSync, appendFileSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createWatcher, inotifyUnavailable, type Watcher, type WatchEvent, type WatchBackend } from '../src/watch/index.js'
import { inotifyError, MAX_USER_WATCHES_FILE } from '../src/watch/inotify-binding.js'
import { WRITE_SETTLE_MS } from '../src/watch/inotify-watcher.js'
import { META_DIR } from '../src/model/paths.js'
import { isSwarmError } from '../src/errors.js'
import { Cluster, waitFor, waitConverged, collect, entryOf } from './helpers.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
const noInotify = inotifyUnavailable()

interface Rig { root: string, w: Watcher, events: WatchEvent[], errors: Error[], quietMs: number }

async function rig (backend: WatchBackend): Promise<Rig> {
  const root = mkdtempSync(join(tmpdir(), 'swarm-watch-'))
  const events: WatchEvent[] = []
  const errors: Error[] = []
  const w = createWatcher(root, {
    backend,
    ignore: (rel) => rel === META_DIR || rel.startsWith(META_DIR + '/'),
    onEvents: (batch) => { events.push(...batch) },
    onError: (err) => { errors.push(err) }
  })
  w.add('')
  await w.ready
  // Long enough for any late event of a backend to have come (chokidar holds deletes to pair renames).
  return { root, w, events, errors, quietMs: backend === 'chokidar' ? 600 : 100 }
}

function done (r: Rig): void {
  r.w.close()
  rmSync(r.root, { recursive: true, force: true })
  assert.deepEqual(r.errors.map(e => e.message), [], 'no watcher errors')
}

function names (e: WatchEvent): string[] {
  return e.kind === 'move' ? [e.from, e.to] : e.kind === 'overflow' ? [] : [e.path]
}

function about (events: WatchEvent[], path: string): WatchEvent[] {
  return events.filter(e => names(e).includes(path))
}

function has (events: WatchEvent[], kind: WatchEvent['kind'], path: string): boolean {
  return events.some(e => e.kind === kind && 'path' in e && e.path === path)
}

async function until (r: Rig, what: string, cond: (events: WatchEvent[]) => boolean, ms = 5000): Promise<void> {
  try { await waitFor(what, () => cond(r.events), ms) } catch (err) {
    throw new Error(`${(err as Error).message}; events: ${JSON.stringify(r.events)}`)
  }
}

/** Writes a file and waits until the watcher has reported it, then forgets the events so far. */
async function settledFile (r: Rig, rel: string, data = 'x'): Promise<void> {
  writeFileSync(join(r.root, rel), data)
  await until(r, `${rel} reported`, evs => about(evs, rel).length > 0)
  await sleep(r.quietMs)
  r.events.length = 0
}

for (const backend of ['inotify', 'chokidar'] as const) {
  const skip = backend === 'inotify' && noInotify !== null ? `native inotify addon unavailable: ${noInotify}` : false
  describe(`watcher contract (${backend})`, { skip }, () => {
    it('reports a new file once, as a create', async () => {
      const r = await rig(backend)
      try {
        assert.equal(r.w.backend, backend)
        writeFileSync(join(r.root, 'a.txt'), 'hello')
        await until(r, 'create', evs => has(evs, 'create', 'a.txt'))
        await sleep(r.quietMs)
        assert.deepEqual(about(r.events, 'a.txt'), [{ kind: 'create', path: 'a.txt' }])
      } finally { done(r) }
    })

    it('does not report a file held open while it is being written; reports it once closed', async () => {
      const r = await rig(backend)
      try {
        const fd = openSync(join(r.root, 'big.bin'), 'w')
        // Growing every 20 ms: never still for chokidar's stability window.
        for (let i = 0; i < 15; i++) { writeSync(fd, Buffer.alloc(64 * 1024, i)); await sleep(20) }
        // With close-write, open and quiet (well under WRITE_SETTLE_MS) is still not news.
        if (r.w.reportsCloseWrite) await sleep(300)
        assert.deepEqual(about(r.events, 'big.bin'), [], 'nothing while open and growing')
        closeSync(fd)
        await until(r, 'reported after close', evs => has(evs, 'create', 'big.bin'))
      } finally { done(r) }
    })

    it('reports a file modified and never closed once it has settled', async () => {
      const r = await rig(backend)
      try {
        const fd = openSync(join(r.root, 'held.log'), 'w')
        try {
          const t0 = Date.now()
          writeSync(fd, 'line 1\n')
          await until(r, 'settled file reported', evs => about(evs, 'held.log').length > 0, WRITE_SETTLE_MS + 3000)
          if (r.w.reportsCloseWrite) assert.ok(Date.now() - t0 >= WRITE_SETTLE_MS - 50, 'not before the settle delay')
          assert.deepEqual(about(r.events, 'held.log'), [{ kind: 'create', path: 'held.log' }])
        } finally { closeSync(fd) }
      } finally { done(r) }
    })

    it('reports an append and a truncate as writes', async () => {
      const r = await rig(backend)
      try {
        await settledFile(r, 'f.txt', 'start')
        appendFileSync(join(r.root, 'f.txt'), ' and more')
        await until(r, 'append', evs => has(evs, 'write', 'f.txt'))
        await sleep(r.quietMs)
        r.events.length = 0
        truncateSync(join(r.root, 'f.txt'), 2)
        await until(r, 'truncate', evs => has(evs, 'write', 'f.txt'))
        assert.ok(about(r.events, 'f.txt').every(e => e.kind === 'write'))
      } finally { done(r) }
    })

    it('reports a rename within a folder as one move', async () => {
      const r = await rig(backend)
      try {
        await settledFile(r, 'old.txt')
        renameSync(join(r.root, 'old.txt'), join(r.root, 'new.txt'))
        await until(r, 'move', evs => evs.some(e => e.kind === 'move'))
        await sleep(r.quietMs)
        assert.deepEqual(r.events, [{ kind: 'move', from: 'old.txt', to: 'new.txt', dir: false }])
      } finally { done(r) }
    })

    it('reports a rename across folders as one move', async () => {
      const r = await rig(backend)
      try {
        mkdirSync(join(r.root, 'd1'))
        mkdirSync(join(r.root, 'd2'))
        await until(r, 'folders', evs => has(evs, 'dir-create', 'd1') && has(evs, 'dir-create', 'd2'))
        await settledFile(r, 'd1/f')
        renameSync(join(r.root, 'd1/f'), join(r.root, 'd2/g'))
        await until(r, 'move', evs => evs.some(e => e.kind === 'move'))
        await sleep(r.quietMs)
        assert.deepEqual(r.events, [{ kind: 'move', from: 'd1/f', to: 'd2/g', dir: false }])
      } finally { done(r) }
    })

    it('reports a renamed folder as a move, and later events inside it under the new path', async () => {
      const r = await rig(backend)
      try {
        mkdirSync(join(r.root, 'dir/sub'), { recursive: true })
        await until(r, 'folders', evs => has(evs, 'dir-create', 'dir/sub'))
        await settledFile(r, 'dir/sub/f')
        const watches = r.w.watchCount
        renameSync(join(r.root, 'dir'), join(r.root, 'moved'))
        await until(r, 'folder move', evs => evs.some(e => e.kind === 'move' && e.from === 'dir' && e.to === 'moved' && e.dir))
        await sleep(r.quietMs)
        // inotify sends one event for the folder; chokidar may also pair what was inside it.
        if (backend === 'inotify') assert.deepEqual(r.events, [{ kind: 'move', from: 'dir', to: 'moved', dir: true }])
        assert.ok(!r.events.some(e => e.kind === 'delete'), 'no delete for a rename')
        assert.equal(r.w.watchCount, watches, 'the folders keep their watches')
        r.events.length = 0
        writeFileSync(join(r.root, 'moved/sub/g'), 'g')
        writeFileSync(join(r.root, 'moved/sub/f'), 'changed')
        await until(r, 'events under the new path', evs => has(evs, 'create', 'moved/sub/g') && has(evs, 'write', 'moved/sub/f'))
        assert.ok(r.events.every(e => !names(e).some(n => n.startsWith('dir/'))), JSON.stringify(r.events))
      } finally { done(r) }
    })

    it('sees a file written at once into a new folder tree (mkdir -p a/b/c; echo > a/b/c/f)', async () => {
      const r = await rig(backend)
      try {
        mkdirSync(join(r.root, 'a/b/c'), { recursive: true })
        writeFileSync(join(r.root, 'a/b/c/f'), 'deep')
        await until(r, 'deep file', evs => has(evs, 'create', 'a/b/c/f'))
        for (const d of ['a', 'a/b', 'a/b/c']) assert.ok(has(r.events, 'dir-create', d), `dir-create ${d}`)
        if (backend === 'inotify') assert.equal(r.w.watchCount, 4, 'one watch per folder')
        // And the deepest folder is watched: a later file there is seen too.
        writeFileSync(join(r.root, 'a/b/c/later'), 'l')
        await until(r, 'later file', evs => has(evs, 'create', 'a/b/c/later'))
      } finally { done(r) }
    })

    it('reports the deletion of a whole tree', async () => {
      const r = await rig(backend)
      try {
        mkdirSync(join(r.root, 't/x/y'), { recursive: true })
        mkdirSync(join(r.root, 't/z'))
        for (const f of ['t/x/y/1', 't/x/y/2', 't/z/3']) writeFileSync(join(r.root, f), f)
        await until(r, 'tree', evs => ['t/x/y/1', 't/x/y/2', 't/z/3'].every(f => has(evs, 'create', f)))
        await sleep(r.quietMs)
        r.events.length = 0
        rmSync(join(r.root, 't'), { recursive: true })
        const all = ['t', 't/x', 't/x/y', 't/z', 't/x/y/1', 't/x/y/2', 't/z/3']
        await until(r, 'deletes', evs => all.every(p => has(evs, 'delete', p)))
        assert.ok(r.events.every(e => e.kind === 'delete'), JSON.stringify(r.events))
        // The kernel drops the watches of deleted folders (chokidar's own bookkeeping may keep a stale entry).
        if (backend === 'inotify') await waitFor('watches of the tree dropped', () => r.w.watchCount === 1, 3000)
      } finally { done(r) }
    })

    it('ignores the .swarm meta folder, and a file moved out of it is a create', async () => {
      const r = await rig(backend)
      try {
        mkdirSync(join(r.root, '.swarm/tmp'), { recursive: true })
        writeFileSync(join(r.root, '.swarm/a'), 'a')
        renameSync(join(r.root, '.swarm/a'), join(r.root, '.swarm/b'))
        writeFileSync(join(r.root, '.swarm/tmp/c'), 'c')
        writeFileSync(join(r.root, 'sentinel'), 's')
        await until(r, 'sentinel', evs => has(evs, 'create', 'sentinel'))
        renameSync(join(r.root, '.swarm/tmp/c'), join(r.root, 'installed'))
        await until(r, 'installed', evs => has(evs, 'create', 'installed'))
        await sleep(r.quietMs)
        const meta = r.events.filter(e => names(e).some(n => n === '.swarm' || n.startsWith('.swarm/')))
        assert.deepEqual(meta, [])
        if (backend === 'inotify') assert.equal(r.w.watchCount, 1, 'no watch inside .swarm')
      } finally { done(r) }
    })

    it('reports a kernel queue overflow when the loop is blocked by a flood of files', { skip: backend !== 'inotify' ? 'chokidar has no overflow signal' : false }, async () => {
      const r = await rig(backend)
      try {
        const n = floodSize()
        for (let i = 0; i < n; i++) writeFileSync(join(r.root, `f${i}`), 'x')   // synchronous: the loop reads nothing meanwhile
        await until(r, 'overflow', evs => evs.some(e => e.kind === 'overflow'))
        r.events.length = 0
        writeFileSync(join(r.root, 'after'), 'a')
        await until(r, 'events go on after the overflow', evs => has(evs, 'create', 'after'))
      } finally { done(r) }
    })

    it('does not keep the process alive', () => {
      const script = `
        import { createWatcher } from ${JSON.stringify(new URL('../src/watch/index.js', import.meta.url).href)}
        const w = createWatcher(process.argv[1], { backend: ${JSON.stringify(backend)}, ignore: () => false, onEvents: () => {}, onError: (e) => console.error(e.message) })
        w.add('')
        await w.ready
        console.log('watching', w.backend)`
      const dir = mkdtempSync(join(tmpdir(), 'swarm-watch-exit-'))
      try {
        const res = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir], { timeout: 10_000, encoding: 'utf8' })
        assert.equal(res.signal, null, 'exited by itself (not killed at the timeout)')
        assert.equal(res.status, 0, res.stderr)
        assert.equal(res.stdout.trim(), `watching ${backend}`)
      } finally { rmSync(dir, { recursive: true, force: true }) }
    })
  })
}

/** Files whose events (create, modify, close-write each) overflow the kernel's queue with room to spare. */
function floodSize (): number {
  const queued = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim())
  return Math.max(20_000, Math.ceil(queued / 2) + 2000)
}

describe('inotify overflow at share level', { skip: noInotify !== null ? `native inotify addon unavailable: ${noInotify}` : (process.env.SWARM_WATCHER === 'chokidar' ? 'SWARM_WATCHER=chokidar' : false) }, () => {
  it('after a flood that overflowed the queue, every file is indexed and replicated', async () => {
    const c = new Cluster()
    try {
      const a = await c.add('a')
      const b = await c.add('b')
      const logs = collect(a, 'log')
      await waitFor('connected', () => a.node.connectedPeers().length === 1 && b.node.connectedPeers().length === 1)
      mkdirSync(join(a.dir, 'flood'))
      await waitFor('folder indexed', () => entryOf(a, 'flood') !== undefined)
      const n = floodSize()
      for (let i = 0; i < n; i++) writeFileSync(join(a.dir, 'flood', `f${i}`), String(i))
      await waitFor('overflow logged', () => logs.some(l => l.message.includes('overflow')))
      await waitFor('all indexed', () => a.node.shares.get('share')!.entryCount === n + 1, 60_000)
      await waitConverged([a, b], 'replicated', () => true, 60_000)
      assert.equal(readFileSync(join(b.dir, 'flood', `f${n - 1}`), 'utf8'), String(n - 1))
    } finally { await c.stop() }
  })
})

describe('watch limit errors', () => {
  it('names the sysctl and its current value for ENOSPC and EMFILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarm-watch-limit-'))
    try {
      writeFileSync(join(dir, 'watches'), '1234\n')
      writeFileSync(join(dir, 'instances'), '7\n')
      const files = { watches: join(dir, 'watches'), instances: join(dir, 'instances') }
      const enospc = Object.assign(new Error('ENOSPC: No space left on device'), { code: 'ENOSPC' })
      const e1 = inotifyError(enospc, 'big/dir', files)
      assert.ok(isSwarmError(e1, 'ERR_WATCH_LIMIT'))
      assert.match(e1.message, /cannot watch big\/dir: .*fs\.inotify\.max_user_watches = 1234/)
      assert.equal(e1.cause, enospc)
      const e2 = inotifyError(Object.assign(new Error('EMFILE'), { code: 'EMFILE' }), 'x', files)
      assert.ok(isSwarmError(e2, 'ERR_WATCH_LIMIT'))
      assert.match(e2.message, /fs\.inotify\.max_user_instances = 7/)
      const other = Object.assign(new Error('EACCES'), { code: 'EACCES' })
      assert.equal(inotifyError(other, 'x', files), other)
      // By default the value is the kernel's own.
      const live = readFileSync(MAX_USER_WATCHES_FILE, 'utf8').trim()
      assert.match(inotifyError(enospc, 'x').message, new RegExp(`max_user_watches = ${live};`))
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('rejects an unknown SWARM_WATCHER', () => {
    const before = process.env.SWARM_WATCHER
    process.env.SWARM_WATCHER = 'fsevents'
    try {
      assert.throws(() => createWatcher(tmpdir(), { ignore: () => false, onEvents: () => {}, onError: () => {} }), (e: unknown) => isSwarmError(e, 'ERR_BAD_ARGUMENT'))
    } finally {
      if (before === undefined) delete process.env.SWARM_WATCHER; else process.env.SWARM_WATCHER = before
    }
  })
})
