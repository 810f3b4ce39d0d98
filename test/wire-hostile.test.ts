// Hostile peers against serveWire() and Download over in-process duplex pairs (test/fuzz-lib.ts):
// every message shape that bittorrent-protocol 5.0.9 mishandles, malformed or oversized messages,
// and peers that never read. The process must not crash (nothing reaches 'uncaughtException' or
// 'unhandledRejection'), a violating peer's stream is closed, and an honest wire still works after.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter, once } from 'node:events'
import { join } from 'node:path'
import Wire from 'bittorrent-protocol'
import { isSwarmError } from '../src/errors.js'
import { LEAF_SIZE, PIECE_SIZE } from '../src/merkle/bep52.js'
import { Download } from '../src/swarm/download.js'
import { FrameGuard, MAX_QUEUED_SEND_BYTES, attachWire } from '../src/swarm/framing.js'
import { LayerAssembler, sendLayerRequest, useLayerExtension } from '../src/swarm/layer.js'
import { MAX_READS_PER_WIRE, SEND_HIGH_WATER, sendLimitFor, serveWire } from '../src/swarm/serve.js'
import type { PieceSource } from '../src/swarm/source.js'
import { MAX_KEEPALIVES_IN_A_ROW, WireChecker } from '../src/swarm/wire-guard.js'
import {
  Rng, duplexPair, MemSource, peerIdOf, btHandshake, btMessage, btExtended, btFrame, tempDir,
  ID, RESERVED_EXT, RESERVED_EXT_FAST, HONEST_EXT_HANDSHAKE, type PipeEnd
} from './fuzz-lib.js'

const uncaught: unknown[] = []
process.on('uncaughtException', (err) => { uncaught.push(err) })
process.on('unhandledRejection', (err) => { uncaught.push(err) })

const tmp = tempDir()
after(() => { tmp.remove() })
let seq = 0

const rng = new Rng(0x5eed)
const src = new MemSource(rng.bytes(5 * LEAF_SIZE - 123), LEAF_SIZE) // 5 pieces: a piece layer exists
/** how long a peer that is not expected to be dropped is watched */
const SETTLE_MS = 60

type Side = 'serve' | 'download'
interface Case {
  name: string
  frames: Buffer[]
  /** which sides must close the stream */
  closes: Side[]
  /** reserved bytes of the hostile handshake (default: extended + fast) */
  reserved?: Buffer
  /** frames are sent instead of a handshake */
  raw?: boolean
}

const BOTH: Side[] = ['serve', 'download']
const ext0 = (s: string): Buffer => btExtended(0, s)
const deepList = (n: number): string => 'l'.repeat(n) + 'i1e' + 'e'.repeat(n)

