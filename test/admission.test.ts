// Strangers and hostile peers before authentication, played by a client built on the project's
// own QUIC transport on loopback: the pre-auth frame limit, one control session per connection,
// the deadline to authenticate, the connection caps, the order of proofs (the listener never
// proves anything to a dialer that has not), messages before auth, short secrets, log escaping.
// Plus unit tests of the proof (bound to both PeerIds, both nonces and the role).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { startNode, SwarmNode, isSwarmError } from '../src/index.js'
import { createQuicTransport } from '../src/transport/quic.js'
import { createIdentity } from '../src/transport/identity.js'
import type { Connection, Transport } from '../src/transport/types.js'
import { encode, decode, FrameSplitter, MSG, MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION, type ControlMessage } from '../src/wire/control.js'
import { authProof, verifyProof, deriveAuthKey, newNonce, MIN_SECRET_CHARS } from '../src/node/auth.js'
import { STREAM_CONTROL, STREAM_PIECES } from '../src/node/session.js'
import type { AdmissionLimits } from '../src/node/admission.js'
import { printable } from '../src/model/printable.js'
import { SECRET, waitFor } from './helpers.js'

const KEY = deriveAuthKey(SECRET)

// ---------------------------------------------------------------- a target node and a hostile client

interface Target { node: SwarmNode, dir: string, base: string, logs: string[], stop: () => Promise<void> }

async function target (admission?: Partial<AdmissionLimits>, files: Record<string, string> = {}, peers: string[] = []): Promise<Target> {
  const base = mkdtempSync(join(tmpdir(), 'swarm-admission-'))
  const dir = join(base, 'share')
  mkdirSync(dir)
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data)
  const node = await startNode({ stateDir: join(base, 'state'), secret: SECRET, listen: '127.0.0.1:0', peers, shares: [{ dir, id: 'share' }], admission })
  const logs: string[] = []
  node.on('log', e => logs.push(e.message))
  return { node, dir, base, logs, stop: async () => { await node.stop(); rmSync(base, { recursive: true, force: true }) } }
}

/** Hostile clients: each has its own identity (PeerId). */
class Hostiles {
  private readonly transports: Transport[] = []
  async dial (t: Target): Promise<Watched> {
    const tr = createQuicTransport(createIdentity())
    this.transports.push(tr)
    return watch(await tr.dial('127.0.0.1', t.node.port))
  }

  async close (): Promise<void> { await Promise.all(this.transports.map(t => t.close())) }
}

type Watched = Connection & { isGone: boolean }
function watch (conn: Connection): Watched {
  const w = conn as Watched
  w.isGone = false
  void conn.closed.then(() => { w.isGone = true })
  return w
}

/** A stream seen from the hostile side: every control frame it received, and whether it ended. */
class Peer {
  readonly frames: ControlMessage[] = []
  bytes = 0
  ended = false
  private readonly splitter = new FrameSplitter()
  /** `tagged`: an inbound stream, which starts with its tag byte. */
  constructor (readonly stream: Duplex, private tagged = false) {
    stream.on('data', (c: Buffer) => {
      this.bytes += c.length
      if (this.tagged) { this.tagged = false; c = c.subarray(1) }
      for (const f of this.splitter.push(c)) this.frames.push(decode(f))
    })
    const end = () => { this.ended = true }
    stream.on('end', end); stream.on('close', end); stream.on('error', end)
  }

  async next<T extends ControlMessage['type']> (type: T): Promise<Extract<ControlMessage, { type: T }>> {
    await waitFor(`a ${type} frame (got ${this.frames.map(f => f.type).join(',') || 'nothing'})`, () => this.frames.some(f => f.type === type) || this.ended)
    const f = this.frames.find(f => f.type === type)
    if (f === undefined) throw new Error(`stream ended without a ${type} frame; got ${this.frames.map(f => f.type).join(',')}`)
    return f as Extract<ControlMessage, { type: T }>
  }
}

