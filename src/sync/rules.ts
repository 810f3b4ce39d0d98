// A share's replication rules on this node: its mode (model/share-mode.ts) and its ignore rules
// (model/ignore.ts: defaults + the share's .swarmignore + this node's patterns), what each makes
// of a peer's entry, and the record in .swarm/rules.json of the rules the share last ran with.
//
// Ignored paths. They are not scanned, watched into or announced. A peer's entry for an ignored
// path is not applied here: whatever this node has there (or its lack of anything) stays, and the
// cursor moves past the entry. A path that BECOMES ignored keeps its index row as it was: no
// tombstone is sent and no peer deletes anything; the row just stops following the disk. When
// the rules change so that something ignored before may not be any more (a pattern removed, a
// '!' added, here or while the node was stopped), the folder is swept again and every peer's
// entries are taken again from the start ('resync'): what was skipped is applied now.
//
// send-only. Local changes go out. A peer's change is not applied to the folder (one log line
// and one 'not-applied' event per batch); only a version that changes nothing on disk (the same
// content and mtime this node holds, with a newer vector) is recorded, so nodes that hold the
// same thing still converge. The share's root then differs from its peers', so it is never
// reported in sync while it holds back changes. Switching away from send-only resyncs.
//
// receive-only. A peer's changes come in. Local changes are indexed (so the node knows its
// folder) but never sent: entries whose last version this node made are withheld from the feed.
// When a peer's change meets a local edit (concurrent versions), the peer's version always wins
// the path and the local edit is kept beside it as a conflict copy that also stays on this node
// (Syncthing's "local additions", kept rather than reverted: nothing the user wrote is lost).
// A peer's deletion of a path edited locally leaves the local edit in place. Leaving
// receive-only (a restart with another mode) sends what was withheld: its rows get new sequence
// numbers, so peers whose cursors passed them see them.
import { SwarmError } from '../errors.js'
import type { Entry } from '../model/entry.js'
import { sameContent } from '../model/entry.js'
import { IGNORE_FILE, IgnoreRules, MAX_IGNORE_FILE_BYTES, extraPatternsProblem } from '../model/ignore.js'
import { conflictName } from '../model/paths.js'
import { DEFAULT_SHARE_MODE, SHARE_MODES, type ShareMode, isShareMode } from '../model/share-mode.js'
import type { ShareDisk } from '../store/share-disk.js'
import type { Decision } from './merge.js'

/** In .swarm: the mode and ignore patterns the share last ran with, to see at start what changed meanwhile. */
const RULES_STATE_FILE = 'rules.json'

/**
 * What changed since the rules last recorded: `resync`, what was skipped may apply now (sweep
 * again, take peers' entries again from the start); `republish`, the share left receive-only
 * (send what it withheld).
 */
export interface RulesChange { resync: boolean, republish: boolean }

export class ShareRules {
  readonly mode: ShareMode
  private readonly extra: readonly string[]
  private ignoreRules: IgnoreRules

