// A hostile or broken peer: entries with paths that would escape the share are refused and
// nothing is written outside it; inline data that fails verification is never installed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { Cluster } from './helpers.js'
import { pathProblem } from '../src/model/paths.js'
import type { Entry } from '../src/model/entry.js'

function entry (path: string, data: Buffer): Entry {
  return { path, type: 'file', deleted: false, size: data.length, mtime: Date.now(), root: createHash('sha256').update(data).digest(), version: { evil0000: 1 }, by: 'evil0000' }
}

test('path rules refuse traversal, absolute, NUL, empty segments and .swarm/', () => {
  for (const p of ['../x', 'a/../../x', '/etc/passwd', 'a\0b', 'a//b', './a', '.swarm/index', 'a\\..\\b', '']) {
    assert.notEqual(pathProblem(p), null, p)
  }
  for (const p of ['a', 'a/b/c.txt', '..a', 'a..b/c', '.hidden']) assert.equal(pathProblem(p), null, p)
})

/** Every path below `root` (symlinks not followed), relative to it. */
function allPaths (root: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel === '' ? d.name : rel + '/' + d.name
      out.push(p)
      if (d.isDirectory()) walk(p)
    }
  }
  walk('')
  return out.sort()
}

test('a manifest with traversal paths and symlink escapes writes nothing outside the share', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    // Where each escape would land: '..' from the share is <base>/a (the share is <base>/a/share),
    // the symlink points at <base>/outside, an absolute path lands at itself or, joined, inside the share.
    const outside = join(c.base, 'outside')
    mkdirSync(outside)
    // A symlink inside the share that points out of it (made locally; it is never followed).
    symlinkSync(outside, join(a.dir, 'link'))
    const landing = [
      join(a.dir, '..', 'outside', 'escaped.txt'),
      join(a.dir, '..', 'outside', 'x.txt'),
      join(outside, 'through-symlink.txt'),
      '/tmp/absolute.txt',
      join(a.dir, 'tmp', 'absolute.txt'),
      join(a.dir, '.swarm', 'index.db')
    ]
    for (const p of landing) assert.ok(!existsSync(p), `${p} exists before the test`)
    // Everything on disk around the share, except what the node itself keeps (state dir, .swarm/).
    const ours = (p: string) => p.startsWith('a/state/') || p.startsWith('a/share/.swarm/')
    const before = allPaths(c.base).filter(p => !ours(p))
    const logs: string[] = []
    a.node.on('log', e => logs.push(e.message))
    const data = Buffer.from('pwned')
    await share.applyRemoteBatch('hostile-peer', [
      { entry: entry('../outside/escaped.txt', data), data },
      { entry: entry('/tmp/absolute.txt', data), data },
      { entry: entry('a/../../outside/x.txt', data), data },
      { entry: entry('link/through-symlink.txt', data), data },
      { entry: entry('.swarm/index.db', data), data },
      { entry: entry('ok.txt', data), data: Buffer.from('other') }   // inline data that does not match its root
    ])
    for (const p of landing) assert.ok(!existsSync(p), `nothing written at ${p}`)
    assert.deepEqual(allPaths(c.base).filter(p => !ours(p)), before, 'no file or folder appeared anywhere')
    assert.deepEqual(readdirSync(outside), [], 'nothing written through the symlink')
    assert.ok(logs.filter(m => m.includes('rejected entry')).length >= 4, logs.join('\n'))
    assert.ok(logs.some(m => m.includes('link') && m.includes('not a folder')), logs.join('\n'))
    assert.ok(!existsSync(join(a.dir, 'ok.txt')), 'unverified inline data is not installed')
  } finally { await c.stop() }
})