async function openStream (conn: Connection, tag: number, first?: Buffer): Promise<Peer> {
  const s = await conn.openStream()
  s.write(first === undefined ? Buffer.from([tag]) : Buffer.concat([Buffer.from([tag]), first]))
  return new Peer(s)
}

/** Runs the dialer's side of the handshake with the right key; resolves once the node has proved itself too. */
async function authenticate (conn: Connection): Promise<Peer> {
  const nonce = newNonce()
  const c = await openStream(conn, STREAM_CONTROL, encode.hello(nonce))
  const hello = await c.next('hello')
  c.stream.write(encode.auth(authProof(KEY, 'dialer', conn.localPeerId, conn.remotePeerId, nonce, hello.nonce)))
  const auth = await c.next('auth')
  assert.ok(verifyProof(KEY, auth.mac, 'listener', conn.remotePeerId, conn.localPeerId, hello.nonce, nonce), "the listener's proof checks out")
  return c
}

function inlineEntry (path: string, data: Buffer) {
  return { entry: { path, type: 'file' as const, deleted: false, size: data.length, mtime: Date.now(), root: createHash('sha256').update(data).digest(), version: { evil0000: 1 }, by: 'evil0000' }, data }
}

// ---------------------------------------------------------------- proofs (unit)

test('a proof is bound to both PeerIds, both nonces and the role; any change is refused', () => {
  const a = createIdentity().peerId
  const b = createIdentity().peerId
  const na = newNonce()
  const nb = newNonce()
  const proof = authProof(KEY, 'dialer', a, b, na, nb)
  assert.ok(verifyProof(KEY, proof, 'dialer', a, b, na, nb))
  const other = createIdentity().peerId
  const variants: Array<[string, Buffer, Parameters<typeof verifyProof>]> = [
    ['sender PeerId', authProof(KEY, 'dialer', other, b, na, nb), [KEY, proof, 'dialer', other, b, na, nb]],
    ['receiver PeerId', authProof(KEY, 'dialer', a, other, na, nb), [KEY, proof, 'dialer', a, other, na, nb]],
    ['sender nonce', authProof(KEY, 'dialer', a, b, newNonce(), nb), [KEY, proof, 'dialer', a, b, newNonce(), nb]],
    ['receiver nonce', authProof(KEY, 'dialer', a, b, na, newNonce()), [KEY, proof, 'dialer', a, b, na, newNonce()]],
    ['role', authProof(KEY, 'listener', a, b, na, nb), [KEY, proof, 'listener', a, b, na, nb]],
    ['PeerIds swapped (reflection)', authProof(KEY, 'dialer', b, a, nb, na), [KEY, proof, 'dialer', b, a, nb, na]],
    ['key', authProof(deriveAuthKey('another-secret-of-enough-length'), 'dialer', a, b, na, nb), [deriveAuthKey('another-secret-of-enough-length'), proof, 'dialer', a, b, na, nb]]
  ]
  for (const [what, changed, check] of variants) {
    assert.ok(!changed.equals(proof), `changing the ${what} changes the proof`)
    assert.ok(!verifyProof(...check), `the original proof is refused with another ${what}`)
  }
  assert.ok(!verifyProof(KEY, proof.subarray(0, 16), 'dialer', a, b, na, nb), 'a short mac is refused')
})

test('the key is the secret stretched by scrypt: deterministic, secret-dependent, not the HMAC of the raw secret', () => {
  const t0 = performance.now()
  const k = deriveAuthKey(SECRET)
  const ms = performance.now() - t0
  assert.ok(k.equals(KEY) && k.length === 32)
  assert.ok(!deriveAuthKey(SECRET + 'x').equals(KEY))
  assert.ok(!k.equals(Buffer.from(SECRET)))
  assert.ok(ms > 15, `stretching costs real work (${ms.toFixed(1)} ms)`)
})