const cases: Case[] = [
  // BEP 10 extended handshakes: 5.0.9 runs Number(m[name].toString()) outside its try/catch
  { name: 'ext handshake: m value is a dict with a toString key', frames: [ext0('d1:md11:swarm_layerd8:toStringi1eeee')], closes: BOTH },
  { name: 'ext handshake: m value is a list holding such a dict', frames: [ext0('d1:md11:swarm_layerld8:toStringi1eeeee')], closes: BOTH },
  { name: 'ext handshake: m value is a 6000-deep list', frames: [ext0(`d1:md11:swarm_layer${deepList(6000)}ee`)], closes: BOTH },
  { name: 'ext handshake: __proto__ key makes m inherited', frames: [ext0('d9:__proto__d1:md11:swarm_layerd8:toStringi1eeeeee')], closes: BOTH },
  { name: 'ext handshake: m is an integer', frames: [ext0('d1:mi5ee')], closes: BOTH },
  { name: 'ext handshake: m is a string', frames: [ext0('d1:m3:abce')], closes: BOTH },
  { name: 'ext handshake: m is a list', frames: [ext0('d1:mli1eee')], closes: BOTH },
  { name: 'ext handshake: m value is an empty dict', frames: [ext0('d1:md11:swarm_layerdeee')], closes: BOTH },
  { name: 'ext handshake: m value 256', frames: [ext0('d1:md11:swarm_layeri256eee')], closes: BOTH },
  { name: 'ext handshake: m value -1', frames: [ext0('d1:md11:swarm_layeri-1eee')], closes: BOTH },
  { name: 'ext handshake: m key __proto__', frames: [ext0('d1:md9:__proto__i1eee')], closes: BOTH },
  { name: 'ext handshake: 65 extensions', frames: [ext0('d1:md' + Array.from({ length: 65 }, (_, i) => `3:x${String(i).padStart(2, '0')}i1e`).join('') + 'ee')], closes: BOTH },
  { name: 'ext handshake: deep nesting outside m', frames: [ext0(`d1:v${deepList(6000)}e`)], closes: BOTH },
  { name: 'ext handshake: negative string length (its decoder loops forever)', frames: [ext0('d-3:e')], closes: BOTH },
  { name: 'ext handshake: not bencode', frames: [ext0('hello')], closes: BOTH },
  { name: 'ext handshake: a list, not a dict', frames: [ext0('li1ee')], closes: BOTH },
  { name: 'ext handshake: trailing bytes', frames: [ext0(HONEST_EXT_HANDSHAKE + 'xx')], closes: BOTH },
  { name: 'ext handshake: string longer than the message', frames: [ext0('d1:m99:x')], closes: BOTH },
  { name: 'ext handshake: five of them', frames: Array.from({ length: 5 }, () => ext0(HONEST_EXT_HANDSHAKE)), closes: BOTH },
  { name: 'extended message without an extension id', frames: [btFrame(Buffer.of(ID.EXTENDED))], closes: BOTH },
  { name: 'extended message to an extension nobody announced', frames: [btExtended(7, 'x')], closes: [] },
  { name: 'swarm_layer message that is garbage', frames: [ext0(HONEST_EXT_HANDSHAKE), btExtended(1, Buffer.from([9, 9, 9]))], closes: ['download'] },
  // the numbered messages: each length must match its id
  { name: 'have one byte short', frames: [btFrame(Buffer.of(ID.HAVE, 0, 0, 0))], closes: BOTH },
  { name: 'have with index 2^32-1', frames: [btMessage(ID.HAVE, [0xffffffff])], closes: ['download'] },
  { name: 'empty bitfield', frames: [btMessage(ID.BITFIELD)], closes: BOTH },
  { name: 'oversized bitfield', frames: [btMessage(ID.BITFIELD, [], Buffer.alloc(4096, 0xff))], closes: ['download'] },
  { name: 'request without a length', frames: [btMessage(ID.REQUEST, [0, 0])], closes: BOTH },
  { name: 'request with every field 2^32-1', frames: [btMessage(ID.INTERESTED), btMessage(ID.REQUEST, [0xffffffff, 0xffffffff, 0xffffffff])], closes: [] },
  { name: 'piece without an offset', frames: [btMessage(ID.PIECE, [0])], closes: BOTH },
  { name: 'unsolicited piece at 2^32-1', frames: [btMessage(ID.PIECE, [0xffffffff, 0xffffffff], Buffer.alloc(16))], closes: [] },
  { name: 'cancel one byte long', frames: [btMessage(ID.CANCEL)], closes: BOTH },
  { name: 'port one byte long', frames: [btMessage(ID.PORT)], closes: BOTH },
  { name: 'port', frames: [btFrame(Buffer.of(ID.PORT, 0x1a, 0xe1))], closes: [] },
  { name: 'choke with a payload', frames: [btMessage(ID.CHOKE, [7])], closes: BOTH },
  { name: 'unknown message id', frames: [btMessage(0x42, [1, 2, 3])], closes: BOTH },
  { name: 'reject without fast negotiated', reserved: RESERVED_EXT, frames: [btMessage(ID.REJECT, [0, 0, 16384])], closes: BOTH },
  { name: 'have-all without fast negotiated', reserved: RESERVED_EXT, frames: [btMessage(ID.HAVE_ALL)], closes: BOTH },
  { name: 'suggest without fast negotiated', reserved: RESERVED_EXT, frames: [btMessage(ID.SUGGEST, [1])], closes: BOTH },
  { name: 'allowed-fast 200 times', frames: Array.from({ length: 200 }, (_, i) => btMessage(ID.ALLOWED_FAST, [i])), closes: [] },
  { name: 'reject of nothing outstanding', frames: [btMessage(ID.REJECT, [0xffffffff, 0, 1])], closes: [] },
  // handshakes
  { name: 'wrong protocol string', raw: true, frames: [Buffer.concat([Buffer.from('\x13BitTorrent protocoX'), RESERVED_EXT_FAST, src.infoHash, peerIdOf('evil')])], closes: BOTH },
  { name: 'a message before the handshake', raw: true, frames: [btMessage(ID.INTERESTED)], closes: BOTH },
  { name: 'every reserved bit set', reserved: Buffer.alloc(8, 0xff), frames: [ext0(HONEST_EXT_HANDSHAKE)], closes: [] },
  { name: 'a second handshake', frames: [btHandshake(src.infoHash, peerIdOf('evil'))], closes: BOTH },
  { name: 'handshake for other content', raw: true, frames: [btHandshake(Buffer.alloc(20, 7), peerIdOf('evil'))], closes: BOTH }
]

