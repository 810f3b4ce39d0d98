// Ignore rules: the matcher (defaults, gitignore semantics, which changes may bring paths back)
// and, between real nodes on loopback, that ignored paths never leave a node, are never applied
// on a node that ignores them, follow a replicated .swarmignore, and are never deleted when they
// become ignored; a restart keeps it all, and dropping a node's pattern brings skipped files in.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, rmSync, existsSync, appendFileSync, mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanFolderDisk } from '../src/store/folder-scan.js'
import { Cluster, waitFor, fileIs, entryOf } from './helpers.js'
import { addWithRules, restartWithRules, notApplied } from './rules-helpers.js'
import { IgnoreRules, IGNORE_FILE } from '../src/model/ignore.js'
import { checkShareRules } from '../src/sync/rules.js'
import { isSwarmError } from '../src/errors.js'

/** Long enough for a change that would replicate to have done so (loopback replication takes milliseconds). */
const SETTLE_MS = 700

test('IgnoreRules: defaults, gitignore semantics, .swarmignore itself, and which edits may unignore', () => {
  const r = IgnoreRules.of('*.log\nbuild/\n# a comment\n!keep.log\n', ['private'])
  for (const p of ['.foo.swp', 'a/b.swp', 'x.swx', 'notes~', '.#lock', '#auto#', '.DS_Store', 'd/Thumbs.db', 'desktop.ini', '.Trashes', '.fseventsd', '.Spotlight-V100']) {
    assert.equal(r.ignores(p, false), true, p)
  }
  for (const p of ['index.html', 'style.css', '.htaccess', 'robots.txt', 'favicon.ico', '.well-known/x', 'swap.txt']) assert.equal(r.ignores(p, false), false, p)
  assert.equal(r.ignores('a/x.log', false), true)
  assert.equal(r.ignores('keep.log', false), false, '! re-includes')
  assert.equal(r.ignores('build', true), true)
  assert.equal(r.ignores('build', false), false, 'a folder-only pattern leaves a file of that name')
  assert.equal(r.ignores('build/deep/file.c', false), true, 'below an ignored folder')
  assert.equal(r.answer('build'), 'if-dir')
  assert.equal(r.ignores('private/s.txt', false), true, "this node's own patterns")
  assert.equal(IgnoreRules.of('*\n').ignores(IGNORE_FILE, false), false, 'the .swarmignore file always replicates')
  // Adding plain patterns only ignores more; removing one or adding a '!' may bring paths back.
  assert.equal(IgnoreRules.of('*.log\nbuild/\n*.tmp\n# a comment\n!keep.log\n', ['private']).mayUnignore(r.patterns), false)
  assert.equal(IgnoreRules.of('*.log\n!keep.log\n', ['private']).mayUnignore(r.patterns), true)
  assert.equal(IgnoreRules.of('*.log\nbuild/\n!keep.log\n!x.log\n', ['private']).mayUnignore(r.patterns), true)
  // Order matters (the last matching pattern decides): '!keep.log' moved after '*.log' brings keep.log back.
  const ignoredKeep = IgnoreRules.of('!keep.log\n*.log\n')
  const movedBang = IgnoreRules.of('*.log\n!keep.log\n')
  assert.equal(ignoredKeep.ignores('keep.log', false), true)
  assert.equal(movedBang.ignores('keep.log', false), false)
  assert.equal(movedBang.mayUnignore(ignoredKeep.patterns), true, 'a moved pattern may unignore')
  // Many lookups: the matcher is rebuilt underneath, answers stay the same.
  for (let i = 0; i < 120_000; i++) assert.equal(r.ignores(`d${i % 50}/f${i}.log`, false), true)
})

