// The replicated unit of a share: one entry per path (file, folder, or tombstone).
// Entries are what manifests are made of; everything here is plain data.

export type VersionVector = Record<string, number>

export interface Entry {
  path: string              // share-relative, '/'-separated, validated by paths.ts
  type: 'file' | 'dir'
  deleted: boolean          // tombstone: the path was deleted at this version
  size: number
  mtime: number             // integer milliseconds since the epoch; replicated to every copy
  root: Buffer              // BEP 52 pieces root (ZERO_ROOT for folders, tombstones, empty files)
  version: VersionVector    // node short id → counter
  by: string                // short id of the node that made this version
}

/** How the file looked on this node's disk when the entry was last written or checked. */
export interface LocalStat { size: number, mtimeMs: number, ino: number }

export interface StoredEntry extends Entry {
  seq: number
  src: string               // peer this version came from; '' when made on this node
  local: LocalStat | null
}

/** Same kind and bytes. A BEP 52 root alone does not fix the size (a 64-byte file of two hashes has the root of a bigger file), so content is (root, size). */
export function sameContent (a: Entry, b: Entry): boolean {
  return a.type === b.type && a.deleted === b.deleted && (a.deleted || (a.size === b.size && a.root.equals(b.root)))
}

export function localStatOf (st: { size: number, mtimeMs: number, ino: number }): LocalStat {
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
}

export function sameLocal (a: LocalStat | null, st: { size: number, mtimeMs: number, ino: number }): boolean {
  return a !== null && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ino === st.ino
}

/** Which of two concurrent versions wins: a live entry beats a deletion, then newer mtime, then node id, then root. */
export function pickWinner (a: Entry, b: Entry): Entry {
  if (a.deleted !== b.deleted) return a.deleted ? b : a
  if (a.mtime !== b.mtime) return a.mtime > b.mtime ? a : b
  if (a.by !== b.by) return a.by > b.by ? a : b
  return a.root.compare(b.root) >= 0 ? a : b
}
