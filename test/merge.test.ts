// The merge rules as pure functions: version vector order, merging and bumping; which of two
// versions of a path wins and what is kept of the loser; conflict copy names. Every node runs
// these on the same two versions in either order, so the answers must not depend on the order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { decide, pickWinner, type Decision } from '../src/sync/merge.js'
import { compareVersions, mergeVersions, bumpVersion, encodeVersion, decodeVersion } from '../src/model/version.js'
import { conflictName } from '../src/model/paths.js'
import type { Entry, VersionVector } from '../src/model/entry.js'

const ZERO = Buffer.alloc(32)
const rootOf = (label: string): Buffer => createHash('sha256').update(label).digest()
const T = Date.UTC(2024, 2, 5, 6, 7, 8, 9)   // 2024-03-05 06:07:08.009 UTC

function file (version: VersionVector, by: string, opts: { content?: string, mtime?: number, path?: string } = {}): Entry {
  const content = opts.content ?? 'content-' + by
  return { path: opts.path ?? 'docs/report.txt', type: 'file', deleted: false, size: content.length, mtime: opts.mtime ?? T, root: rootOf(content), version, by }
}

function tomb (version: VersionVector, by: string, opts: { mtime?: number, path?: string, type?: 'file' | 'dir' } = {}): Entry {
  return { path: opts.path ?? 'docs/report.txt', type: opts.type ?? 'file', deleted: true, size: 0, mtime: opts.mtime ?? T, root: ZERO, version, by }
}

function dir (version: VersionVector, by: string, path = 'docs/report.txt'): Entry {
  return { path, type: 'dir', deleted: false, size: 0, mtime: 0, root: ZERO, version, by }
}

/** decide() both ways round (as the two nodes run it) and check they agree on the outcome. */
function bothWays (a: Entry, b: Entry): { ab: Decision, ba: Decision } {
  const ab = decide(a, b)
  const ba = decide(b, a)
  assert.equal(ab.kind, ba.kind, 'both nodes make the same kind of decision')
  if (ab.kind !== 'ignore' && ba.kind !== 'ignore') assert.deepEqual(ab.entry, ba.entry, 'both nodes end with the same entry')
  if (ab.kind === 'conflict' && ba.kind === 'conflict') {
    assert.deepEqual(ab.copy, ba.copy, 'both nodes make the same conflict copy')
    assert.deepEqual(ab.loser, ba.loser)
    assert.notEqual(ab.localLost, ba.localLost, 'the local side lost on exactly one of the two nodes')
  }
  return { ab, ba }
}

// ---- version vectors ------------------------------------------------------------------------

test('compareVersions: equal, greater, lesser, concurrent; a missing counter is 0', () => {
  assert.equal(compareVersions({}, {}), 'equal')
  assert.equal(compareVersions({ a: 1, b: 2 }, { b: 2, a: 1 }), 'equal')
  assert.equal(compareVersions({ a: 1 }, { a: 1, b: 0 }), 'equal')
  assert.equal(compareVersions({ a: 2 }, { a: 1 }), 'greater')
  assert.equal(compareVersions({ a: 1, b: 1 }, { a: 1 }), 'greater')
  assert.equal(compareVersions({ a: 1 }, { a: 2 }), 'lesser')
  assert.equal(compareVersions({}, { b: 1 }), 'lesser')
  assert.equal(compareVersions({ a: 2, b: 1 }, { a: 1, b: 2 }), 'concurrent')
  assert.equal(compareVersions({ a: 1 }, { b: 1 }), 'concurrent')
})

test('mergeVersions: component-wise maximum that dominates both, inputs untouched', () => {
  const x = { a: 3, b: 1 }
  const y = { b: 4, c: 2 }
  const m = mergeVersions(x, y)
  assert.deepEqual(m, { a: 3, b: 4, c: 2 })
  assert.deepEqual(x, { a: 3, b: 1 })
  assert.deepEqual(y, { b: 4, c: 2 })
  assert.equal(compareVersions(m, x), 'greater')
  assert.equal(compareVersions(m, y), 'greater')
  assert.deepEqual(mergeVersions(y, x), m, 'order does not matter')
  assert.equal(compareVersions(mergeVersions(x, x), x), 'equal')
})