test(`a secret shorter than ${MIN_SECRET_CHARS} characters is refused and points to swarm secret`, () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-admission-'))
  try {
    for (const secret of ['', 'short', '8-chars!', 'fifteen-chars15']) {
      assert.throws(() => new SwarmNode({ stateDir: base, secret }), (err: unknown) => isSwarmError(err, 'ERR_BAD_ARGUMENT') && /swarm secret/.test(err.message) && /16 characters/.test(err.message), secret)
    }
    assert.doesNotThrow(() => new SwarmNode({ stateDir: base, secret: 'sixteen-chars-16' }))
  } finally { rmSync(base, { recursive: true, force: true }) }
})

// ---------------------------------------------------------------- strangers on real QUIC

test('an oversized control frame before auth is refused from its length prefix: closed at once, nothing buffered', async () => {
  const t = await target()
  const h = new Hostiles()
  try {
    const conn = await h.dial(t)
    const c = await openStream(conn, STREAM_CONTROL)
    // Peak of Buffer memory in this process (the node lives here) while the hostile pushes 32 MiB.
    const before = process.memoryUsage().arrayBuffers
    let peak = before
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().arrayBuffers) }, 2)
    const len = 32 * 1024 * 1024
    const head = Buffer.alloc(5)
    head.writeUInt32BE(len, 0)
    head[4] = MSG.SHARES
    c.stream.write(head)
    const junk = Buffer.alloc(256 * 1024, 0x41)   // one native write per chunk: no coalescing garbage on our side
    const t0 = Date.now()
    void (async () => {
      for (let sent = 0; sent < len && !c.stream.destroyed && !conn.isGone; sent += junk.length) {
        if (!c.stream.write(junk)) await new Promise(resolve => { c.stream.once('drain', resolve); c.stream.once('close', resolve) })
      }
    })()
    await waitFor('connection closed by the node', () => conn.isGone, 2000)
    clearInterval(sampler)
    assert.ok(peak - before < 8 * 1024 * 1024, `Buffer memory grew by ${((peak - before) / 1048576).toFixed(1)} MiB`)
    assert.ok(Date.now() - t0 < 2000)
    const err = c.frames.find(f => f.type === 'error')
    assert.ok(err !== undefined && err.type === 'error' && /refused/.test(err.message), JSON.stringify(c.frames))
    assert.ok(t.logs.some(m => m.includes(`control frame of ${len} bytes refused`)), t.logs.join('\n'))
    // The limit before auth is small, and HELLO/AUTH fit in it.
    assert.ok(encode.hello(newNonce()).length <= MAX_HANDSHAKE_FRAME && MAX_HANDSHAKE_FRAME <= 1024)
  } finally { await h.close(); await t.stop() }
})

test('before auth only HELLO/AUTH/ERROR count: SHARES, ENTRIES, SUBSCRIBE are refused with no effect', async () => {
  const t = await target(undefined, { 'private.txt': 'not for strangers' })
  const h = new Hostiles()
  try {
    await waitFor('indexed', () => t.node.shares.get('share')!.entryCount === 1)
    const planted = Buffer.from('planted by a stranger')
    const attacks: Array<[string, Buffer]> = [
      ['shares+entries', Buffer.concat([encode.shares([{ id: 'share', indexId: 'x', root: Buffer.alloc(32) }]), encode.entries('share', 1, [inlineEntry('planted.txt', planted)])])],
      ['subscribe', encode.subscribe('share', 'x', 0)],
      ['root', encode.root('share', Buffer.alloc(32), true)],
      // Not even decoded: refused from its type byte (decoding would fail with ERR_PROTOCOL).
      ['undecodable entries', Buffer.from([0, 0, 0, 4, MSG.ENTRIES, 0xff, 0xff, 0xff])]
    ]
    for (const [what, frames] of attacks) {
      const conn = await h.dial(t)
      const nonce = newNonce()
      const c = await openStream(conn, STREAM_CONTROL, encode.hello(nonce))
      await c.next('hello')
      c.stream.write(frames)
      const err = await c.next('error')
      assert.equal(err.code, 'ERR_AUTH_FAILED', what)
      assert.match(err.message, /before authentication/, what)
      await waitFor(`${what}: connection closed`, () => conn.isGone)
      assert.deepEqual(c.frames.map(f => f.type), ['hello', 'error'], `${what}: the node sent nothing else`)
    }
    assert.ok(!existsSync(join(t.dir, 'planted.txt')), 'nothing written')
    assert.equal(t.node.shares.get('share')!.entryCount, 1)
    assert.deepEqual(t.node.connectedPeers(), [])
  } finally { await h.close(); await t.stop() }
})

