// The watcher contract: what the sync layer may expect from any watch backend (native inotify in
// inotify-watcher.ts, chokidar in chokidar-watcher.ts; createWatcher in index.ts picks one).
// A watcher reports *which paths to look at*, in batches; what changed is still decided by the
// sync layer stat-ing them against its index, so a backend may report a path more than once.

/** A share-relative path ('' is the share root, '/' separates, no leading or trailing slash). */
export type RelPath = string

export type WatchEvent =
  /** A new file, announced once it is closed after writing (or has settled, see the backend). */
  | { kind: 'create', path: RelPath }
  /** An existing file was closed after writing, or its attributes (mode, times) changed. */
  | { kind: 'write', path: RelPath }
  /** A file or folder is gone (everything below a gone folder is gone too). */
  | { kind: 'delete', path: RelPath }
  /** A file or folder was renamed inside the share: one event, not a delete and a create. */
  | { kind: 'move', from: RelPath, to: RelPath, dir: boolean }
  /** A new folder; it is already watched, and what was in it is reported too. */
  | { kind: 'dir-create', path: RelPath }
  /** The backend lost events (kernel queue overflow): the consumer must rescan everything. */
  | { kind: 'overflow' }

export type WatchBackend = 'inotify' | 'chokidar'

export interface WatcherOptions {
  /** One batch of events, in the order they happened, duplicates merged. */
  onEvents: (events: WatchEvent[]) => void
  /** A folder that cannot be watched, a backend notice or failure; watching goes on where it can. */
  onError: (err: Error, relDir: RelPath) => void
  /** Paths never reported and folders never watched (the share's .swarm meta dir). */
  ignore: (relPath: RelPath) => boolean
}

export interface Watcher {
  readonly backend: WatchBackend
  /**
   * True when files are announced only once closed after writing (inotify's IN_CLOSE_WRITE):
   * the consumer need not wait for a young file to settle before hashing it.
   */
  readonly reportsCloseWrite: boolean
  /** Folders watched right now. */
  readonly watchCount: number
  /** Resolves once the backend reports changes made from now on (chokidar's initial crawl). */
  readonly ready: Promise<void>
  /** Watches one folder (share-relative, '' is the root); idempotent. */
  add (relDir: RelPath): void
  /** Stops watching a folder and everything below it. */
  remove (relDir: RelPath): void
  close (): void
}

/** True if `rel` is `dir` or lies below it ('' contains everything). */
export function isWithin (rel: RelPath, dir: RelPath): boolean {
  return dir === '' || rel === dir || rel.startsWith(dir + '/')
}
