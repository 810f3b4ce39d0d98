// Worker thread body for disk-thread.ts: runs one batch of disk-ops.ts at a time.
import { parentPort } from 'node:worker_threads'
import { runInline, type DiskJob, type DiskReply } from './disk-thread.js'

const port = parentPort
if (port === null) throw new Error('disk-worker must run in a worker thread')
port.on('message', (job: DiskJob) => {
  const reply: DiskReply = { id: job.id, results: runInline(job) }
  port.postMessage(reply)
})
