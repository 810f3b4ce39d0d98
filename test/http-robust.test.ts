// The HTTP listener when things go wrong (no node needed): a status that throws answers 500 and
// leaves the listener (and the process) running; an event stream whose reader stopped reading is
// closed instead of piling frames up in memory; label values from peers stay inside their quotes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { startHttpServer, pushFrame, MAX_EVENT_BACKLOG_BYTES, type EventStream } from '../src/http/server.js'
import { createMetrics, type MetricsSource } from '../src/http/metrics.js'
import type { NodeStatus } from '../src/node/status.js'

test('a status that throws answers 500; the listener keeps serving', async () => {
  let fail = true
  const logged: string[] = []
  const http = await startHttpServer({
    status: () => { if (fail) throw new Error('the database connection is not open'); return { ok: true } },
    metrics: async () => ({ contentType: 'text/plain', text: 'm 1\n' })
  }, '127.0.0.1:0', (_level, message) => logged.push(message))
  try {
    const url = `http://${http.address}`
    const res = await fetch(`${url}/status.json`)
    assert.equal(res.status, 500)
    assert.ok(logged.some(m => m.includes('database connection is not open')), 'the cause is logged')
    fail = false
    assert.deepEqual(await (await fetch(`${url}/status.json`)).json(), { ok: true })
    assert.equal(await (await fetch(`${url}/metrics`)).text(), 'm 1\n')
  } finally { await http.close() }
})

test('an event stream whose reader is MAX_EVENT_BACKLOG_BYTES behind is closed; the others get the frame', () => {
  const stream = (backlog: number) => {
    const s = { writableLength: backlog, written: [] as string[], destroyed: false, write (f: string) { this.written.push(f); return true }, destroy () { this.destroyed = true; return this } }
    return s
  }
  const reading = stream(100)
  const stuck = stream(MAX_EVENT_BACKLOG_BYTES + 1)
  const streams = new Set<EventStream>([reading as unknown as EventStream, stuck as unknown as EventStream])
  pushFrame(streams, 'event: status\ndata: {}\n\n')
  assert.deepEqual(reading.written, ['event: status\ndata: {}\n\n'])
  assert.equal(stuck.destroyed, true)
  assert.deepEqual(stuck.written, [])
  assert.equal(streams.size, 1)
})

test('share ids and addresses with quotes, backslashes and newlines stay inside their label values', async () => {
  const nasty = 'a"b\\c\nd} 1\nswarm_forged 1'
  const status = {
    peerId: 'self', address: '127.0.0.1:1', version: '0', pid: 1, stateDir: '/x', startedAt: 0, time: 0,
    peers: [{ peerId: 'p', address: nasty, connected: true, since: 0, bytesSent: 1, bytesReceived: 2, rttMs: null, shares: [], lastError: null }],
    shares: [{ id: nasty, dir: '/d', mode: 'send-receive', paused: null, scanning: false, files: 1, bytes: 2, root: '00', inSyncWith: [], peers: [], toFetch: [], toSend: [], updated: 0, deleted: 0, conflicts: 0, notAppliedIgnored: 0, notAppliedSendOnly: 0, localOnly: 0 }],
    transfers: [], finished: [], errors: [],
    totals: { piecesFetched: 0, bytesFetched: 0, piecesReused: 0, bytesReused: 0, verifyFailures: 0, downloadsDone: 0, downloadsFailed: 0 }
  } as unknown as NodeStatus
  const source = Object.assign(new EventEmitter(), { status: () => status }) as unknown as MetricsSource
  const m = createMetrics(source)
  try {
    const text = await m.text()
    assert.ok(!/^swarm_forged/m.test(text), 'no forged sample line')
    assert.ok(text.includes('swarm_share_files{share="a\\"b\\\\c\\nd} 1\\nswarm_forged 1"} 1'), 'escaped as the exposition format says')
  } finally { m.close() }
})
