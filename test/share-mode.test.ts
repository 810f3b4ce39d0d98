// Share modes between real nodes on loopback: a send-only share sends but never lets a peer's
// change touch its folder (and is not reported in sync while it holds changes back); a
// receive-only share takes peers' changes but never sends its own, and keeps a local edit that a
// peer's change meets as a conflict copy. Both survive a restart; a bad mode is refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, existsSync, readdirSync, mkdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { Cluster, waitFor, fileIs, entryOf, rootsEqual, setMtime } from './helpers.js'
import { addWithRules, restartWithRules, notApplied, shareOf } from './rules-helpers.js'
import { isSwarmError } from '../src/errors.js'
import type { ShareMode } from '../src/model/share-mode.js'

/** Long enough for a change that would replicate to have done so (loopback replication takes milliseconds). */
const SETTLE_MS = 700
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

test('a share with a bad mode is refused with ERR_BAD_ARGUMENT', async () => {
  const c = new Cluster()
  try {
    const a = await addWithRules(c, 'a', {})
    const dir = join(c.base, 'other')
    mkdirSync(dir)
    await assert.rejects(a.node.addShare(dir, 'other', { mode: 'both-ways' as ShareMode }), (e: unknown) => isSwarmError(e, 'ERR_BAD_ARGUMENT'))
    assert.equal(a.node.shares.has('other'), false)
  } finally { await c.stop() }
})

test("send-only: its files reach the peer, the peer's edits never change its folder, also after a restart", async () => {
  const c = new Cluster()
  try {
    const a = await addWithRules(c, 'a', { mode: 'send-only' }, dir => { writeFileSync(join(dir, 'a.txt'), 'from a') })
    const b = await addWithRules(c, 'b', {})
    await waitFor('a.txt reached b', () => fileIs(join(b.dir, 'a.txt'), 'from a'))
    assert.equal(shareOf(a).mode, 'send-only')

    const held = notApplied(a)
    writeFileSync(join(b.dir, 'a.txt'), 'edited on b')
    writeFileSync(join(b.dir, 'new-on-b.txt'), 'b')
    await waitFor('a held back b\'s changes', () => held.reduce((n, e) => n + e.count, 0) >= 2)
    assert.ok(held.every(e => e.reason === 'send-only'))
    assert.ok(fileIs(join(a.dir, 'a.txt'), 'from a'))
    assert.equal(existsSync(join(a.dir, 'new-on-b.txt')), false)
    assert.equal(rootsEqual([a, b]), false, 'a send-only share holding back changes must not look in sync')

    // a's next edit still goes out (it wins on b; b's edit is kept there as a conflict copy).
    writeFileSync(join(a.dir, 'a.txt'), 'from a, v2')
    await waitFor('v2 reached b', () => fileIs(join(b.dir, 'a.txt'), 'from a, v2'))
    await sleep(SETTLE_MS)
    assert.deepEqual(readdirSync(a.dir).filter(n => n !== '.swarm').sort(), ['a.txt'])

    // Restarted, a is still send-only.
    await a.node.stop()
    await restartWithRules(a, [b.node.address], { mode: 'send-only' })
    const after = notApplied(a)
    writeFileSync(join(b.dir, 'after-restart.txt'), 'b')
    await waitFor('a held back the change after its restart', () => after.length > 0 || shareOf(a).stats.notAppliedSendOnly > 0)
    assert.equal(existsSync(join(a.dir, 'after-restart.txt')), false)
    writeFileSync(join(a.dir, 'a2.txt'), 'still sending')
    await waitFor('a2.txt reached b', () => fileIs(join(b.dir, 'a2.txt'), 'still sending'))

    // Back to send-receive: what a held back is taken again from the start and applied.
    await a.node.stop()
    await restartWithRules(a, [b.node.address], {})
    await waitFor('held-back files arrive', () => fileIs(join(a.dir, 'after-restart.txt'), 'b') && fileIs(join(a.dir, 'new-on-b.txt'), 'b'))
  } finally { await c.stop() }
})

test("receive-only: the peer's files come in, local files and edits never leave, a met edit is kept as a conflict copy, also after a restart", async () => {
  const c = new Cluster()
  try {
    const a = await addWithRules(c, 'a', {}, dir => { writeFileSync(join(dir, 'doc.txt'), 'v1') })
    const b = await addWithRules(c, 'b', { mode: 'receive-only' }, dir => { writeFileSync(join(dir, 'had-before.txt'), 'b0') })
    await waitFor('doc.txt reached b', () => fileIs(join(b.dir, 'doc.txt'), 'v1'))

    writeFileSync(join(b.dir, 'local.txt'), 'only on b')
    writeFileSync(join(b.dir, 'doc.txt'), 'edited on b')
    await waitFor('b indexed its changes', () => entryOf(b, 'local.txt') !== undefined && entryOf(b, 'doc.txt')?.size === 'edited on b'.length)
    writeFileSync(join(a.dir, 'later.txt'), 'later')
    await waitFor('later.txt reached b', () => fileIs(join(b.dir, 'later.txt'), 'later'))
    await sleep(SETTLE_MS)
    assert.equal(existsSync(join(a.dir, 'local.txt')), false)
    assert.equal(existsSync(join(a.dir, 'had-before.txt')), false)
    assert.ok(fileIs(join(a.dir, 'doc.txt'), 'v1'), "b's edit reached a")

    // a edits the file b edited, with an older mtime (so by the usual rules b's edit would win):
    // a's version takes the path on b, b's edit stays there as a copy. Written aside and moved in: one version.
    const aside = join(c.base, 'doc-v2.txt')
    writeFileSync(aside, 'v2 from a')
    setMtime(aside, entryOf(b, 'doc.txt')!.mtime - 60_000)
    renameSync(aside, join(a.dir, 'doc.txt'))
    await waitFor('v2 reached b', () => fileIs(join(b.dir, 'doc.txt'), 'v2 from a'))
    const copies = readdirSync(b.dir).filter(n => n.startsWith('doc.sync-conflict-'))
    assert.equal(copies.length, 1, 'the local edit was not kept')
    assert.ok(fileIs(join(b.dir, copies[0]!), 'edited on b'))
    await sleep(SETTLE_MS)
    assert.deepEqual(readdirSync(a.dir).filter(n => n !== '.swarm').sort(), ['doc.txt', 'later.txt'])

    // Restarted, b is still receive-only.
    await b.node.stop()
    await restartWithRules(b, [a.node.address], { mode: 'receive-only' })
    writeFileSync(join(b.dir, 'local2.txt'), 'only on b')
    await waitFor('b indexed local2.txt', () => entryOf(b, 'local2.txt') !== undefined)
    writeFileSync(join(a.dir, 'later2.txt'), 'later')
    await waitFor('later2.txt reached b', () => fileIs(join(b.dir, 'later2.txt'), 'later'))
    await sleep(SETTLE_MS)
    assert.deepEqual(readdirSync(a.dir).filter(n => n !== '.swarm').sort(), ['doc.txt', 'later.txt', 'later2.txt'])

    // Back to send-receive: what b kept back goes out.
    await b.node.stop()
    await restartWithRules(b, [a.node.address], {})
    await waitFor('kept-back files reach a', () => fileIs(join(a.dir, 'local.txt'), 'only on b') && fileIs(join(a.dir, 'local2.txt'), 'only on b') &&
      fileIs(join(a.dir, 'had-before.txt'), 'b0') && fileIs(join(a.dir, copies[0]!), 'edited on b'))
  } finally { await c.stop() }
})
