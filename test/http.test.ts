// The opt-in HTTP listener of a real node pair: Prometheus text scraped and parsed (numbers that
// match the transfer), the status JSON, refusals (POST, unknown paths, a port in use), and the
// status page rendered in headless Chromium showing a connected peer and a finished transfer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Cluster, waitConverged, waitFor } from './helpers.js'
import { serveNodeHttp } from '../src/http/index.js'
import { isSwarmError } from '../src/errors.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FILE_BYTES = 3 * 1024 * 1024   // above the inline limit: a piece-exchange download

/** Prometheus text → samples by `name{labels}` (labels as printed); comments skipped, every line checked. */
function parseMetrics (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]Inf)$/.exec(line)
    assert.ok(m, `not a sample line: ${line}`)
    out.set(m[1]!, Number(m[2]))
  }
  return out
}

async function pair (): Promise<{ c: Cluster, peerIdA: string, url: string, close: () => Promise<void> }> {
  const c = new Cluster()
  const a = await c.add('a')
  const b = await c.add('b')
  await waitFor('connected', () => b.node.connectedPeers().length === 1)
  // Started before the transfer, as `swarm share --metrics` starts it: the histogram sees the fetch.
  const http = await serveNodeHttp(b.node, '127.0.0.1:0')
  writeFileSync(join(a.dir, 'report.bin'), randomBytes(FILE_BYTES))
  writeFileSync(join(a.dir, 'note.txt'), 'hello')
  await waitConverged(c.nodes, 'files on B')
  await waitFor('fetched', () => b.node.status().finished.length === 1)
  return { c, peerIdA: a.node.peerId, url: `http://${http.address}`, close: async () => { await http.close(); await c.stop() } }
}

test('metrics: Prometheus text a scraper parses, with numbers that match the transfer', async () => {
  const { url, peerIdA, close } = await pair()
  try {
    const res = await fetch(`${url}/metrics`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const m = parseMetrics(await res.text())
    assert.equal(m.get('swarm_peers_connected'), 1)
    assert.equal(m.get(`swarm_peer_connected{peer="${peerIdA}",address="${(await (await fetch(`${url}/status.json`)).json() as { peers: Array<{ address: string }> }).peers[0]!.address}"}`), 1)
    assert.equal(m.get('swarm_share_files{share="share"}'), 2)
    assert.equal(m.get('swarm_share_bytes{share="share"}'), FILE_BYTES + 5)
    assert.equal(m.get('swarm_share_pending_items{share="share"}'), 0)
    assert.equal(m.get('swarm_files_updated_total{share="share"}'), 2)
    assert.equal(m.get('swarm_pieces_verified_total'), FILE_BYTES / (256 * 1024))
    assert.equal(m.get('swarm_pieces_failed_total'), 0)
    assert.equal(m.get('swarm_fetched_bytes_total'), FILE_BYTES)
    assert.equal(m.get('swarm_downloads_total{result="done"}'), 1)
    assert.equal(m.get('swarm_fetch_duration_seconds_count{share="share"}'), 1)
    assert.ok((m.get(`swarm_peer_received_bytes_total{peer="${peerIdA}"}`) ?? 0) >= FILE_BYTES)
    assert.ok(m.has('nodejs_eventloop_lag_seconds'), 'event-loop lag is exported')
    assert.ok(m.has('process_cpu_seconds_total'))
    // Read-only and strict about what it serves.
    assert.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405)
    assert.equal((await fetch(`${url}/nope`)).status, 404)
    const st = await (await fetch(`${url}/status.json`)).json() as { shares: Array<{ files: number }> }
    assert.equal(st.shares[0]!.files, 2)
  } finally { await close() }
})

test('metrics: a port in use is a clear error', async () => {
  const { c, url, close } = await pair()
  try {
    const taken = url.slice('http://'.length)
    await assert.rejects(serveNodeHttp(c.nodes[0]!.node, taken), (err: unknown) => isSwarmError(err, 'ERR_ADDRESS_IN_USE') && /in use/.test((err as Error).message))
  } finally { await close() }
})

test('status page in headless Chromium shows a connected peer and a finished transfer, live', async (t) => {
  if (!existsSync(CHROMIUM)) { t.skip(`no Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set CHROMIUM_PATH`); return }
  const { chromium } = await import('playwright-core')
  const { c, url, peerIdA, close } = await pair()
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] })
  try {
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', err => problems.push(err.message))
    page.on('console', msg => { if (msg.type() === 'error') problems.push(msg.text()) })
    await page.goto(url + '/')
    await page.waitForSelector('#peers tbody tr', { timeout: 10_000 })
    const peerRow = await page.textContent('#peers tbody tr')
    assert.ok(peerRow?.includes(peerIdA.slice(-8)), `peer row names A: ${peerRow}`)
    assert.match(peerRow ?? '', /connected/)
    assert.doesNotMatch(peerRow ?? '', /not connected/)
    const finished = await page.textContent('#finished tbody')
    assert.match(finished ?? '', /share\/report\.bin/)
    assert.match(finished ?? '', /3\.15 MB/)
    assert.match(await page.textContent('#shares tbody') ?? '', /in sync with 1 peer/)
    // Live: a new file on A shows up on B's page without a reload.
    writeFileSync(join(c.nodes[0]!.dir, 'later.bin'), randomBytes(FILE_BYTES))
    await page.locator('#finished tbody', { hasText: 'later.bin' }).waitFor({ timeout: 15_000 })
    assert.deepEqual(problems, [], 'no script errors and nothing the CSP blocked')
  } finally {
    await browser.close()
    await close()
  }
})
