// What `status` costs the node, with a stand-in node (no network): a count that is slow (a peer
// that never acknowledged, on a big share) is not run again on every status call — the page asks
// every second and every scrape asks too — while cheap counts stay fresh; many peers named by
// peer exchange do not make a status quadratic; the peers that went away are remembered boundedly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { StatusBuilder, SLOW_COUNT_MS, SLOW_COUNT_REUSE, type StatusView } from '../src/node/status.js'
import { NodeActivity, KEEP_DEPARTED, type ActivityHost } from '../src/node/activity.js'
import type { PeerRecord } from '../src/node/peer-records.js'

const SHARE = 'docs'
const PEER = '12D3KooWPeerThatNeverAcknowledgesAnythingAtAll00'

function activityOf (): { activity: NodeActivity, events: EventEmitter } {
  const events = new EventEmitter()
  const host = Object.assign(events, {
    peerId: 'self', transfers: () => [], emitProgress: () => {}, emitSummary: () => {}
  }) as unknown as ActivityHost
  return { activity: new NodeActivity(host), events }
}

/** A stand-in node with one share, one connected peer sharing it, and an index whose unacked count costs `unackedMs` on `clock`. */
function standIn (opts: { unackedMs: number, records?: PeerRecord[], learned?: Array<[string, string]> }) {
  const clock = { now: 0 }
  const calls = { unacked: 0 }
  const { activity, events } = activityOf()
  const share = {
    id: SHARE, dir: '/srv/docs', root: () => Buffer.alloc(32), pendingCount: () => 0, isScanning: false, paused: false,
    pausedReason: null, stats: { notAppliedIgnored: 0, notAppliedSendOnly: 0, localOnly: 0 }
  }
  const session = { ready: true, peerId: PEER, remoteShares: new Map([[SHARE, {}]]), roots: new Map() }
  const db = {
    liveTotals: () => ({ items: 3, bytes: 30 }),
    pendingBySource: () => [],
    unackedBy: () => { calls.unacked++; clock.now += opts.unackedMs; return { items: calls.unacked, bytes: 0 } }
  }
  const view = {
    peerId: 'self', address: '127.0.0.1:4001', stateDir: '/tmp/x', db, activity,
    totals: { piecesFetched: 0, bytesFetched: 0, piecesReused: 0, bytesReused: 0, verifyFailures: 0, downloadsDone: 0, downloadsFailed: 0 },
    shares: () => [share], modeOf: () => 'send-receive', sessions: () => [session],
    peerRecords: () => opts.records ?? [], learned: () => opts.learned ?? []
  } as unknown as StatusView
  return { builder: new StatusBuilder(view, () => clock.now), clock, calls, events, activity }
}

test('a slow unacknowledged count is reused for a while, not run on every status call', () => {
  const slow = SLOW_COUNT_MS * 100   // a never-acknowledging peer on a million-file share
  const { builder, clock, calls } = standIn({ unackedMs: slow })
  assert.equal(builder.build().shares[0]!.toSend[0]!.items, 1)
  for (let i = 0; i < 10; i++) { clock.now += 1000; builder.build() }   // ten seconds of the page's polling
  assert.equal(calls.unacked, 1, 'counted once, not once per call')
  clock.now += slow * SLOW_COUNT_REUSE
  assert.equal(builder.build().shares[0]!.toSend[0]!.items, 2, 'counted again once its reuse time is over')
})

test('a cheap count is run on every status call: the numbers stay current', () => {
  const { builder, calls } = standIn({ unackedMs: 0 })
  builder.build()
  const st = builder.build()
  assert.equal(calls.unacked, 2)
  assert.equal(st.shares[0]!.toSend[0]!.items, 2)
})

test('status with thousands of peer records and peers named by exchange is not quadratic', () => {
  const n = 20_000
  const id = (i: number) => `12D3KooW${String(i).padStart(44, '0')}`
  const records: PeerRecord[] = []
  for (let i = 0; i < n; i++) records.push({ peerId: id(i), address: `10.0.${i >> 8 & 255}.${i & 255}:4001`, connected: false, since: 0, attempts: 1, bytesSent: 0, bytesReceived: 0 })
  const learned: Array<[string, string]> = []
  for (let i = n / 2; i < n + n / 2; i++) learned.push([id(i), `10.1.${i >> 8 & 255}.${i & 255}:4001`])
  const { builder } = standIn({ unackedMs: 0, records, learned })
  const t0 = performance.now()
  const st = builder.build()
  const ms = performance.now() - t0
  assert.equal(st.peers.length, n + n / 2, 'every record, and every learned peer without one, once')
  // Linear work is a few ms here; the quadratic scan this replaced took seconds.
  assert.ok(ms < 500, `status took ${ms.toFixed(0)} ms`)
})

test('peers that went away are remembered up to KEEP_DEPARTED, the most recent ones', () => {
  const { events, activity } = activityOf()
  for (let i = 0; i < KEEP_DEPARTED + 50; i++) {
    events.emit('peer-connected', { peerId: `p${i}`, address: `10.0.0.1:${i + 1}` })
    events.emit('peer-disconnected', { peerId: `p${i}`, reason: 'gone' })
  }
  assert.equal(activity.departed.size, KEEP_DEPARTED)
  assert.ok(!activity.departed.has('p0'), 'the oldest went')
  assert.equal(activity.departed.get(`p${KEEP_DEPARTED + 49}`)?.address, `10.0.0.1:${KEEP_DEPARTED + 50}`)
  // A peer that leaves again moves to the most recent end.
  events.emit('peer-connected', { peerId: 'p60', address: '10.0.0.9:1' })
  events.emit('peer-disconnected', { peerId: 'p60', reason: 'gone again' })
  events.emit('peer-connected', { peerId: 'new', address: '10.0.0.9:2' })
  events.emit('peer-disconnected', { peerId: 'new', reason: 'gone' })
  assert.ok(activity.departed.has('p60'))
  activity.stop()
})
