// The job commands end to end, as a user runs them: two `swarm daemon` processes on loopback,
// and put / ls / get / bcast / nodes / chunks / local-chunks through each node's control socket.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { randomBytes } from 'node:crypto'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
const SECRET = 'cli-jobs-secret-0123456789'

function swarm (args: string[], cwd?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, cwd })
}

async function daemon (state: string, peers: string[]): Promise<{ proc: ChildProcess, address: string, peerId: string }> {
  const args = [BIN, 'daemon', '--listen', '127.0.0.1:0', '--secret', SECRET, '--state', state, '--json']
  for (const p of peers) args.push('--peer', p)
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('daemon did not start')), 20_000)
    createInterface({ input: proc.stdout! }).on('line', l => {
      let e: Record<string, string>
      try { e = JSON.parse(l) } catch { return }
      if (e.event === 'listening') { clearTimeout(t); resolve({ proc, address: e.address!, peerId: e.peerId! }) }
    })
  })
}

async function until (cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) { if (Date.now() > end) throw new Error('timed out'); await new Promise(r => setTimeout(r, 100)) }
}

test('swarm daemon + put / ls / get / bcast / nodes / chunks through the control socket', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-cli-jobs-'))
  const procs: ChildProcess[] = []
  try {
    const a = await daemon(join(base, 'a'), [])
    procs.push(a.proc)
    const b = await daemon(join(base, 'b'), [a.address])
    procs.push(b.proc)
    const sa = join(base, 'a')
    const sb = join(base, 'b')
    await until(() => JSON.parse(swarm(['nodes', '--state', sa, '--json']).stdout || '[]').filter((n: { connected: boolean }) => n.connected).length === 2)

    const data = randomBytes(3 * 1024 * 1024 + 5)
    writeFileSync(join(base, 'report.bin'), data)
    const put = swarm(['put', 'report.bin', '--name', 'docs/report.bin', '--state', sa, '--json'], base)
    assert.equal(put.status, 0, put.stderr)
    const item = JSON.parse(put.stdout) as { name: string, root: string, size: number }
    assert.equal(item.name, 'docs/report.bin')
    assert.equal(item.size, data.length)

    await until(() => swarm(['ls', '--state', sb]).stdout.includes('docs/report.bin'))
    const out = join(base, 'out')
    mkdirSync(out)
    const got = swarm(['get', 'docs/report.bin', '--state', sb], out)
    assert.equal(got.status, 0, got.stderr)
    assert.ok(readFileSync(join(out, 'report.bin')).equals(data))
    assert.equal(swarm(['get', 'docs/report.bin', '--state', sb], out).status, 0, 'the same content already there is done')
    writeFileSync(join(out, 'report.bin'), 'edited locally')
    const again = swarm(['get', 'docs/report.bin', '--state', sb], out)
    assert.equal(again.status, 1)
    assert.match(again.stderr, /exists/)
    const unknown = swarm(['get', 'nope', '--state', sb], out)
    assert.equal(unknown.status, 1)
    assert.match(unknown.stderr, /no file named "nope"/)

    writeFileSync(join(base, 'wide.bin'), randomBytes(1024 * 1024))
    const bc = swarm(['bcast', join(base, 'wide.bin'), '--state', sa, '--json'])
    assert.equal(bc.status, 0, bc.stderr)
    const r = JSON.parse(bc.stdout) as { nodes: Array<{ state: string }>, sourceCopies: number }
    assert.equal(r.nodes.length, 2)
    assert.ok(r.nodes.every(n => n.state === 'done'))
    const chunks = JSON.parse(swarm(['chunks', 'wide.bin', '--state', sb, '--json']).stdout) as { holders: Array<{ pieces: string }> }
    assert.deepEqual(chunks.holders.map(h => h.pieces), ['all', 'all'])
    const local = JSON.parse(swarm(['local-chunks', '--state', sb, '--json']).stdout) as Array<{ names: string[] }>
    assert.deepEqual(local.flatMap(l => l.names).sort(), ['docs/report.bin', 'wide.bin'])
    const human = swarm(['bcast', 'wide.bin', '--state', sb])
    assert.equal(human.status, 0, human.stderr)
    assert.match(human.stdout, /2 nodes hold it/)
  } finally {
    for (const p of procs) p.kill('SIGTERM')
    await Promise.all(procs.map(p => new Promise(r => p.exitCode !== null ? r(null) : p.once('exit', r))))
    assert.ok(!existsSync(join(base, 'a', 'control.sock')), 'the socket is removed on shutdown')
    rmSync(base, { recursive: true, force: true })
  }
})