test('bumpVersion: the new counter jumps past every counter seen, so the edit dominates', () => {
  assert.deepEqual(bumpVersion(undefined, 'me'), { me: 1 })
  const v = { a: 3, b: 7 }
  const bumped = bumpVersion(v, 'a')
  assert.deepEqual(bumped, { a: 8, b: 7 })
  assert.deepEqual(v, { a: 3, b: 7 }, 'input untouched')
  assert.equal(compareVersions(bumped, v), 'greater')
  assert.deepEqual(bumpVersion(v, 'c'), { a: 3, b: 7, c: 8 })
  // An edit after a merge dominates both merged versions.
  const merged = mergeVersions({ a: 2 }, { b: 5 })
  assert.equal(compareVersions(bumpVersion(merged, 'a'), { a: 2 }), 'greater')
  assert.equal(compareVersions(bumpVersion(merged, 'a'), { b: 5 }), 'greater')
  // Two nodes editing the same version independently are concurrent.
  assert.equal(compareVersions(bumpVersion(v, 'a'), bumpVersion(v, 'b')), 'concurrent')
})

test('encodeVersion is canonical (key order does not matter) and decodes back', () => {
  assert.equal(encodeVersion({ b: 2, a: 1 }), encodeVersion({ a: 1, b: 2 }))
  assert.deepEqual(decodeVersion(encodeVersion({ zz: 9, a: 1 })), { a: 1, zz: 9 })
})

// ---- decide: ordered versions ---------------------------------------------------------------

test('decide: nothing local → accept the remote entry as it is', () => {
  const r = file({ b: 1 }, 'b')
  const d = decide(undefined, r)
  assert.equal(d.kind, 'accept')
  assert.equal(d.kind === 'accept' && d.entry, r)
})

test('decide: the same or an older version is ignored', () => {
  const local = file({ a: 2, b: 1 }, 'a')
  assert.deepEqual(decide(local, file({ a: 2, b: 1 }, 'a')), { kind: 'ignore' })
  assert.deepEqual(decide(local, file({ a: 1, b: 1 }, 'b', { content: 'older' })), { kind: 'ignore' })
  assert.deepEqual(decide(local, tomb({ a: 1 }, 'a', { mtime: T + 99_999 })), { kind: 'ignore' }, 'an old deletion does not win')
})

test('decide: a newer version is accepted as it is, whatever its mtime', () => {
  const local = file({ a: 1 }, 'a', { mtime: T + 100_000 })
  const newer = file({ a: 1, b: 2 }, 'b', { mtime: T - 100_000, content: 'newer' })
  const d = decide(local, newer)
  assert.equal(d.kind, 'accept')
  assert.equal(d.kind === 'accept' && d.entry, newer, 'the remote entry object itself, unmerged')
  const del = tomb({ a: 1, b: 2 }, 'b')
  const dd = decide(local, del)
  assert.equal(dd.kind === 'accept' && dd.entry, del, 'a deletion that saw our version deletes it')
})

// ---- decide: concurrent versions -----------------------------------------------------------

test('concurrent, same content: merge-meta with the merged vector, same entry on both nodes', () => {
  const a = file({ x: 1, a: 2 }, 'aaaaaaaa', { content: 'same', mtime: T })
  const b = file({ x: 1, b: 2 }, 'bbbbbbbb', { content: 'same', mtime: T + 5 })
  const { ab } = bothWays(a, b)
  assert.equal(ab.kind, 'merge-meta')
  assert.ok(ab.kind === 'merge-meta')
  assert.deepEqual(ab.entry.version, { x: 1, a: 2, b: 2 })
  assert.equal(ab.entry.mtime, T + 5, 'the winner\'s metadata (newer mtime)')
  assert.equal(ab.entry.by, 'bbbbbbbb')
  assert.ok(ab.entry.root.equals(rootOf('same')))
  // Two concurrent deletions are the same content too.
  const { ab: dd } = bothWays(tomb({ a: 2 }, 'aaaaaaaa'), tomb({ b: 2 }, 'bbbbbbbb'))
  assert.equal(dd.kind, 'merge-meta')
  assert.ok(dd.kind === 'merge-meta' && dd.entry.deleted)
})

