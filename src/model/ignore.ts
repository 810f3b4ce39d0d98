// Owns which share paths are ignored: the built-in junk list, the share's own `.swarmignore`
// (gitignore syntax, read by the `ignore` library) and this node's extra patterns, and how one
// set of rules compares with an earlier one (may it bring ignored paths back?).
//
// Semantics are gitignore's for one file at the share root: a pattern without '/' matches a name
// at any depth, a trailing '/' matches folders only, '!' re-includes, and nothing below an ignored
// folder can be re-included. Nested .swarmignore files are not read. The `.swarmignore` file
// itself is never ignored: it replicates so that one edit configures every node.
import ignore, { type Ignore } from 'ignore'

/** The share-root file holding the share's ignore patterns; it replicates like any file. */
export const IGNORE_FILE = '.swarmignore'

/**
 * Junk that never replicates, on every node: editor swap/backup/lock files and the folders and
 * files desktop OSes drop into every folder. Nothing a web server would serve is on this list.
 */
export const DEFAULT_IGNORES: readonly string[] = [
  '*.swp', '*.swx', '.*.swp',          // vim swap files
  '*~',                                // backup files (emacs, gedit, ...)
  '.#*', '\\#*#',                      // emacs lock and auto-save files (a leading '#' is escaped: it starts a comment)
  '.DS_Store', '.Trashes', '.fseventsd', '.Spotlight-V100',   // macOS
  'Thumbs.db', 'desktop.ini'           // Windows
]

/** A `.swarmignore` larger than this is not read (it comes from peers too): defaults and local patterns still apply. */
export const MAX_IGNORE_FILE_BYTES = 256 * 1024

/**
 * The library caches every path it was asked about, forever; over a million-file sweep that is
 * a million-key object. The matcher is rebuilt from the same patterns after this many lookups
 * (rebuilding costs microseconds; the cache keeps parent folders hot within a folder's files).
 */
const LOOKUPS_PER_MATCHER = 50_000

/** How a path whose type is not known matches: ignored, not ignored, or ignored only if it is a folder. */
export type IgnoreAnswer = 'yes' | 'no' | 'if-dir'

export class IgnoreRules {
  /** The patterns in effect, in order: defaults, the share's file, then this node's. */
  readonly patterns: readonly string[]
  private matcher: Ignore
  private lookups = 0

  /** The full list of patterns in effect (see of() for building it from a share's file). */
  constructor (patterns: readonly string[]) {
    this.patterns = patterns
    this.matcher = ignore().add(this.patterns as string[])
  }

  /** `fileText`: the share's .swarmignore ('' when there is none); `extra`: this node's own patterns. */
  static of (fileText: string, extra: readonly string[] = []): IgnoreRules {
    return new IgnoreRules([...DEFAULT_IGNORES, ...patternLines(fileText), ...extra.flatMap(patternLines)])
  }

  /** Whether `rel` (share-relative, '/'-separated, not '') is ignored; `isDir` says it is a folder. */
  ignores (rel: string, isDir: boolean): boolean {
    if (rel === IGNORE_FILE) return false
    if (++this.lookups > LOOKUPS_PER_MATCHER) {
      this.lookups = 0
      this.matcher = ignore().add(this.patterns as string[])
    }
    return this.matcher.ignores(isDir ? rel + '/' : rel)
  }

  /** For a path whose type is not known (a watcher event): a folder-only pattern answers 'if-dir'. */
  answer (rel: string): IgnoreAnswer {
    if (this.ignores(rel, false)) return 'yes'
    return this.ignores(rel, true) ? 'if-dir' : 'no'
  }

  /**
   * Whether these rules may leave unignored a path `before` ignored: a pattern was removed or
   * moved, or a re-including '!' pattern was added. The last matching pattern decides, so with
   * the earlier patterns all still there in the same order, added plain patterns only ever ignore
   * more; moving one ('!keep' from before '*' to after it) can bring paths back.
   */
  mayUnignore (before: readonly string[]): boolean {
    let kept = 0   // how many of `before`, in order, are found among the patterns so far
    for (const p of this.patterns) {
      if (kept < before.length && p === before[kept]) kept++
      else if (p.startsWith('!')) return true
    }
    return kept < before.length
  }
}

/** Pattern lines of a gitignore text: blank lines and comments dropped (the library would skip them too). */
function patternLines (text: string): string[] {
  return text.split(/\r?\n/).filter(l => l.trim() !== '' && !l.startsWith('#'))
}

/** Checks a node's extra patterns (ShareSpec.ignore): an array of strings without line breaks. */
export function extraPatternsProblem (v: unknown): string | null {
  if (v === undefined) return null
  if (!Array.isArray(v)) return 'ignore must be an array of gitignore patterns'
  for (const p of v) {
    if (typeof p !== 'string') return 'ignore patterns must be strings'
    if (/[\r\n\0]/.test(p)) return `ignore pattern ${JSON.stringify(p)} holds a line break or NUL`
  }
  return null
}