function lookup (ih: Buffer): PieceSource | undefined { return ih.equals(src.infoHash) ? src : undefined }

function delay (ms: number): Promise<void> { return new Promise(resolve => setTimeout(resolve, ms)) }

/** sends the handshake (unless raw), then c's frames once the other side's handshake arrived */
function sendCase (theirs: PipeEnd, c: Case): void {
  if (c.raw === true) {
    theirs.write(Buffer.concat(c.frames))
  } else {
    theirs.write(btHandshake(src.infoHash, peerIdOf('evil'), c.reserved ?? RESERVED_EXT_FAST))
    theirs.once('data', () => { theirs.write(Buffer.concat(c.frames)) })
  }
  theirs.on('data', () => {}) // reads everything sent back
}

interface Outcome { closed: boolean, err: unknown }

async function hitServe (c: Case): Promise<Outcome> {
  const [ours, theirs] = duplexPair()
  const closed = new Promise<Outcome>(resolve => {
    serveWire(ours, { peerId: peerIdOf('srv'), lookup, onClose: (err) => { resolve({ closed: true, err }) } })
  })
  sendCase(theirs, c)
  const out = await Promise.race([closed, delay(SETTLE_MS).then(() => ({ closed: false, err: undefined }))])
  if (out.closed) assert.ok(ours.destroyed && theirs.destroyed, 'the stream is closed')
  theirs.destroy()
  return out
}

async function hitDownload (dl: Download, c: Case): Promise<Outcome> {
  const [ours, theirs] = duplexPair()
  const label = `evil-${seq++}`
  const closed = new Promise<Outcome>(resolve => {
    const onErr = (l: string, err: unknown): void => {
      if (l !== label) return
      dl.off('peer-error', onErr)
      resolve({ closed: true, err })
    }
    dl.on('peer-error', onErr)
  })
  sendCase(theirs, c)
  dl.addPeer(ours, label)
  const out = await Promise.race([closed, delay(SETTLE_MS).then(() => ({ closed: false, err: undefined }))])
  if (out.closed) assert.ok(ours.destroyed && theirs.destroyed, 'the stream is closed')
  theirs.destroy()
  return out
}

function checkOutcome (side: Side, c: Case, out: Outcome): void {
  assert.deepEqual(uncaught, [], `${side}: ${c.name}: nothing uncaught`)
  assert.equal(out.closed, c.closes.includes(side), `${side}: ${c.name}: ${c.closes.includes(side) ? 'must' : 'must not'} close (${String(out.err)})`)
  if (out.err !== undefined) assert.ok(isSwarmError(out.err), `${side}: ${c.name}: closed with a SwarmError, got ${String(out.err)}`)
}

/** an honest bittorrent-protocol client fetching piece 1 from a fresh serveWire() */
async function honestFetch (): Promise<Buffer> {
  const [ours, theirs] = duplexPair()
  serveWire(ours, { peerId: peerIdOf('srv'), lookup })
  const wire = new Wire()
  theirs.on('data', (d: Buffer) => wire.write(d))
  wire.on('data', (d: Uint8Array) => theirs.write(d))
  wire.handshake(src.infoHash, peerIdOf('honest'), { fast: true })
  wire.interested()
  await once(wire, 'unchoke')
  const piece = await new Promise<Buffer>((resolve, reject) => {
    wire.request(1, 0, LEAF_SIZE, (err, buf) => { if (err !== null || buf == null) reject(err); else resolve(Buffer.from(buf)) })
  })
  theirs.destroy()
  return piece
}

