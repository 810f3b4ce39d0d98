// Durability of the fast receive paths: a receiver killed with SIGKILL in the middle of a batch
// of small files (written and linked in the disk thread) shows every file either old or new and
// its index never claims content the disk lacks; a big file whose source changes while it is
// being sent never installs a mix of versions.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, readdirSync, readFileSync, statSync, existsSync, renameSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Cluster, waitFor, fileIs, SECRET } from './helpers.js'
import { startNode } from '../src/index.js'
import { fileRoot } from '../src/merkle/bep52.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
const FOLDERS = 30
const PER_FOLDER = 200

function names (): string[] {
  const out: string[] = []
  for (let d = 0; d < FOLDERS; d++) for (let f = 0; f < PER_FOLDER; f++) out.push(`d${d}/f${f}.bin`)
  return out
}

/** every file under dir except .swarm, as relative paths */
function filesIn (dir: string): string[] {
  const out: string[] = []
  for (const d of readdirSync(dir)) {
    if (d === '.swarm') continue
    const st = statSync(join(dir, d))
    if (st.isDirectory()) for (const f of readdirSync(join(dir, d))) out.push(`${d}/${f}`)
    else out.push(d)
  }
  return out
}

test('SIGKILL in the middle of a batch of small files: each file is old or new, the index claims nothing the disk lacks', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const paths = names()
    const oldData = new Map<string, Buffer>()
    const newData = new Map<string, Buffer>()
    for (let d = 0; d < FOLDERS; d++) mkdirSync(join(a.dir, `d${d}`))
    for (const p of paths) { const b = randomBytes(1024 + (p.length % 7) * 512); oldData.set(p, b); writeFileSync(join(a.dir, p), b) }
    await waitFor('a indexed the old files', () => a.node.shares.get('share')!.entryCount >= paths.length, 60_000)

    const bDir = join(c.base, 'b', 'share')
    const bState = join(c.base, 'b', 'state')
    mkdirSync(bDir, { recursive: true })
    const child = spawn(process.execPath, [BIN, 'share', `${bDir}=share`, '--listen', '127.0.0.1:0', '--peer', a.node.address, '--secret', SECRET, '--state', bState, '--json'], { stdio: 'ignore' })
    const exited = new Promise(resolve => child.once('exit', resolve))
    try {
      await waitFor('b has the old files', () => paths.every(p => existsSync(join(bDir, p))), 60_000)
      // Rewrite everything on A: B receives it as batches of inline files.
      for (const p of paths) { const b = randomBytes(1024 + (p.length % 5) * 700); newData.set(p, b); writeFileSync(join(a.dir, p), b) }
      const isNew = (p: string): boolean => { try { return readFileSync(join(bDir, p)).equals(newData.get(p)!) } catch { return false } }
      await waitFor('b installing new versions', () => paths.slice(0, 600).some(isNew), 60_000)
    } finally {
      child.kill('SIGKILL')
      await exited
    }

    // On disk: every file is exactly the old or the new version; nothing else is visible.
    let nNew = 0
    assert.deepEqual(filesIn(bDir).sort(), [...paths].sort(), 'no temp or partial file in the share')
    for (const p of paths) {
      const got = readFileSync(join(bDir, p))
      if (got.equals(newData.get(p)!)) nNew++
      else assert.ok(got.equals(oldData.get(p)!), `${p} is neither the old nor the new version`)
    }
    assert.ok(nNew > 0, 'some new versions were in place at the kill')
    if (process.env.DEBUG_KILL !== undefined) console.log(`# at the kill ${nNew} of ${paths.length} files were new`)

    // In the index: an entry whose recorded stat matches the disk has exactly the recorded content.
    const db = new Database(join(bState, 'index.db'), { readonly: true, fileMustExist: true })
    try {
      const rows = db.prepare("SELECT path, root, lsize, lmtime, lino FROM entries WHERE share = 'share' AND deleted = 0 AND type = 0").all() as Array<{ path: string, root: Buffer, lsize: number, lmtime: number, lino: number }>
      assert.ok(rows.length > 0)
      for (const r of rows) {
        const st = statSync(join(bDir, r.path), { throwIfNoEntry: false })
        assert.ok(st !== undefined, `index holds ${r.path}, the disk does not`)
        if (st.size === r.lsize && Math.abs(st.mtimeMs - r.lmtime) < 1 && st.ino === r.lino) {
          assert.ok(fileRoot(readFileSync(join(bDir, r.path))).equals(r.root), `index claims content for ${r.path} the disk lacks`)
        }
      }
    } finally { db.close() }

    // Restarted, B catches up to the new versions.
    const b = await startNode({ stateDir: bState, secret: SECRET, listen: '127.0.0.1:0', peers: [a.node.address], shares: [{ dir: bDir, id: 'share' }] })
    c.nodes.push({ node: b, dir: bDir, state: bState, name: 'b' })
    await waitFor('b has every new version', () => paths.every(p => fileIs(join(bDir, p), newData.get(p)!)), 60_000)
    assert.deepEqual(filesIn(bDir).sort(), [...paths].sort())
  } finally { await c.stop() }
})

test('a big file rewritten on the source while it is being sent: the receiver installs only a whole version', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const v1 = randomBytes(48 * 1024 * 1024)
    const v2 = randomBytes(48 * 1024 * 1024)
    const installed: string[] = []
    const indexedOnA = new Set<string>()
    b.node.on('file-updated', e => { if (e.path === 'big.bin') installed.push(e.root) })
    a.node.on('file-updated', e => { if (e.path === 'big.bin') indexedOnA.add(e.root) })
    writeFileSync(join(c.base, 'v1.bin'), v1)
    renameSync(join(c.base, 'v1.bin'), join(a.dir, 'big.bin'))
    // Rewrite it in place as soon as B has started fetching v1.
    await waitFor('b fetching', () => readdirSync(join(b.dir, '.swarm', 'tmp')).some(n => n.endsWith('.part')) || installed.length > 0, 60_000)
    writeFileSync(join(a.dir, 'big.bin'), v2)
    await waitFor('b has v2', () => fileIs(join(b.dir, 'big.bin'), v2), 120_000)
    // A may also have indexed the file half rewritten (no close-write events yet): B may install
    // that version too, whole — but never bytes of one version under the root of another.
    for (const r of installed) assert.ok(indexedOnA.has(r), `b installed root ${r}, which A never had`)
    assert.equal(installed.at(-1), fileRoot(v2).toString('hex'))
    // Whatever was installed on the way was whole: B's file now is v2 and nothing else is there.
    assert.deepEqual(readdirSync(b.dir).filter(n => n !== '.swarm'), ['big.bin'])
  } finally { await c.stop() }
})
