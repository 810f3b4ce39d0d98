// The `swarm` command as a user runs it: real processes, flags, one-line errors, JSON events,
// and a clean exit 0 on SIGTERM.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import * as dgram from 'node:dgram'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
const SECRET = 'cli-test-secret-0123456789'

function run (args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } })
}

function startShare (args: string[]) {
  const proc = spawn(process.execPath, [BIN, 'share', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const events: Array<Record<string, unknown>> = []
  createInterface({ input: proc.stdout! }).on('line', l => { try { events.push(JSON.parse(l)) } catch {} })
  return { proc, events }
}

async function until (cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) { if (Date.now() > end) throw new Error('timed out'); await new Promise(r => setTimeout(r, 20)) }
}

test('swarm secret and swarm id', () => {
  const s = run(['secret'])
  assert.equal(s.status, 0)
  assert.match(s.stdout.trim(), /^[A-Za-z0-9_-]{40,}$/)
  const state = mkdtempSync(join(tmpdir(), 'swarm-cli-'))
  try {
    const a = run(['id', '--state', state])
    const b = run(['id', '--state', state])
    assert.equal(a.status, 0)
    assert.match(a.stdout.trim(), /^12D3KooW/)
    assert.equal(a.stdout, b.stdout, 'the identity persists')
  } finally { rmSync(state, { recursive: true, force: true }) }
})

test('bad input: one clear line, exit 3 for a bad setup', () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-cli-'))
  try {
    // The secret from the environment: --secret would add its warning about ps to stderr.
    const missing = run(['share', join(base, 'nope'), '--state', join(base, 'st'), '--listen', '127.0.0.1:0'], { SWARM_SECRET: SECRET })
    assert.equal(missing.status, 3)
    assert.match(missing.stderr, /does not exist \(ERR_NOT_A_DIRECTORY\)/)
    assert.equal(missing.stderr.trim().split('\n').length, 1)
    writeFileSync(join(base, 'file'), 'x')
    const notDir = run(['share', join(base, 'file'), '--secret', SECRET, '--state', join(base, 'st'), '--listen', '127.0.0.1:0'])
    assert.match(notDir.stderr, /not a directory/)
    mkdirSync(join(base, 'dir'))
    const noSecret = run(['share', join(base, 'dir'), '--state', join(base, 'st'), '--listen', '127.0.0.1:0'], { SWARM_SECRET: '' })
    assert.match(noSecret.stderr, /no cluster secret/)
    assert.equal(noSecret.status, 2)
    const badState = run(['share', join(base, 'dir'), '--secret', SECRET, '--state', join(base, 'file', 'st'), '--listen', '127.0.0.1:0'])
    assert.equal(badState.status, 3)
    assert.match(badState.stderr, /ERR_STATE_DIR/)
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('port in use is a one-line error, exit 3', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-cli-'))
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  try {
    mkdirSync(join(base, 'dir'))
    const r = run(['share', join(base, 'dir'), '--secret', SECRET, '--state', join(base, 'st'), '--listen', `127.0.0.1:${sock.address().port}`])
    assert.equal(r.status, 3)
    assert.match(r.stderr, /ERR_ADDRESS_IN_USE/)
  } finally { sock.close(); rmSync(base, { recursive: true, force: true }) }
})

test('two swarm share processes replicate, print JSON events, and exit 0 on SIGTERM', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-cli-'))
  const a = join(base, 'a', 'up')
  const b = join(base, 'b', 'up')
  mkdirSync(a, { recursive: true })
  mkdirSync(b, { recursive: true })
  const na = startShare([a, '--listen', '127.0.0.1:0', '--secret', SECRET, '--state', join(base, 'a', 'st')])
  try {
    await until(() => na.events.some(e => e.event === 'listening'))
    const addr = na.events.find(e => e.event === 'listening')!.address as string
    writeFileSync(join(base, 'secret'), SECRET + '\n')
    const nb = startShare([b, '--listen', '127.0.0.1:0', '--peer', addr, '--secret-file', join(base, 'secret'), '--state', join(base, 'b', 'st')])
    try {
      await until(() => nb.events.some(e => e.event === 'peer-connected'))
      writeFileSync(join(a, 'upload.jpg'), 'image bytes')
      await until(() => nb.events.some(e => e.event === 'file-updated' && e.path === 'upload.jpg' && e.share === 'up'))
      assert.equal(readFileSync(join(b, 'upload.jpg'), 'utf8'), 'image bytes')
      const upd = nb.events.find(e => e.event === 'file-updated')!
      assert.equal(upd.from, na.events.find(e => e.event === 'listening')!.peerId)
      await until(() => nb.events.some(e => e.event === 'in-sync' && e.share === 'up'))
      assert.ok(!existsSync(join(b, '.swarm', 'tmp', 'upload.jpg')))
    } finally {
      nb.proc.kill('SIGTERM')
      const code = await new Promise(r => nb.proc.once('exit', r))
      assert.equal(code, 0)
    }
  } finally {
    na.proc.kill('SIGTERM')
    const code = await new Promise(r => na.proc.once('exit', r))
    assert.equal(code, 0)
    rmSync(base, { recursive: true, force: true })
  }
})