test('serveWire: no hostile message crashes the process; violations close the stream', async () => {
  for (const c of cases) checkOutcome('serve', c, await hitServe(c))
  assert.ok((await honestFetch()).equals(src.piece(1)), 'an honest wire still works')
  assert.deepEqual(uncaught, [])
})

test('Download: no hostile message crashes the process; violations close the stream', async () => {
  const dl = new Download({ root: src.root, size: src.size, pieceSize: src.pieceSize, partPath: join(tmp.dir, 'hostile.part'), peerId: peerIdOf('dl') })
  dl.on('peer-error', () => {})
  const done = dl.start()
  for (const c of cases) checkOutcome('download', c, await hitDownload(dl, c))
  // an honest holder still completes it
  const [ours, theirs] = duplexPair()
  serveWire(theirs, { peerId: peerIdOf('srv'), lookup })
  dl.addPeer(ours, 'honest')
  await done
  assert.equal(dl.stats.piecesFetched, src.numPieces)
  assert.deepEqual(uncaught, [])
})

test('a listener that throws inside the wire\'s parser closes that peer, not the process', async () => {
  const [ours, theirs] = duplexPair()
  const wire = new Wire()
  const closed = new Promise<Error | undefined>(resolve => { attachWire(ours, wire, new FrameGuard(1 << 16), resolve) })
  wire.on('interested', () => { throw new TypeError('listener bug') })
  theirs.on('data', () => {})
  theirs.write(Buffer.concat([btHandshake(src.infoHash, peerIdOf('evil')), btMessage(ID.INTERESTED)]))
  const err = await closed
  assert.ok(isSwarmError(err, 'ERR_PROTOCOL') && /listener bug/.test(err.message), String(err))
  assert.ok(ours.destroyed)
  await delay(10)
  assert.deepEqual(uncaught, [])
})

// ---- peers that never read

test('the send cap sits above what serveWire queues for an honest reader', () => {
  assert.ok(MAX_QUEUED_SEND_BYTES >= 2 * (SEND_HIGH_WATER + MAX_READS_PER_WIRE * PIECE_SIZE))
  assert.equal(sendLimitFor(PIECE_SIZE), MAX_QUEUED_SEND_BYTES)
  assert.ok(sendLimitFor(16 * 1024 * 1024) > SEND_HIGH_WATER + MAX_READS_PER_WIRE * 16 * 1024 * 1024)
})

const SMALL_LIMIT = 256 * 1024
/** requests for a piece that does not exist: each one is answered with a 17-byte reject */
const REJECTED_REQUESTS = Buffer.concat(Array.from({ length: 1000 }, () => btMessage(ID.REQUEST, [999, 0, LEAF_SIZE])))

/** writes REJECTED_REQUESTS from a peer that reads nothing until ours closes (or ~1.4 MB of rejects were provoked) */
async function floodWithoutReading (ours: PipeEnd, theirs: PipeEnd): Promise<void> {
  theirs.pause()
  await delay(10) // the handshakes cross
  for (let i = 0; i < 80 && !ours.destroyed; i++) {
    theirs.write(REJECTED_REQUESTS)
    await delay(1)
  }
}

function notReading (err: unknown): boolean {
  return isSwarmError(err, 'ERR_PROTOCOL') && /not reading/.test(err.message)
}

test('serveWire: a peer that never reads is dropped once the cap is queued for it', async () => {
  const [ours, theirs] = duplexPair()
  let closeErr: unknown = 'still open'
  serveWire(ours, { peerId: peerIdOf('srv'), lookup, maxQueuedSendBytes: SMALL_LIMIT, onClose: (err) => { closeErr = err } })
  theirs.write(btHandshake(src.infoHash, peerIdOf('sloth')))
  await floodWithoutReading(ours, theirs)
  assert.ok(notReading(closeErr), String(closeErr))
  assert.ok(ours.destroyed && theirs.destroyed)
  assert.deepEqual(uncaught, [])
})

