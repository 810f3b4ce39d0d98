// One process per state dir. The lock is a tiny SQLite file (`<state>/lock`) held with an
// exclusive lock for as long as the node runs: the kernel drops it when the process dies, so a
// crash (SIGKILL, power cut) never leaves a stale lock, and the index itself stays readable by
// other tools while the node runs. It also records the holder's pid, for the error message.
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { SwarmError } from '../errors.js'

export class StateLock {
  private db: Database.Database | null

  constructor (stateDir: string) {
    const file = join(stateDir, 'lock')
    let db: Database.Database
    try {
      db = new Database(file, { timeout: 0 })
    } catch (err) {
      throw new SwarmError('ERR_STATE_DIR', `cannot open ${file}: ${(err as Error).message}`, { cause: err })
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE')
      db.exec(`CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder; INSERT INTO holder VALUES (${process.pid})`)
    } catch (err) {
      db.close()
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new SwarmError('ERR_LOCKED', `state dir ${stateDir} is in use by another swarm process (one process per state dir: give each node its own --state)`, { cause: err })
      }
      throw new SwarmError('ERR_STATE_DIR', `cannot lock ${file}: ${(err as Error).message}`, { cause: err })
    }
    this.db = db
  }

  release (): void {
    this.db?.close()
    this.db = null
  }
}