test('the listener never sends its AUTH to a dialer whose proof is wrong', async () => {
  const t = await target()
  const h = new Hostiles()
  try {
    const wrongKey = deriveAuthKey('a-guessed-secret-0123456789')
    const proofs: Array<[string, (conn: Connection, mine: Buffer, theirs: Buffer) => Buffer]> = [
      ['wrong secret', (conn, mine, theirs) => authProof(wrongKey, 'dialer', conn.localPeerId, conn.remotePeerId, mine, theirs)],
      ['stale nonce', (conn, mine) => authProof(KEY, 'dialer', conn.localPeerId, conn.remotePeerId, mine, newNonce())],
      ['listener role', (conn, mine, theirs) => authProof(KEY, 'listener', conn.localPeerId, conn.remotePeerId, mine, theirs)],
      ['garbage', () => Buffer.alloc(32, 7)]
    ]
    for (const [what, proof] of proofs) {
      const conn = await h.dial(t)
      const nonce = newNonce()
      const c = await openStream(conn, STREAM_CONTROL, encode.hello(nonce))
      const hello = await c.next('hello')
      c.stream.write(encode.auth(proof(conn, nonce, hello.nonce)))
      const err = await c.next('error')
      assert.equal(err.code, 'ERR_AUTH_FAILED', what)
      await waitFor(`${what}: closed`, () => conn.isGone && c.ended)
      assert.deepEqual(c.frames.map(f => f.type), ['hello', 'error'], `${what}: no AUTH from the listener`)
    }
    // With the right proof the listener answers with a proof of its own (checked in authenticate()).
    const ok = await h.dial(t)
    await authenticate(ok)
    await waitFor('connected', () => t.node.connectedPeers().includes(ok.localPeerId))
  } finally { await h.close(); await t.stop() }
})

test('a dialing node refuses a fake listener with a wrong proof or none, and sends it nothing more', async () => {
  // Two fake listeners: one answers the node's proof with garbage, one never proves anything.
  const fakes = await Promise.all(['garbage', 'silent'].map(async kind => {
    const tr = createQuicTransport(createIdentity())
    const seen: Peer[] = []
    const l = await tr.listen('127.0.0.1', 0, conn => conn.onStream(s => {
      const p = new Peer(s, true)
      seen.push(p)
      void p.next('hello').then(() => {
        s.write(encode.hello(newNonce()))
        if (kind === 'garbage') void p.next('auth').then(() => s.write(encode.auth(Buffer.alloc(32, 1))), () => {})
      }, () => {})
    }))
    return { kind, tr, seen, address: `127.0.0.1:${l.port}` }
  }))
  const t = await target({ authDeadlineMs: 500 }, { 'private.txt': 'x' }, fakes.map(f => f.address))
  try {
    for (const f of fakes) {
      await waitFor(`${f.kind}: the node gave up`, () => f.seen.length > 0 && f.seen[0]!.frames.some(m => m.type === 'error'))
      const frames = f.seen[0]!.frames
      // The node (dialer) proved first, as designed; then an ERROR, and no SHARES or anything else.
      assert.deepEqual(frames.map(m => m.type), ['hello', 'auth', 'error'], f.kind)
      const err = frames[2]!
      assert.ok(err.type === 'error' && err.code === (f.kind === 'garbage' ? 'ERR_AUTH_FAILED' : 'ERR_TIMEOUT'), JSON.stringify(err))
    }
    assert.deepEqual(t.node.connectedPeers(), [])
  } finally { await t.stop(); await Promise.all(fakes.map(f => f.tr.close())) }
})

