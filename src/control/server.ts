// Owns the node's end of the control socket (<stateDir>/control.sock, mode 0600): reads request
// lines, hands them to JobsApi, and writes progress, result and error lines back (protocol.ts).
// One AbortController per request: a client that goes away stops what it asked for.
import * as net from 'node:net'
import * as fs from 'node:fs'
import { dirname, join } from 'node:path'
import { SwarmError } from '../errors.js'
import type { JobsApi, JobOptions, ProgressEvent } from '../jobs/types.js'
import type { NodeStatus } from '../node/status.js'
import {
  MAX_LINE_BYTES, ProtocolError, controlSocketPath, encodeReply, parseRequest,
  type ControlReply, type ControlRequest, type WireError
} from './protocol.js'

/** At most one progress line per request this often; the last one is always sent before the result. */
export const PROGRESS_INTERVAL_MS = 100
/** Requests one connection may have running at once; more is a client bug, refused rather than queued. */
export const MAX_IN_FLIGHT = 64
/** The code of a failure that is not a SwarmError (a bug): the wire carries codes as strings. */
export const INTERNAL_ERROR_CODE = 'ERR_INTERNAL'
/** A closing connection whose client does not read its last replies is destroyed after this long. */
export const CLOSE_GRACE_MS = 1000
/** Progress lines are skipped while this much waits unread for the client (later ones, and the result, still go). */
export const PROGRESS_BACKLOG_BYTES = 64 * 1024
/** A client that leaves this much unread is dropped (its requests are aborted). */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024
/** On shutdown, running requests get this long to tidy up (a get removes its temp file) before the node stops. */
export const SETTLE_MS = 10_000

export type ControlLog = (level: 'info' | 'warn' | 'error', message: string) => void

export interface ControlServer {
  /** The socket's absolute path. */
  readonly path: string
  /** Stops listening, aborts every running request, closes every connection and removes the socket. */
  close (): Promise<void>
}

/** The node's status for the `status` command; a server started without one answers ERR_INTERNAL. */
export type StatusSource = () => NodeStatus

export async function startControlServer (stateDir: string, api: JobsApi, log: ControlLog = () => {}, status?: StatusSource): Promise<ControlServer> {
  const path = controlSocketPath(stateDir)
  removeStale(path)
  const connections = new Set<Connection>()
  const server = net.createServer(sock => {
    const c = new Connection(sock, api, log, status)
    connections.add(c)
    sock.once('close', () => connections.delete(c))
  })
  await listenPrivate(server, path)
  server.on('error', err => log('warn', `control socket: ${err.message}`))
  log('info', `control socket at ${path}`)
  let closing: Promise<void> | null = null
  return {
    path,
    close: () => {
      const jobs = [...connections].flatMap(c => c.settling())
      closing ??= new Promise<void>(done => {
        server.close(() => done())
        for (const c of connections) c.shut('the node is stopping')
      }).then(async () => {
        // Aborted jobs tidy up (a get removes its temp file beside the destination) before the node goes.
        await Promise.race([Promise.allSettled(jobs), new Promise(resolve => setTimeout(resolve, SETTLE_MS).unref())])
        // Node unlinks the path it bound, the private one, gone since the rename: ours goes here.
        fs.rmSync(path, { force: true })
      })
      return closing
    }
  }
}

/** The node holds the state dir's lock, so a socket file already there is left over from a node that died. */
function removeStale (path: string): void {
  let st: fs.Stats
  try { st = fs.lstatSync(path) } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new SwarmError('ERR_STATE_DIR', `cannot inspect ${path}: ${(err as Error).message}`)
  }
  if (st.isDirectory()) throw new SwarmError('ERR_STATE_DIR', `${path} is a directory; the control socket goes there: remove it`)
  try { fs.unlinkSync(path) } catch (err) {
    throw new SwarmError('ERR_STATE_DIR', `cannot remove the stale control socket ${path}: ${(err as Error).message}`)
  }
}

/**
 * Binds the socket where nobody else can reach it, makes it 0600, then renames it into place, so
 * there is no moment at which another user could connect. (Setting the umask around listen()
 * would also work, but the umask is process-wide: a directory that libuv's thread pool creates
 * for a download in that instant would come out 0600 and unusable.) The private directory's path
 * is shorter than the final one, so the length check on the final path covers it.
 */
