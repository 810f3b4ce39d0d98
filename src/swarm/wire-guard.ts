// Owns what a peer's bytes may make bittorrent-protocol's Wire do. The Wire (5.0.9) parses in a
// streamx microtask with no try/catch around its message handlers, so whatever throws there is
// an uncaughtException that kills the process; its bencode decoder can also loop forever. Two
// layers, both installed by attachWire() (framing.ts):
// - WireChecker sees every whole unit FrameGuard lets through before the Wire does and refuses
//   (ERR_PROTOCOL, the stream is closed) anything the Wire would mishandle:
//     · a handshake whose protocol string is not "BitTorrent protocol";
//     · a message whose length does not match its id, or an id we do not speak;
//     · an extended message without an extension id;
//     · a BEP 10 extended handshake that is not one strict bencoded dict whose `m` is a dict of
//       at most MAX_EXTENSIONS names → integers 0..255 (5.0.9 runs `Number(m[name].toString())`
//       outside its try: a dict with a `toString` key, a list holding one, or a list nested a few
//       thousand deep throws from one message; a `__proto__` key makes `m` inherited; a negative
//       string length such as `d-3:e` sends its decoder into an endless loop), or one of more
//       than MAX_EXTENDED_HANDSHAKES per wire (each may add names to the Wire's mapping).
// - guardWire() wraps the Wire's parse entry point (_write), so anything that still throws in
//   it — the library or one of our listeners — closes that peer and never reaches the process.
import type Wire from 'bittorrent-protocol'
import { SwarmError, isSwarmError } from '../errors.js'

/** pstrlen ‖ "BitTorrent protocol" ‖ 8 reserved ‖ 20 info hash ‖ 20 peer id */
export const HANDSHAKE_LENGTH = 68
export const PSTRLEN = 19
const PROTOCOL = Buffer.from('\x13BitTorrent protocol', 'latin1')

/** extension names a peer may announce in one extended handshake (we use one) */
export const MAX_EXTENSIONS = 64
/** extended handshakes per wire (BEP 10 allows re-sending one to update it; honest peers send one) */
export const MAX_EXTENDED_HANDSHAKES = 4
/** nesting allowed in an extended handshake (ours has 2 levels; bounds the scan's recursion) */
export const MAX_BENCODE_DEPTH = 16

const EXTENDED = 20
const BITFIELD = 5
const PIECE = 7

/** message id → the exact body length (id byte included) the Wire expects */
const FIXED_LENGTH = new Map<number, number>([
  [0, 1], [1, 1], [2, 1], [3, 1], // choke, unchoke, interested, uninterested
  [4, 5], // have
  [6, 13], [8, 13], // request, cancel
  [9, 3], // port
  [0x0d, 5], [0x0e, 1], [0x0f, 1], [0x10, 13], [0x11, 5] // BEP 6: suggest, have-all, have-none, reject, allowed-fast
])

function refuse (why: string): never {
  throw new SwarmError('ERR_PROTOCOL', why)
}

export function checkHandshake (hs: Buffer): void {
  if (hs.length < HANDSHAKE_LENGTH || !hs.subarray(0, PROTOCOL.length).equals(PROTOCOL)) {
    refuse('peer did not send a BitTorrent handshake')
  }
}

/** Checks the units FrameGuard emits (the handshake first, then whole frames) before the Wire parses them. */
/**
 * Keep-alives (empty frames) in a row before the peer is dropped. An honest peer sends one every
 * couple of minutes when idle; a stream of them costs a parse each, and over a deflated piece
 * stream 16 KB of input inflates to millions of them.
 */
export const MAX_KEEPALIVES_IN_A_ROW = 64

export class WireChecker {
  private handshakeSeen = false
  private extendedHandshakes = 0
  private keepAlives = 0

  /** throws ERR_PROTOCOL if any part of unit must not reach the Wire */
  check (unit: Buffer): void {
    let pos = 0
    if (!this.handshakeSeen) {
      checkHandshake(unit)
      this.handshakeSeen = true
      pos = HANDSHAKE_LENGTH
    }
    while (pos < unit.length) {
      if (pos + 4 > unit.length) refuse('frame split inside its length prefix')
      const len = unit.readUInt32BE(pos)
      if (pos + 4 + len > unit.length) refuse('frame longer than what was received')
      if (len > 0) { this.keepAlives = 0; this.checkMessage(unit.subarray(pos + 4, pos + 4 + len)) } else if (++this.keepAlives > MAX_KEEPALIVES_IN_A_ROW) refuse('peer sends nothing but keep-alives')
      pos += 4 + len
    }
  }

  private checkMessage (body: Buffer): void {
    const id = body[0] as number
    const want = FIXED_LENGTH.get(id)
    if (want !== undefined) {
      if (body.length !== want) refuse(`message ${id} is ${body.length} bytes, expected ${want}`)
      return
    }
    if (id === BITFIELD) {
      if (body.length < 2) refuse('empty bitfield')
    } else if (id === PIECE) {
      if (body.length < 9) refuse(`piece message of ${body.length} bytes`)
    } else if (id === EXTENDED) {
      this.checkExtended(body)
    } else {
      refuse(`unknown message id ${id}`)
    }
  }

  private checkExtended (body: Buffer): void {
    if (body.length < 2) refuse('extended message without an extension id')
    if (body[1] !== 0) return // an extension's own message: its handler checks it
    if (++this.extendedHandshakes > MAX_EXTENDED_HANDSHAKES) refuse('peer keeps sending extended handshakes')
    checkExtendedHandshake(body.subarray(2))
  }
}