test('concurrent edits: newer mtime wins, the loser becomes the same conflict copy on both nodes', () => {
  const older = file({ x: 1, a: 2 }, 'aaaaaaaa', { content: 'older edit', mtime: T })
  const newer = file({ x: 1, b: 2 }, 'bbbbbbbb', { content: 'newer edit', mtime: T + 61_000 })
  const { ab, ba } = bothWays(older, newer)
  assert.equal(ab.kind, 'conflict')
  assert.ok(ab.kind === 'conflict' && ba.kind === 'conflict')
  assert.ok(ab.entry.root.equals(newer.root), 'the newer edit wins')
  assert.equal(ab.entry.by, 'bbbbbbbb')
  assert.equal(ab.entry.mtime, T + 61_000)
  assert.deepEqual(ab.entry.version, { x: 1, a: 2, b: 2 }, 'the winner carries the merged vector')
  assert.equal(compareVersions(ab.entry.version, older.version), 'greater')
  assert.equal(compareVersions(ab.entry.version, newer.version), 'greater')
  assert.equal(ab.localLost, true, 'decide(older, newer): our older edit lost')
  assert.equal(ba.localLost, false)
  // The copy is the loser as it was (its own vector and origin), under its conflict name.
  assert.deepEqual(ab.loser, older)
  assert.deepEqual(ab.copy, { ...older, path: 'docs/report.sync-conflict-20240305-060708-aaaaaaaa.txt' })
  assert.equal(pickWinner(older, newer), newer)
  assert.equal(pickWinner(newer, older), newer)
})

test('concurrent edits with equal mtimes: the larger node id wins, then the larger root', () => {
  const low = file({ x: 1, a: 2 }, 'aaaaaaaa', { content: 'from a', mtime: T })
  const high = file({ x: 1, b: 2 }, 'bbbbbbbb', { content: 'from b', mtime: T })
  const { ab } = bothWays(low, high)
  assert.ok(ab.kind === 'conflict')
  assert.ok(ab.entry.root.equals(high.root), 'node id breaks the tie')
  assert.equal(ab.copy.path, conflictName(low.path, T, 'aaaaaaaa'))
  assert.deepEqual(ab.copy.version, low.version)
  // The node id decides even when the root order says otherwise.
  const [r1, r2] = [rootOf('p'), rootOf('q')].sort(Buffer.compare) as [Buffer, Buffer]
  const lowBigRoot = { ...low, root: r2 }
  const highSmallRoot = { ...high, root: r1 }
  assert.equal(pickWinner(lowBigRoot, highSmallRoot), highSmallRoot)
  assert.equal(pickWinner(highSmallRoot, lowBigRoot), highSmallRoot)
  // Same mtime and same origin (e.g. an index rebuilt on that node): the larger root wins.
  const s1 = { ...file({ a: 3 }, 'aaaaaaaa', { mtime: T }), root: r1 }
  const s2 = { ...file({ a: 2, b: 1 }, 'aaaaaaaa', { mtime: T }), root: r2 }
  assert.equal(pickWinner(s1, s2), s2)
  assert.equal(pickWinner(s2, s1), s2)
  const { ab: rr } = bothWays(s1, s2)
  assert.ok(rr.kind === 'conflict' && rr.entry.root.equals(r2) && rr.loser.root.equals(r1))
})

