// Big files between real nodes: fetched from two holders at once, and a receiver killed with
// SIGKILL mid-transfer that restarts, resumes, and does not fetch verified pieces again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Cluster, waitFor, fileIs, SECRET } from './helpers.js'
import { startNode } from '../src/index.js'
import { PIECE_SIZE, pieceCount } from '../src/merkle/bep52.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')

test('a 50 MB file is fetched from two holders at once', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    const data = randomBytes(50 * 1024 * 1024)
    writeFileSync(join(a.dir, 'big.bin'), data)
    await waitFor('b has it', () => fileIs(join(b.dir, 'big.bin'), data), 60_000)
    const cc = await c.add('c')
    const fetched = new Promise<Record<string, number>>(resolve => cc.node.on('fetched', e => { if (e.path === 'big.bin') resolve(e.perPeer) }))
    await waitFor('c has it', () => fileIs(join(cc.dir, 'big.bin'), data), 60_000)
    const perPeer = await fetched
    const total = pieceCount(data.length, PIECE_SIZE)
    assert.equal(Object.keys(perPeer).length, 2, JSON.stringify(perPeer))
    for (const [peer, n] of Object.entries(perPeer)) assert.ok(n >= total * 0.1, `${peer} supplied only ${n} of ${total} pieces`)
  } finally { await c.stop() }
})

test('SIGKILL during a large transfer, then restart: correct file, verified pieces not refetched', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const data = randomBytes(96 * 1024 * 1024)
    writeFileSync(join(a.dir, 'huge.bin'), data)
    await waitFor('a indexed', () => a.node.shares.get('share')!.entryCount === 1, 60_000)
    const bDir = join(c.base, 'b', 'share')
    const bState = join(c.base, 'b', 'state')
    mkdirSync(bDir, { recursive: true })
    const child = spawn(process.execPath, [BIN, 'share', `${bDir}=share`, '--listen', '127.0.0.1:0', '--peer', a.node.address, '--secret', SECRET, '--state', bState, '--json'], { stdio: 'ignore' })
    const total = pieceCount(data.length, PIECE_SIZE)
    let saved = 0
    await waitFor('some verified pieces saved by b', () => {
      if (!existsSync(join(bState, 'index.db'))) return false
      try {
        const db = new Database(join(bState, 'index.db'), { readonly: true, fileMustExist: true })
        try {
          const row = db.prepare('SELECT have FROM partials').get() as { have: Buffer } | undefined
          saved = 0
          if (row !== undefined) for (const byte of row.have) for (let i = 0; i < 8; i++) saved += (byte >> i) & 1
        } finally { db.close() }
      } catch { return false }
      return saved >= total * 0.2
    }, 60_000)
    child.kill('SIGKILL')
    await new Promise(r => child.once('exit', r))
    assert.ok(!existsSync(join(bDir, 'huge.bin')), 'no partial file visible in the share')
    const b = await startNode({ stateDir: bState, secret: SECRET, listen: '127.0.0.1:0', peers: [a.node.address], shares: [{ dir: bDir, id: 'share' }] })
    c.nodes.push({ node: b, dir: bDir, state: bState, name: 'b' })
    const fetched = new Promise<number>(resolve => b.on('fetched', e => resolve(e.pieces)))
    await waitFor('b complete', () => fileIs(join(bDir, 'huge.bin'), data), 120_000)
    const pieces = await fetched
    assert.ok(pieces <= total - saved, `after restart fetched ${pieces} pieces; ${saved} of ${total} were already verified`)
    assert.deepEqual(readdirSync(bDir).filter(n => n !== '.swarm'), ['huge.bin'])
  } finally { await c.stop() }
})
