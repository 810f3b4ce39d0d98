// Owns the TOML config file of `swarm share` / `swarm daemon` (--config <file>): reading it with
// smol-toml, checking every key and type (an unknown key or a wrong type is an error that names
// the key and its line, never silently ignored), and resolving its relative paths against the
// file's own folder, so a unit file or cron job works from any working directory. Also owns how
// the file and the command line combine into a node's settings (flags win, shares and peers add
// up) and where the cluster secret comes from (flag, secret file, SWARM_SECRET as the fallback).
import { readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import { SwarmError } from '../errors.js'
import { SHARE_MODES, isShareMode, type ShareMode } from '../model/share-mode.js'
import { parseHostPort } from '../node/address.js'
import type { NodeOptions, ShareSpec } from '../node/node.js'
import { defaultStateDir } from './state-dir.js'

/** One [[share]] table. */
export interface ConfigShare {
  dir: string
  id?: string
  mode?: ShareMode
  ignore?: string[]
  acceptEmpty?: boolean
}

/** The settings a config key and a flag of the same name both give. */
export interface SharedSettings {
  listen?: string
  secretFile?: string
  state?: string
  json?: boolean
  quiet?: boolean
  verbose?: boolean
  peerExchange?: boolean
  compress?: boolean
  metrics?: string
}

/** A config file after checking, paths made absolute. Absent keys stay undefined. */
export interface ConfigFile extends SharedSettings {
  path: string
  peers?: string[]
  shares: ConfigShare[]
}

type Kind = 'string' | 'boolean' | 'address' | 'addresses' | 'path' | 'strings' | 'mode'

/** The top-level keys and what they hold ([[share]] is handled on its own). */
const TOP_KEYS: Record<string, Kind> = {
  listen: 'address',
  peers: 'addresses',
  secret_file: 'path',
  state: 'path',
  json: 'boolean',
  quiet: 'boolean',
  verbose: 'boolean',
  peer_exchange: 'boolean',
  compress: 'boolean',
  metrics: 'address'
}

const SHARE_KEYS: Record<string, Kind> = {
  dir: 'path',
  id: 'string',
  mode: 'mode',
  ignore: 'strings',
  accept_empty: 'boolean'
}

const KIND_NAMES: Record<Kind, string> = {
  string: 'a string',
  boolean: 'true or false',
  address: 'a "host:port" string',
  addresses: 'a list of "host:port" strings',
  path: 'a path (string)',
  strings: 'a list of strings',
  mode: `one of ${SHARE_MODES.map(m => `"${m}"`).join(', ')}`
}

/** Reads and checks a config file; throws ERR_CONFIG naming the file, line and key on any problem. */
export function loadConfig (file: string): ConfigFile {
  const path = resolve(file)
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (err) {
    throw new SwarmError('ERR_CONFIG', `cannot read config file ${path}: ${(err as Error).message}`)
  }
  let doc: Record<string, unknown>
  try { doc = parseToml(text) as Record<string, unknown> } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '')
      throw new SwarmError('ERR_CONFIG', `config ${path}:${err.line}:${err.column}: not valid TOML: ${first}`)
    }
    throw err
  }
  return checkConfig(doc, path, text)
}

