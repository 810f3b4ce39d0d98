// Loading the native inotify addon (native/inotify.c, built into build/Release by node-gyp at
// install) and turning its errno errors into errors a user can act on. Loading never throws:
// it returns the reason the addon is unusable, which createWatcher logs before falling back.
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SwarmError } from '../errors.js'

export interface InotifyBinding {
  open (onData: (err: NodeJS.ErrnoException | null, events: Buffer | undefined) => void): InotifyHandle
  addWatch (h: InotifyHandle, path: string, mask: number): number
  rmWatch (h: InotifyHandle, wd: number): boolean
  setRef (h: InotifyHandle, ref: boolean): void
  close (h: InotifyHandle): void
}
/** The addon's opaque handle (a napi external). */
export type InotifyHandle = { readonly __inotifyHandle: unique symbol }

const ADDON = 'build/Release/swarm_inotify.node'
/** The addon relative to this module: from dist/src/watch/ when compiled, from src/watch/ otherwise. */
const CANDIDATES = ['../../../', '../../'].map(up => fileURLToPath(new URL(up + ADDON, import.meta.url)))

export const MAX_USER_WATCHES_FILE = '/proc/sys/fs/inotify/max_user_watches'
export const MAX_USER_INSTANCES_FILE = '/proc/sys/fs/inotify/max_user_instances'

let loaded: { binding: InotifyBinding } | { reason: string } | null = null

/** The addon, or why it cannot be used here. Loaded once. */
export function loadInotify (): { binding: InotifyBinding } | { reason: string } {
  if (loaded !== null) return loaded
  if (process.platform !== 'linux') {
    loaded = { reason: `inotify is Linux-only (this is ${process.platform})` }
  } else {
    const file = CANDIDATES.find(f => existsSync(f))
    if (file === undefined) {
      loaded = { reason: `${ADDON} was not built (npm run build:native)` }
    } else {
      try {
        loaded = { binding: createRequire(import.meta.url)(file) as InotifyBinding }
      } catch (err) {
        loaded = { reason: `cannot load ${file}: ${(err as Error).message}` }
      }
    }
  }
  return loaded
}

function readLimit (file: string): string {
  try { return readFileSync(file, 'utf8').trim() } catch { return 'unknown' }
}

/**
 * The error to report for a failed inotify_add_watch / inotify_init1: the kernel's limits
 * become ERR_WATCH_LIMIT naming the sysctl and its current value; anything else is returned as is.
 */
export function inotifyError (err: NodeJS.ErrnoException, what: string, limitsFile = { watches: MAX_USER_WATCHES_FILE, instances: MAX_USER_INSTANCES_FILE }): Error {
  if (err.code === 'ENOSPC') {
    return new SwarmError('ERR_WATCH_LIMIT', `cannot watch ${what}: the inotify watch limit is reached (sysctl fs.inotify.max_user_watches = ${readLimit(limitsFile.watches)}; every watched folder of every process of this user counts); raise it, e.g. sysctl fs.inotify.max_user_watches=524288`, { cause: err })
  }
  if (err.code === 'EMFILE') {
    return new SwarmError('ERR_WATCH_LIMIT', `cannot watch ${what}: too many inotify instances (sysctl fs.inotify.max_user_instances = ${readLimit(limitsFile.instances)}); raise it, e.g. sysctl fs.inotify.max_user_instances=1024`, { cause: err })
  }
  return err
}