test('many control streams on one connection make one session; other streams before auth are destroyed', async () => {
  const t = await target()
  const h = new Hostiles()
  try {
    const conn = await h.dial(t)
    const streams: Peer[] = []
    for (let i = 0; i < 6; i++) streams.push(await openStream(conn, STREAM_CONTROL, encode.hello(newNonce())))
    const pieces = await openStream(conn, STREAM_PIECES, Buffer.alloc(68))
    await waitFor('every stream answered or destroyed', () => streams.every(s => s.frames.length > 0 || s.ended) && pieces.ended)
    const sessions = streams.filter(s => s.frames.some(f => f.type === 'hello'))
    assert.equal(sessions.length, 1, 'one HELLO answered')
    assert.ok(streams.filter(s => s !== sessions[0]).every(s => s.bytes === 0 && s.ended), 'the other control streams got nothing and were destroyed')
    assert.equal(pieces.bytes, 0)
    assert.ok(!conn.isGone, 'the connection itself stays')
    // After auth a further control stream is still refused, and the session carries on.
    const h2 = await h.dial(t)
    const c = await authenticate(h2)
    await waitFor('connected', () => t.node.connectedPeers().includes(h2.localPeerId))
    const extra = await openStream(h2, STREAM_CONTROL, encode.hello(newNonce()))
    await waitFor('extra control stream destroyed', () => extra.ended)
    assert.equal(extra.bytes, 0)
    assert.ok(!c.ended && t.node.connectedPeers().includes(h2.localPeerId))
  } finally { await h.close(); await t.stop() }
})

test('a connection that does not authenticate in time is closed at the deadline, with or without a stream', async () => {
  const deadline = 300
  const t = await target({ authDeadlineMs: deadline })
  const h = new Hostiles()
  try {
    const t0 = Date.now()
    const silent = await h.dial(t)                  // opens no stream at all
    const talker = await h.dial(t)                  // says HELLO, never proves anything
    const c = await openStream(talker, STREAM_CONTROL, encode.hello(newNonce()))
    await waitFor('both closed', () => silent.isGone && talker.isGone, deadline + 3000)
    assert.ok(Date.now() - t0 >= deadline - 50, 'not before the deadline')
    const err = c.frames.find(f => f.type === 'error')
    assert.ok(err !== undefined && err.type === 'error' && err.code === 'ERR_TIMEOUT', JSON.stringify(c.frames))
    // A peer that authenticates in time stays past the deadline.
    const good = await h.dial(t)
    await authenticate(good)
    const t1 = Date.now()
    await waitFor('past the deadline', () => Date.now() - t1 > deadline + 200)
    assert.ok(!good.isGone && t.node.connectedPeers().includes(good.localPeerId))
  } finally { await h.close(); await t.stop() }
})

test('cap on unauthenticated connections at once', async () => {
  const t = await target({ maxUnauthenticated: 2 })
  const h = new Hostiles()
  try {
    const u1 = await h.dial(t)
    const u2 = await h.dial(t)
    const u3 = await h.dial(t)
    await waitFor('the third unauthenticated connection refused', () => u3.isGone, 3000)
    assert.ok(!u1.isGone && !u2.isGone)
    assert.ok(t.logs.some(m => m.includes('too many unauthenticated connections')), t.logs.join('\n'))
    // An authenticated connection no longer counts: there is room for one more stranger.
    await authenticate(u1)
    const u4 = await h.dial(t)
    const c = await openStream(u4, STREAM_CONTROL, encode.hello(newNonce()))
    await c.next('hello')
    assert.ok(!u4.isGone)
  } finally { await h.close(); await t.stop() }
})