/** Checks a parsed document; `text` is the file's source, only used to name lines in errors. */
export function checkConfig (doc: Record<string, unknown>, path: string, text: string): ConfigFile {
  const base = dirname(path)
  const fail = (key: string, share: number | undefined, what: string): never => {
    const line = lineOf(text, key, share)
    const name = share === undefined ? key : `share[${share + 1}].${key}`
    throw new SwarmError('ERR_CONFIG', `config ${path}${line === undefined ? '' : `:${line}`}: ${name} ${what}`)
  }
  const value = (key: string, kind: Kind, v: unknown, share?: number): unknown => {
    const bad = () => fail(key, share, `must be ${KIND_NAMES[kind]}, got ${describe(v)}`)
    switch (kind) {
      case 'boolean': return typeof v === 'boolean' ? v : bad()
      case 'string': return typeof v === 'string' && v !== '' ? v : bad()
      case 'path': return typeof v === 'string' && v !== '' ? resolve(base, v) : bad()
      case 'mode': return isShareMode(v) ? v : bad()
      case 'strings': return Array.isArray(v) && v.every(s => typeof s === 'string') ? v : bad()
      case 'address': return typeof v === 'string' && validAddress(v) ? v : bad()
      case 'addresses': return Array.isArray(v) && v.every(s => typeof s === 'string' && validAddress(s)) ? v : bad()
    }
  }
  const out: ConfigFile = { path, shares: [] }
  const set = out as unknown as Record<string, unknown>
  for (const [key, v] of Object.entries(doc)) {
    if (key === 'share') { out.shares = checkShares(v, value, fail); continue }
    const kind = TOP_KEYS[key]
    if (kind === undefined) fail(key, undefined, `is not a known key (known: ${[...Object.keys(TOP_KEYS), '[[share]]'].join(', ')})`)
    set[camel(key)] = value(key, kind!, v)
  }
  return out
}

type ValueFn = (key: string, kind: Kind, v: unknown, share?: number) => unknown
type FailFn = (key: string, share: number | undefined, what: string) => never

function checkShares (v: unknown, value: ValueFn, fail: FailFn): ConfigShare[] {
  if (!Array.isArray(v)) return fail('share', undefined, 'must be written as [[share]] tables')
  return v.map((table, i) => {
    if (table === null || typeof table !== 'object' || Array.isArray(table)) return fail('share', undefined, 'must be written as [[share]] tables')
    const share: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(table as Record<string, unknown>)) {
      const kind = SHARE_KEYS[key]
      if (kind === undefined) fail(key, i, `is not a known key of [[share]] (known: ${Object.keys(SHARE_KEYS).join(', ')})`)
      share[camel(key)] = value(key, kind!, item, i)
    }
    if (share.dir === undefined) fail('dir', i, 'is missing: every [[share]] needs dir = "<folder>"')
    return share as unknown as ConfigShare
  })
}

function validAddress (s: string): boolean {
  try { parseHostPort(s); return true } catch { return false }
}

function camel (key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
}

function describe (v: unknown): string {
  if (Array.isArray(v)) return 'a list'
  if (v instanceof Date) return 'a date'
  if (typeof v === 'object' && v !== null) return 'a table'
  return JSON.stringify(v) ?? String(v)
}

/**
 * The 1-based line where `key` is set: at the top level (before any table header), or inside the
 * n-th [[share]] table. A best effort for error messages (smol-toml gives no positions of keys).
 */
export function lineOf (text: string, key: string, share?: number): number | undefined {
  const lines = text.split(/\r?\n/)
  const name = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const keyRe = new RegExp(`^\\s*["']?${name}["']?\\s*=`)
  // A top-level key may also be written as a table header: [key] or [[key]].
  const headerRe = new RegExp(`^\\s*\\[\\[?\\s*["']?${name}["']?\\s*\\]`)
  const shareHeader = /^\s*\[\[\s*share\s*\]\]/
  let shareSeen = -1
  let inTable = false
  let header: number | undefined
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (/^\s*\[/.test(l)) {
      inTable = true
      if (shareHeader.test(l) && ++shareSeen === share) header = i + 1
      if (share === undefined && headerRe.test(l)) return i + 1
    } else if (keyRe.test(l) && (share === undefined ? !inTable : shareSeen === share)) return i + 1
  }
  // A missing key of a [[share]]: its header.
  return header
}

/** The listen address when neither --listen nor the config file names one. */
export const DEFAULT_LISTEN = '0.0.0.0:4001'
/** Permission bits that let group or others read a file. */
const GROUP_OTHER_BITS = 0o077

/** What `swarm share` / `swarm daemon` got on the command line: only flags the user typed. */
export interface NodeFlags extends SharedSettings {
  config?: string
  peer?: string[]
  secret?: string
}

/** How the node's events are printed. */
export interface OutputOptions { json: boolean, quiet: boolean, verbose: boolean }

/** What runNode receives: the node's options plus the listeners the CLI runs beside it. */
export interface RunNodeOptions extends NodeOptions {
  /** host:port of the HTTP metrics/status listener (--metrics, metrics = ".." in the config). */
  metrics?: string
}