async function listenPrivate (server: net.Server, path: string): Promise<void> {
  const dir = dirname(path)
  let tmp: string
  try { tmp = fs.mkdtempSync(join(dir, '.c')) } catch (err) {   // mkdtemp makes it 0700
    throw new SwarmError('ERR_STATE_DIR', `cannot create the control socket in ${dir}: ${(err as Error).message}`)
  }
  const hidden = join(tmp, 's')
  try {
    await new Promise<void>((resolveListen, reject) => {
      const onError = (err: Error) => reject(err)
      server.once('error', onError)
      server.listen(hidden, () => { server.off('error', onError); resolveListen() })
    })
    fs.chmodSync(hidden, 0o600)
    fs.renameSync(hidden, path)
  } catch (err) {
    server.close()
    throw new SwarmError('ERR_STATE_DIR', `cannot listen on the control socket ${path}: ${(err as Error).message}`, { cause: err })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** Coalesces progress: the first event goes out at once, later ones at most every PROGRESS_INTERVAL_MS. */
class ProgressThrottle {
  private pending: ProgressEvent | null = null
  private timer: NodeJS.Timeout | null = null
  private lastSent = 0
  private done = false
  constructor (private readonly send: (e: ProgressEvent) => void) {}

  push (e: ProgressEvent): void {
    if (this.done) return
    this.pending = e
    const wait = this.lastSent + PROGRESS_INTERVAL_MS - Date.now()
    if (wait <= 0) this.flush()
    else this.timer ??= setTimeout(() => { this.timer = null; this.flush() }, wait)
  }

  flush (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.pending === null || this.done) return
    const e = this.pending
    this.pending = null
    this.lastSent = Date.now()
    this.send(e)
  }

  stop (): void { this.flush(); this.done = true }
}

/** What a failure looks like on the wire: a SwarmError keeps its code, anything else is internal. */
export function toWireError (err: unknown): WireError {
  if (err instanceof SwarmError) return { code: err.code, message: err.message }
  if (err instanceof Error && err.name === 'AbortError') return { code: 'ERR_ABORTED', message: err.message }
  return { code: INTERNAL_ERROR_CODE, message: err instanceof Error ? err.message : String(err) }
}

/** Strips absent options so JobsApi sees exactly what the client sent. */
function defined<T extends object> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

async function dispatch (api: JobsApi, req: ControlRequest, opts: JobOptions, status: StatusSource | undefined): Promise<unknown> {
  switch (req.cmd) {
    case 'put': return api.put(req.args.file, defined({ name: req.args.name, to: req.args.to, signal: opts.signal }))
    case 'mput': return api.mput(req.args.dir, defined({ prefix: req.args.prefix, to: req.args.to, signal: opts.signal }))
    case 'get': return api.get(req.args.name, req.args.dest, defined({ ...opts, force: req.args.force }))
    case 'mget': return api.mget(req.args.prefix, req.args.destDir, defined({ ...opts, force: req.args.force }))
    case 'bcast': return api.bcast(req.args.name, opts)
    case 'diffuse': return api.diffuse(req.args.names, opts)
    case 'ls': return api.ls(req.args.prefix)
    case 'nodes': return api.nodes()
    case 'chunks': return api.chunks(req.args.name)
    case 'local-chunks': return api.localChunks()
    case 'ping': return { pong: true, pid: process.pid }
    case 'status':
      if (status === undefined) throw new SwarmError('ERR_INTERNAL', 'this control server does not report status')
      return status()
  }
}

/** One client connection: splits lines, runs requests concurrently, aborts them all when it ends. */
class Connection {
  private readonly running = new Map<number, AbortController>()
  /** Every dispatched request until it has settled (aborted ones included). */
  private readonly inFlight = new Set<Promise<unknown>>()
  settling (): Array<Promise<unknown>> { return [...this.inFlight] }
  private readonly partial: Buffer[] = []
  private partialBytes = 0
  private closed = false
  // fatal: a line that is not UTF-8 is refused rather than silently turned into U+FFFD.
  private readonly decoder = new TextDecoder('utf-8', { fatal: true })

  constructor (private readonly sock: net.Socket, private readonly api: JobsApi, private readonly log: ControlLog, private readonly status: StatusSource | undefined) {
    sock.on('data', chunk => this.onData(chunk))
    // The client closing its side (even half-closing) is a disconnect: there is nobody to answer.
    sock.on('end', () => this.shut('the control client disconnected'))
    sock.on('close', () => this.shut('the control client disconnected'))
    sock.on('error', () => this.shut('the control connection failed'))
  }

  /** Aborts every running request and closes the connection (after what is already written). */
  shut (why: string): void {
    if (this.closed) return
    this.closed = true
    for (const ac of this.running.values()) ac.abort(new SwarmError('ERR_ABORTED', why))
    this.running.clear()
    this.sock.end()
    this.sock.destroySoon()
    setTimeout(() => this.sock.destroy(), CLOSE_GRACE_MS).unref()
  }

  private send (reply: ControlReply): void {
    if (this.closed || !this.sock.writable) return
    if ('progress' in reply && this.sock.writableLength > PROGRESS_BACKLOG_BYTES) return   // a newer one follows
    if (this.sock.writableLength > MAX_UNREAD_BYTES) { this.shut('the control client does not read its replies'); return }
    let line: string
    try { line = encodeReply(reply) } catch (err) {
      line = encodeReply({ id: reply.id, error: { code: INTERNAL_ERROR_CODE, message: `the reply could not be encoded: ${(err as Error).message}` } })
    }
    this.sock.write(line)
  }

  private onData (chunk: Buffer): void {
    let start = 0
    while (start < chunk.length && !this.closed) {
      const nl = chunk.indexOf(0x0a, start)
      const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl)
      if (this.partialBytes + piece.length > MAX_LINE_BYTES) {
        this.send({ id: null, error: { code: 'ERR_BAD_ARGUMENT', message: `request line longer than ${MAX_LINE_BYTES} bytes; closing the connection` } })
        this.shut('request line too long')
        return
      }
      if (nl === -1) { this.partial.push(piece); this.partialBytes += piece.length; return }
      const line = this.partialBytes === 0 ? piece : Buffer.concat([...this.partial, piece])
      this.partial.length = 0
      this.partialBytes = 0
      start = nl + 1
      this.onLine(line)
    }
  }

  private onLine (bytes: Buffer): void {
    let text: string
    try { text = this.decoder.decode(bytes) } catch {
      this.send({ id: null, error: { code: 'ERR_BAD_ARGUMENT', message: 'request line is not valid UTF-8' } })
      return
    }
    if (text.trim() === '') return   // blank lines (an interactive nc session) are not requests
    let req: ControlRequest
    try { req = parseRequest(text) } catch (err) {
      const id = err instanceof ProtocolError ? err.id : null
      this.send({ id, error: { code: 'ERR_BAD_ARGUMENT', message: (err as Error).message } })
      return
    }
    if (this.running.has(req.id)) {
      this.send({ id: req.id, error: { code: 'ERR_BAD_ARGUMENT', message: `request id ${req.id} is already in flight on this connection` } })
      return
    }
    if (this.running.size >= MAX_IN_FLIGHT) {
      this.send({ id: req.id, error: { code: 'ERR_BAD_ARGUMENT', message: `more than ${MAX_IN_FLIGHT} requests in flight on one connection` } })
      return
    }
    this.run(req)
  }

  private run (req: ControlRequest): void {
    const id = req.id
    const ac = new AbortController()
    this.running.set(id, ac)
    const progress = new ProgressThrottle(e => this.send({ id, progress: e }))
    const finish = (reply: ControlReply) => {
      progress.stop()
      if (this.running.get(id) === ac) this.running.delete(id)
      this.send(reply)
    }
    const job = dispatch(this.api, req, { signal: ac.signal, onProgress: e => progress.push(e) }, this.status)
    this.inFlight.add(job)
    job.finally(() => this.inFlight.delete(job)).catch(() => {})
    job.then(
      result => finish({ id, result: result ?? null }),
      err => {
        const wire = toWireError(err)
        if (wire.code === INTERNAL_ERROR_CODE) this.log('warn', `control: ${req.cmd} failed: ${wire.message}`)
        finish({ id, error: wire })
      }
    )
  }
}