test('a live file beats a concurrent deletion, even a newer one; nothing is kept of the deletion', () => {
  const edit = file({ x: 1, a: 2 }, 'aaaaaaaa', { content: 'edited while away', mtime: T - 60_000 })
  const del = tomb({ x: 1, b: 2 }, 'zzzzzzzz', { mtime: T })   // newer mtime, larger node id: the file still wins
  const { ab, ba } = bothWays(edit, del)
  assert.equal(ab.kind, 'accept')
  assert.ok(ab.kind === 'accept' && ba.kind === 'accept')
  assert.equal(ab.entry.deleted, false)
  assert.ok(ab.entry.root.equals(edit.root))
  assert.equal(ab.entry.mtime, edit.mtime)
  assert.deepEqual(ab.entry.version, { x: 1, a: 2, b: 2 }, 'merged, so the deletion is not applied later')
  assert.equal(pickWinner(edit, del), edit)
  assert.equal(pickWinner(del, edit), edit)
  // A concurrent deletion of a folder loses to the folder too.
  const d = dir({ x: 1, a: 2 }, 'aaaaaaaa', 'docs')
  const dt = tomb({ x: 1, b: 2 }, 'zzzzzzzz', { path: 'docs', type: 'dir', mtime: T })
  const { ab: folder } = bothWays(d, dt)
  assert.ok(folder.kind === 'accept' && !folder.entry.deleted && folder.entry.type === 'dir')
})

test('file vs folder at the same path: one winner on both nodes, no conflict copy', () => {
  const f = file({ x: 1, a: 2 }, 'aaaaaaaa', { content: 'a file' })
  const d = dir({ x: 1, b: 2 }, 'bbbbbbbb')
  const { ab } = bothWays(f, d)
  assert.equal(ab.kind, 'accept')
  assert.ok(ab.kind === 'accept')
  assert.equal(ab.entry.type, 'file', 'the file (mtime T) is newer than the folder (mtime 0)')
  assert.deepEqual(ab.entry.version, { x: 1, a: 2, b: 2 })
  // Two concurrent folders are the same content.
  assert.equal(bothWays(dir({ a: 1 }, 'aaaaaaaa'), dir({ b: 1 }, 'bbbbbbbb')).ab.kind, 'merge-meta')
})

test('decide is deterministic over many random concurrent pairs', () => {
  const ids = ['11111111', '22222222', '33333333']
  let n = 0
  for (let i = 0; i < 300; i++) {
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!
    const mk = (side: string): Entry => {
      const by = pick(ids)
      const version = { base: 1, [side]: 1 + Math.floor(Math.random() * 3) }
      const mtime = T + pick([0, 0, 1, 1000])
      const kind = pick(['file', 'file', 'tomb', 'dir'])
      if (kind === 'tomb') return tomb(version, by, { mtime })
      if (kind === 'dir') return dir(version, by)
      return file(version, by, { content: pick(['x', 'y', 'z']), mtime })
    }
    const a = mk('left')
    const b = mk('right')
    const { ab } = bothWays(a, b)
    assert.notEqual(ab.kind, 'ignore')
    n++
  }
  assert.equal(n, 300)
})

// ---- conflict names -------------------------------------------------------------------------

test('conflictName: Syncthing-style, UTC stamp, extension kept, folder kept', () => {
  assert.equal(conflictName('docs/report.final.pdf', T, 'abcd1234'), 'docs/report.final.sync-conflict-20240305-060708-abcd1234.pdf')
  assert.equal(conflictName('README', T, 'abcd1234'), 'README.sync-conflict-20240305-060708-abcd1234')
  assert.equal(conflictName('a/b/.bashrc', T, 'abcd1234'), 'a/b/.bashrc.sync-conflict-20240305-060708-abcd1234')
  assert.equal(conflictName('x.txt', Date.UTC(1999, 11, 31, 23, 59, 59, 999), 'n'), 'x.sync-conflict-19991231-235959-n.txt')
  assert.notEqual(conflictName('x.txt', T, 'aaaaaaaa'), conflictName('x.txt', T, 'bbbbbbbb'), 'the origin is part of the name')
})
