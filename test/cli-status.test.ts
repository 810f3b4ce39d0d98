// `swarm status`, `swarm peers`, `swarm shares` and `--metrics` on real `swarm share` processes:
// what they print matches what replicated; --json events carry a time, a burst ends with one
// summary event; the human log collapses a burst after FILE_LINES_PER_BURST lines; a node that is
// not running is exit 4 with the JSON error object under --json.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { start, run, freeUdpPort } from './cli-helpers.js'
import { FILE_LINES_PER_BURST } from '../src/cli/node-events.js'

const SECRET = 'cli-status-test-secret-0123456789'
const FILES = 50

test('swarm status / peers / shares and --metrics against two real swarm share processes', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-cli-status-'))
  const [pa, pb] = [await freeUdpPort(), await freeUdpPort()]
  for (const n of ['a', 'b']) mkdirSync(join(base, n, 'docs'), { recursive: true })
  writeFileSync(join(base, 'secret'), SECRET, { mode: 0o600 })
  const common = ['--secret-file', join(base, 'secret')]
  const a = start(['share', join(base, 'a', 'docs'), '--listen', `127.0.0.1:${pa}`, '--state', join(base, 'a', 'state'), '--json', '--metrics', '127.0.0.1:0', ...common], base)
  // B prints human lines: the burst is collapsed there.
  const b = start(['share', join(base, 'b', 'docs'), '--listen', `127.0.0.1:${pb}`, '--peer', `127.0.0.1:${pa}`, '--state', join(base, 'b', 'state'), ...common], base)
  try {
    await a.until(() => a.events.some(e => e.event === 'peer-connected'))
    assert.ok(a.events.every(e => typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time as string))), 'every JSON event has an ISO time')
    for (let i = 0; i < FILES; i++) writeFileSync(join(base, 'a', 'docs', `f${i}.txt`), 'x'.repeat(100 + i))
    const bytes = Array.from({ length: FILES }, (_, i) => 100 + i).reduce((x, y) => x + y, 0)
    await a.until(() => a.events.some(e => e.event === 'summary' && e.updated === FILES))
    const summary = a.events.find(e => e.event === 'summary')!
    assert.equal(summary.bytes, bytes)
    assert.equal(a.events.filter(e => e.event === 'file-updated').length, FILES, '--json keeps one event per file')

    const stateB = join(base, 'b', 'state')
    const stateA = join(base, 'a', 'state')
    let st: { shares: Array<{ files: number, bytes: number, inSyncWith: string[] }>, peers: Array<{ connected: boolean }> } | null = null
    for (const end = Date.now() + 20_000; Date.now() < end;) {
      const r = run(['status', '--state', stateB, '--json'])
      assert.equal(r.status, 0, r.stderr)
      st = JSON.parse(r.stdout)
      if (st!.shares[0]!.files === FILES && st!.shares[0]!.inSyncWith.length === 1) break
      await new Promise(r => setTimeout(r, 100))
    }
    assert.equal(st!.shares[0]!.files, FILES)
    assert.equal(st!.shares[0]!.bytes, bytes)
    assert.equal(st!.peers.filter(p => p.connected).length, 1)

    const human = run(['status', '--state', stateB])
    assert.equal(human.status, 0)
    assert.match(human.stdout, new RegExp(`docs {2}\\S+\\n\\s+${FILES} files, 6\\.22 kB, root [0-9a-f]{16}… {2}in sync with 1 peer`))
    assert.match(human.stdout, /peers \(1 connected of 1 known\)/)
    assert.equal(run(['peers', '--state', stateA]).stdout.trim().split('\n').length, 1)
    assert.match(run(['shares', '--state', stateA]).stdout, new RegExp(`^docs {2}`))

    // B's human log: the first lines of the burst, one "more" line, one summary line.
    await b.until(() => /share docs: 50 files \(6\.22 kB\) from \S+ in [\d.]+ s/.test(b.stdout()))
    const lines = b.stdout().split('\n')
    assert.equal(lines.filter(l => / updated docs\//.test(l)).length, FILE_LINES_PER_BURST)
    assert.equal(lines.filter(l => /more changes in docs from \S+; a summary follows/.test(l)).length, 1)
    assert.ok(lines.every(l => l === '' || /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /.test(l)), 'every line starts with a date, a time and the zone')
    assert.ok(!b.stdout().includes('\x1b'), 'no control characters when stdout is not a terminal')

    // The metrics listener A was started with.
    const said = a.events.filter(e => e.event === 'log').map(e => String(e.message))
    const url = said.map(m => /metrics and status page at (http:\/\/\S+)\//.exec(m)?.[1]).find(u => u !== undefined)
    assert.ok(url, said.join('\n'))
    const metrics = await (await fetch(`${url}/metrics`)).text()
    assert.match(metrics, new RegExp(`^swarm_share_files\\{share="docs"\\} ${FILES}$`, 'm'))
  } finally {
    assert.equal(await b.stop(), 0)
    assert.equal(await a.stop(), 0)
    rmSync(base, { recursive: true, force: true })
  }
})

test('swarm status with no node running: exit 4, and the JSON error object under --json', () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-cli-status-'))
  try {
    const r = run(['status', '--state', join(base, 'none')])
    assert.equal(r.status, 4)
    assert.match(r.stderr, /no swarm node is running for state dir/)
    const j = run(['status', '--state', join(base, 'none'), '--json'])
    assert.equal(j.status, 4)
    const err = JSON.parse(j.stdout)
    assert.equal(err.event, 'error')
    assert.equal(err.exit, 4)
    assert.equal(err.code, 'ERR_NO_DAEMON')
  } finally { rmSync(base, { recursive: true, force: true }) }
})