test('the disk half of a folder scan leaves ignored names out unread, except files the index already holds unchanged', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-ignore-'))
  try {
    writeFileSync(join(dir, 'keep.txt'), 'k')
    writeFileSync(join(dir, 'new.log'), 'unread')
    writeFileSync(join(dir, 'indexed.log'), 'indexed before it became ignored')
    mkdirSync(join(dir, 'build'))
    mkdirSync(join(dir, 'src'))
    const st = statSync(join(dir, 'indexed.log'))
    const ignore = { patterns: IgnoreRules.of('*.log\nbuild/\n').patterns, relDir: 'sub' }
    const r = scanFolderDisk(dir, [['indexed.log', st.size, st.mtimeMs, st.ino]], 1024, ignore)
    assert.ok(r.ok)
    assert.deepEqual(r.items.map(i => `${i.name}:${i.t}`).sort(), ['indexed.log:same', 'keep.txt:file', 'src:dir'])
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('bad rules are refused with ERR_BAD_ARGUMENT', () => {
  for (const bad of [{ mode: 'both-ways' }, { ignore: '*.log' }, { ignore: [3] }, { ignore: ['a\nb'] }]) {
    assert.throws(() => checkShareRules('s', bad), (e: unknown) => isSwarmError(e, 'ERR_BAD_ARGUMENT'), JSON.stringify(bad))
  }
  checkShareRules('s', { mode: 'receive-only', ignore: ['*.log'] })
})

test('ignored files never replicate: defaults, .swarmignore, node-only patterns; remote entries for ignored paths are not applied', async () => {
  const c = new Cluster()
  try {
    const a = await addWithRules(c, 'a', {}, dir => {
      writeFileSync(join(dir, IGNORE_FILE), '*.log\nbuild/\n')
      writeFileSync(join(dir, 'keep.txt'), 'kept')
      writeFileSync(join(dir, 'app.log'), 'log line')
      mkdirSync(join(dir, 'build/deep'), { recursive: true })
      writeFileSync(join(dir, 'build/deep/out.bin'), 'built')
      mkdirSync(join(dir, 'sub'))
      writeFileSync(join(dir, 'sub/.foo.swp'), 'swap')
      writeFileSync(join(dir, 'sub/real.txt'), 'real')
      writeFileSync(join(dir, 'Thumbs.db'), 'thumbs')
    })
    const b = await addWithRules(c, 'b', { ignore: ['private/'] }, dir => {
      mkdirSync(join(dir, 'private'))
      writeFileSync(join(dir, 'private/secret.txt'), 'only on b')
      writeFileSync(join(dir, 'from-b.txt'), 'b')
    })
    await waitFor('both ways', () => fileIs(join(b.dir, 'keep.txt'), 'kept') && fileIs(join(b.dir, 'sub/real.txt'), 'real') &&
      fileIs(join(b.dir, IGNORE_FILE), '*.log\nbuild/\n') && fileIs(join(a.dir, 'from-b.txt'), 'b'))
    for (const p of ['app.log', 'build', 'sub/.foo.swp', 'Thumbs.db']) {
      assert.equal(existsSync(join(b.dir, p)), false, `${p} reached b`)
      assert.equal(entryOf(a, p), undefined, `${p} was indexed on a`)
    }
    assert.equal(existsSync(join(a.dir, 'private')), false, "b's ignored folder reached a")
    assert.equal(entryOf(b, 'private/secret.txt'), undefined)

    // A watched change in an ignored place is not picked up either.
    writeFileSync(join(a.dir, 'build/deep/out2.bin'), 'built again')
    writeFileSync(join(a.dir, 'sub/.bar.swp'), 'swap')

    // a does not ignore private/: its file there is offered to b, which does not apply it.
    const skipped = notApplied(b)
    mkdirSync(join(a.dir, 'private'))
    writeFileSync(join(a.dir, 'private/secret.txt'), 'from a')
    writeFileSync(join(a.dir, 'private/other.txt'), 'from a')
    await waitFor('b skipped the ignored entries', () => skipped.some(s => s.reason === 'ignored'))
    assert.ok(fileIs(join(b.dir, 'private/secret.txt'), 'only on b'), "b's own copy stays")
    assert.equal(existsSync(join(b.dir, 'private/other.txt')), false)
    assert.equal(entryOf(a, 'build/deep/out2.bin'), undefined)
    assert.equal(entryOf(a, 'sub/.bar.swp'), undefined)

    // A .swarmignore edit on a reaches b and takes effect there (no restart).
    appendFileSync(join(a.dir, IGNORE_FILE), '*.tmp\nsoon-ignored.txt\n')
    writeFileSync(join(a.dir, 'soon-ignored.txt'), 'v1')   // written with the edit: may or may not be indexed first
    await waitFor('b has the new .swarmignore', () => fileIs(join(b.dir, IGNORE_FILE), '*.log\nbuild/\n*.tmp\nsoon-ignored.txt\n'))
    writeFileSync(join(b.dir, 'scratch.tmp'), 'temp on b')
    writeFileSync(join(b.dir, 'after-edit.txt'), 'b2')
    await waitFor('after-edit.txt reached a', () => fileIs(join(a.dir, 'after-edit.txt'), 'b2'))
    assert.equal(entryOf(b, 'scratch.tmp'), undefined)
    assert.equal(existsSync(join(a.dir, 'scratch.tmp')), false)
  } finally { await c.stop() }
})

test('a file that becomes ignored is not deleted anywhere; a restart keeps ignoring; dropping a pattern brings what was skipped', async () => {
  const c = new Cluster()
  try {
    const a = await addWithRules(c, 'a', {}, dir => {
      writeFileSync(join(dir, 'data.csv'), 'rows')
      writeFileSync(join(dir, 'notes.txt'), 'notes')
    })
    const b = await addWithRules(c, 'b', { ignore: ['*.bak'] })
    await waitFor('replicated', () => fileIs(join(b.dir, 'data.csv'), 'rows') && fileIs(join(b.dir, 'notes.txt'), 'notes'))

    // data.csv becomes ignored on a (by a .swarmignore that both get), then a deletes it: b keeps it.
    writeFileSync(join(a.dir, IGNORE_FILE), 'data.csv\n')
    await waitFor('b has the .swarmignore', () => fileIs(join(b.dir, IGNORE_FILE), 'data.csv\n'))
    rmSync(join(a.dir, 'data.csv'))
    writeFileSync(join(a.dir, 'notes.txt'), 'notes 2')
    await waitFor('a later change arrived', () => fileIs(join(b.dir, 'notes.txt'), 'notes 2'))
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    assert.ok(fileIs(join(b.dir, 'data.csv'), 'rows'), 'the newly ignored file was deleted on b')
    assert.equal(entryOf(a, 'data.csv')?.deleted, false, 'a sent a tombstone for an ignored file')

    // b restarts with its node-only pattern: a's .bak file is still not applied there.
    await b.node.stop()
    writeFileSync(join(a.dir, 'old.bak'), 'backup')
    await restartWithRules(b, [a.node.address], { ignore: ['*.bak'] })
    const skipped = notApplied(b)
    writeFileSync(join(a.dir, 'marker.txt'), 'm')
    await waitFor('marker reached b', () => fileIs(join(b.dir, 'marker.txt'), 'm'))
    await waitFor('old.bak skipped on b', () => skipped.some(s => s.reason === 'ignored') || b.node.shares.get('share')!.stats.notAppliedIgnored > 0 || existsSync(join(b.dir, 'old.bak')))
    assert.equal(existsSync(join(b.dir, 'old.bak')), false, 'an ignored remote file was applied after a restart')

    // Restarted without the pattern: b takes a's entries again from the start and gets the file it skipped.
    await b.node.stop()
    await restartWithRules(b, [a.node.address], {})
    await waitFor('old.bak arrives once b no longer ignores it', () => fileIs(join(b.dir, 'old.bak'), 'backup'))
    assert.ok(fileIs(join(b.dir, 'data.csv'), 'rows'))
  } finally { await c.stop() }
})
