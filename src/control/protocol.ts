// Owns the local control protocol: how `swarm put/get/...` talks to a running node over the
// Unix socket <stateDir>/control.sock. Pure functions only: encoding lines, and validating every
// request strictly so the server can hand plain, typed arguments to JobsApi.
//
// Newline-delimited JSON, one object per line (UTF-8), both directions. A client may send several
// requests on one connection; each carries its own id and replies may interleave.
//
//   request   {"id":n,"cmd":C,"args":{...}}        n: integer 0..2^53-1, unique among the
//                                                  connection's requests in flight
//   progress  {"id":n,"progress":ProgressEvent}    zero or more, only for get/mget/bcast/diffuse
//   result    {"id":n,"result":R}                  exactly one of result or error ends a request
//   error     {"id":n,"error":{"code":"ERR_...","message":"..."}}
//
// A line the server cannot attribute to a request (not JSON, no usable id) gets an error reply
// with "id":null. A line longer than MAX_LINE_BYTES gets such a reply and the connection is
// closed. Closing the connection aborts every request still running on it.
//
//   cmd            args (every path absolute: the node's cwd is not the client's)      result
//   put            {file, name?, to?}              to: a peer id or "random"            PutResult
//   mput           {dir, prefix?, to?}                                                  PutResult[]
//   get            {name, dest?, force?}           name: a catalog name or a hex root   GetResult
//   mget           {prefix, destDir?, force?}                                           GetResult[]
//   bcast          {name}                          a catalog name or an absolute file   BcastResult
//   diffuse        {names: [string, ...]}                                               DiffuseResult[]
//   ls             {prefix?}                                                            CatalogItem[]
//   nodes          {}                                                                   NodeInfo[]
//   chunks         {name}                                                               ChunksResult
//   local-chunks   {}                                                                   LocalChunk[]
//   ping           {}                                                                   {pong: true, pid}
//   status         {}                                                                   NodeStatus (node/status.ts)
//
// Unknown commands, unknown argument keys, wrong types, empty or over-long strings (> MAX_ARG_CHARS)
// and relative paths are refused with ERR_BAD_ARGUMENT and a message naming the field.
import { isAbsolute, join, resolve } from 'node:path'
import { SwarmError } from '../errors.js'
import type {
  PutResult, GetResult, BcastResult, DiffuseResult, CatalogItem, NodeInfo, ChunksResult, LocalChunk, ProgressEvent
} from '../jobs/types.js'
import type { NodeStatus } from '../node/status.js'

/** Longest request line the server reads (bytes, without the newline); longer closes the connection. */
export const MAX_LINE_BYTES = 1024 * 1024
/** Longest string argument (characters): names, prefixes, paths, peer ids. */
export const MAX_ARG_CHARS = 4096
/** The file name of the socket inside the state dir. */
export const SOCKET_NAME = 'control.sock'
/** sun_path is 108 bytes on Linux, one of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107

/** The socket path for a state dir (pure: touches nothing); refuses one the kernel could not bind or connect to. */
export function controlSocketPath (stateDir: string): string {
  const path = join(resolve(stateDir), SOCKET_NAME)
  const bytes = Buffer.byteLength(path)
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SwarmError('ERR_STATE_DIR', `the control socket path ${path} is ${bytes} bytes; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}: use a state dir with a shorter path (--state)`)
  }
  return path
}

export interface ControlArgs {
  put: { file: string, name?: string, to?: string }
  mput: { dir: string, prefix?: string, to?: string }
  get: { name: string, dest?: string, force?: boolean }
  mget: { prefix: string, destDir?: string, force?: boolean }
  bcast: { name: string }
  diffuse: { names: string[] }
  ls: { prefix?: string }
  nodes: Record<string, never>
  chunks: { name: string }
  'local-chunks': Record<string, never>
  ping: Record<string, never>
  status: Record<string, never>
}

export interface ControlResults {
  put: PutResult
  mput: PutResult[]
  get: GetResult
  mget: GetResult[]
  bcast: BcastResult
  diffuse: DiffuseResult[]
  ls: CatalogItem[]
  nodes: NodeInfo[]
  chunks: ChunksResult
  'local-chunks': LocalChunk[]
  ping: { pong: true, pid: number }
  status: NodeStatus
}

export type ControlCmd = keyof ControlArgs

/** A validated request, discriminated on cmd so the server's switch sees typed args. */
export type ControlRequest = { [C in ControlCmd]: { id: number, cmd: C, args: ControlArgs[C] } }[ControlCmd]

export interface WireError { code: string, message: string }

export type ControlReply =
  | { id: number | null, progress: ProgressEvent }
  | { id: number | null, result: unknown }
  | { id: number | null, error: WireError }

type FieldKind = 'string' | 'path' | 'boolean' | 'strings'
interface FieldSpec { kind: FieldKind, required: boolean }
const S = (required = false): FieldSpec => ({ kind: 'string', required })
const P = (required = false): FieldSpec => ({ kind: 'path', required })
const B: FieldSpec = { kind: 'boolean', required: false }

/** Every command and the argument keys it accepts; anything else is refused. */
const COMMANDS: { [C in ControlCmd]: Record<string, FieldSpec> } = {
  put: { file: P(true), name: S(), to: S() },
  mput: { dir: P(true), prefix: S(), to: S() },
  get: { name: S(true), dest: P(), force: B },
  mget: { prefix: S(true), destDir: P(), force: B },
  bcast: { name: S(true) },
  diffuse: { names: { kind: 'strings', required: true } },
  ls: { prefix: S() },
  nodes: {},
  chunks: { name: S(true) },
  'local-chunks': {},
  ping: {},
  status: {}
}