test('Download: a holder that never reads is dropped once the cap is queued for it', async () => {
  const dl = new Download({ root: src.root, size: src.size, pieceSize: src.pieceSize, partPath: join(tmp.dir, 'sloth.part'), peerId: peerIdOf('dl'), maxQueuedSendBytes: SMALL_LIMIT })
  let peerErr: unknown = 'still open'
  dl.on('peer-error', (_label: string, err: unknown) => { peerErr = err })
  const [ours, theirs] = duplexPair()
  theirs.write(btHandshake(src.infoHash, peerIdOf('sloth')))
  dl.addPeer(ours, 'sloth')
  await floodWithoutReading(ours, theirs)
  assert.ok(notReading(peerErr), String(peerErr))
  assert.ok(ours.destroyed && theirs.destroyed)
  dl.abort()
  assert.deepEqual(uncaught, [])
})

/** a source with a huge piece layer and no data (only the layer is asked for) */
class LayerOnlySource extends EventEmitter implements PieceSource {
  readonly pieceSize = LEAF_SIZE
  readonly numPieces: number
  readonly size: number
  readonly root: Buffer
  constructor (readonly layer: Buffer) {
    super()
    this.numPieces = layer.length / 32
    this.size = this.numPieces * this.pieceSize
    this.root = Buffer.alloc(32, 0xab)
  }

  has (i: number): boolean { return i >= 0 && i < this.numPieces }
  complete (): boolean { return true }
  async readPiece (): Promise<Buffer> { throw new Error('no data here') }
  async pieceLayer (): Promise<Buffer | null> { return this.layer }
}

test('a piece layer bigger than the send cap reaches a slow reader: it is paced by the send buffer', async () => {
  const layer = new Rng(7).bytes(200_000 * 32) // 6.4 MB
  const big = new LayerOnlySource(layer)
  const [ours, theirs] = duplexPair()
  let closeErr: unknown = 'still open'
  serveWire(ours, { peerId: peerIdOf('srv'), lookup: () => big, maxQueuedSendBytes: SEND_HIGH_WATER + 1024 * 1024, onClose: (err) => { closeErr = err } })
  const wire = new Wire()
  const asm = new LayerAssembler(layer.length)
  const got = new Promise<Buffer | 'none'>((resolve, reject) => {
    useLayerExtension(wire, {
      onReady: () => {
        sendLayerRequest(wire)
        theirs.pause() // a slow reader: nothing is read for a while
        setTimeout(() => theirs.resume(), 100)
      },
      onMessage: (msg) => {
        try {
          const r = asm.push(msg)
          if (r !== null) resolve(r)
        } catch (err) { reject(err) }
      }
    })
    wire.on('close', () => reject(new Error(`closed before the layer arrived: ${String(closeErr)}`)))
  })
  theirs.on('data', (d: Buffer) => wire.write(d))
  wire.on('data', (d: Uint8Array) => theirs.write(d))
  theirs.on('close', () => wire.destroy())
  wire.handshake(big.root.subarray(0, 20), peerIdOf('slow'), { fast: true })
  const r = await got
  assert.ok(r !== 'none' && r.equals(layer))
  assert.equal(closeErr, 'still open')
  theirs.destroy()
  assert.deepEqual(uncaught, [])
})

test('a peer that sends nothing but keep-alives is dropped (over a deflated stream 16 KB inflate to millions)', () => {
  const checker = new WireChecker()
  checker.check(btHandshake(Buffer.alloc(20, 1), Buffer.alloc(20, 2), RESERVED_EXT_FAST))
  const keepAlives = (n: number) => Buffer.alloc(4 * n)
  checker.check(keepAlives(MAX_KEEPALIVES_IN_A_ROW))                       // an idle peer's keep-alives are fine
  checker.check(btMessage(ID.HAVE, [1]))                  // and any real message resets the count
  checker.check(keepAlives(MAX_KEEPALIVES_IN_A_ROW))
  assert.throws(() => checker.check(keepAlives(1)), (err: unknown) => isSwarmError(err, 'ERR_PROTOCOL'))
})