// ---- BEP 10 extended handshake: a strict bencode scan (no objects are built)

const D = 0x64 // 'd'
const L = 0x6c // 'l'
const I = 0x69 // 'i'
const E = 0x65 // 'e'
const COLON = 0x3a
/** keys are read as the Wire's decoder reads them: UTF-8 (a leading BOM dropped), hex if not valid UTF-8 */
const KEY_DECODER = new TextDecoder()

function isDigit (c: number | undefined): boolean { return c !== undefined && c >= 0x30 && c <= 0x39 }

/** a bencode string at pos: [start, end) of its bytes */
function scanString (buf: Buffer, pos: number): [number, number] {
  let p = pos
  while (isDigit(buf[p]) && p - pos < 10) p++
  if (p === pos || buf[p] !== COLON) refuse('bad string in extended handshake')
  const len = Number(buf.toString('latin1', pos, p))
  const start = p + 1
  if (start + len > buf.length) refuse('string past the end of the extended handshake')
  return [start, start + len]
}

/** a bencode integer at pos: [value, end]; up to 15 digits, so the value is exact */
function scanInt (buf: Buffer, pos: number): [number, number] {
  let p = pos + 1
  if (buf[p] === 0x2d) p++ // '-'
  const digits = p
  while (isDigit(buf[p]) && p - digits < 15) p++
  if (p === digits || buf[p] !== E) refuse('bad integer in extended handshake')
  return [Number(buf.toString('latin1', pos + 1, p)), p + 1]
}

function keyText (buf: Buffer, start: number, end: number): string {
  const text = KEY_DECODER.decode(buf.subarray(start, end))
  return text.includes('\uFFFD') ? buf.toString('hex', start, end) : text
}

/** skips one value at pos, checking its shape; returns the position after it */
function scanValue (buf: Buffer, pos: number, depth: number): number {
  if (depth > MAX_BENCODE_DEPTH) refuse('extended handshake nested too deep')
  const c = buf[pos]
  if (c === I) return scanInt(buf, pos)[1]
  if (c === L) {
    let p = pos + 1
    while (buf[p] !== E) {
      if (p >= buf.length) refuse('unterminated list in extended handshake')
      p = scanValue(buf, p, depth + 1)
    }
    return p + 1
  }
  if (c === D) return scanDict(buf, pos, depth, () => {})
  return scanString(buf, pos)[1]
}

/** scans a dict at pos, calling onKey(key, valuePos) before each value; returns the position after it */
function scanDict (buf: Buffer, pos: number, depth: number, onKey: (key: string, at: number) => void): number {
  let p = pos + 1
  while (buf[p] !== E) {
    if (p >= buf.length) refuse('unterminated dict in extended handshake')
    const [ks, ke] = scanString(buf, p)
    const key = keyText(buf, ks, ke)
    if (key === '__proto__') refuse('__proto__ key in extended handshake')
    onKey(key, ke)
    p = scanValue(buf, ke, depth + 1)
  }
  return p + 1
}

/** the `m` dict at pos: names → integers 0..255 */
function checkMapping (buf: Buffer, pos: number): void {
  if (buf[pos] !== D) refuse('extended handshake: m is not a dict')
  let names = 0
  scanDict(buf, pos, 1, (name, at) => {
    if (++names > MAX_EXTENSIONS) refuse('extended handshake announces too many extensions')
    if (buf[at] !== I) refuse(`extended handshake: extension ${JSON.stringify(name)} has no number`)
    const [id] = scanInt(buf, at)
    if (id < 0 || id > 255) refuse(`extended handshake: extension ${JSON.stringify(name)} is number ${id}`)
  })
}

/** the payload of extended message 0: one bencoded dict, nothing after it; throws ERR_PROTOCOL */
export function checkExtendedHandshake (payload: Buffer): void {
  if (payload[0] !== D) refuse('extended handshake is not a dict')
  const end = scanDict(payload, 0, 0, (key, at) => { if (key === 'm') checkMapping(payload, at) })
  if (end !== payload.length) refuse('trailing bytes after the extended handshake')
}

// ---- the Wire's parse entry point

interface WireParser {
  _write (data: Uint8Array, cb: (err?: Error | null) => void): void
}

function protocolError (err: unknown): SwarmError {
  if (isSwarmError(err)) return err
  const msg = err instanceof Error ? err.message : String(err)
  return new SwarmError('ERR_PROTOCOL', `peer message failed in the wire: ${msg}`, { cause: err })
}

/**
 * Runs the Wire's parser (its _write, where every received message is handled and every event
 * fired) inside try/catch: a throw goes to onThrow — which must close the peer — instead of
 * escaping the microtask. Once isClosed() is true, received bytes are dropped unparsed.
 */
export function guardWire (wire: Wire, onThrow: (err: SwarmError) => void, isClosed: () => boolean): void {
  const target = wire as unknown as WireParser
  const parse = target._write
  if (typeof parse !== 'function') throw new Error('bittorrent-protocol Wire has no _write: wire-guard.ts needs updating')
  target._write = function (data, cb) {
    if (isClosed()) { cb(null); return }
    let called = false
    try {
      parse.call(this, data, (err) => { called = true; cb(err) })
    } catch (err) {
      onThrow(protocolError(err))
      if (!called) cb(null)
    }
  }
}
