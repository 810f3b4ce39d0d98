// Owns the tests of src/transport/: base58, identity persistence, the real QUIC
// transport on loopback (PeerIds, data integrity, concurrency, queueing of early
// streams, close propagation, port-in-use, dial failures, clean process exit)
// and the in-memory transport, which must pass the same basic checks.
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import dgram from 'node:dgram'
import type { Duplex } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { isSwarmError, type SwarmErrorCode } from '../src/errors.js'
import { base58btcDecode, base58btcEncode } from '../src/transport/base58.js'
import { createIdentity, loadOrCreateIdentity, peerIdFromPublicKey, publicKeyFromPeerId, verifySignature, IDENTITY_FILE, type Identity } from '../src/transport/identity.js'
import { createQuicTransport } from '../src/transport/quic.js'
import { createMemoryNetwork } from '../src/transport/memory.js'
import type { Connection, Transport } from '../src/transport/types.js'

// ---------------------------------------------------------------- helpers

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Reads a stream to its end without destroying it (unlike a plain for-await). */
async function readAll (s: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of s.iterator({ destroyOnReturn: false })) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

async function writeAll (s: Duplex, data: Buffer, chunkSize = 64 * 1024): Promise<void> {
  for (let i = 0; i < data.length; i += chunkSize) {
    if (!s.write(data.subarray(i, i + chunkSize))) await new Promise(resolve => s.once('drain', resolve))
  }
}

async function endAndFinish (s: Duplex): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.end(() => resolve())
  })
}

async function expectCode (p: Promise<unknown>, code: SwarmErrorCode): Promise<Error> {
  try {
    await p
  } catch (err) {
    assert.ok(isSwarmError(err, code), `expected ${code}, got ${String((err as Error)?.stack ?? err)}`)
    assert.ok(!(err as Error).message.includes('\n'), 'error message is one line')
    return err as Error
  }
  assert.fail(`expected ${code}, but it succeeded`)
}

