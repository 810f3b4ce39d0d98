// Share-relative path rules. Every path that arrives from a peer passes through here before it
// touches the disk: no '..', no absolute paths, no NUL, no empty segments, nothing under .swarm/.

export const META_DIR = '.swarm'
const MAX_PATH_BYTES = 4096
const MAX_SEGMENT_BYTES = 255

/** Returns the reason a path is unacceptable, or null when it is fine. */
export function pathProblem (p: string): string | null {
  if (typeof p !== 'string' || p.length === 0) return 'empty path'
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return 'path too long'
  if (p.includes('\0')) return 'NUL in path'
  if (p.includes('\\')) return 'backslash in path'
  if (p.startsWith('/')) return 'absolute path'
  const parts = p.split('/')
  for (const s of parts) {
    if (s === '' || s === '.' || s === '..') return `bad segment '${s}'`
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) return 'segment too long'
  }
  if (parts[0] === META_DIR) return 'path inside .swarm/'
  return null
}

export function parentOf (p: string): string {
  const i = p.lastIndexOf('/')
  return i < 0 ? '' : p.slice(0, i)
}

export function joinRel (dir: string, name: string): string {
  return dir === '' ? name : dir + '/' + name
}

/** The n-th variant of a name (n ≥ 2), for a conflict copy whose own name is taken: a.sync-conflict-…-x-2.txt */
export function numberedName (p: string, n: number): string {
  const dir = parentOf(p)
  const base = p.slice(dir.length === 0 ? 0 : dir.length + 1)
  const dot = base.lastIndexOf('.')
  return dot > 0 ? joinRel(dir, fitName(base.slice(0, dot), `-${n}${base.slice(dot)}`)) : joinRel(dir, fitName(base, `-${n}`))
}

/** Deterministic conflict copy name, Syncthing style: name.sync-conflict-YYYYMMDD-HHMMSS-<by>.ext */
export function conflictName (p: string, mtime: number, by: string): string {
  const dir = parentOf(p)
  const base = p.slice(dir.length === 0 ? 0 : dir.length + 1)
  const dot = base.lastIndexOf('.')
  const stem = dot > 0 ? base.slice(0, dot) : base
  const ext = dot > 0 ? base.slice(dot) : ''
  const d = new Date(mtime)
  const pad = (n: number) => String(n).padStart(2, '0')
  const stamp = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  return joinRel(dir, fitName(stem, `.sync-conflict-${stamp}-${by}${ext}`))
}

/** stem + tail, the stem shortened (by whole characters) so the name fits MAX_SEGMENT_BYTES. */
function fitName (stem: string, tail: string): string {
  let chars = [...stem]
  while (chars.length > 1 && Buffer.byteLength(chars.join('') + tail) > MAX_SEGMENT_BYTES) chars = chars.slice(0, -1)
  return chars.join('') + tail
}
