// Pure merge decisions: given what this node holds for a path and what a peer sent, what now?
// Deterministic, so every node that sees the same two versions makes the same choice.
import type { Entry } from '../model/entry.js'
import { sameContent, pickWinner } from '../model/entry.js'
import { compareVersions, mergeVersions } from '../model/version.js'
import { conflictName } from '../model/paths.js'

export type Decision =
  | { kind: 'ignore' }                                   // we already have this or something newer
  | { kind: 'accept', entry: Entry }                     // take the remote entry as it is
  | { kind: 'merge-meta', entry: Entry }                 // concurrent but same content: merged vector, no data moves
  | { kind: 'conflict', entry: Entry, loser: Entry, copy: Entry, localLost: boolean }

export { pickWinner }

export function decide (local: Entry | undefined, remote: Entry): Decision {
  if (local === undefined) return { kind: 'accept', entry: remote }
  const order = compareVersions(remote.version, local.version)
  if (order === 'equal' || order === 'lesser') return { kind: 'ignore' }
  if (order === 'greater') return { kind: 'accept', entry: remote }
  const winner = pickWinner(local, remote)
  const merged: Entry = { ...winner, version: mergeVersions(local.version, remote.version) }
  if (sameContent(local, remote)) return { kind: 'merge-meta', entry: merged }
  const loser = winner === local ? remote : local
  if (loser.deleted || loser.type === 'dir' || winner.type === 'dir') {
    // Nothing to keep from a deletion; folders hold no content of their own.
    return { kind: 'accept', entry: merged }
  }
  // The copy carries the loser's own vector and origin, so every node that makes it makes the same entry.
  const copy: Entry = { ...loser, path: conflictName(loser.path, loser.mtime, loser.by) }
  return { kind: 'conflict', entry: merged, loser, copy, localLost: loser === local }
}
