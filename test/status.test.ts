// Status of a real 3-node cluster (real QUIC on loopback, real folders): the numbers status
// reports match what was transferred, progress events during a large transfer, one summary per
// burst, and the status command over the real control socket.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Cluster, collect, waitConverged, waitFor } from './helpers.js'
import { startControlServer } from '../src/control/server.js'
import { callControl } from '../src/control/client.js'
import { formatStatus } from '../src/cli/status.js'
import { PROGRESS_MIN_BYTES } from '../src/node/activity.js'

const BIG = 48 * 1024 * 1024

test('status of a 3-node cluster matches what was transferred; progress and summary events', async () => {
  const c = new Cluster()
  try {
    const opts = { options: { progressIntervalMs: 20 } }
    const a = await c.add('a', opts)
    const b = await c.add('b', opts)
    const d = await c.add('c', opts)
    await waitFor('full mesh', () => c.nodes.every(n => n.node.connectedPeers().length === 2))
    const progress = collect(b, 'transfer-progress')
    const summaries = collect(b, 'summary')
    const small = [1000, 2000, 3000]
    small.forEach((n, i) => writeFileSync(join(a.dir, `s${i}.txt`), randomBytes(n)))
    writeFileSync(join(a.dir, 'big.bin'), randomBytes(BIG))
    const total = BIG + small.reduce((x, y) => x + y, 0)
    await waitConverged(c.nodes, 'the files everywhere', () => c.nodes.every(n => n.node.status().shares[0]!.files === 4))

    for (const n of c.nodes) {
      const st = n.node.status()
      assert.equal(st.peerId, n.node.peerId)
      assert.equal(st.address, n.node.address)
      assert.equal(st.peers.filter(p => p.connected).length, 2, `${n.name} sees both peers`)
      const sh = st.shares[0]!
      assert.equal(sh.id, 'share')
      assert.equal(sh.files, 4)
      assert.equal(sh.bytes, total)
      assert.equal(sh.root, n.node.shares.get('share')!.root().toString('hex'))
      assert.deepEqual(sh.toFetch, [])
      assert.equal(sh.mode, 'send-receive')
      for (const p of st.peers) assert.ok(p.since !== null && p.since <= st.time)
    }
    // In sync with both peers, once every root announcement has arrived.
    await waitFor('in sync with both', () => c.nodes.every(n => n.node.status().shares[0]!.inSyncWith.length === 2))
    await waitFor('acks', () => c.nodes.every(n => n.node.status().shares[0]!.toSend.length === 0))

    // What the receivers fetched came from somewhere: A's upload plus what B and C traded.
    const stB = b.node.status()
    const big = stB.finished.find(f => f.path === 'big.bin')
    assert.ok(big, 'B lists the big file as finished')
    assert.equal(big.size, BIG)
    assert.equal(stB.shares[0]!.updated, 4, 'B wrote the 4 files')
    assert.equal(stB.totals.downloadsDone, 1)
    assert.equal(stB.totals.verifyFailures, 0)
    assert.equal(stB.totals.bytesFetched + stB.totals.bytesReused, BIG)
    const sent = (n: typeof a) => n.node.status().peers.reduce((x, p) => x + p.bytesSent, 0)
    const got = (n: typeof a) => n.node.status().peers.reduce((x, p) => x + p.bytesReceived, 0)
    assert.ok(got(b) >= BIG && got(d) >= BIG, 'each receiver received at least the big file')
    assert.ok(sent(a) + sent(b) + sent(d) >= 2 * BIG, 'the senders together sent two copies')
    assert.equal(a.node.status().shares[0]!.updated, 4, 'A counts its own 4 new files')

    // Progress: bounded, growing, with a rate and holders; only for the large file.
    const bigProgress = progress.filter(p => p.path === 'big.bin')
    assert.ok(bigProgress.length >= 1, 'progress events during the large transfer')
    assert.ok(progress.every(p => p.size >= PROGRESS_MIN_BYTES && p.bytes < p.size && p.holders >= 1))
    for (let i = 1; i < bigProgress.length; i++) assert.ok(bigProgress[i]!.bytes >= bigProgress[i - 1]!.bytes)
    // One summary for the burst (not one line per file), counting the files and their bytes.
    await waitFor('summary', () => summaries.reduce((n, s) => n + s.updated, 0) === 4)
    assert.ok(summaries.length <= 2, `at most a summary per source, got ${summaries.length}`)
    assert.equal(summaries.reduce((n, s) => n + s.bytes, 0), total)

    // The same over the real control socket, and the human view names what matters.
    const ctl = await startControlServer(b.state, b.node.jobs, () => {}, () => b.node.status())
    try {
      const remote = await callControl(b.state, 'status', {})
      assert.equal(remote.peerId, b.node.peerId)
      assert.equal(remote.shares[0]!.files, 4)
      const text = formatStatus(remote, 'status').join('\n')
      assert.match(text, /4 files, 50\.3 MB/)
      assert.match(text, /in sync with 2 peers/)
      assert.match(text, /2 connected of 2 known/)
      assert.match(text, /big\.bin {2}50\.3 MB/)
      assert.equal(formatStatus(remote, 'peers').length, 2)
    } finally { await ctl.close() }
  } finally { await c.stop() }
})

test('status lists a peer that went away as not connected, and what is left to send it', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const b = await c.add('b')
    await waitFor('connected', () => a.node.connectedPeers().length === 1)
    writeFileSync(join(a.dir, 'first.txt'), 'one')
    await waitConverged(c.nodes, 'first.txt on B')
    await waitFor('B acknowledged it', () => a.node.status().shares[0]!.toSend.length === 0)
    const bId = b.node.peerId
    await b.node.stop()
    await waitFor('B gone', () => a.node.status().peers.every(p => !p.connected))
    const st = a.node.status()
    const gone = st.peers.find(p => p.peerId === bId)
    assert.ok(gone, 'B is still listed')
    assert.equal(gone.connected, false)
    assert.ok(gone.since !== null, 'since when it is away')
    assert.match(formatStatus(st, 'peers').join('\n'), /not connected for \d+ s/)
    // What A changes meanwhile is what B has yet to apply.
    writeFileSync(join(a.dir, 'while-away.txt'), 'x'.repeat(5000))
    await waitFor('A indexed it', () => a.node.status().shares[0]!.files === 2)
    const sh = a.node.status().shares[0]!
    assert.deepEqual(sh.toSend, [{ peerId: bId, items: 1, bytes: 5000 }])
    assert.match(formatStatus(a.node.status(), 'shares').join('\n'), /has yet to apply 1 items, 5\.00 kB/)
  } finally { await c.stop() }
})
