// Owns what a node checks before it touches anything: the shared folders exist and are folders,
// share ids are valid and distinct, and the state dir is writable, ours and closed to others'
// writes. Each failure is a SwarmError a person can act on.
import * as fs from 'node:fs'
import { basename, resolve } from 'node:path'
import { SwarmError } from '../errors.js'
import { shareIdProblem } from '../model/rules.js'
import { CATALOG_ID } from '../jobs/catalog.js'

/** The node's shares, with absolute folders and their ids (the folder's name unless given). */
export function checkShareSpecs<S extends { dir: string, id?: string }> (specs: S[]): Array<S & { id: string }> {
  const out = specs.map(s => ({ ...s, dir: checkFolder(s.dir), id: checkShareId(s.id ?? basename(resolve(s.dir))) }))
  const ids = new Set<string>()
  for (const s of out) {
    if (ids.has(s.id)) throw new SwarmError('ERR_BAD_ARGUMENT', `two folders share the id '${s.id}'; give one of them another id with <dir>=<id>`)
    ids.add(s.id)
  }
  return out
}

/** Creates the state dir if needed (mode 0700) and refuses one that is not writable or not trustworthy. */
export function prepareStateDir (dir: string): void {
  try { fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); fs.accessSync(dir, fs.constants.W_OK) } catch (err) {
    throw new SwarmError('ERR_STATE_DIR', `state dir ${dir} is not writable: ${(err as Error).message}`)
  }
  const trust = stateDirProblem(dir)
  if (trust !== null) throw new SwarmError('ERR_STATE_DIR', trust)
}

/**
 * Why another local user could tamper with this state dir (replace the control socket, read the
 * index), or null. It holds the node's key and its control socket: it must be ours and closed to
 * others' writes.
 */
export function stateDirProblem (dir: string): string | null {
  const st = fs.statSync(dir)
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid) return `state dir ${dir} belongs to uid ${st.uid}, not to you (uid ${uid}); use a state dir of your own`
  if ((st.mode & 0o022) !== 0) return `state dir ${dir} is writable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 700 it`
  return null
}

export function checkShareId (id: string): string {
  const problem = id === CATALOG_ID ? 'reserved for the jobs catalog' : shareIdProblem(id)
  if (problem !== null) throw new SwarmError('ERR_BAD_ARGUMENT', `share id ${JSON.stringify(id)}: ${problem}; give another with <dir>=<id>`)
  return id
}

export function checkFolder (dir: string): string {
  const abs = resolve(dir)
  let st: fs.Stats
  try { st = fs.statSync(abs) } catch {
    throw new SwarmError('ERR_NOT_A_DIRECTORY', `shared folder ${abs} does not exist`)
  }
  if (!st.isDirectory()) throw new SwarmError('ERR_NOT_A_DIRECTORY', `shared folder ${abs} is not a directory`)
  return abs
}
