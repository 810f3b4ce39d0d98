// The node's SQLite index (better-sqlite3, WAL): one database per node in its state dir.
// It owns the schema and every SQL statement; the rest of the code calls typed methods.
//
//   shares   — one row per share: its local folder and a random index id (changes if the index is
//              rebuilt, so peers know to resend from scratch). The share's sequence counter is
//              MAX(entries.seq): every change is numbered in the row it writes.
//   entries  — what is on disk right now, one row per path: the replicated entry (type, size,
//              mtime, BEP 52 root, version vector, tombstone) plus the local stat used to notice
//              changes (lsize, lmtime, lino) and `seq`, the share sequence number of its last change.
//   pending  — remote entries we accepted but whose content is not on disk yet.
//   cursors  — for each peer and share: the peer's index id and the last sequence number applied.
//   clocks   — per share, the highest version counter in tombstones that were garbage-collected
//              (new versions must still sort after them: see model/version.ts bumpVersion).
//   acks     — for each peer and share: how far the peer has applied *our* entries (its ACKs);
//              tombstones every known peer has applied are garbage-collected.
//   layers   — BEP 52 piece layers of files larger than one piece, by root.
//   layer_pieces — piece hash (its first PIECE_KEY_BYTES) → (root, piece index) for every layer:
//              where a piece some download needs may already be on disk (node/local-pieces.ts).
//              Rows of content no longer held anywhere are pruned lazily (forgetLayerPieces).
//   partials — bitfields of verified pieces of interrupted downloads, by root.
//   blobs    — the complete files of the jobs' blob store (blob-store.ts), by (root, size).
import Database from 'better-sqlite3'
import type { Entry, LocalStat, StoredEntry } from '../model/entry.js'
import { decodeVersion, encodeVersion, maxCounter } from '../model/version.js'
import { SwarmError } from '../errors.js'
import { INLINE_MAX } from '../model/rules.js'
import * as fs from 'node:fs'
import { diskThread } from './disk-thread.js'
import { CHECKPOINT_CHECK_MS, WAL_CHECKPOINT_BYTES } from './checkpoint.js'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS shares (id TEXT PRIMARY KEY, dir TEXT NOT NULL, index_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
  share TEXT NOT NULL, path TEXT NOT NULL, type INTEGER NOT NULL, deleted INTEGER NOT NULL,
  size INTEGER NOT NULL, mtime INTEGER NOT NULL, root BLOB NOT NULL, version TEXT NOT NULL, by TEXT NOT NULL,
  seq INTEGER NOT NULL, lsize INTEGER, lmtime REAL, lino INTEGER, src TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (share, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_seq ON entries (share, seq);
-- Content is looked up by root only for files that travel as pieces (copy instead of fetch,
-- serve by info hash, piece reuse); small files travel inline. Indexing every root cost more
-- than the rest of a million-file first index (random inserts into a 1 M-entry B-tree: 17 s
-- against 7 s without it, measured inserting 1 M rows in batches of 20,000).
DROP INDEX IF EXISTS entries_root;
CREATE INDEX IF NOT EXISTS entries_root_big ON entries (root) WHERE size > ${INLINE_MAX};
CREATE TABLE IF NOT EXISTS pending (
  share TEXT NOT NULL, path TEXT NOT NULL, type INTEGER NOT NULL, deleted INTEGER NOT NULL,
  size INTEGER NOT NULL, mtime INTEGER NOT NULL, root BLOB NOT NULL, version TEXT NOT NULL, by TEXT NOT NULL,
  src TEXT NOT NULL, keep_local INTEGER NOT NULL DEFAULT 0, as_is INTEGER NOT NULL DEFAULT 0, data BLOB, PRIMARY KEY (share, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (peer TEXT NOT NULL, share TEXT NOT NULL, index_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (peer, share)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acks (peer TEXT NOT NULL, share TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (peer, share)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clocks (share TEXT PRIMARY KEY, clock INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS layers (root BLOB PRIMARY KEY, layer BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partials (root BLOB PRIMARY KEY, have BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (root BLOB NOT NULL, size INTEGER NOT NULL, added INTEGER NOT NULL, PRIMARY KEY (root, size)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (share TEXT PRIMARY KEY, seq INTEGER NOT NULL, clock INTEGER NOT NULL, state BLOB NOT NULL) WITHOUT ROWID;
`

// Created (and filled from `layers`) in the same transaction, so an index that predates it gets
// it whole or not at all: a crash half way through the backfill leaves no half-filled table.
const LAYER_PIECES_SCHEMA = `
CREATE TABLE layer_pieces (hash BLOB NOT NULL, root BLOB NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (hash, root)) WITHOUT ROWID;
`

/**
 * Bytes of a piece hash kept as the key of layer_pieces: half the key for the same lookups. A
 * false match costs one wasted local read, never a wrong byte: every piece found this way is
 * verified against the full hash before it is used.
 */
export const PIECE_KEY_BYTES = 16
/** A piece hash lookup returns at most this many (root, index) candidates. */
const PIECE_CANDIDATES_MAX = 8

const TYPE_CODE = { file: 0, dir: 1 } as const
/**
 * How far the sequence counter jumps at each start: more than the rows one process can have sent
 * without them being durable (an open batch, the WAL since its last sync). 2^24 per start leaves
 * room for 2^29 starts below 2^53.
 */
const SEQ_RESTART_GAP = 2 ** 24

interface EntryRow {
  share: string, path: string, type: number, deleted: number, size: number, mtime: number, root: Buffer,
  version: string, by: string, seq: number, lsize: number | null, lmtime: number | null, lino: number | null, src: string
}
interface PendingRow extends Omit<EntryRow, 'seq' | 'lsize' | 'lmtime' | 'lino' | 'src'> { src: string, keep_local: number, as_is: number, data?: Buffer | null }

function rowToEntry (r: EntryRow | PendingRow): Entry {
  return {
    path: r.path,
    type: r.type === 1 ? 'dir' : 'file',
    deleted: r.deleted === 1,
    size: r.size,
    mtime: r.mtime,
    root: r.root,
    version: decodeVersion(r.version),
    by: r.by
  }
}

function rowToStored (r: EntryRow): StoredEntry {
  return {
    ...rowToEntry(r),
    seq: r.seq,
    src: r.src,
    local: r.lsize === null ? null : { size: r.lsize, mtimeMs: r.lmtime ?? 0, ino: r.lino ?? 0 }
  }
}

export interface ShareRow { id: string, dir: string, indexId: string }
/** The part of an index row a scan compares with the disk. */
export interface LocalRow { path: string, dir: boolean, deleted: boolean, local: LocalStat | null }
const LOCAL_COLS = 'path, type, deleted, lsize, lmtime, lino'
/** keepLocal: the live local file at the path lost a conflict and is moved aside when this is installed. */
/**
 * data: a small file's content as the peer sent it inline, kept while it waits (a write that
 * failed is retried from it: small files are not served as pieces, see entries_root_big).
 * allPending leaves it out (undefined); getPending has it (null if none was kept).
 */
export interface PendingEntry { entry: Entry, src: string, keepLocal: boolean, asIs: boolean, data?: Buffer | null }

/** A count of index rows and the bytes of the files among them. */
export interface ItemsBytes { items: number, bytes: number }

export class IndexDb {
  readonly db: Database.Database
  private readonly st: ReturnType<IndexDb['prepare']>
  private readonly file: string
  /** The look at the WAL's size a write armed (see checkpoint.ts), or null. */
  private checkpointTimer: NodeJS.Timeout | null = null
  private checkpointing = false
  /** The disk thread has a connection of its own to this file (to close with the index). */
  private threadConnection = false
  /** WAL checkpoints done (status, tests). */
  checkpoints = 0

  constructor (stateDir: string) {
    const file = join(stateDir, 'index.db')
    try {
      this.db = new Database(file)
    } catch (err) {
      throw new SwarmError('ERR_STATE_DIR', `cannot open index ${file}: ${(err as Error).message}`, { cause: err })
    }
    this.db.pragma('journal_mode = WAL')
    // NORMAL is durable across process crashes (SIGKILL) in WAL mode; only power loss can drop the last commits.
    this.db.pragma('synchronous = NORMAL')
    // Checkpoints run in the disk thread, not inside a commit (checkpoint.ts).
    this.db.pragma('wal_autocheckpoint = 0')
    this.file = file
    this.db.exec(SCHEMA)
    this.addLayerPieces()
    // An index made before pending rows kept inline data.
    if (!(this.db.prepare('PRAGMA table_info(pending)').all() as Array<{ name: string }>).some(c => c.name === 'data')) this.db.exec('ALTER TABLE pending ADD COLUMN data BLOB')
    this.st = this.prepare()
  }

  /** Index a state dir made before layer_pieces existed: every stored layer, once. */
  private addLayerPieces (): void {
    const exists = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'layer_pieces'").get() !== undefined
    if (exists) return
    this.transaction(() => {
      this.db.exec(LAYER_PIECES_SCHEMA)
      const insert = this.db.prepare('INSERT OR IGNORE INTO layer_pieces (hash, root, idx) VALUES (?, ?, ?)')
      // In pages: better-sqlite3 cannot write while a statement is still iterating.
      const page = this.db.prepare('SELECT root, layer FROM layers WHERE root > ? ORDER BY root LIMIT 256')
      for (let after: Buffer = Buffer.alloc(0); ;) {
        const rows = page.all(after) as Array<{ root: Buffer, layer: Buffer }>
        if (rows.length === 0) break
        for (const r of rows) for (let i = 0; i * 32 < r.layer.length; i++) insert.run(r.layer.subarray(i * 32, i * 32 + PIECE_KEY_BYTES), r.root, i)
        after = rows[rows.length - 1]!.root
      }
    })
  }

  private prepare () {
    const d = this.db
    return {
      getShare: d.prepare('SELECT id, dir, index_id AS indexId FROM shares WHERE id = ?'),
      insertShare: d.prepare('INSERT INTO shares (id, dir, index_id) VALUES (?, ?, ?)'),
      setShareDir: d.prepare('UPDATE shares SET dir = ? WHERE id = ?'),
      maxSeq: d.prepare('SELECT MAX(seq) AS seq FROM entries WHERE share = ?'),
      getEntry: d.prepare('SELECT * FROM entries WHERE share = ? AND path = ?'),
      allEntries: d.prepare('SELECT * FROM entries WHERE share = ?'),
      entriesAfter: d.prepare('SELECT * FROM entries WHERE share = ? AND seq > ? AND src != ? ORDER BY seq LIMIT ?'),
      childEntries: d.prepare("SELECT * FROM entries WHERE share = ? AND path > ? AND path < ? AND deleted = 0"),
      upsertEntry: d.prepare(`INSERT INTO entries (share, path, type, deleted, size, mtime, root, version, by, seq, lsize, lmtime, lino, src)
        VALUES (@share, @path, @type, @deleted, @size, @mtime, @root, @version, @by, @seq, @lsize, @lmtime, @lino, @src)
        ON CONFLICT (share, path) DO UPDATE SET type = excluded.type, deleted = excluded.deleted, size = excluded.size,
        mtime = excluded.mtime, root = excluded.root, version = excluded.version, by = excluded.by, seq = excluded.seq,
        lsize = excluded.lsize, lmtime = excluded.lmtime, lino = excluded.lino, src = excluded.src`),
      setLocal: d.prepare('UPDATE entries SET lsize = ?, lmtime = ?, lino = ? WHERE share = ? AND path = ?'),
      byRoot: d.prepare(`SELECT * FROM entries WHERE root = ? AND size = ? AND size > ${INLINE_MAX} AND deleted = 0 AND type = 0 AND lsize IS NOT NULL LIMIT 8`),
      byRootPrefix: d.prepare(`SELECT * FROM entries WHERE root >= ? AND root < ? AND size > ${INLINE_MAX} AND deleted = 0 AND type = 0 AND lsize IS NOT NULL LIMIT 8`),
      getPending: d.prepare('SELECT * FROM pending WHERE share = ? AND path = ?'),
      allPending: d.prepare('SELECT share, path, type, deleted, size, mtime, root, version, by, src, keep_local, as_is FROM pending WHERE share = ?'),
      upsertPending: d.prepare(`INSERT OR REPLACE INTO pending (share, path, type, deleted, size, mtime, root, version, by, src, keep_local, as_is, data)
        VALUES (@share, @path, @type, @deleted, @size, @mtime, @root, @version, @by, @src, @keepLocal, @asIs, @data)`),
      deletePending: d.prepare('DELETE FROM pending WHERE share = ? AND path = ?'),
      getCursor: d.prepare('SELECT index_id AS indexId, seq FROM cursors WHERE peer = ? AND share = ?'),
      setCursor: d.prepare('INSERT OR REPLACE INTO cursors (peer, share, index_id, seq) VALUES (?, ?, ?, ?)'),
      setAck: d.prepare('INSERT INTO acks (peer, share, seq) VALUES (?, ?, ?) ON CONFLICT (peer, share) DO UPDATE SET seq = MAX(seq, excluded.seq)'),
      // Every peer this node ever exchanged the share with: those it applied entries from, and those that acked.
      ackHorizon: d.prepare(`SELECT MIN(COALESCE(a.seq, 0)) AS seq, COUNT(*) AS peers FROM
        (SELECT peer FROM cursors WHERE share = @share UNION SELECT peer FROM acks WHERE share = @share) p
        LEFT JOIN acks a ON a.peer = p.peer AND a.share = @share`),
      getClock: d.prepare('SELECT clock FROM clocks WHERE share = ?'),
      raiseClock: d.prepare('INSERT INTO clocks (share, clock) VALUES (?, ?) ON CONFLICT (share) DO UPDATE SET clock = MAX(clock, excluded.clock)'),
      doomedTombstones: d.prepare('SELECT version FROM entries WHERE share = @share AND deleted = 1 AND seq <= @upTo AND seq < (SELECT MAX(seq) FROM entries WHERE share = @share)'),
      dropTombstones: d.prepare('DELETE FROM entries WHERE share = @share AND deleted = 1 AND seq <= @upTo AND seq < (SELECT MAX(seq) FROM entries WHERE share = @share)'),
      countTombstones: d.prepare('SELECT COUNT(*) AS n FROM entries WHERE share = ? AND deleted = 1'),
      liveTotals: d.prepare('SELECT COUNT(*) AS items, COALESCE(SUM(size), 0) AS bytes FROM entries WHERE share = ? AND deleted = 0 AND type = 0'),
      pendingBySource: d.prepare('SELECT src, COUNT(*) AS items, COALESCE(SUM(size), 0) AS bytes FROM pending WHERE share = ? GROUP BY src'),
      getAck: d.prepare('SELECT seq FROM acks WHERE peer = ? AND share = ?'),
      unacked: d.prepare('SELECT COUNT(*) AS items, COALESCE(SUM(CASE WHEN deleted = 0 AND type = 0 THEN size ELSE 0 END), 0) AS bytes FROM entries WHERE share = ? AND seq > ? AND src != ?'),
      getLayer: d.prepare('SELECT layer FROM layers WHERE root = ?'),
      putLayer: d.prepare('INSERT OR IGNORE INTO layers (root, layer) VALUES (?, ?)'),
      putPiece: d.prepare('INSERT OR IGNORE INTO layer_pieces (hash, root, idx) VALUES (?, ?, ?)'),
      hasPiece: d.prepare('SELECT 1 FROM layer_pieces WHERE hash = ? AND root = ?'),
      deletePiece: d.prepare('DELETE FROM layer_pieces WHERE hash = ? AND root = ?'),
      piecesByHash: d.prepare(`SELECT root, idx FROM layer_pieces WHERE hash = ? LIMIT ${PIECE_CANDIDATES_MAX}`),
      anyLocalWithRoot: d.prepare(`SELECT 1 FROM entries WHERE root = ? AND size > ${INLINE_MAX} AND deleted = 0 AND type = 0 AND lsize IS NOT NULL LIMIT 1`),
      getPartial: d.prepare('SELECT have FROM partials WHERE root = ?'),
      putPartial: d.prepare('INSERT OR REPLACE INTO partials (root, have) VALUES (?, ?)'),
      deletePartial: d.prepare('DELETE FROM partials WHERE root = ?'),
      putBlob: d.prepare('INSERT OR IGNORE INTO blobs (root, size, added) VALUES (?, ?, ?)'),
      deleteBlob: d.prepare('DELETE FROM blobs WHERE root = ? AND size = ?'),
      allBlobs: d.prepare('SELECT root, size FROM blobs'),
      entriesByRoot: d.prepare('SELECT * FROM entries WHERE share = ? AND root = ? AND deleted = 0'),
      liveFrom: d.prepare('SELECT * FROM entries WHERE share = ? AND path >= ? ORDER BY path'),
      getManifest: d.prepare('SELECT seq, clock, state FROM manifests WHERE share = ?'),
      putManifest: d.prepare('INSERT OR REPLACE INTO manifests (share, seq, clock, state) VALUES (?, ?, ?, ?)'),
      // Direct children of a folder: the range holds its whole subtree, the rest is filtered in SQLite.
      childrenOf: d.prepare(`SELECT ${LOCAL_COLS} FROM entries WHERE share = ? AND path > ? AND path < ? AND instr(substr(path, ?), '/') = 0`),
      topLevel: d.prepare(`SELECT ${LOCAL_COLS} FROM entries WHERE share = ? AND instr(path, '/') = 0`)
    }
  }

  transaction<T> (fn: () => T): T { return this.db.transaction(fn)() }

  openShare (id: string, dir: string): ShareRow {
    let row = this.st.getShare.get(id) as ShareRow | undefined
    if (row === undefined) {
      this.st.insertShare.run(id, dir, randomBytes(8).toString('hex'))
      row = this.st.getShare.get(id) as ShareRow
    } else if (row.dir !== dir) {
      this.st.setShareDir.run(dir, id)
      row.dir = dir
    }
    return row
  }

  /**
   * The share's sequence counter lives in memory; the durable value is the highest seq in
   * `entries` (every increment is written with the row it numbers, in the same transaction).
   */
  private readonly seqs = new Map<string, number>()

  currentSeq (share: string): number {
    let seq = this.seqs.get(share)
    if (seq === undefined) {
      // Rows sent to peers may not have reached the disk before a crash or power cut (a batch's
      // transaction is open while it is applied; synchronous = NORMAL). Numbering starts past any
      // such row, so a peer whose cursor is already beyond MAX(seq) never skips a new change.
      const max = this.storedMaxSeq(share)
      seq = max === 0 ? 0 : max + SEQ_RESTART_GAP
      this.seqs.set(share, seq)
    }
    return seq
  }

  nextSeq (share: string): number {
    const seq = this.currentSeq(share) + 1
    this.seqs.set(share, seq)
    return seq
  }

  getEntry (share: string, path: string): StoredEntry | undefined {
    const r = this.st.getEntry.get(share, path) as EntryRow | undefined
    return r === undefined ? undefined : rowToStored(r)
  }

  allEntries (share: string): StoredEntry[] {
    return (this.st.allEntries.all(share) as EntryRow[]).map(rowToStored)
  }

  /** Every entry of a share, one at a time (no whole-share array); nothing may be written meanwhile. */
  * iterateEntries (share: string): Generator<StoredEntry> {
    for (const r of this.st.allEntries.iterate(share) as IterableIterator<EntryRow>) yield rowToStored(r)
  }

  /** What the index holds directly inside a folder ('' = the share's top level): type and local stat only, for a scan. */
  localRowsIn (share: string, dirPath: string): LocalRow[] {
    const rows = dirPath === ''
      ? this.st.topLevel.all(share)
      : this.st.childrenOf.all(share, dirPath + '/', dirPath + '0', dirPath.length + 2)
    return (rows as Array<Pick<EntryRow, 'path' | 'type' | 'deleted' | 'lsize' | 'lmtime' | 'lino'>>).map(r => ({
      path: r.path,
      dir: r.type === TYPE_CODE.dir,
      deleted: r.deleted === 1,
      local: r.lsize === null ? null : { size: r.lsize, mtimeMs: r.lmtime ?? 0, ino: r.lino ?? 0 }
    }))
  }

  /** The saved manifest state of a share, with the MAX(seq) and version clock it was saved at. */
  getManifest (share: string): { seq: number, clock: number, state: Buffer } | undefined {
    return this.st.getManifest.get(share) as { seq: number, clock: number, state: Buffer } | undefined
  }

  /** Saves a share's manifest state as of the entries written so far (call outside a transaction). */
  putManifest (share: string, clock: number, state: Buffer): void {
    this.st.putManifest.run(share, this.storedMaxSeq(share), clock, state)
  }

  /** MAX(seq) of the entries on disk (not the in-memory counter, which starts past it). */
  storedMaxSeq (share: string): number {
    return (this.st.maxSeq.get(share) as { seq: number | null }).seq ?? 0
  }

  /** Entries after `seq`, leaving out versions that came from peer `notFrom`. */
  entriesAfter (share: string, seq: number, limit: number, notFrom = '\0'): StoredEntry[] {
    return (this.st.entriesAfter.all(share, seq, notFrom, limit) as EntryRow[]).map(rowToStored)
  }

  /** Live (non-deleted) entries strictly below a directory path. */
  liveChildren (share: string, dirPath: string): StoredEntry[] {
    // '/' + 1 is '0': every path that starts with `dir/` sorts in [dir/, dir0).
    return (this.st.childEntries.all(share, dirPath + '/', dirPath + '0') as EntryRow[]).map(rowToStored)
  }

  /** Writes an entry with a fresh sequence number; returns that number. `src`: the peer it came from ('' = made here). */
  putEntry (share: string, e: Entry, local: LocalStat | null, src = ''): number {
    const seq = this.nextSeq(share)
    this.noteWrite()
    this.st.upsertEntry.run({
      share, path: e.path, type: TYPE_CODE[e.type], deleted: e.deleted ? 1 : 0, size: e.size, mtime: e.mtime,
      root: e.root, version: encodeVersion(e.version), by: e.by, seq,
      lsize: local?.size ?? null, lmtime: local?.mtimeMs ?? null, lino: local?.ino ?? null, src
    })
    return seq
  }

  setLocal (share: string, path: string, local: LocalStat): void {
    this.st.setLocal.run(local.size, local.mtimeMs, local.ino, share, path)
  }

  /** Entries (any share) whose content on disk has this root and size: used to copy instead of fetch. */
  localByRoot (root: Buffer, size: number): Array<StoredEntry & { share: string }> {
    return (this.st.byRoot.all(root, size) as EntryRow[]).map(r => ({ ...rowToStored(r), share: r.share }))
  }

  localByInfoHash (infoHash: Buffer): Array<StoredEntry & { share: string }> {
    const lo = Buffer.concat([infoHash, Buffer.alloc(12, 0)])
    const hi = Buffer.concat([infoHash, Buffer.alloc(12, 0xff)])
    return (this.st.byRootPrefix.all(lo, hi) as EntryRow[]).map(r => ({ ...rowToStored(r), share: r.share }))
  }

  getPending (share: string, path: string): PendingEntry | undefined {
    const r = this.st.getPending.get(share, path) as PendingRow | undefined
    return r === undefined ? undefined : { entry: rowToEntry(r), src: r.src, keepLocal: r.keep_local === 1, asIs: r.as_is === 1, data: r.data ?? null }
  }

  allPending (share: string): PendingEntry[] {
    return (this.st.allPending.all(share) as PendingRow[]).map(r => ({ entry: rowToEntry(r), src: r.src, keepLocal: r.keep_local === 1, asIs: r.as_is === 1 }))
  }

  /** asIs: the entry is the peer's version unchanged (not a merge), so it need not be sent back to it. */
  putPending (share: string, e: Entry, src: string, keepLocal = false, asIs = false, data: Buffer | null = null): void {
    this.st.upsertPending.run({
      share, path: e.path, type: TYPE_CODE[e.type], deleted: e.deleted ? 1 : 0, size: e.size, mtime: e.mtime,
      root: e.root, version: encodeVersion(e.version), by: e.by, src, keepLocal: keepLocal ? 1 : 0, asIs: asIs ? 1 : 0,
      data: data !== null && data.length === e.size && e.size <= INLINE_MAX ? data : null
    })
  }

  deletePending (share: string, path: string): void { this.st.deletePending.run(share, path) }

  getCursor (peer: string, share: string): { indexId: string, seq: number } | undefined {
    return this.st.getCursor.get(peer, share) as { indexId: string, seq: number } | undefined
  }

  setCursor (peer: string, share: string, indexId: string, seq: number): void {
    this.st.setCursor.run(peer, share, indexId, seq)
  }

  /** Every peer's entries of `share` are taken again from the start (rules changed: what was skipped may apply now). */
  resetCursors (share: string): void {
    this.db.prepare('UPDATE cursors SET seq = 0 WHERE share = ?').run(share)
  }

  /** Peer `peer` has applied our entries of `share` up to `seq` (only ever moves forward). */
  setAck (peer: string, share: string, seq: number): void { this.st.setAck.run(peer, share, seq) }

  /**
   * Deletes the tombstones of a share that every peer known to the share has applied; returns
   * how many. The newest row is always kept: the share's sequence counter is its MAX(seq).
   */
  collectTombstones (share: string): number {
    const h = this.st.ackHorizon.get({ share }) as { seq: number | null, peers: number }
    if (h.peers === 0 || h.seq === null || h.seq <= 0) return 0
    return this.transaction(() => {
      let clock = 0
      for (const r of this.st.doomedTombstones.all({ share, upTo: h.seq }) as Array<{ version: string }>) clock = Math.max(clock, maxCounter(decodeVersion(r.version)))
      if (clock > 0) this.st.raiseClock.run(share, clock)
      return this.st.dropTombstones.run({ share, upTo: h.seq }).changes
    })
  }

  /** The highest version counter of this share's collected tombstones (0 if none). */
  getClock (share: string): number {
    return (this.st.getClock.get(share) as { clock: number } | undefined)?.clock ?? 0
  }

  /** Live files of a share and their bytes: one pass over the share's rows (status caches it). */
  liveTotals (share: string): ItemsBytes { return this.st.liveTotals.get(share) as ItemsBytes }

  /** What this node still has to fetch for a share, by the peer each version came from. */
  pendingBySource (share: string): Array<ItemsBytes & { src: string }> { return this.st.pendingBySource.all(share) as Array<ItemsBytes & { src: string }> }

  /**
   * Our entries a peer has not acknowledged yet (not counting those it sent us): what it still has
   * to apply. Null if it never acknowledged any and `known` is set (a peer that may not share it).
   */
  unackedBy (peer: string, share: string, known = false): ItemsBytes | null {
    const ack = (this.st.getAck.get(peer, share) as { seq: number } | undefined)?.seq
    if (ack === undefined && known) return null
    return this.st.unacked.get(share, ack ?? 0, peer) as ItemsBytes
  }

  tombstoneCount (share: string): number { return (this.st.countTombstones.get(share) as { n: number }).n }

  getLayer (root: Buffer): Buffer | null {
    const r = this.st.getLayer.get(root) as { layer: Buffer } | undefined
    return r?.layer ?? null
  }

  /**
   * Stores a piece layer and indexes its piece hashes. Called again for a root already stored
   * (rehashed, fetched again) it indexes the pieces again if they were pruned meanwhile: content
   * that comes back is found again.
   */
  putLayer (root: Buffer, layer: Buffer): void {
    if (layer.length === 0) return
    this.noteWrite()
    this.transaction(() => {
      const added = this.st.putLayer.run(root, layer).changes > 0
      // Pruning takes all of a root's rows in one transaction: its first piece says for all of them.
      if (!added && this.st.hasPiece.get(layer.subarray(0, PIECE_KEY_BYTES), root) !== undefined) return
      for (let i = 0; i * 32 < layer.length; i++) this.st.putPiece.run(layer.subarray(i * 32, i * 32 + PIECE_KEY_BYTES), root, i)
    })
  }

  /** Roots whose layer holds a piece with this hash, and the piece's index there (stale rows included: check the root is still held). */
  piecesWithHash (hash: Buffer): Array<{ root: Buffer, idx: number }> {
    return this.st.piecesByHash.all(hash.subarray(0, PIECE_KEY_BYTES)) as Array<{ root: Buffer, idx: number }>
  }

  /** Drops the piece index of content this node no longer holds (its layer stays, for serving and later downloads). */
  forgetLayerPieces (root: Buffer): void {
    const layer = this.getLayer(root)
    if (layer === null) return
    this.transaction(() => {
      for (let i = 0; i * 32 < layer.length; i++) this.st.deletePiece.run(layer.subarray(i * 32, i * 32 + PIECE_KEY_BYTES), root)
    })
  }

  /** Whether any share has a live local file with this root. */
  hasLocalWithRoot (root: Buffer): boolean { return this.st.anyLocalWithRoot.get(root) !== undefined }

  getPartial (root: Buffer): Uint8Array | null {
    const r = this.st.getPartial.get(root) as { have: Buffer } | undefined
    return r?.have ?? null
  }

  putPartial (root: Buffer, have: Uint8Array): void { this.st.putPartial.run(root, Buffer.from(have)) }
  deletePartial (root: Buffer): void { this.st.deletePartial.run(root) }

  putBlob (root: Buffer, size: number): void { this.st.putBlob.run(root, size, Date.now()) }
  deleteBlob (root: Buffer, size: number): void { this.st.deleteBlob.run(root, size) }
  allBlobs (): Array<{ root: Buffer, size: number }> { return this.st.allBlobs.all() as Array<{ root: Buffer, size: number }> }

  /** Live entries of a share (the catalog) with this root, and this size if given (by the root index). */
  entriesWithRoot (share: string, root: Buffer, size?: number): StoredEntry[] {
    const rows = (this.st.entriesByRoot.all(share, root) as EntryRow[]).map(rowToStored)
    return size === undefined ? rows : rows.filter(e => e.size === size)
  }

  /** Live entries of a share whose path starts with `prefix`, in path order. */
  liveWithPrefix (share: string, prefix: string): StoredEntry[] {
    const out: StoredEntry[] = []
    for (const r of this.st.liveFrom.iterate(share, prefix) as IterableIterator<EntryRow>) {
      if (!r.path.startsWith(prefix)) break   // paths sort bytewise: every match comes before the first miss
      if (r.deleted === 0) out.push(rowToStored(r))
    }
    return out
  }

  /** Arms one look at the WAL's size; a WAL past WAL_CHECKPOINT_BYTES is checkpointed in the disk thread. */
  private noteWrite (): void {
    if (this.checkpointTimer !== null) return
    this.checkpointTimer = setTimeout(() => { this.checkpointTimer = null; void this.checkpointIfBig() }, CHECKPOINT_CHECK_MS)
    this.checkpointTimer.unref()
  }

  private async checkpointIfBig (): Promise<void> {
    if (this.checkpointing || !this.db.open) return
    let size = 0
    try { size = fs.statSync(this.file + '-wal').size } catch { return }
    if (size <= WAL_CHECKPOINT_BYTES) return
    this.checkpointing = true
    try {
      this.threadConnection = true
      if (!await diskThread.checkpoint(this.file) && this.db.open) this.db.pragma('wal_checkpoint(PASSIVE)')
      this.checkpoints++
    } finally { this.checkpointing = false }
  }

  close (): void {
    if (this.checkpointTimer !== null) clearTimeout(this.checkpointTimer)
    this.checkpointTimer = null
    if (this.threadConnection) void diskThread.checkpoint(this.file, true)   // the thread's connection goes too
    this.db.close()
  }
}
