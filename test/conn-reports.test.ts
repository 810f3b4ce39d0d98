// What a node tells its user about its connections, with real nodes on loopback QUIC: share ids
// that do not match, a wrong cluster secret, a --peer that is the node itself or stays down, a
// clean stop, one peer-connected per connection, and the per-peer records for `status`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createSocket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { Cluster, SECRET, collect, fileIs, waitFor, type TestNode } from './helpers.js'
import { SwarmNode } from '../src/index.js'
import type { NodeLogLevel } from '../src/node/node.js'

type Line = { level: NodeLogLevel, message: string }
function logsOf (t: TestNode | SwarmNode): Line[] {
  const out: Line[] = []
  ;('node' in t ? t.node : t).on('log', e => out.push(e))
  return out
}
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** A UDP port nothing listens on right now. */
function freePort (): Promise<number> {
  return new Promise(resolve => {
    const s = createSocket('udp4')
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

test('share ids that differ only by case are reported once per peer and pair, with the fix; disjoint shares once', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a', { shareId: 'Docs' })
    const mismatchA = collect(a, 'share-mismatch')
    const logsA = logsOf(a)
    const b = await c.add('b', { shareId: 'docs' })
    await waitFor('mismatch reported on a', () => mismatchA.length > 0)
    assert.deepEqual(mismatchA[0], { peerId: b.node.peerId, ours: ['Docs'], theirs: ['docs'] })
    const line = logsA.find(l => l.message.includes('share ids must match exactly'))
    assert.ok(line !== undefined)
    assert.equal(line.level, 'warn')
    assert.match(line.message, new RegExp(`^peer ${b.node.peerId.slice(-8)} at 127\\.0\\.0\\.1:\\d+ shares docs; we share Docs — share ids must match exactly \\(set them with <dir>=<id>\\)$`))
    // A third node with a share of another name: nothing in common with a, said once.
    const d = await c.add('d', { shareId: 'photos', peers: [a.node.address] })
    await waitFor('disjoint shares reported', () => mismatchA.some(e => e.peerId === d.node.peerId))
    assert.deepEqual(mismatchA.find(e => e.peerId === d.node.peerId), { peerId: d.node.peerId, ours: ['Docs'], theirs: ['photos'] })
    assert.ok(logsA.some(l => l.level === 'warn' && l.message.includes('no share in common')))
    // Shares announced again (a share added) do not repeat what was said.
    await sleep(300)
    mkdirSync(join(c.base, 'extra'))
    await a.node.addShare(join(c.base, 'extra'), 'extra')
    await sleep(500)
    assert.equal(mismatchA.filter(e => e.peerId === b.node.peerId).length, 1)
    assert.equal(logsA.filter(l => l.message.includes('shares docs; we share Docs')).length, 1)
  } finally { await c.stop() }
})

test('a wrong secret is an error on both sides (auth-failed) and the dialer waits the slow delay before trying again', async () => {
  const c = new Cluster()
  const slowMs = 2000
  try {
    const a = await c.add('a', { redial: { authFailedMs: slowMs } })
    const failedA = collect(a, 'auth-failed')
    const logsA = logsOf(a)
    const secretB = 'another-secret-0123456789'
    const b = await c.add('b', { secret: secretB, peers: [], redial: { authFailedMs: slowMs, minMs: 50, maxMs: 100 } })
    const failedB = collect(b, 'auth-failed')
    const logsB = logsOf(b)
    const times: number[] = []
    b.node.on('auth-failed', () => times.push(Date.now()))
    // b dials a from here on (not during start), so that every attempt is seen.
    const dialer = (b.node as unknown as { dialer: { dialForever: (a: string) => void } }).dialer
    dialer.dialForever(a.node.address)
    await waitFor('auth failure on both sides', () => failedA.length > 0 && failedB.length > 0)
    assert.deepEqual(failedB[0], { address: a.node.address, peerId: a.node.peerId })
    assert.equal(failedA[0]!.peerId, b.node.peerId)
    for (const logs of [logsA, logsB]) {
      const line = logs.find(l => l.message.includes('cluster secret differs'))
      assert.ok(line !== undefined, JSON.stringify(logs))
      assert.equal(line.level, 'error')
      assert.match(line.message, /configuration error, not a network fault/)
    }
    assert.match(logsB.find(l => l.level === 'error')!.message, /retrying in 2 s/)
    // Not retried at the usual backoff (50-100 ms here): one dial until the slow delay has passed.
    await sleep(slowMs * 0.6)
    assert.equal(b.node.peerRecords().find(r => r.peerId === a.node.peerId)?.attempts, 1)
    await waitFor('second attempt', () => times.length >= 2, slowMs * 4)
    assert.ok(times[1]! - times[0]! >= slowMs - 100, `retried after ${times[1]! - times[0]!} ms`)
    // Nothing derived from the secret reaches a log line.
    for (const l of [...logsA, ...logsB]) {
      assert.ok(!l.message.includes(secretB) && !l.message.includes(SECRET), l.message)
      assert.ok(!/[0-9a-f]{32}/i.test(l.message), l.message)
    }
    assert.equal(b.node.connectedPeers().length, 0)
    assert.equal(b.node.peerRecords()[0]!.lastError, 'the cluster secret differs')
  } finally { await c.stop() }
})

test('a --peer that is this node is found by the handshake, said once at info level and never dialed again', async () => {
  const port = await freePort()
  const c = new Cluster()
  try {
    const node = new SwarmNode({ stateDir: join(c.base, 'self'), secret: SECRET, listen: `127.0.0.1:${port}`, peers: [`127.0.0.1:${port}`], shares: [], redial: { minMs: 20, maxMs: 40 } })
    const logs = logsOf(node)
    await node.start()
    c.nodes.push({ node, dir: '', state: '', name: 'self' })
    await waitFor('self-dial noticed', () => logs.some(l => l.message.includes("this node's own address")))
    await sleep(500)   // at the backoff given, ~15 more dials would have happened
    const lines = logs.filter(l => l.message.includes("this node's own address"))
    assert.equal(lines.length, 1)
    assert.equal(lines[0]!.level, 'info')
    assert.equal(node.connectedPeers().length, 0)
    assert.deepEqual(node.peerRecords(), [])
  } finally { await c.stop() }
})

test('a peer-exchange address that turns out to be this node is never dialed again', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const logs = logsOf(a)
    const dialer = (a.node as unknown as { dialer: { onPeers: (s: unknown, p: unknown[]) => void } }).dialer
    // Another node names our address under some other PeerId (a stale or forged list).
    const named = { peerId: 'QmSomeOtherNodeXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX', ip: '127.0.0.1', port: a.node.port }
    dialer.onPeers(null, [named])
    await waitFor('self noticed', () => logs.some(l => l.message.includes("this node's own address")))
    dialer.onPeers(null, [{ ...named, peerId: 'QmYetAnotherNodeXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' }])
    await sleep(500)
    assert.equal(logs.filter(l => l.message.includes("own address")).length, 1)
  } finally { await c.stop() }
})