export const CONTROL_COMMANDS = Object.keys(COMMANDS) as ControlCmd[]

export class ProtocolError extends Error {
  /** The request's id when it could be read, so the error reply reaches the right caller. */
  constructor (message: string, readonly id: number | null) { super(message) }
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function isValidId (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function checkString (where: string, v: unknown, path: boolean): string {
  if (typeof v !== 'string') throw new Error(`${where} must be a string, got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`)
  if (v.length === 0) throw new Error(`${where} must not be empty`)
  if (v.length > MAX_ARG_CHARS) throw new Error(`${where} is ${v.length} characters long; the limit is ${MAX_ARG_CHARS}`)
  // A NUL would be cut short by the file system calls below us; no name or path contains one.
  if (v.includes('\0')) throw new Error(`${where} contains a NUL character`)
  if (path && !isAbsolute(v)) throw new Error(`${where} must be an absolute path (the node's working directory is not yours), got '${v.slice(0, 200)}'`)
  return v
}

/**
 * Parses and validates one request line (without its newline). Throws ProtocolError with a
 * message naming the bad field; its id is the request's id if that much was readable.
 */
export function parseRequest (line: string): ControlRequest {
  let msg: unknown
  try { msg = JSON.parse(line) } catch (err) {
    throw new ProtocolError(`request is not valid JSON: ${(err as Error).message}`, null)
  }
  if (!isRecord(msg)) throw new ProtocolError('request must be a JSON object {"id":n,"cmd":"...","args":{...}}', null)
  if (!isValidId(msg.id)) throw new ProtocolError('request id must be an integer from 0 to 2^53-1', null)
  const id = msg.id
  const fail = (m: string): never => { throw new ProtocolError(m, id) }
  for (const k of Object.keys(msg)) if (k !== 'id' && k !== 'cmd' && k !== 'args') fail(`unknown request field '${k.slice(0, 100)}' (expected id, cmd, args)`)
  if (typeof msg.cmd !== 'string') return fail('request cmd must be a string')
  const cmd = msg.cmd
  if (!Object.hasOwn(COMMANDS, cmd)) return fail(`unknown command '${cmd.slice(0, 100)}' (expected one of ${CONTROL_COMMANDS.join(', ')})`)
  const spec = COMMANDS[cmd as ControlCmd]
  const raw = msg.args === undefined ? {} : msg.args
  if (!isRecord(raw)) return fail(`${cmd}: args must be a JSON object`)
  const args: Record<string, unknown> = {}
  for (const k of Object.keys(raw)) {
    if (!Object.hasOwn(spec, k)) {
      const known = Object.keys(spec)
      fail(`${cmd}: unknown argument '${k.slice(0, 100)}' (${known.length === 0 ? 'it takes none' : `expected ${known.join(', ')}`})`)
    }
  }
  try {
    for (const [k, f] of Object.entries(spec)) {
      const v = raw[k]
      if (v === undefined) {
        if (f.required) throw new Error(`${cmd}: missing required argument '${k}'`)
        continue
      }
      const where = `${cmd}: argument '${k}'`
      switch (f.kind) {
        case 'string': args[k] = checkString(where, v, false); break
        case 'path': args[k] = checkString(where, v, true); break
        case 'boolean':
          if (typeof v !== 'boolean') throw new Error(`${where} must be true or false`)
          args[k] = v
          break
        case 'strings':
          if (!Array.isArray(v)) throw new Error(`${where} must be an array of strings`)
          if (v.length === 0) throw new Error(`${where} must name at least one`)
          args[k] = v.map((s, i) => checkString(`${where}[${i}]`, s, false))
          break
      }
    }
  } catch (err) { return fail((err as Error).message) }
  return { id, cmd, args } as ControlRequest
}

/** One reply line, newline included. */
export function encodeReply (reply: ControlReply): string {
  return JSON.stringify(reply) + '\n'
}

/** One request line, newline included. The client validates the same way the server will, so a mistake fails locally. */
export function encodeRequest<C extends ControlCmd> (id: number, cmd: C, args: ControlArgs[C]): string {
  const line = JSON.stringify({ id, cmd, args })
  parseRequest(line)
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw new ProtocolError(`${cmd}: request is longer than ${MAX_LINE_BYTES} bytes`, id)
  return line + '\n'
}

/** Parses one reply line; throws a plain Error if it is not a well-formed reply. */
export function parseReply (line: string): ControlReply {
  const msg: unknown = JSON.parse(line)
  if (!isRecord(msg)) throw new Error('reply is not a JSON object')
  const id = msg.id
  if (id !== null && !isValidId(id)) throw new Error('reply id is not an integer or null')
  if ('error' in msg) {
    const e = msg.error
    if (!isRecord(e) || typeof e.code !== 'string' || typeof e.message !== 'string') throw new Error('reply error must be {code, message}')
    return { id, error: { code: e.code, message: e.message } }
  }
  if ('progress' in msg) {
    const p = msg.progress
    if (!isRecord(p) || typeof p.name !== 'string' || typeof p.bytes !== 'number' || typeof p.size !== 'number') throw new Error('reply progress must be {name, bytes, size}')
    if (p.nodes !== undefined && !Array.isArray(p.nodes)) throw new Error('reply progress nodes must be an array')
    if (p.holders !== undefined && typeof p.holders !== 'number') throw new Error('reply progress holders must be a number')
    return { id, progress: p as unknown as ProgressEvent }
  }
  if ('result' in msg) return { id, result: msg.result }
  throw new Error('reply has none of result, error, progress')
}
