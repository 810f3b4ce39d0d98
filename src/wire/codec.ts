// Byte-level writer and reader for the control-message codecs. The reader bounds every
// length it is given against what is left, so a hostile frame fails with ERR_PROTOCOL
// instead of allocating or reading past the end.
import { SwarmError } from '../errors.js'

export class Writer {
  private buf: Buffer
  private pos = 0
  constructor (size = 256) { this.buf = Buffer.allocUnsafe(size) }

  private room (n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  u8 (v: number): this { this.room(1); this.buf[this.pos++] = v; return this }
  u16 (v: number): this { this.room(2); this.buf.writeUInt16BE(v, this.pos); this.pos += 2; return this }
  u32 (v: number): this { this.room(4); this.buf.writeUInt32BE(v, this.pos); this.pos += 4; return this }
  f64 (v: number): this { this.room(8); this.buf.writeDoubleBE(v, this.pos); this.pos += 8; return this }
  raw (b: Uint8Array): this { this.room(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this }
  bytes (b: Uint8Array): this { return this.u32(b.length).raw(b) }
  str (s: string): this { const b = Buffer.from(s, 'utf8'); return this.u16(b.length).raw(b) }
  done (): Buffer { return this.buf.subarray(0, this.pos) }
}

export class Reader {
  private pos = 0
  constructor (private readonly buf: Buffer) {}

  private need (n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new SwarmError('ERR_PROTOCOL', 'truncated message')
  }

  u8 (): number { this.need(1); return this.buf[this.pos++]! }
  u16 (): number { this.need(2); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v }
  u32 (): number { this.need(4); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v }
  f64 (): number { this.need(8); const v = this.buf.readDoubleBE(this.pos); this.pos += 8; return v }
  raw (n: number): Buffer { this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b }
  bytes (): Buffer { return this.raw(this.u32()) }
  str (): string { return this.raw(this.u16()).toString('utf8') }
  end (): void { if (this.pos !== this.buf.length) throw new SwarmError('ERR_PROTOCOL', 'trailing bytes in message') }
}