export interface NodeSettings {
  options: RunNodeOptions
  output: OutputOptions
  /** Said once the output is set up: a secret on the command line, a secret file others can read. */
  warnings: string[]
  /** The config file used, if any. */
  configPath?: string
}

/**
 * Combines the config file (if --config) and the command line: a flag wins over the file's key,
 * folders and --peer addresses on the command line are added to the file's. `onJson` learns
 * early whether output is JSON (json = true in the file counts), for the fatal error report.
 */
export function nodeSettings (flags: NodeFlags, cliShares: ShareSpec[], onJson?: (json: boolean) => void): NodeSettings {
  const file: ConfigFile = flags.config === undefined ? { path: '', shares: [] } : loadConfig(flags.config)
  // Known before anything else can fail: an error after this point is reported as JSON too.
  onJson?.((flags.json ?? file.json) === true)
  const warnings: string[] = []
  // --quiet or --verbose on the command line replaces whatever the file says about both.
  const cliLevel = flags.quiet !== undefined || flags.verbose !== undefined
  const quiet = (cliLevel ? flags.quiet : file.quiet) === true
  const verbose = (cliLevel ? flags.verbose : file.verbose) === true
  if (quiet && verbose) throw new SwarmError(cliLevel ? 'ERR_BAD_ARGUMENT' : 'ERR_CONFIG', `${cliLevel ? '--quiet and --verbose' : `config ${file.path}: quiet and verbose`} cannot both be set`)
  const secret = resolveSecret({ flag: flags.secret, file: flags.secretFile ?? file.secretFile }, warnings)
  const shares: ShareSpec[] = [...file.shares, ...cliShares]
  const peers = [...new Set([...(file.peers ?? []), ...(flags.peer ?? [])])]
  const options: RunNodeOptions = {
    stateDir: flags.state ?? file.state ?? defaultStateDir(),
    secret,
    listen: flags.listen ?? file.listen ?? DEFAULT_LISTEN,
    peers,
    shares,
    peerExchange: flags.peerExchange ?? file.peerExchange ?? true,
    compress: flags.compress ?? file.compress ?? false
  }
  const metrics = flags.metrics ?? file.metrics
  if (metrics !== undefined) options.metrics = metrics
  return {
    options,
    output: { json: (flags.json ?? file.json) === true, quiet, verbose },
    warnings,
    ...(flags.config === undefined ? {} : { configPath: file.path })
  }
}

/**
 * The cluster secret: --secret, else the secret file (--secret-file, else the config's
 * secret_file), else SWARM_SECRET. --secret together with --secret-file is a usage error (the
 * parser refuses it first; checked again here for callers that skip it).
 */
export function resolveSecret (src: { flag?: string, file?: string }, warnings: string[]): string {
  if (src.flag !== undefined) {
    warnings.push('--secret on the command line is visible to every user of this machine (ps, /proc); use --secret-file <path> or the SWARM_SECRET environment variable')
    return src.flag
  }
  if (src.file !== undefined) return readSecretFile(src.file, warnings)
  const env = process.env.SWARM_SECRET
  if (env !== undefined && env !== '') return env
  throw new SwarmError('ERR_BAD_ARGUMENT', 'no cluster secret: pass --secret-file <path> (or secret_file in --config), or set SWARM_SECRET (swarm secret --out <path> makes one)')
}

function readSecretFile (path: string, warnings: string[]): string {
  let text: string
  let mode: number
  try {
    text = readFileSync(path, 'utf8')
    mode = statSync(path).mode
  } catch (err) {
    throw new SwarmError('ERR_CONFIG', `cannot read secret file ${path}: ${(err as Error).message}`)
  }
  if ((mode & GROUP_OTHER_BITS) !== 0) {
    warnings.push(`secret file ${path} can be read by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); fix with: chmod 600 ${path}`)
  }
  const secret = text.trim()
  if (secret === '') throw new SwarmError('ERR_CONFIG', `secret file ${path} is empty (swarm secret --out <path> makes one)`)
  return secret
}
