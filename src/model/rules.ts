// What an honest node can send: the limits and shapes every value from a peer is checked
// against (by wire/gate.ts, the one place remote input is validated) before it reaches the
// merge rules, the index or the disk. Each limit says why it is where it is.
import { pathProblem } from './paths.js'
import type { Entry } from './entry.js'

/**
 * Largest file a peer may announce: 256 GiB. A claim drives allocations (bitfield, picker state)
 * before any byte is verified: 1 M pieces of 256 KiB cost ~85 ms and ~45 MiB to set up (4 M: 0.5 s,
 * 100 MiB), times MAX_CONCURRENT_FETCHES. Larger files are out of scope for now.
 */
export const MAX_FILE_SIZE = 256 * 2 ** 30
/** Files up to this size travel inline with their entry: no extra round trip, no piece exchange. */
export const INLINE_MAX = 128 * 1024
/**
 * Largest version counter accepted: 2^48. A local edit adds 1 to the highest counter seen, so
 * this keeps every counter a safe integer forever (2^53 − 1 would overflow on the next edit),
 * and no honest node makes 2^48 edits.
 */
export const MAX_VERSION_COUNTER = 2 ** 48
/** Version vectors name the nodes that edited a path; more than this is not a real history. */
export const MAX_VERSION_COMPONENTS = 1024
/** mtimes from a peer: within ±10,000 years of the epoch (what Date and every filesystem can hold). */
export const MAX_ABS_MTIME_MS = 8.64e15
const SHORT_ID = /^[1-9A-HJ-NP-Za-km-z]{1,16}$/     // base58, as node short ids are
const INDEX_ID = /^[0-9a-f]{1,32}$/

/** A node's short id (the tail of its PeerId): used in version vectors and conflict-copy names. */
export function shortIdProblem (s: string): string | null {
  return SHORT_ID.test(s) ? null : 'not a node short id'
}

/** A full PeerId as the transport prints it (base58, libp2p's Ed25519 form is 52 characters). */
export function peerIdProblem (s: string): string | null {
  return /^[1-9A-HJ-NP-Za-km-z]{16,64}$/.test(s) ? null : 'not a PeerId'
}

/** A share id: also a folder name by default, so nothing a filesystem or a log line could misread. */
export function shareIdProblem (s: string): string | null {
  if (s.length === 0 || Buffer.byteLength(s) > 255) return 'share ids are 1–255 bytes'
  if (/[\u0000-\u001f\u007f/\\]/.test(s)) return 'share ids have no control characters, / or \\'
  if (s === '.' || s === '..') return 'share id cannot be . or ..'
  return null
}

export function indexIdProblem (s: string): string | null {
  return INDEX_ID.test(s) ? null : 'not an index id'
}

/** Returns why an entry could not have come from an honest node, or null. */
export function entryProblem (e: Entry): string | null {
  const p = pathProblem(e.path)
  if (p !== null) return p
  if (shortIdProblem(e.by) !== null) return `bad origin node id ${JSON.stringify(e.by)}`
  if (!Number.isSafeInteger(e.size) || e.size < 0 || e.size > MAX_FILE_SIZE) return `size ${e.size} out of range`
  if (!Number.isSafeInteger(e.mtime) || Math.abs(e.mtime) > MAX_ABS_MTIME_MS) return 'mtime out of range'
  if (e.root.length !== 32) return 'root is not 32 bytes'
  if ((e.deleted || e.type === 'dir') && e.size !== 0) return 'folders and deletions have no size'
  const keys = Object.keys(e.version)
  if (keys.length === 0 || keys.length > MAX_VERSION_COMPONENTS) return 'version vector empty or too long'
  for (const k of keys) {
    if (shortIdProblem(k) !== null) return `bad node id ${JSON.stringify(k)} in version vector`
    const c = e.version[k]!
    if (!Number.isSafeInteger(c) || c < 1 || c > MAX_VERSION_COUNTER) return 'version counter out of range'
  }
  if (e.version[e.by] === undefined) return 'origin node missing from its own version vector'
  return null
}
