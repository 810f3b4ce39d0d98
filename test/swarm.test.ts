// Tests of the piece exchange (src/swarm/): FileSource, serveWire, Download over loopback TCP.
import { test, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync, readFileSync, openSync, writeSync, closeSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Wire from 'bittorrent-protocol'
import { fileRoot, pieceLayerOf, pieceCount, PIECE_SIZE } from '../src/merkle/bep52.js'
import { FileSource, type PieceSource } from '../src/swarm/source.js'
import { serveWire } from '../src/swarm/serve.js'
import { Download } from '../src/swarm/download.js'
import { FrameGuard } from '../src/swarm/framing.js'
import { Picker } from '../src/swarm/picker.js'
import { setVerifyThreads, VERIFY_THREADS } from '../src/swarm/verify-pool.js'
import { isSwarmError, SwarmError } from '../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'swarm-test-'))
after(() => { rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }) }) // an aborted start() may still be creating its part file

let seq = 0
function tmp (name: string): string { return join(dir, `${seq++}-${name}`) }
function peerId (name: string): Buffer { return createHash('sha1').update(name).digest() }

interface Fixture { path: string, data: Buffer, root: Buffer, layer: Buffer, mtimeMs: number }
function makeFile (size: number): Fixture {
  const path = tmp('src.bin')
  const data = randomBytes(size)
  writeFileSync(path, data)
  return { path, data, root: fileRoot(data), layer: pieceLayerOf(data), mtimeMs: statSync(path).mtimeMs }
}
const opened: FileSource[] = []
afterEach(async () => { for (const s of opened.splice(0)) await s.close() })
function track (s: FileSource): FileSource { opened.push(s); return s }
function fileSource (f: Fixture): FileSource {
  return track(new FileSource({ path: f.path, root: f.root, size: f.data.length, layer: f.layer.length > 0 ? f.layer : null, mtimeMs: f.mtimeMs }))
}