test('a clean stop shows on the other side as "peer stopped", with no stream error', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const logsA = logsOf(a)
    const gone = collect(a, 'peer-disconnected')
    const b = await c.add('b')
    await waitFor('connected', () => a.node.connectedPeers().includes(b.node.peerId))
    await b.node.stop()
    await waitFor('disconnect seen', () => gone.length > 0)
    assert.deepEqual(gone, [{ peerId: b.node.peerId, reason: 'peer stopped' }])
    assert.ok(!logsA.some(l => l.level !== 'info' && /stream|closed the connection/.test(l.message)), JSON.stringify(logsA))
  } finally { await c.stop() }
})

test('two nodes dialing each other at once: one peer-connected on each side, nothing else', async () => {
  const [pa, pb] = [await freePort(), await freePort()]
  const c = new Cluster()
  try {
    const mk = (name: string, port: number, peer: number) => new SwarmNode({ stateDir: join(c.base, name), secret: SECRET, listen: `127.0.0.1:${port}`, peers: [`127.0.0.1:${peer}`], shares: [] })
    const a = mk('a', pa, pb)
    const b = mk('b', pb, pa)
    const events: string[] = []
    const lines: string[] = []
    for (const [n, name] of [[a, 'a'], [b, 'b']] as const) {
      n.on('peer-connected', () => events.push(`${name} connected`))
      n.on('peer-disconnected', e => events.push(`${name} disconnected: ${e.reason}`))
      n.on('log', e => lines.push(`${name} ${e.level}: ${e.message}`))
    }
    await Promise.all([a.start(), b.start()])
    c.nodes.push({ node: a, dir: '', state: '', name: 'a' }, { node: b, dir: '', state: '', name: 'b' })
    await waitFor('connected both ways', () => a.connectedPeers().length === 1 && b.connectedPeers().length === 1)
    // Whether the two dials crossed is up to timing: one more dial while connected always makes a duplicate.
    ;(b as unknown as { dialer: { dialForever: (a: string) => void } }).dialer.dialForever(`127.0.0.1:${pa}`)
    await sleep(2500)   // past the duplicate grace: a dropped duplicate must not show as a disconnection
    assert.deepEqual(events.sort(), ['a connected', 'b connected'])
    assert.ok(!lines.some(l => /connected to|duplicate/.test(l)), lines.join('\n'))
  } finally { await c.stop() }
})

