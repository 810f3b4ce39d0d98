// A full disk while receiving: the existing file is untouched, the node keeps running, and the
// fetch is retried once space is back. Needs a small tmpfs (root); skipped where mount is refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, waitFor, fileIs } from './helpers.js'

test('disk full during receive: old file intact, node keeps running, retried later', async (t) => {
  const c = new Cluster()
  const mnt = join(c.base, 'b', 'share')   // only the share is on the small disk; the index is elsewhere
  mkdirSync(mnt, { recursive: true })
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', mnt])
  if (m.status !== 0) { t.skip('cannot mount a tmpfs here'); rmSync(c.base, { recursive: true, force: true }); return }
  try {
    const a = await c.add('a')
    const old = randomBytes(1024 * 1024)
    writeFileSync(join(a.dir, 'photo.bin'), old)
    writeFileSync(join(a.dir, 'note.txt'), 'to be deleted')
    const b = await c.add('b')
    await waitFor('old version', () => fileIs(join(b.dir, 'photo.bin'), old) && fileIs(join(b.dir, 'note.txt'), 'to be deleted'))
    // Fill the disk with something that is not replicated (the node's own .swarm/ folder).
    writeFileSync(join(b.dir, '.swarm', 'filler'), Buffer.alloc(5 * 1024 * 1024))
    const logs: string[] = []
    b.node.on('log', e => logs.push(e.message))
    const big = randomBytes(8 * 1024 * 1024)
    writeFileSync(join(a.dir, 'photo.bin'), big)
    await waitFor('disk-full logged', () => logs.some(l => /disk full|ERR_NO_SPACE|no space/i.test(l)), 30_000)
    assert.ok(readFileSync(join(b.dir, 'photo.bin')).equals(old), 'the existing file is untouched')
    // Still running: a deletion (which needs no space) still replicates.
    rmSync(join(a.dir, 'note.txt'))
    await waitFor('deletion', () => !existsSync(join(b.dir, 'note.txt')))
    assert.equal(b.node.connectedPeers().length, 1)
    assert.ok(readFileSync(join(b.dir, 'photo.bin')).equals(old), 'the existing file is still untouched')
    // Space comes back: the retry completes the new version.
    rmSync(join(b.dir, '.swarm', 'filler'))
    await waitFor('new version after space returns', () => fileIs(join(b.dir, 'photo.bin'), big), 60_000)
  } finally {
    await Promise.all(c.nodes.map(n => n.node.stop()))
    spawnSync('umount', ['-l', mnt])
    rmSync(c.base, { recursive: true, force: true })
  }
})