async function within<T> (ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function until (what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

interface Pair {
  server: Connection // accepted by `a`
  client: Connection // dialed by `b`
}

/** a listens, b dials; returns both ends of the connection. */
async function connect (a: Transport, b: Transport, host: string, dialHost = host): Promise<Pair & { port: number }> {
  let onServer: (c: Connection) => void = () => {}
  const gotServer = new Promise<Connection>(resolve => { onServer = resolve })
  const listener = await a.listen(host, 0, c => onServer(c))
  const client = await b.dial(dialHost, listener.port)
  const server = await within(5000, gotServer, 'inbound connection')
  return { server, client, port: listener.port }
}

/** Next inbound stream on `conn` (sets the onStream handler). */
function nextStream (conn: Connection): Promise<Duplex> {
  return new Promise(resolve => conn.onStream(resolve))
}

// ---------------------------------------------------------------- shared suite

interface Env {
  name: string
  host: string
  make: (peerId?: string) => Transport
  peerIds: [string, string]
}

/** Checks every Transport implementation must pass. */
function basicSuite (env: () => Env): void {
  let a: Transport
  let b: Transport
  let pair: Pair & { port: number }
  let e: Env

  const setup = async (): Promise<void> => {
    if (pair !== undefined) return
    e = env()
    a = e.make(e.peerIds[0])
    b = e.make(e.peerIds[1])
    pair = await connect(a, b, e.host)
  }
  after(async () => { await b?.close(); await a?.close() })

  it('each side sees the other PeerId and direction', async () => {
    await setup()
    assert.equal(pair.client.remotePeerId, e.peerIds[0])
    assert.equal(pair.server.remotePeerId, e.peerIds[1])
    assert.equal(pair.client.localPeerId, e.peerIds[1])
    assert.equal(pair.server.localPeerId, e.peerIds[0])
    assert.equal(pair.client.direction, 'outbound')
    assert.equal(pair.server.direction, 'inbound')
    assert.match(pair.client.remoteAddress, /:\d+$/)
    assert.match(pair.server.remoteAddress, /:\d+$/)
  })

  it('carries a few MB intact in both directions', async () => {
    await setup()
    const up = randomBytes(6 * 1024 * 1024)
    const down = randomBytes(3 * 1024 * 1024 + 17)
    // client → server, server answers with the hash and its own payload
    const serverSide = (async () => {
      const s = await nextStream(pair.server)
      const got = await readAll(s)
      s.write(sha256(got) + '\n')
      await writeAll(s, down)
      await endAndFinish(s)
    })()
    const s = await pair.client.openStream()
    const reply = readAll(s)
    await writeAll(s, up)
    await endAndFinish(s)
    const back = await reply
    await serverSide
    const nl = back.indexOf(10)
    assert.equal(back.subarray(0, nl).toString(), sha256(up))
    assert.equal(sha256(back.subarray(nl + 1)), sha256(down))
  })

  it('a stream opened by the listening side works too', async () => {
    await setup()
    const payload = randomBytes(1024 * 1024)
    const got = nextStream(pair.client).then(readAll)
    const s = await pair.server.openStream()
    await writeAll(s, payload)
    await endAndFinish(s)
    assert.equal(sha256(await got), sha256(payload))
  })

  it('many small messages arrive in order', async () => {
    await setup()
    const N = 5000
    const got = nextStream(pair.server).then(readAll)
    const s = await pair.client.openStream()
    for (let i = 0; i < N; i++) {
      if (!s.write(`msg ${i};`)) await new Promise(resolve => s.once('drain', resolve))
    }
    await endAndFinish(s)
    const text = (await got).toString()
    const parts = text.split(';').filter(x => x !== '')
    assert.equal(parts.length, N)
    parts.forEach((p, i) => assert.equal(p, `msg ${i}`))
  })

  it('several concurrent streams stay separate', async () => {
    await setup()
    const K = 16
    const results = new Map<string, string>()
    const allIn = new Promise<void>(resolve => {
      pair.server.onStream(s => {
        void readAll(s).then(async data => {
          const nl = data.indexOf(10)
          results.set(data.subarray(0, nl).toString(), sha256(data.subarray(nl + 1)))
          s.end('ok')
          if (results.size === K) resolve()
        })
      })
    })
    const sent = await Promise.all(Array.from({ length: K }, async (_x, i) => {
      const body = randomBytes(128 * 1024 + i)
      const s = await pair.client.openStream()
      const reply = readAll(s)
      await writeAll(s, Buffer.concat([Buffer.from(`stream-${i}\n`), body]), 16 * 1024)
      await endAndFinish(s)
      assert.equal((await reply).toString(), 'ok')
      return [`stream-${i}`, sha256(body)] as const
    }))
    await within(10_000, allIn, 'all streams received')
    for (const [name, hash] of sent) assert.equal(results.get(name), hash)
  })

  it('an inbound stream opened before onStream is set is not lost', async () => {
    const x = e.make()
    const y = e.make()
    try {
      let server: Connection | undefined
      const listener = await x.listen(e.host, 0, c => { server = c }) // no onStream yet
      const client = await y.dial(e.host, listener.port)
      const s = await client.openStream()
      s.write('early bird')
      await endAndFinish(s)
      await sleep(300)
      assert.ok(server !== undefined)
      const inbound = await within(5000, nextStream(server), 'queued stream')
      assert.equal((await readAll(inbound)).toString(), 'early bird')
    } finally {
      await y.close()
      await x.close()
    }
  })

  it('destroying a stream mid-way fails the peer stream with ERR_CLOSED', async () => {
    await setup()
    const inbound = nextStream(pair.server)
    const s = await pair.client.openStream()
    s.write('partial data')
    const r = await within(5000, inbound, 'inbound stream')
    const failed = new Promise<unknown>(resolve => r.on('error', resolve))
    const first = new Promise(resolve => r.once('data', resolve))
    r.resume()
    await within(5000, first, 'the first bytes') // mid-way: data is flowing
    s.destroy()
    const err = await within(5000, failed, 'peer stream error')
    assert.ok(isSwarmError(err, 'ERR_CLOSED'), String(err))
  })

  it('a reader that stops early fails the peer writer with ERR_CLOSED', async () => {
    await setup()
    const inbound = nextStream(pair.server)
    const s = await pair.client.openStream()
    s.write('send me lots')
    s.end()
    const r = await within(5000, inbound, 'inbound stream')
    assert.equal((await readAll(r)).toString(), 'send me lots')
    const writerFailed = (async () => {
      const chunk = Buffer.alloc(64 * 1024, 1)
      for (let i = 0; i < 100_000 && !r.destroyed; i++) {
        if (!r.write(chunk)) await new Promise(resolve => { r.once('drain', resolve); r.once('close', resolve) })
      }
      return r.errored
    })()
    let received = 0
    await new Promise<void>(resolve => {
      s.on('data', (c: Buffer) => { received += c.length; if (received > 256 * 1024) { s.destroy(); resolve() } })
    })
    const err = await within(5000, writerFailed, 'writer failure')
    assert.ok(isSwarmError(err, 'ERR_CLOSED'), String(err))
  })

  it('port in use gives ERR_ADDRESS_IN_USE', async () => {
    await setup()
    const x = e.make()
    try {
      await expectCode(x.listen(e.host, pair.port, () => {}), 'ERR_ADDRESS_IN_USE')
    } finally {
      await x.close()
    }
  })

  it('closing one side resolves closed on the other and fails open streams', async () => {
    const x = e.make()
    const y = e.make()
    try {
      const p = await connect(x, y, e.host)
      const inbound = nextStream(p.server)
      const s = await p.client.openStream()
      s.write('hello')
      const r = await within(5000, inbound, 'inbound stream')
      const rErr = new Promise<unknown>(resolve => r.on('error', resolve))
      const sErr = new Promise<unknown>(resolve => s.on('error', resolve))
      r.resume()
      p.client.close('test is done')
      p.client.close() // idempotent
      await within(3000, p.server.closed, 'server side closed')
      await within(1000, p.client.closed, 'client side closed')
      assert.ok(isSwarmError(await within(3000, rErr, 'remote stream error'), 'ERR_CLOSED'))
      assert.ok(isSwarmError(await within(3000, sErr, 'local stream error'), 'ERR_CLOSED'))
      await expectCode(p.client.openStream(), 'ERR_CLOSED')
      await expectCode(p.server.openStream(), 'ERR_CLOSED')
    } finally {
      await y.close()
      await x.close()
    }
  })

  it('transport.close() closes its connections, the peer sees it, later calls fail with ERR_CLOSED', async () => {
    const x = e.make()
    const y = e.make()
    const p = await connect(x, y, e.host)
    await y.close()
    await y.close() // idempotent
    await within(3000, p.server.closed, 'peer closed')
    await within(1000, p.client.closed, 'own closed')
    await expectCode(y.dial(e.host, p.port), 'ERR_CLOSED')
    await expectCode(y.listen(e.host, 0, () => {}), 'ERR_CLOSED')
    await x.close()
  })

  it('listener.close() stops accepting', async () => {
    const x = e.make()
    const y = e.make()
    try {
      const listener = await x.listen(e.host, 0, () => {})
      await listener.close()
      await listener.close()
      await expectCode(y.dial(e.host, listener.port), 'ERR_DIAL_FAILED')
    } finally {
      await y.close()
      await x.close()
    }
  })
}

// ---------------------------------------------------------------- base58 + identity

describe('base58btc', () => {
  it('matches known vectors and round-trips', () => {
    assert.equal(base58btcEncode(Buffer.from('hello world')), 'StV1DL6CwTryKyV')
    assert.equal(base58btcEncode(Buffer.from([0, 0, 1])), '112')
    assert.equal(base58btcEncode(new Uint8Array(0)), '')
    for (let i = 0; i < 50; i++) {
      const b = randomBytes(i)
      if (i % 5 === 0 && i > 0) b[0] = 0
      assert.deepEqual(Buffer.from(base58btcDecode(base58btcEncode(b)) ?? []), b)
    }
    assert.equal(base58btcDecode('0OIl'), undefined)
  })
})

describe('identity', () => {
  let dir: string
  after(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

  it('creates the state dir (0700) and key (0600), and reloads the same identity', async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarm-id-'))
    const stateDir = join(dir, 'nested', 'state')
    const first = await loadOrCreateIdentity(stateDir)
    assert.match(first.peerId, /^12D3KooW/)
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700)
    assert.equal((await stat(join(stateDir, IDENTITY_FILE))).mode & 0o777, 0o600)
    assert.match(await readFile(join(stateDir, IDENTITY_FILE), 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
    const again = await loadOrCreateIdentity(stateDir)
    assert.equal(again.peerId, first.peerId)
    assert.deepEqual(again.publicKey, first.publicKey)
    assert.deepEqual(again.privateKeyProto, first.privateKeyProto)
    assert.equal(first.privateKeyProto.length, 68)
    assert.deepEqual(first.privateKeyProto.subarray(0, 4), Buffer.from([8, 1, 0x12, 0x40]))
    assert.deepEqual(first.privateKeyProto.subarray(36), first.publicKey)
  })

  it('concurrent first loads agree on one identity', async () => {
    const stateDir = join(dir, 'race')
    const ids = await Promise.all(Array.from({ length: 8 }, async () => await loadOrCreateIdentity(stateDir)))
    assert.equal(new Set(ids.map(i => i.peerId)).size, 1)
  })

  it('PeerId <-> public key, signatures', () => {
    const id = createIdentity()
    assert.deepEqual(publicKeyFromPeerId(id.peerId), id.publicKey)
    assert.equal(peerIdFromPublicKey(id.publicKey), id.peerId)
    const sig = id.sign?.(Buffer.from('payload'))
    assert.ok(sig !== undefined && sig.length === 64)
    assert.ok(verifySignature(id.peerId, Buffer.from('payload'), sig))
    assert.ok(!verifySignature(id.peerId, Buffer.from('payloaX'), sig))
    assert.ok(!verifySignature(createIdentity().peerId, Buffer.from('payload'), sig))
    assert.throws(() => publicKeyFromPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'), (err: unknown) => isSwarmError(err, 'ERR_BAD_ARGUMENT'))
    // deterministic from a seed
    const seed = randomBytes(32)
    assert.equal(createIdentity(seed).peerId, createIdentity(seed).peerId)
  })

  it('gives ERR_STATE_DIR when the dir cannot be created or the key is corrupt', async () => {
    const file = join(dir, 'a-file')
    await writeFile(file, 'x')
    await expectCode(loadOrCreateIdentity(join(file, 'state')), 'ERR_STATE_DIR')
    await expectCode(loadOrCreateIdentity(file), 'ERR_STATE_DIR')
    const bad = join(dir, 'bad')
    await loadOrCreateIdentity(bad)
    await writeFile(join(bad, IDENTITY_FILE), 'garbage')
    await expectCode(loadOrCreateIdentity(bad), 'ERR_STATE_DIR')
  })
})

// ---------------------------------------------------------------- QUIC

describe('quic transport', () => {
  const ids: Identity[] = [createIdentity(), createIdentity()]
  const extra: Transport[] = []
  after(async () => { await Promise.all(extra.map(async t => { await t.close() })) })

  describe('basic checks on 127.0.0.1', () => {
    basicSuite(() => ({
      name: 'quic',
      host: '127.0.0.1',
      peerIds: [ids[0]?.peerId ?? '', ids[1]?.peerId ?? ''],
      // a short handshake timeout keeps 'dial a closed listener' fast
      make: (peerId?: string) => createQuicTransport(ids.find(i => i.peerId === peerId) ?? createIdentity(), { handshakeTimeoutMs: 2000 })
    }))
  })

  it('the PeerId computed from our key equals the one the binding derives from TLS', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'swarm-id-'))
    try {
      const idA = await loadOrCreateIdentity(stateDir)
      const idB = createIdentity()
      const a = createQuicTransport(idA)
      const b = createQuicTransport(idB)
      extra.push(a, b)
      const p = await connect(a, b, '127.0.0.1')
      assert.equal(a.peerId, idA.peerId)
      assert.equal(p.client.remotePeerId, idA.peerId)
      assert.equal(p.server.remotePeerId, idB.peerId)
      assert.equal(p.client.remoteAddress, `127.0.0.1:${p.port}`)
      await b.close()
      await a.close()
    } finally {
      await rm(stateDir, { recursive: true, force: true })
    }
  })

  it('a UDP port held by another socket gives ERR_ADDRESS_IN_USE', async () => {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
    const t = createQuicTransport(createIdentity())
    extra.push(t)
    try {
      const err = await expectCode(t.listen('127.0.0.1', sock.address().port, () => {}), 'ERR_ADDRESS_IN_USE')
      assert.match(err.message, new RegExp(String(sock.address().port)))
    } finally {
      sock.close()
    }
  })

  it('dial to a port nobody listens on fails with ERR_DIAL_FAILED within the handshake timeout', async () => {
    const sock = dgram.createSocket('udp4') // a bound but silent UDP port
    await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
    const port = sock.address().port
    const t = createQuicTransport(createIdentity(), { handshakeTimeoutMs: 1500 })
    extra.push(t)
    try {
      const t0 = Date.now()
      const err = await expectCode(t.dial('127.0.0.1', port), 'ERR_DIAL_FAILED')
      const elapsed = Date.now() - t0
      assert.ok(elapsed < 3000, `took ${elapsed} ms`)
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
      await expectCode(t.dial('no-such-host.invalid', port), 'ERR_DIAL_FAILED')
      await expectCode(t.dial('127.0.0.1', 0), 'ERR_BAD_ARGUMENT')
    } finally {
      sock.close()
    }
  })

  it('with default options an unreachable dial fails within 5 s (handshake timeout), not the 10 s idle timeout', async () => {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
    const t = createQuicTransport(createIdentity())
    extra.push(t)
    try {
      const t0 = Date.now()
      await expectCode(t.dial('127.0.0.1', sock.address().port), 'ERR_DIAL_FAILED')
      assert.ok(Date.now() - t0 < 7000)
    } finally {
      sock.close()
    }
  })

  it('dials localhost and IPv6 literals; listen("::") is dual-stack', async () => {
    const a = createQuicTransport(createIdentity())
    const b = createQuicTransport(createIdentity())
    extra.push(a, b)
    const p4 = await connect(a, b, '127.0.0.1', 'localhost')
    assert.equal(p4.client.remotePeerId, a.peerId)
    let v6 = true
    try {
      const l = await a.listen('::1', 0, () => {})
      await l.close()
    } catch {
      v6 = false // no IPv6 loopback on this machine
    }
    if (v6) {
      const p6 = await connect(a, b, '::1')
      assert.match(p6.client.remoteAddress, /^\[::1\]:\d+$/)
      assert.match(p6.server.remoteAddress, /^\[::1\]:\d+$/)
      let accepted = 0
      const dual = await a.listen('::', 0, () => { accepted++ })
      const c4 = await b.dial('127.0.0.1', dual.port)
      const c6 = await b.dial('::1', dual.port)
      assert.equal(c4.remotePeerId, a.peerId)
      assert.equal(c6.remotePeerId, a.peerId)
      await until('both connections accepted', () => accepted >= 2)
      assert.equal(accepted, 2)
      await dual.close()
      await within(3000, c4.closed, 'closed by listener close')
    }
  })

  it('backpressure: a sender stalls while the receiver does not read, then everything arrives', async () => {
    const a = createQuicTransport(createIdentity(), { streamWindowBytes: 1024 * 1024, connectionWindowBytes: 2 * 1024 * 1024 })
    const b = createQuicTransport(createIdentity())
    extra.push(a, b)
    const p = await connect(a, b, '127.0.0.1')
    const inbound = nextStream(p.server)
    const s = await p.client.openStream()
    const total = 48 * 1024 * 1024
    let acked = 0
    const chunk = randomBytes(256 * 1024)
    const hash = createHash('sha256')
    const writer = (async () => {
      for (let sent = 0; sent < total; sent += chunk.length) {
        hash.update(chunk)
        if (!s.write(chunk, () => { acked += chunk.length })) await new Promise(resolve => s.once('drain', resolve))
      }
      await endAndFinish(s)
    })()
    const r = await within(5000, inbound, 'inbound stream')
    await sleep(700)
    assert.ok(acked < 16 * 1024 * 1024, `sender was not held back: ${acked} bytes written`)
    const got = await readAll(r)
    await writer
    assert.equal(got.length, total)
    assert.equal(sha256(got), hash.digest('hex'))
  })

  it('streams beyond the concurrent-stream limit work once earlier ones completed', async () => {
    const a = createQuicTransport(createIdentity(), { maxConcurrentStreams: 32 })
    const b = createQuicTransport(createIdentity(), { maxConcurrentStreams: 32 })
    extra.push(a, b)
    const p = await connect(a, b, '127.0.0.1')
    p.server.onStream(s => { readAll(s).then(d => s.end(d), () => {}) })
    for (let i = 0; i < 200; i++) {
      const s = await within(3000, p.client.openStream(), `open stream ${i}`)
      const reply = readAll(s)
      s.write(`req ${i}`)
      await endAndFinish(s)
      assert.equal((await within(3000, reply, `reply ${i}`)).toString(), `req ${i}`)
    }
    // destroyed (reset) streams give their slot back too
    for (let i = 0; i < 100; i++) {
      const s = await within(3000, p.client.openStream(), `open stream to reset ${i}`)
      s.write('x')
      s.destroy()
    }
    const s = await within(3000, p.client.openStream(), 'open after resets')
    const reply = readAll(s)
    s.end('last')
    assert.equal((await within(3000, reply, 'last reply')).toString(), 'last')
    await b.close()
    await a.close()
  })

  it('keep-alive holds an idle connection open past the idle timeout', async () => {
    const opts = { idleTimeoutMs: 1200, keepAliveIntervalMs: 300 }
    const a = createQuicTransport(createIdentity(), opts)
    const b = createQuicTransport(createIdentity(), opts)
    extra.push(a, b)
    const p = await connect(a, b, '127.0.0.1')
    let gone = false
    void p.client.closed.then(() => { gone = true })
    await sleep(2500)
    assert.equal(gone, false)
    const got = nextStream(p.server).then(readAll)
    const s = await p.client.openStream()
    s.end('still here')
    assert.equal((await within(3000, got, 'stream after idle')).toString(), 'still here')
    await b.close()
    await a.close()
  })

  it('closed resolves after the idle timeout when the peer process dies', async () => {
    const quicUrl = new URL('../src/transport/quic.js', import.meta.url).href
    const idUrl = new URL('../src/transport/identity.js', import.meta.url).href
    const script = `
      import { createQuicTransport } from ${JSON.stringify(quicUrl)}
      import { createIdentity } from ${JSON.stringify(idUrl)}
      const t = createQuicTransport(createIdentity(), { idleTimeoutMs: 1500, keepAliveIntervalMs: 400 })
      const l = await t.listen('127.0.0.1', 0, () => {})
      console.log('port ' + l.port)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const port = await within(5000, new Promise<number>(resolve => {
        child.stdout.on('data', (d: Buffer) => { const m = /port (\d+)/.exec(d.toString()); if (m !== null) resolve(Number(m[1])) })
      }), 'child listening')
      const t = createQuicTransport(createIdentity(), { idleTimeoutMs: 1500, keepAliveIntervalMs: 400 })
      extra.push(t)
      const conn = await t.dial('127.0.0.1', port)
      const s = await conn.openStream()
      const sErr = new Promise<unknown>(resolve => s.on('error', resolve))
      s.write('hello')
      child.kill('SIGKILL')
      const t0 = Date.now()
      await within(5000, conn.closed, 'closed after peer death')
      assert.ok(Date.now() - t0 < 4000)
      assert.ok(isSwarmError(await within(1000, sErr, 'stream error'), 'ERR_CLOSED'))
      await t.close()
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('a process that uses and closes transports exits by itself', async () => {
    const quicUrl = new URL('../src/transport/quic.js', import.meta.url).href
    const idUrl = new URL('../src/transport/identity.js', import.meta.url).href
    const script = `
      import { createQuicTransport } from ${JSON.stringify(quicUrl)}
      import { createIdentity } from ${JSON.stringify(idUrl)}
      const a = createQuicTransport(createIdentity()), b = createQuicTransport(createIdentity())
      const l = await a.listen('127.0.0.1', 0, c => c.onStream(s => { s.on('error', () => {}); s.pipe(s) }))
      const c = await b.dial('127.0.0.1', l.port)
      const s = await c.openStream()
      s.end('ping')
      let got = ''
      for await (const x of s) got += x
      // leave a stream and a connection open, a pending dial and a listener: close() must end them all
      await c.openStream().then(s2 => { s2.on('error', () => {}); s2.write('dangling') })
      b.dial('127.0.0.1', 9).catch(() => {})
      await a.listen('127.0.0.1', 0, () => {})
      await b.close()
      await a.close()
      console.log('done ' + got)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], cwd: fileURLToPath(new URL('.', import.meta.url)) })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const t0 = Date.now()
    const code = await within(8000, new Promise<number | null>(resolve => child.on('exit', resolve)), 'child exit').catch(err => {
      child.kill('SIGKILL')
      throw new Error(`${(err as Error).message}; output: ${out}`)
    })
    assert.equal(code, 0, out)
    assert.match(out, /done ping/)
    assert.ok(Date.now() - t0 < 8000)
  })
})