test('peerRecords: connected peers with bytes, RTT and dial attempts; a stopped one keeps its numbers; a dead address its error', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const deadPort = await freePort()
    const b = await c.add('b', { peers: [a.node.address, `127.0.0.1:${deadPort}`], handshakeTimeoutMs: 300, redial: { minMs: 50, maxMs: 100 } })
    const before = Date.now()
    await waitFor('connected', () => b.node.connectedPeers().includes(a.node.peerId))
    const data = randomBytes(300_000)
    writeFileSync(join(a.dir, 'big.bin'), data)
    await waitFor('replicated', () => fileIs(join(b.dir, 'big.bin'), data))
    const recB = b.node.peerRecords().find(r => r.peerId === a.node.peerId)!
    assert.equal(recB.connected, true)
    assert.equal(recB.address, a.node.address)
    assert.ok(recB.since <= Date.now() && recB.since >= before - 5000)
    assert.ok(recB.attempts >= 1)
    assert.ok(recB.bytesReceived >= data.length, `received ${recB.bytesReceived}`)
    assert.ok(recB.bytesSent > 0)
    assert.equal(typeof recB.rttMs, 'number')
    const recA = a.node.peerRecords().find(r => r.peerId === b.node.peerId)!
    assert.equal(recA.connected, true)
    assert.equal(recA.attempts, 0)   // a never dialed b
    assert.ok(recA.bytesSent >= data.length)
    // The dead address: no PeerId, several failed attempts, the last error.
    await waitFor('dead address tried', () => (b.node.peerRecords().find(r => r.address === `127.0.0.1:${deadPort}`)?.attempts ?? 0) >= 2)
    const dead = b.node.peerRecords().find(r => r.address === `127.0.0.1:${deadPort}`)!
    assert.equal(dead.peerId, undefined)
    assert.equal(dead.connected, false)
    assert.ok(dead.lastError !== undefined && dead.lastError.length > 0)
    const received = recB.bytesReceived
    await a.node.stop()
    await waitFor('a down on b', () => b.node.peerRecords().find(r => r.peerId === a.node.peerId)?.connected === false)
    const after = b.node.peerRecords().find(r => r.peerId === a.node.peerId)!
    // 'peer stopped', or already the redial that followed it.
    assert.match(after.lastError ?? '', /^peer stopped$|^dial /)
    assert.ok(after.bytesReceived >= received)
    assert.equal(after.rttMs, undefined)
  } finally { await c.stop() }
})

test('a --peer that stays down is reported again periodically, and once when it is back', async () => {
  const c = new Cluster()
  try {
    const probe = await c.add('probe')
    const port = probe.node.port
    await probe.node.stop()
    const a = await c.add('a', { peers: [`127.0.0.1:${port}`], handshakeTimeoutMs: 200, redial: { minMs: 50, maxMs: 100, unreachableReportMs: 800 } })
    const logs = logsOf(a)
    await waitFor('reported twice', () => logs.filter(l => l.message.includes('still unreachable since')).length >= 2, 10_000)
    const line = logs.find(l => l.message.includes('still unreachable since'))!
    assert.match(line.message, new RegExp(`^peer 127\\.0\\.0\\.1:${port} still unreachable since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(\\d+ attempts\\): .+`))
    assert.equal(line.level, 'warn')
    await c.restart(probe, [])
    await waitFor('reachable again', () => logs.some(l => l.message === `peer 127.0.0.1:${port} reachable again`), 10_000)
    await waitFor('connected', () => a.node.connectedPeers().includes(probe.node.peerId))
  } finally { await c.stop() }
})
