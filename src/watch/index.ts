// Choosing a watch backend for a share: the native inotify addon where it loads, chokidar
// otherwise (not Linux, the addon not built) or when SWARM_WATCHER=chokidar asks for it. The
// fallback is announced once per watcher through onError, so the log says why.
import { SwarmError } from '../errors.js'
import { ChokidarWatcher } from './chokidar-watcher.js'
import { loadInotify } from './inotify-binding.js'
import { InotifyWatcher } from './inotify-watcher.js'
import type { WatchBackend, Watcher, WatcherOptions } from './watcher.js'

export type { Watcher, WatcherOptions, WatchEvent, WatchBackend, RelPath } from './watcher.js'

/** Environment variable that picks a backend: 'inotify' (the default where it loads) or 'chokidar'. */
export const WATCHER_ENV = 'SWARM_WATCHER'

export interface CreateWatcherOptions extends WatcherOptions {
  /** The backend to use; defaults to $SWARM_WATCHER, then inotify where it loads. */
  backend?: WatchBackend
}

/** Why the native backend cannot be used here, or null if it can. */
export function inotifyUnavailable (): string | null {
  const r = loadInotify()
  return 'reason' in r ? r.reason : null
}

export function createWatcher (root: string, opts: CreateWatcherOptions): Watcher {
  const env = process.env[WATCHER_ENV]
  const want = opts.backend ?? (env === undefined || env === '' ? undefined : env)
  if (want !== undefined && want !== 'inotify' && want !== 'chokidar') {
    throw new SwarmError('ERR_BAD_ARGUMENT', `${WATCHER_ENV}=${want}: expected 'inotify' or 'chokidar'`)
  }
  if (want === 'chokidar') return new ChokidarWatcher(root, opts)
  const r = loadInotify()
  let reason: string
  if ('binding' in r) {
    try { return new InotifyWatcher(r.binding, root, opts) } catch (err) { reason = (err as Error).message }   // no inotify instance left
  } else reason = r.reason
  opts.onError(new Error(`native inotify watcher unavailable (${reason}); using chokidar`), '')
  return new ChokidarWatcher(root, opts)
}
