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
import { decode, encode } from '../src/wire/control.js'

function entry (path: string, data: Buffer): Entry {
  return { path, type: 'file', deleted: false, size: data.length, mtime: Date.now(), root: createHash('sha256').update(data).digest(), version: { EvL1111: 1 }, by: 'EvL1111' }
}

test('path rules refuse traversal, absolute, NUL, empty segments and .swarm/', () => {
  for (const p of ['../x', 'a/../../x', '/etc/passwd', 'a\0b', 'a//b', './a', '.swarm/index', 'a\\..\\b', '']) {
    assert.notEqual(pathProblem(p), null, p)
  }
  for (const p of ['a', 'a/b/c.txt', '..a', 'a..b/c', '.hidden']) assert.equal(pathProblem(p), null, p)
})

test('entries with traversal, absolute or .swarm/ paths are refused by the wire decoder', () => {
  const data = Buffer.from('pwned')
  for (const path of ['../outside/escaped.txt', '/tmp/absolute.txt', 'a/../../outside/x.txt', '.swarm/index.db']) {
    const msg = decode(encode.entries('share', 1, [{ entry: entry(path, data), data }]).subarray(4))
    assert.ok(msg.type === 'entries' && msg.entries.length === 0 && msg.rejected.length === 1, path)
  }
  const msg = decode(encode.entries('share', 1, [{ entry: entry('ok/x.txt', data), data }]).subarray(4))
  assert.ok(msg.type === 'entries' && msg.entries.length === 1 && msg.rejected.length === 0)
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

test('a symlinked folder inside the share is never written through; unverified inline data is not installed', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const share = a.node.shares.get('share')!
    const outside = join(c.base, 'outside')
    mkdirSync(outside)
    // A symlink inside the share that points out of it (made locally; it is never followed).
    symlinkSync(outside, join(a.dir, 'link'))
    // Everything on disk around the share, except what the node itself keeps (state dir, .swarm/).
    const ours = (p: string) => p.startsWith('a/state/') || p.startsWith('a/share/.swarm/')
    const before = allPaths(c.base).filter(p => !ours(p))
    const logs: string[] = []
    a.node.on('log', e => logs.push(e.message))
    const data = Buffer.from('pwned')
    await share.applyRemoteBatch('hostile-peer', [
      { entry: entry('link/through-symlink.txt', data), data },
      { entry: entry('ok.txt', data), data: Buffer.from('other') }   // inline data that does not match its root
    ])
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside the share')
    assert.deepEqual(allPaths(c.base).filter(p => !ours(p)), before, 'no file or folder appeared anywhere')
    assert.ok(logs.some(m => m.includes('link') && m.includes('not a folder')), logs.join('\n'))
    assert.ok(!existsSync(join(a.dir, 'ok.txt')), 'unverified inline data is not installed')
  } finally { await c.stop() }
})