// ---------------------------------------------------------------- memory

describe('memory transport', () => {
  describe('basic checks', () => {
    const net = createMemoryNetwork()
    let n = 0
    basicSuite(() => ({
      name: 'memory',
      host: 'mem',
      peerIds: ['peer-A', 'peer-B'],
      make: (peerId?: string) => net.transport(peerId ?? `peer-${n++}`)
    }))
  })

  it('dial to a port nobody listens on gives ERR_DIAL_FAILED; networks are isolated', async () => {
    const net1 = createMemoryNetwork()
    const net2 = createMemoryNetwork()
    const a = net1.transport('a')
    const b = net2.transport('b')
    const l = await a.listen('mem', 7000, () => {})
    assert.equal(l.port, 7000)
    await expectCode(b.dial('mem', 7000), 'ERR_DIAL_FAILED')
    await expectCode(net1.transport('c').listen('mem', 7000, () => {}), 'ERR_ADDRESS_IN_USE')
    await a.close()
    await b.close()
  })

  it('backpressure: the writer is held back until the reader reads', async () => {
    const net = createMemoryNetwork()
    const a = net.transport('a')
    const b = net.transport('b')
    const p = await connect(a, b, 'mem')
    const inbound = nextStream(p.server)
    const s = await p.client.openStream()
    const chunk = randomBytes(64 * 1024)
    let acked = 0
    let sawFalse = false
    for (let i = 0; i < 160; i++) { if (!s.write(chunk, () => { acked += chunk.length })) sawFalse = true }
    s.end()
    const r = await inbound
    // The receiver's buffer is full: from here on, writes are held until the reader reads.
    await until('the receive buffer to fill', () => r.readableLength >= r.readableHighWaterMark)
    assert.ok(sawFalse)
    assert.ok(acked < 4 * 1024 * 1024, `acked ${acked}`)
    assert.equal((await readAll(r)).length, 160 * chunk.length)
    await b.close()
    await a.close()
  })

  it('streams the remote may have open are capped like QUIC: openStream waits for a slot', async () => {
    const net = createMemoryNetwork()
    const a = net.transport('a', { maxConcurrentStreams: 4 })   // the receiver sets the limit, as in QUIC
    const b = net.transport('b')
    const p = await connect(a, b, 'mem')
    const inbound: Duplex[] = []
    p.server.onStream(s => { inbound.push(s); s.resume() })
    const opened: Duplex[] = []
    for (let i = 0; i < 4; i++) { const s = await p.client.openStream(); s.write('x'); opened.push(s) }
    let fifth: Duplex | null = null
    const pending = p.client.openStream().then(s => { fifth = s })
    await sleep(20)
    assert.equal(fifth, null, 'the fifth stream waits while four are open')
    // A slot comes back when the receiving end is gone (here: reset by the receiver).
    await within(1000, (async () => { while (inbound.length < 4) await sleep(5) })(), 'four inbound streams')
    inbound[0]!.destroy()
    await within(1000, pending, 'fifth stream after a slot freed')
    assert.ok(fifth !== null)
    await b.close()
    await a.close()
  })

  it('the remote hears of a stream only once the opener writes', async () => {
    const net = createMemoryNetwork()
    const a = net.transport('a')
    const b = net.transport('b')
    const p = await connect(a, b, 'mem')
    const seen: string[] = []
    p.server.onStream(s => { s.once('data', (d: Buffer) => seen.push(d.toString())) })
    const s = await p.client.openStream()
    // A second stream opened and written after it arrives first: the silent one was not announced.
    const s2 = await p.client.openStream()
    s2.write('second')
    await until('the written stream', () => seen.length >= 1)
    assert.deepEqual(seen, ['second'])
    s.write('first')
    await until('the first stream, once written', () => seen.length >= 2)
    assert.deepEqual(seen, ['second', 'first'])
    await b.close()
    await a.close()
  })
})