// one loopback listener hands out socket pairs
let server: Server | null = null
const waiting: Array<(s: Socket) => void> = []
async function socketPair (): Promise<[Socket, Socket]> {
  if (server === null) {
    server = createServer((s) => { waiting.shift()?.(s) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
  }
  const addr = server.address() as { port: number }
  const accepted = new Promise<Socket>((resolve) => waiting.push(resolve))
  const client = connect(addr.port, '127.0.0.1')
  await once(client, 'connect')
  const srv = await accepted
  client.setNoDelay(true)
  srv.setNoDelay(true)
  return [client, srv]
}
after(() => { server?.close() })

function lookupFor (...sources: PieceSource[]) {
  return (ih: Buffer) => sources.find(s => s.root.subarray(0, 20).equals(ih))
}

/** serve `source` on a fresh socket pair and add it to `dl` as `label`; returns the server-side socket */
async function link (dl: Download, source: PieceSource, label: string): Promise<Socket> {
  const [a, b] = await socketPair()
  serveWire(b, { peerId: peerId('srv-' + label), lookup: lookupFor(source) })
  dl.addPeer(a, label)
  return b
}

function newDownload (f: Fixture, extra: Partial<ConstructorParameters<typeof Download>[0]> = {}): Download {
  return new Download({ root: f.root, size: f.data.length, partPath: tmp('dl.part'), peerId: peerId('dl' + seq), ...extra })
}

function popcount (bits: Uint8Array): number {
  let n = 0
  for (const b of bits) for (let x = b; x !== 0; x &= x - 1) n++
  return n
}

async function until (cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** a PieceSource wrapper: delays, gates and/or corrupts what it serves */
class WrappedSource extends EventEmitter implements PieceSource {
  /** how many times each piece was read (asked for) */
  readonly reads = new Map<number, number>()
  constructor (readonly inner: PieceSource, readonly opts: { delayMs?: number, corrupt?: (i: number) => boolean, badLayer?: boolean, gate?: (i: number) => Promise<void> | undefined }) {
    super()
    inner.on('have', (i: number) => this.emit('have', i))
  }

  get root (): Buffer { return this.inner.root }
  get size (): number { return this.inner.size }
  get pieceSize (): number { return this.inner.pieceSize }
  get numPieces (): number { return this.inner.numPieces }
  has (i: number): boolean { return this.inner.has(i) }
  complete (): boolean { return this.inner.complete() }
  async readPiece (i: number): Promise<Buffer> {
    this.reads.set(i, (this.reads.get(i) ?? 0) + 1)
    if (this.opts.delayMs !== undefined) await new Promise(resolve => setTimeout(resolve, this.opts.delayMs))
    await this.opts.gate?.(i)
    const buf = await this.inner.readPiece(i)
    if (this.opts.corrupt?.(i) === true) {
      const copy = Buffer.from(buf)
      copy[copy.length >> 1] ^= 0x5a
      return copy
    }
    return buf
  }

  async pieceLayer (): Promise<Buffer | null> {
    const l = await this.inner.pieceLayer()
    if (l === null || this.opts.badLayer !== true) return l
    const copy = Buffer.from(l)
    copy[0] ^= 1
    return copy
  }
}

test('50 MB from two FileSources: bytes match and both peers supply a substantial share', async () => {
  const f = makeFile(50_000_000)
  const s1 = fileSource(f)
  const s2 = fileSource(f)
  const dl = newDownload(f)
  await link(dl, s1, 'one')
  await link(dl, s2, 'two')
  const t0 = Date.now()
  await dl.start()
  const ms = Date.now() - t0
  const n = pieceCount(f.data.length)
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  assert.equal(dl.stats.piecesFetched, n)
  assert.equal(dl.stats.verifyFailures, 0)
  const one = dl.stats.perPeer.get('one') ?? 0
  const two = dl.stats.perPeer.get('two') ?? 0
  assert.equal(one + two, n)
  assert.ok(one >= n * 0.25 && two >= n * 0.25, `shares one=${one} two=${two} of ${n}`)
  assert.ok(dl.complete())
  console.log(`# 50 MB in ${ms} ms, one=${one} two=${two}`)
  dl.close()
  await s1.close()
  await s2.close()
})

test('a holder corrupting pieces is detected, dropped after 3, and pieces come from the good holder', async () => {
  const f = makeFile(8 * PIECE_SIZE + 1234)
  // the good holder is a little slower, so the bad one is sure to deliver (not just be beaten in endgame)
  const good = new WrappedSource(fileSource(f), { delayMs: 5 })
  const bad = new WrappedSource(fileSource(f), { corrupt: () => true })
  const dl = newDownload(f)
  const errors: Array<[string, unknown]> = []
  dl.on('peer-error', (label: string, err: unknown) => errors.push([label, err]))
  await link(dl, bad, 'bad')
  await link(dl, good, 'good')
  await dl.start()
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  // The peer is dropped at the third bad piece; verdicts on its pieces still in flight are not counted.
  assert.ok(dl.stats.verifyFailures >= 3 && dl.stats.verifyFailures <= 3 + 8, String(dl.stats.verifyFailures))
  assert.equal(dl.stats.perPeer.get('bad'), undefined)
  assert.equal(dl.stats.perPeer.get('good'), pieceCount(f.data.length))
  const badErr = errors.find(([l]) => l === 'bad')
  assert.ok(badErr !== undefined && isSwarmError(badErr[1], 'ERR_VERIFY_FAILED'), `peer errors: ${JSON.stringify(errors)}`)
  dl.close()
})

test('a holder corrupting a few pieces stays connected; the pieces are refetched elsewhere', async () => {
  const f = makeFile(16 * PIECE_SIZE)
  const bad = new WrappedSource(fileSource(f), { corrupt: (i) => i === 0 || i === 1 })
  const dl = newDownload(f)
  const errors: string[] = []
  dl.on('peer-error', (label: string) => errors.push(label))
  const done = dl.start()
  await link(dl, bad, 'flaky') // alone: it serves everything, pieces 0 and 1 bad
  await until(() => dl.stats.verifyFailures === 2 && dl.stats.piecesFetched === 14, 'the flaky holder to deliver')
  assert.equal(dl.complete(), false)
  await link(dl, fileSource(f), 'good')
  await done
  // 0 and 1 were never asked from the flaky holder again, before or after the good one came
  assert.equal(bad.reads.get(0), 1)
  assert.equal(bad.reads.get(1), 1)
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  assert.equal(dl.stats.verifyFailures, 2)
  assert.equal(dl.stats.piecesFetched, 16)
  assert.equal(dl.stats.perPeer.get('good'), 2)
  assert.deepEqual(errors, []) // two bad pieces are not enough to be dropped
  dl.close()
})

test('verification on worker threads: same results, bad pieces still caught', async () => {
  setVerifyThreads(2)
  try {
    const f = makeFile(20 * PIECE_SIZE + 777)
    const dl = newDownload(f)
    await link(dl, new WrappedSource(fileSource(f), { corrupt: (i) => i % 5 === 0 }), 'flaky')
    await link(dl, fileSource(f), 'good')
    await dl.start()
    assert.ok(readFileSync(dl.partPath).equals(f.data))
    assert.ok(dl.stats.verifyFailures >= 1 && dl.stats.verifyFailures <= 3, `failures ${dl.stats.verifyFailures}`)
    assert.equal(dl.stats.piecesFetched, pieceCount(f.data.length))
    dl.close()
    // a FileSource verifies on the pool too: a changed piece is still refused
    const src = fileSource(f)
    assert.ok((await src.readPiece(2)).equals(f.data.subarray(2 * PIECE_SIZE, 3 * PIECE_SIZE)))
  } finally {
    setVerifyThreads(VERIFY_THREADS)
  }
})

test('resume: abort half way, a new Download with the saved bitfield fetches only the rest', async () => {
  const f = makeFile(40 * PIECE_SIZE + 99)
  const n = pieceCount(f.data.length)
  const src = new WrappedSource(fileSource(f), { delayMs: 2 })
  const partPath = tmp('resume.part')
  const d1 = newDownload(f, { partPath })
  let verified = 0
  d1.on('verified', () => { if (++verified === Math.floor(n / 2)) d1.abort() })
  await link(d1, src, 'h')
  await assert.rejects(d1.start(), (err: unknown) => isSwarmError(err, 'ERR_CLOSED'))
  const have = d1.haveBitfield()
  const k = popcount(have)
  assert.ok(k >= Math.floor(n / 2) && k < n, `had ${k} of ${n}`)
  // let d1's last writes land: it lets go of the part file once no write is in flight
  await until(() => (d1 as unknown as { fh: unknown }).fh === null, 'd1 to close its part file')

  const d2 = newDownload(f, { partPath, have })
  const fetched: number[] = []
  d2.on('verified', (i: number) => fetched.push(i))
  await link(d2, src, 'h')
  await d2.start()
  assert.equal(d2.stats.piecesFetched, n - k)
  for (const i of fetched) assert.ok((have[i >> 3] & (0x80 >> (i & 7))) === 0, `piece ${i} refetched`)
  assert.ok(readFileSync(partPath).equals(f.data))
  d2.close()
})

test('a partial holder (Download in progress) serves what it has to a third downloader', async () => {
  const f = makeFile(40 * PIECE_SIZE)
  const n = pieceCount(f.data.length)
  // the holder serves the first half at once and the second half only once C has some pieces
  let open = (): void => {}
  const opened = new Promise<void>(resolve => { open = resolve })
  const gated = new WrappedSource(fileSource(f), { delayMs: 2, gate: (i) => i >= n / 2 ? opened : undefined })
  const a = newDownload(f)
  await link(a, gated, 'holder')
  let aDone = false
  const aStart = a.start().then(() => { aDone = true })
  await until(() => popcount(a.haveBitfield()) >= 5, 'A to have 5 pieces')

  const c = newDownload(f)
  let beforeADone = 0
  c.on('verified', () => { if (!aDone && ++beforeADone === 3) open() })
  await link(c, a, 'partial') // C only knows A: the layer and every piece come from A
  await c.start()
  await aStart
  assert.ok(readFileSync(c.partPath).equals(f.data))
  assert.equal(c.stats.perPeer.get('partial'), n)
  assert.ok(beforeADone >= 3, 'C received pieces while A was still downloading')
  // A kept its finished part file open while C was served from it, and released it after
  const deadline = Date.now() + 5000
  for (;;) {
    const err = await a.readPiece(0).then(() => null, (e: unknown) => e)
    if (isSwarmError(err, 'ERR_CLOSED')) break
    assert.ok(Date.now() < deadline, 'A did not release its part file')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  a.close()
  c.close()
})

test('a downloader waits for a peer when none can supply, then completes', async () => {
  const f = makeFile(3 * PIECE_SIZE)
  const dl = newDownload(f)
  let settled = false
  const p = dl.start().finally(() => { settled = true })
  // started: the part file is open and sized, and with no peer there is nothing to ask
  await until(() => (dl as unknown as { running: boolean }).running && statSync(dl.partPath).size === f.data.length, 'the download to be running')
  assert.equal(settled, false) // (a wrong early finish would also show in the bytes checked below)
  await link(dl, fileSource(f), 'late')
  await p
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  // finished and serving nobody: the part file is released by itself
  await assert.rejects(dl.readPiece(0), (err: unknown) => isSwarmError(err, 'ERR_CLOSED'))
  dl.close()
})

test('a holder disconnecting mid-transfer: its pieces go back to the pool', async () => {
  const f = makeFile(30 * PIECE_SIZE)
  const dl = newDownload(f)
  const s1 = await link(dl, new WrappedSource(fileSource(f), { delayMs: 3 }), 'dies')
  await link(dl, new WrappedSource(fileSource(f), { delayMs: 3 }), 'stays')
  const errors: string[] = []
  dl.on('peer-error', (label: string) => errors.push(label))
  let count = 0
  dl.on('verified', () => { if (++count === 6) s1.destroy() })
  await dl.start()
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  assert.deepEqual(errors, ['dies'])
  dl.close()
})

test('a bad piece layer drops that peer; the layer then comes from another', async () => {
  const f = makeFile(5 * PIECE_SIZE + 7)
  const dl = newDownload(f)
  const errors: Array<[string, unknown]> = []
  dl.on('peer-error', (label: string, err: unknown) => {
    errors.push([label, err])
    if (label === 'liar') void link(dl, fileSource(f), 'honest')
  })
  await link(dl, new WrappedSource(fileSource(f), { badLayer: true }), 'liar')
  await dl.start()
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  assert.equal(errors.length, 1)
  assert.ok(isSwarmError(errors[0][1], 'ERR_VERIFY_FAILED'))
  assert.equal(dl.stats.perPeer.get('honest'), pieceCount(f.data.length))
  dl.close()
})

test('single-piece, exactly-one-piece, 1-byte and empty files', async () => {
  for (const size of [100_000, PIECE_SIZE, 1, PIECE_SIZE + 1]) {
    const f = makeFile(size)
    const dl = newDownload(f)
    await link(dl, fileSource(f), 'h')
    await dl.start()
    assert.ok(readFileSync(dl.partPath).equals(f.data), `size ${size}`)
    assert.equal(dl.stats.piecesFetched, pieceCount(size))
    dl.close()
  }
  const empty = makeFile(0)
  const dl = newDownload(empty)
  await dl.start() // nothing to fetch, no peer needed
  assert.equal(readFileSync(dl.partPath).length, 0)
  dl.close()
})

test('the given layer is used (no layer request) and a wrong given layer is refused', async () => {
  const f = makeFile(4 * PIECE_SIZE)
  const bad = Buffer.from(f.layer)
  bad[5] ^= 1
  assert.throws(() => newDownload(f, { layer: bad }), (err: unknown) => isSwarmError(err, 'ERR_VERIFY_FAILED'))
  const dl = newDownload(f, { layer: f.layer })
  // this holder would hand out a bad layer: it must not be asked
  await link(dl, new WrappedSource(fileSource(f), { badLayer: true }), 'h')
  await dl.start()
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  dl.close()
})

/** a raw client wire to serveWire, with fast extension, for poking at the server */
async function rawClient (source: PieceSource): Promise<{ wire: Wire, sock: Socket, closed: Promise<unknown> }> {
  const [a, b] = await socketPair()
  let closeErr: unknown
  const closed = new Promise(resolve => serveWire(b, { peerId: peerId('srv'), lookup: lookupFor(source), onClose: (err) => { closeErr = err; resolve(closeErr) } }))
  const wire = new Wire()
  a.on('data', (d: Buffer) => wire.write(d))
  wire.on('data', (d: Uint8Array) => a.write(d))
  a.on('error', () => {})
  a.on('close', () => wire.destroy())
  wire.handshake(source.root.subarray(0, 20), peerId('raw'), { fast: true })
  await once(wire, 'bitfield')
  wire.interested()
  await once(wire, 'unchoke')
  return { wire, sock: a, closed }
}

function requestP (wire: Wire, index: number, offset: number, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    wire.request(index, offset, length, (err, buf) => {
      if (err !== null) reject(err)
      else resolve(Buffer.from(buf as Uint8Array))
    })
  })
}

test('requests outside the file or beyond a piece are refused; sub-ranges are served', async () => {
  const f = makeFile(3 * PIECE_SIZE + 5000)
  const { wire, sock } = await rawClient(fileSource(f))
  const rejected = /rejected/
  await assert.rejects(requestP(wire, 4, 0, 16384), rejected) // no such piece
  await assert.rejects(requestP(wire, 3, 0, 16384), rejected) // last piece is 5000 bytes
  await assert.rejects(requestP(wire, 0, PIECE_SIZE - 10, 100), rejected) // crosses the piece end
  await assert.rejects(requestP(wire, 0, 0, PIECE_SIZE + 16384), rejected) // more than a piece
  await assert.rejects(requestP(wire, 0, 0, 0), rejected) // empty
  await assert.rejects(requestP(wire, 0x7fffffff, 0, 0x10000), rejected)
  await assert.rejects(requestP(wire, 1, 0x7fff0000, 0x10000), rejected)
  // (values >= 2^31 are decoded as negative by bittorrent-protocol: the server refuses them too,
  // but the requester's wire cannot match the reject to its request, so they are not tried here)
  // a request the wire decodes as index -1: the server must refuse it, not crash
  const rej = once(wire, 'reject')
  wire.request(0xffffffff, 0, 16384, () => {})
  assert.deepEqual(await rej, [-1, 0, 16384])
  const sub = await requestP(wire, 1, 1000, 5000)
  assert.ok(sub.equals(f.data.subarray(PIECE_SIZE + 1000, PIECE_SIZE + 6000)))
  const last = await requestP(wire, 3, 0, 5000)
  assert.ok(last.equals(f.data.subarray(3 * PIECE_SIZE)))
  sock.destroy()
})

test('a hostile peer announcing a huge frame is disconnected without it being buffered', async () => {
  const f = makeFile(2 * PIECE_SIZE)
  // against the server: valid handshake, then a 4 GiB - 16 length prefix
  const [a, b] = await socketPair()
  const closed = new Promise<unknown>(resolve => serveWire(b, { peerId: peerId('srv'), lookup: lookupFor(fileSource(f)), onClose: resolve }))
  a.on('error', () => {})
  const hs = Buffer.concat([Buffer.from('\x13BitTorrent protocol'), Buffer.alloc(8), f.root.subarray(0, 20), peerId('evil')])
  const head = Buffer.alloc(4)
  head.writeUInt32BE(0xfffffff0)
  a.write(Buffer.concat([hs, head, randomBytes(4096)]))
  const err = await closed
  assert.ok(isSwarmError(err, 'ERR_PROTOCOL'), String(err))
  await once(a, 'close')

  // against the downloader: a fake holder that handshakes and then announces a huge message
  const [c, d] = await socketPair()
  d.on('error', () => {})
  d.once('data', () => {
    d.write(Buffer.concat([Buffer.from('\x13BitTorrent protocol'), Buffer.alloc(8), f.root.subarray(0, 20), peerId('evil')]))
    d.write(head)
    d.write(randomBytes(8192))
  })
  const dl = newDownload(f)
  const peerErr = new Promise<[string, unknown]>(resolve => dl.on('peer-error', (l: string, e: unknown) => resolve([l, e])))
  dl.addPeer(c, 'evil')
  const [label, e] = await peerErr
  assert.equal(label, 'evil')
  assert.ok(isSwarmError(e, 'ERR_PROTOCOL'), String(e))
  dl.abort()
})

test('the frame guard splits and joins frames at any chunking', () => {
  const hs = Buffer.concat([Buffer.from('\x13BitTorrent protocol'), Buffer.alloc(48, 1)])
  const frames = [Buffer.from([0, 0, 0, 0]), Buffer.from([0, 0, 0, 1, 2]), Buffer.concat([Buffer.from([0, 0, 0x40, 0]), randomBytes(0x4000)])]
  const all = Buffer.concat([hs, ...frames, ...frames])
  for (const step of [1, 3, 4, 5, 67, 68, 69, 1000, all.length]) {
    const g = new FrameGuard(0x4000)
    const out: Buffer[] = []
    for (let i = 0; i < all.length; i += step) out.push(...g.push(all.subarray(i, i + step)))
    assert.ok(Buffer.concat(out).equals(all), `step ${step}`)
    // every output ends on a unit boundary: re-parse
    for (const o of out) {
      let pos = 0
      if (o === out[0] || o.subarray(0, 20).equals(hs.subarray(0, 20))) { /* may start with the handshake */ }
      if (o[0] === 19 && o.length >= 68 && o.subarray(1, 20).toString() === 'BitTorrent protocol') pos = 68
      while (pos < o.length) pos += 4 + o.readUInt32BE(pos)
      assert.equal(pos, o.length, `step ${step}: output not frame aligned`)
    }
  }
  const g = new FrameGuard(100)
  g.push(hs)
  assert.throws(() => g.push(Buffer.from([0, 0, 0, 101])), (err: unknown) => isSwarmError(err, 'ERR_PROTOCOL'))
  assert.throws(() => new FrameGuard(100).push(Buffer.from('GET / HTTP/1.1\r\n')), (err: unknown) => isSwarmError(err, 'ERR_PROTOCOL'))
})

test('FileSource refuses pieces of a changed file, also one changed in place with the old mtime', async () => {
  const f = makeFile(3 * PIECE_SIZE)
  const src = fileSource(f)
  assert.ok((await src.readPiece(1)).equals(f.data.subarray(PIECE_SIZE, 2 * PIECE_SIZE)))
  // modify in place, restore mtime
  const st = statSync(f.path)
  const fd = openSync(f.path, 'r+')
  writeSync(fd, Buffer.from([f.data[PIECE_SIZE + 10]! ^ 0xff]), 0, 1, PIECE_SIZE + 10)   // always a different byte (an 'X' over random data was no change 1 time in 256)
  closeSync(fd)
  utimesSync(f.path, st.atime, st.mtime)
  await assert.rejects(src.readPiece(1), (err: unknown) => isSwarmError(err, 'ERR_FILE_CHANGED'))
  assert.ok((await src.readPiece(0)).equals(f.data.subarray(0, PIECE_SIZE)))
  // a new mtime: everything is refused
  utimesSync(f.path, st.atime, new Date(st.mtimeMs + 5000))
  await assert.rejects(src.readPiece(0), (err: unknown) => isSwarmError(err, 'ERR_FILE_CHANGED'))
  await assert.rejects(src.readPiece(3), (err: unknown) => isSwarmError(err, 'ERR_BAD_ARGUMENT'))
  await src.close()
})

test('a holder whose file changed rejects; the downloader goes elsewhere', async () => {
  const f = makeFile(6 * PIECE_SIZE)
  const changedPath = tmp('changed.bin')
  writeFileSync(changedPath, f.data)
  const changed = track(new FileSource({ path: changedPath, root: f.root, size: f.data.length, layer: f.layer, mtimeMs: statSync(changedPath).mtimeMs }))
  writeFileSync(changedPath, randomBytes(f.data.length)) // same size, new content and mtime
  const dl = newDownload(f)
  await link(dl, changed, 'changed')
  await link(dl, new WrappedSource(fileSource(f), { delayMs: 5 }), 'good')
  await dl.start()
  assert.ok(readFileSync(dl.partPath).equals(f.data))
  assert.equal(dl.stats.perPeer.get('changed'), undefined)
  assert.equal(dl.stats.verifyFailures, 0)
  dl.close()
})

test('disk full: start() rejects with ERR_NO_SPACE', { skip: process.platform !== 'linux' }, async () => {
  const f = makeFile(2 * PIECE_SIZE)
  const dl = newDownload(f, { partPath: '/dev/full' }) // every write fails with ENOSPC
  await link(dl, fileSource(f), 'h')
  await assert.rejects(dl.start(), (err: unknown) => isSwarmError(err, 'ERR_NO_SPACE'))
})

test('abort before and during start rejects with ERR_CLOSED', async () => {
  const f = makeFile(2 * PIECE_SIZE)
  const d1 = newDownload(f)
  d1.abort()
  await assert.rejects(d1.start(), (err: unknown) => isSwarmError(err, 'ERR_CLOSED'))
  const d2 = newDownload(f)
  const p = d2.start()
  d2.abort()
  await assert.rejects(p, (err: unknown) => err instanceof SwarmError && err.code === 'ERR_CLOSED')
})

test('picker: rarest first, released pieces return, done pieces never come back', () => {
  const p = new Picker(6, (i) => i === 5)
  for (const i of [0, 1, 2, 3, 4]) p.addHolder(i)
  p.addHolder(0); p.addHolder(1); p.addHolder(3) // 2 and 4 are rarest
  assert.equal(p.pick(() => true), 2)
  p.markRequested(2)
  assert.equal(p.pick(() => true), 4)
  assert.equal(p.pick((i) => i !== 4), 0)
  p.release(2)
  assert.equal(p.pick(() => true), 4)
  p.markDone(4); p.markDone(2)
  assert.equal(p.pick(() => true), 0)
  assert.equal(p.remaining, 3)
  assert.equal(p.pick((i) => i === 5), -1)
})

test('super-seeding: a piece already handed out to one peer is refused once to another, and served when asked again', async () => {
  const f = makeFile(4 * PIECE_SIZE)
  const source = fileSource(f)
  const one = await rawClient(source)
  const two = await rawClient(source)
  try {
    const len = PIECE_SIZE
    assert.equal((await requestP(one.wire, 1, 0, len)).length, len)
    await assert.rejects(requestP(two.wire, 1, 0, len), /rejected/, 'handed out already while pieces 0, 2, 3 never were')
    assert.equal((await requestP(two.wire, 0, 0, len)).length, len, 'a piece nobody has is served')
    assert.equal((await requestP(two.wire, 1, 0, len)).length, len, 'asked again (nobody else had it to give): served')
  } finally { one.sock.destroy(); two.sock.destroy() }
})

test('at the tail, a piece every complete holder refused once is asked again and the download completes', async () => {
  const f = makeFile(4 * PIECE_SIZE)
  const s1 = fileSource(f)
  const s2 = fileSource(f)
  // Both holders have handed piece 0 out already (and nothing else): each refuses it once.
  const warm = [await rawClient(s1), await rawClient(s2)]
  try {
    for (const w of warm) assert.equal((await requestP(w.wire, 0, 0, PIECE_SIZE)).length, PIECE_SIZE)
    // The downloader holds every piece but 0 already (a resumed part file).
    const partPath = tmp('tail.part')
    writeFileSync(partPath, Buffer.concat([Buffer.alloc(PIECE_SIZE), f.data.subarray(PIECE_SIZE)]))
    const d = newDownload(f, { partPath, have: Uint8Array.from([0b01110000]) })
    const peers = (d as unknown as { peers: Set<{ refusedUntil: Map<number, number> }> }).peers
    const refusedBy = (n: number) => [...peers].filter(p => p.refusedUntil.has(0)).length >= n
    // One holder at a time, so the second refusal finds nothing in flight (no endgame duplicate to ride on).
    await link(d, s1, 'one')
    void d.start().catch(() => {})
    await until(() => refusedBy(1), 'the first holder to refuse piece 0')
    await link(d, s2, 'two')
    await until(() => refusedBy(2), 'the second holder to refuse piece 0')
    await Promise.race([d.start(), new Promise((_resolve, reject) => setTimeout(() => reject(new Error('stalled: piece 0 never asked again')), 10_000))])
    assert.ok(readFileSync(d.partPath).equals(f.data))
    d.close()
  } finally { for (const w of warm) w.sock.destroy() }
})

test('local pieces: those found locally are verified and copied, not requested; a wrong or unreadable one is fetched', async () => {
  const f = makeFile(20 * PIECE_SIZE + 1234)
  const n = pieceCount(f.data.length)
  const src = new WrappedSource(fileSource(f), {})
  const piece = (i: number) => f.data.subarray(i * PIECE_SIZE, Math.min((i + 1) * PIECE_SIZE, f.data.length))
  // Pieces 0..14 are "on disk"; 3 reads back changed (rewritten behind the index), 7 cannot be read.
  const local = new Map<string, Buffer>()
  for (let i = 0; i < 15; i++) local.set(f.layer.subarray(i * 32, i * 32 + 32).toString('hex'), i === 3 ? randomBytes(PIECE_SIZE) : piece(i))
  let closed = 0
  const localPieces = {
    has: (h: Buffer) => local.has(h.toString('hex')),
    read: async (h: Buffer, len: number) => {
      const b = local.get(h.toString('hex'))
      return b === undefined || b === local.get(f.layer.subarray(7 * 32, 8 * 32).toString('hex')) ? null : b.subarray(0, len)
    },
    close: () => { closed++ }
  }
  const d = newDownload(f, { localPieces }) // no layer given: it comes from the peer first
  await link(d, src, 'h')
  await d.start()
  assert.ok(readFileSync(d.partPath).equals(f.data))
  assert.equal(d.stats.piecesReused, 13)
  assert.equal(d.stats.bytesReused, 13 * PIECE_SIZE)
  assert.equal(d.stats.reuseFailures, 2)
  assert.equal(d.stats.piecesFetched, n - 13)
  assert.equal(d.stats.verifyFailures, 0, 'a bad local copy is not held against a peer')
  assert.deepEqual([...src.reads.keys()].sort((a, b) => a - b), [3, 7, ...Array.from({ length: n - 15 }, (_, k) => 15 + k)])
  assert.equal(closed, 1)
  d.close()
})
