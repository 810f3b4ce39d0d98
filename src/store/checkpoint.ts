// WAL checkpoints of the index, off the event loop. SQLite's automatic checkpoint runs inside
// whichever commit crosses 1,000 WAL pages: that commit then copies the WAL into the database
// and fsyncs it, and the change it carried waits (latency bench: p99 16–23 ms with it, 10–12 ms
// without, alternating runs in one sitting). Here the index's own connection never checkpoints;
// a second connection in the disk thread does, when the WAL has grown past WAL_CHECKPOINT_BYTES
// (PASSIVE: it never waits for, nor blocks, the event loop's reads and writes).
import Database from 'better-sqlite3'

/** The WAL is checkpointed once it holds more than this. */
export const WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024
/** A write arms one look at the WAL's size this much later. */
export const CHECKPOINT_CHECK_MS = 1000

const connections = new Map<string, Database.Database>()

/** One PASSIVE checkpoint of the database file, through a connection of this thread's own. */
export function checkpointFile (file: string): { ok: true } | { ok: false, code: string, message: string } {
  try {
    let db = connections.get(file)
    if (db === undefined) {
      db = new Database(file, { fileMustExist: true })
      connections.set(file, db)
    }
    db.pragma('wal_checkpoint(PASSIVE)')
    return { ok: true }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return { ok: false, code: e?.code ?? 'EUNKNOWN', message: e?.message ?? String(err) }
  }
}

/** Closes this thread's connection to `file` (the index is closing). */
export function closeCheckpointer (file: string): void {
  connections.get(file)?.close()
  connections.delete(file)
}
