// Worker thread body for verify-pool.ts: runs bep52's verifyPiece on pieces handed over by
// transfer (zero-copy) and hands each piece back the same way.
import { parentPort } from 'node:worker_threads'
import { verifyPiece } from '../merkle/bep52.js'
import type { VerifyJob, VerifyResult } from './verify-pool.js'

const port = parentPort
if (port === null) throw new Error('verify-worker must run in a worker thread')
port.on('message', (job: VerifyJob) => {
  let ok = false
  try {
    const piece = Buffer.from(job.buf, job.off, job.len)
    const layer = job.layer === null ? null : Buffer.from(job.layer)
    ok = verifyPiece(piece, job.index, layer, Buffer.from(job.root), job.size, job.pieceSize)
  } catch {
    ok = false
  }
  const res: VerifyResult = { id: job.id, ok, buf: job.buf }
  port.postMessage(res, [job.buf])
})