  /** Throws ERR_BAD_ARGUMENT for a mode or patterns that are not valid. */
  constructor (private readonly shareId: string, private readonly disk: ShareDisk, mode: unknown, extra: unknown,
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string) => void) {
    checkShareRules(shareId, { mode, ignore: extra })
    this.mode = (mode as ShareMode | undefined) ?? DEFAULT_SHARE_MODE
    this.extra = (extra as string[] | undefined) ?? []
    this.ignoreRules = IgnoreRules.of('', this.extra)
  }

  get patterns (): readonly string[] { return this.ignoreRules.patterns }

  /** (Re)reads .swarmignore and records the rules in .swarm; says what the caller must redo (see RulesChange). */
  load (): RulesChange {
    let text = ''
    try {
      text = this.disk.readSmallText(IGNORE_FILE, MAX_IGNORE_FILE_BYTES) ?? ''
    } catch (err) {
      this.log('warn', `share ${this.shareId}: not using ${IGNORE_FILE}: ${(err as Error).message}`)
    }
    this.ignoreRules = IgnoreRules.of(text, this.extra)
    const before = this.recorded()
    const now = { mode: this.mode, patterns: this.ignoreRules.patterns }
    const none = { resync: false, republish: false }
    if (before !== null && before.mode === now.mode && sameList(before.patterns, now.patterns)) return none
    this.disk.writeMeta(RULES_STATE_FILE, JSON.stringify(now) + '\n')
    if (before === null) return none
    return {
      resync: this.ignoreRules.mayUnignore(before.patterns) || (before.mode === 'send-only' && this.mode !== 'send-only'),
      republish: before.mode === 'receive-only' && this.mode !== 'receive-only'
    }
  }

  /** The rules recorded last, or null (none yet, or unreadable: then nothing is assumed to have changed). */
  private recorded (): { mode: string, patterns: string[] } | null {
    try {
      const v = JSON.parse(this.disk.readMeta(RULES_STATE_FILE) ?? 'null') as unknown
      if (typeof v !== 'object' || v === null) return null
      const { mode, patterns } = v as { mode?: unknown, patterns?: unknown }
      if (typeof mode !== 'string' || !Array.isArray(patterns) || !patterns.every(p => typeof p === 'string')) return null
      return { mode, patterns }
    } catch { return null }
  }

  ignores (rel: string, isDir: boolean): boolean { return this.ignoreRules.ignores(rel, isDir) }

  /** For a path whose type is not known: a folder-only pattern asks the disk (or `wasDir`, when nothing is there). */
  ignoresPath (rel: string, wasDir: () => boolean): boolean {
    const a = this.ignoreRules.answer(rel)
    if (a !== 'if-dir') return a === 'yes'
    const st = this.disk.lstat(rel)
    return st !== null ? st.isDirectory() : wasDir()
  }

  /** receive-only: entries whose last version this node made stay here. */
  withholds (e: Entry, shortId: string): boolean { return this.mode === 'receive-only' && e.by === shortId }

  /**
   * What the mode makes of a merge decision on a peer's entry: the decision to carry out, or null
   * when it is not applied here (send-only). `target` is what this node holds for the path.
   */
  adjust (d: Decision, target: Entry | undefined, remote: Entry, shortId: string): Decision | null {
    if (this.mode === 'send-only') {
      if (d.kind === 'ignore') return d
      if ((d.kind === 'accept' || d.kind === 'merge-meta') && changesNothingOnDisk(target, d.entry)) return d
      return null
    }
    if (this.mode === 'receive-only' && d.kind === 'conflict' && !d.localLost && target !== undefined && target.by === shortId) {
      // The local edit would win: in receive-only the peer's version takes the path, the edit is kept as a copy.
      const copy: Entry = { ...target, path: conflictName(target.path, target.mtime, target.by) }
      return { kind: 'conflict', entry: { ...remote, version: d.entry.version }, loser: target, copy, localLost: true }
    }
    return d
  }
}

/** Throws ERR_BAD_ARGUMENT unless `mode` is a share mode (or absent) and `ignore` a list of patterns (or absent). */
export function checkShareRules (shareId: string, { mode, ignore }: { mode?: unknown, ignore?: unknown }): void {
  if (mode !== undefined && !isShareMode(mode)) {
    throw new SwarmError('ERR_BAD_ARGUMENT', `share ${shareId}: mode ${JSON.stringify(mode)} is not one of ${SHARE_MODES.join(', ')}`)
  }
  const problem = extraPatternsProblem(ignore)
  if (problem !== null) throw new SwarmError('ERR_BAD_ARGUMENT', `share ${shareId}: ${problem}`)
}

/** True when `entry` holds what `cur` holds on disk (type, content and mtime): only its version is newer. */
function changesNothingOnDisk (cur: Entry | undefined, entry: Entry): boolean {
  if (cur === undefined) return entry.deleted
  return sameContent(cur, entry) && (entry.deleted || entry.type === 'dir' || cur.mtime === entry.mtime)
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
