// Optional compression of a piece stream (the --compress toggle): a Duplex that deflates what is
// written to it and inflates what it reads, over another Duplex. Node's own zlib (raw deflate, no
// headers): nothing to install, and pieces are verified against their Merkle hashes after
// inflating, so a peer can corrupt nothing this way.
//
// Each write is flushed (Z_SYNC_FLUSH) so a request or a piece block leaves at once instead of
// waiting in the compressor for more input; backpressure passes through (a write completes only
// once the compressor took it, and the compressor waits for the inner stream). An inflate bomb
// cannot grow memory: inflated bytes are pushed only while the reader keeps up, and the wire
// guard bounds every frame.
import { Duplex } from 'node:stream'
import * as zlib from 'node:zlib'

/** zlib level 1: most of the saving on text-like data at a fraction of the CPU of the default 6. */
export const DEFLATE_LEVEL = 1

/** Bytes written through deflated streams in this process, before and after compression (for metrics and bench/compress). */
export const deflateStats = { plainBytes: 0, wireBytes: 0 }

export function deflateDuplex (inner: Duplex): Duplex {
  const deflate = zlib.createDeflateRaw({ level: DEFLATE_LEVEL })
  const inflate = zlib.createInflateRaw()
  deflate.on('data', (d: Buffer) => { deflateStats.wireBytes += d.length })
  deflate.pipe(inner)
  inner.pipe(inflate)
  const outer = new Duplex({
    write (chunk: Buffer, _enc, cb) {
      deflateStats.plainBytes += chunk.length
      deflate.write(chunk)
      deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => cb())
    },
    final (cb) { deflate.end(); cb() },
    read () { inflate.resume() },
    destroy (err, cb) {
      deflate.destroy()
      inflate.destroy()
      inner.destroy(err ?? undefined)
      cb(err)
    }
  })
  inflate.on('data', (d: Buffer) => { if (!outer.push(d)) inflate.pause() })
  inflate.on('end', () => outer.push(null))
  const fail = (err: Error): void => { outer.destroy(err) }
  inflate.on('error', fail)
  deflate.on('error', fail)
  inner.on('error', fail)
  inner.on('close', () => { if (!outer.destroyed) outer.destroy() })
  return outer
}