test('cap on unauthenticated connections from one host', async () => {
  const t = await target({ maxUnauthenticatedPerHost: 2 })
  const h = new Hostiles()
  try {
    const u1 = await h.dial(t)
    const u2 = await h.dial(t)
    const u3 = await h.dial(t)
    await waitFor('the third connection from the same host refused', () => u3.isGone, 3000)
    assert.ok(!u1.isGone && !u2.isGone)
    assert.ok(t.logs.some(m => m.includes('from one host')), t.logs.join('\n'))
  } finally { await h.close(); await t.stop() }
})

test('cap on connections in all', async () => {
  const t = await target({ maxConnections: 2 })
  const h = new Hostiles()
  try {
    const a1 = await h.dial(t)
    await authenticate(a1)
    const a2 = await h.dial(t)
    await authenticate(a2)
    await waitFor('two peers', () => t.node.connectedPeers().length === 2)
    const a3 = await h.dial(t)
    await waitFor('the third connection refused', () => a3.isGone, 3000)
    assert.ok(t.logs.some(m => m.includes('too many connections')), t.logs.join('\n'))
    assert.equal(t.node.connectedPeers().length, 2)
  } finally { await h.close(); await t.stop() }
})

// ---------------------------------------------------------------- log injection

test('printable escapes control, line-separator and bidi characters and caps the length', () => {
  assert.equal(printable('a\nb\r\tc\x1b[2J\x00\x7f\x85'), 'a\\nb\\r\\tc\\x1b[2J\\x00\\x7f\\x85')
  assert.equal(printable('x\u2028y\u202ez'), 'x\\u2028y\\u202ez')
  assert.equal(printable('héllo/wörld 日本 😀'), 'héllo/wörld 日本 😀')
  const long = printable('a'.repeat(1000), 100)
  assert.ok(long.startsWith('a'.repeat(100)) && long.length < 130 && long.includes('900 more'), long)
  assert.equal(printable('😀'.repeat(3), 3), '😀…(4 more chars)', 'a surrogate pair is never cut in half')
})

test('strings from a peer reach the log escaped', async () => {
  const t = await target()
  const h = new Hostiles()
  try {
    const conn = await h.dial(t)
    const c = await openStream(conn, STREAM_CONTROL, encode.hello(newNonce()))
    await c.next('hello')
    c.stream.write(encode.error('ERR_X\n', 'bye\n12:00:00.000 info: connected to FAKE\x1b[2J\u202e'))
    await waitFor('logged', () => t.logs.some(m => m.includes('closed the connection')))
    const line = t.logs.find(m => m.includes('closed the connection'))!
    assert.ok(!/[\x00-\x1f\x7f\u202e]/.test(line), line)
    assert.ok(line.includes('bye\\n12:00:00.000') && line.includes('\\x1b[2J'), line)
    t.node.log('info', 'local\nline')
    assert.equal(t.logs.at(-1), 'local\\nline', 'SwarmNode.log escapes every message')
  } finally { await h.close(); await t.stop() }
})

test('a HELLO of the previous protocol version (listener proved first) is refused', async () => {
  const t = await target()
  const h = new Hostiles()
  try {
    const conn = await h.dial(t)
    const old = encode.hello(newNonce())
    old.writeUInt16BE(PROTOCOL_VERSION - 1, 5)
    const c = await openStream(conn, STREAM_CONTROL, old)
    const err = await c.next('error')
    assert.equal(err.code, 'ERR_PROTOCOL')
    assert.match(err.message, new RegExp(`protocol version ${PROTOCOL_VERSION - 1}, expected ${PROTOCOL_VERSION}`))
    assert.ok(!c.frames.some(f => f.type === 'auth'))
  } finally { await h.close(); await t.stop() }
})
