// One worker thread per process that runs disk-ops.ts for batches of received small files, so
// creating, writing and linking thousands of files (kernel work: ~50 µs of CPU per file on this
// VM's ext4) runs beside the event loop instead of on it — one message per batch, not one
// threadpool hop per syscall. If the thread cannot start or dies, the batch runs inline.
import { Worker } from 'node:worker_threads'
import { writeTemps, linkNew, type TempWrite, type LinkNew, type OpResult } from './disk-ops.js'
import { scanFolderDisk, type KnownStat, type FolderResult, type FolderIgnore } from './folder-scan.js'
import { checkpointFile, closeCheckpointer } from './checkpoint.js'

export type DiskJob =
  | { id: number, op: 'write', items: TempWrite[] }
  | { id: number, op: 'link', items: LinkNew[] }
  | { id: number, op: 'folder', dir: string, known: KnownStat[], inlineMax: number, ignore: FolderIgnore | null }
  | { id: number, op: 'checkpoint', file: string, close: boolean }
type CheckpointResult = ReturnType<typeof checkpointFile>
/** A job as a caller hands it over (the id is the thread's). */
type JobBody = DiskJob extends infer J ? (J extends DiskJob ? Omit<J, 'id'> : never) : never
export interface DiskReply { id: number, results: OpResult[] | FolderResult | CheckpointResult }

/** SWARM_DISK_THREAD=0 runs every batch inline (for comparison) */
const ENABLED = process.env.SWARM_DISK_THREAD !== '0'
/**
 * Fewer items than this run inline: a single file (the live-replication case, where each
 * millisecond counts) does not wait for a sleeping thread to wake and answer.
 */
export const THREAD_MIN_ITEMS = 16

class DiskThread {
  private worker: Worker | null = null
  private broken = !ENABLED
  private nextId = 1
  private readonly waiting = new Map<number, { job: DiskJob, resolve: (r: OpResult[] | FolderResult | CheckpointResult) => void }>()

  async run (job: { op: 'write', items: TempWrite[] } | { op: 'link', items: LinkNew[] }): Promise<OpResult[]> {
    if (this.broken || job.items.length < THREAD_MIN_ITEMS) return runInline({ ...job, id: 0 }) as OpResult[]
    return await this.post(job) as OpResult[]
  }

  /** One folder of a sweep (folder-scan.ts), in the thread: its syscalls and hashing run beside the event loop. */
  async scanFolder (dir: string, known: KnownStat[], inlineMax: number, ignore: FolderIgnore | null = null): Promise<FolderResult> {
    const job = { op: 'folder' as const, dir, known, inlineMax, ignore }
    if (this.broken) return scanFolderDisk(dir, known, inlineMax, ignore)
    return await this.post(job) as FolderResult
  }

  /**
   * A WAL checkpoint of the index file in the thread (checkpoint.ts); false if there is no thread
   * (the caller then checkpoints on its own connection). close: the thread's connection closes after.
   */
  async checkpoint (file: string, close = false): Promise<boolean> {
    if (this.broken) return false
    const r = await this.post({ op: 'checkpoint', file, close }) as CheckpointResult
    return r.ok
  }

  private async post (job: JobBody): Promise<OpResult[] | FolderResult | CheckpointResult> {
    const w = this.start()
    if (w === null) return runInline({ ...job, id: 0 } as DiskJob)
    const id = this.nextId++
    const full = { ...job, id } as DiskJob
    return await new Promise(resolve => {
      this.waiting.set(id, { job: full, resolve })
      if (this.waiting.size === 1) w.ref()
      w.postMessage(full)
    })
  }

  private start (): Worker | null {
    if (this.worker !== null) return this.worker
    try {
      const w = new Worker(new URL('./disk-worker.js', import.meta.url))
      w.unref()
      w.on('message', (r: DiskReply) => {
        const p = this.waiting.get(r.id)
        if (p === undefined) return
        this.waiting.delete(r.id)
        if (this.waiting.size === 0) w.unref()
        p.resolve(r.results)
      })
      w.on('error', () => { this.fail() })
      w.on('exit', () => { this.fail() })
      this.worker = w
      return w
    } catch {
      this.broken = true
      return null
    }
  }

  /** The thread is gone: what it had not answered runs inline (each op is safe to redo: a temp that exists fails, a link that exists fails). */
  private fail (): void {
    this.broken = true
    this.worker = null
    const left = [...this.waiting.values()]
    this.waiting.clear()
    for (const { job, resolve } of left) resolve(runInline(job))
  }
}

export function runInline (job: DiskJob): OpResult[] | FolderResult | CheckpointResult {
  switch (job.op) {
    case 'write': return writeTemps(job.items)
    case 'link': return linkNew(job.items)
    case 'folder': return scanFolderDisk(job.dir, job.known, job.inlineMax, job.ignore)
    case 'checkpoint': {
      const r = job.close ? { ok: true as const } : checkpointFile(job.file)
      if (job.close) closeCheckpointer(job.file)
      return r
    }
  }
}

export const diskThread = new DiskThread()
