// Version vectors: who changed an entry how many times. They order the history of one path
// across nodes: one vector dominates another (a later edit) or neither does (concurrent edits).
import type { VersionVector } from './entry.js'

export type Order = 'equal' | 'greater' | 'lesser' | 'concurrent'

export function compareVersions (a: VersionVector, b: VersionVector): Order {
  let aBigger = false
  let bBigger = false
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k] ?? 0
    const y = b[k] ?? 0
    if (x > y) aBigger = true
    else if (y > x) bBigger = true
  }
  if (aBigger && bBigger) return 'concurrent'
  if (aBigger) return 'greater'
  if (bBigger) return 'lesser'
  return 'equal'
}

/** The component-wise maximum: dominates (or equals) both inputs. */
export function mergeVersions (a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v)
  return out
}

/**
 * A new local edit: our counter jumps past every counter in the vector and past `floor` (the
 * highest counter this node has seen in the share), so it sorts after all of them — also after
 * a deletion whose record was garbage-collected here but is still held by a peer.
 */
export function bumpVersion (v: VersionVector | undefined, me: string, floor = 0): VersionVector {
  const out: VersionVector = { ...(v ?? {}) }
  out[me] = Math.max(floor, maxCounter(out)) + 1
  return out
}

export function maxCounter (v: VersionVector): number {
  let max = 0
  for (const c of Object.values(v)) if (c > max) max = c
  return max
}

/** Canonical text form (sorted keys) so equal vectors hash and store identically. */
export function encodeVersion (v: VersionVector): string {
  return JSON.stringify(Object.keys(v).sort().map(k => [k, v[k]]))
}

export function decodeVersion (s: string): VersionVector {
  const out: VersionVector = {}
  for (const [k, n] of JSON.parse(s) as Array<[string, number]>) out[k] = n
  return out
}
