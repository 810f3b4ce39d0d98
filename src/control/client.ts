// Owns the caller's end of the control socket: one connection per call, one request on it,
// progress passed to a callback, and the reply turned into a value or a SwarmError. Closing the
// connection (abort) is how a caller cancels: the node aborts the job when its client goes away.
import * as net from 'node:net'
import { statSync } from 'node:fs'
import { SwarmError, type SwarmErrorCode } from '../errors.js'
import type { ProgressEvent } from '../jobs/types.js'
import { printable } from '../model/printable.js'
import { controlSocketPath, encodeRequest, parseReply, ProtocolError, type ControlArgs, type ControlCmd, type ControlResults } from './protocol.js'

/** Longest reply line accepted (bytes): an `ls` of a large catalog is one line. */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024
/** Error messages from the node are shown to a human on one line; they may quote peer strings. */
const MAX_MESSAGE_CHARS = 4096
/** The id of the single request a call sends. */
const REQUEST_ID = 1

export interface CallOptions {
  onProgress?: (e: ProgressEvent) => void
  signal?: AbortSignal
}

function socketProblem (stateDir: string, path: string): SwarmError | null {
  const uid = process.getuid?.()
  if (uid === undefined) return null
  let dir, sock
  try { dir = statSync(stateDir); sock = statSync(path) } catch { return null }   // absent: connect() says so
  if (dir.uid !== uid || (dir.mode & 0o022) !== 0) return new SwarmError('ERR_STATE_DIR', `state dir ${stateDir} is not yours alone (owner uid ${dir.uid}, mode ${(dir.mode & 0o777).toString(8)}); not talking to the socket in it`)
  if (sock.uid !== uid) return new SwarmError('ERR_STATE_DIR', `the control socket ${path} belongs to uid ${sock.uid}, not to you (uid ${uid}): it belongs to another user's node; run swarm as that user or pass your own --state`)
  return null
}

function connectError (err: NodeJS.ErrnoException, stateDir: string, path: string): SwarmError {
  switch (err.code) {
    case 'ENOENT': case 'ECONNREFUSED': case 'ENOTDIR':
      return new SwarmError('ERR_NO_DAEMON', `no swarm node is running for state dir ${stateDir} (start one with swarm daemon or swarm share)`, { cause: err })
    case 'EACCES': case 'EPERM': {
      let owner = ''
      try { owner = ` (owned by uid ${statSync(path).uid}; you are uid ${process.getuid?.() ?? '?'})` } catch {}
      return new SwarmError('ERR_STATE_DIR', `permission denied on the control socket ${path}${owner}: it belongs to another user's node; run swarm as that user or pass your own --state`, { cause: err })
    }
    default:
      return new SwarmError('ERR_NO_DAEMON', `cannot reach the swarm node at ${path}: ${err.message}`, { cause: err })
  }
}

/**
 * Sends one request to the node that owns `stateDir` and resolves with its result. Rejects with
 * ERR_NO_DAEMON when no node listens there, ERR_ABORTED when `signal` fires (the node then aborts
 * the job), and with the node's own code (ERR_UNKNOWN_NAME, ERR_EXISTS, ...) when the job fails.
 */
export function callControl<C extends ControlCmd> (stateDir: string, cmd: C, args: ControlArgs[C], opts: CallOptions = {}): Promise<ControlResults[C]> {
  return new Promise<ControlResults[C]>((resolvePromise, rejectPromise) => {
    const path = controlSocketPath(stateDir)
    let line: string
    try { line = encodeRequest(REQUEST_ID, cmd, args) } catch (err) {
      throw err instanceof ProtocolError ? new SwarmError('ERR_BAD_ARGUMENT', err.message) : err
    }
    if (opts.signal?.aborted === true) throw new SwarmError('ERR_ABORTED', `${cmd} aborted`)
    // Talk only to a socket in a state dir that is ours and closed to others: another user able
    // to write there could put a socket of their own in its place and read or answer our requests.
    const distrust = socketProblem(stateDir, path)
    if (distrust !== null) throw distrust
    let settled = false
    let connected = false
    const chunks: Buffer[] = []
    let bytes = 0
    const sock = net.createConnection(path)
    const onAbort = () => finish(new SwarmError('ERR_ABORTED', `${cmd} aborted`))
    opts.signal?.addEventListener('abort', onAbort, { once: true })

    function finish (err: Error | null, value?: unknown): void {
      if (settled) return
      settled = true
      opts.signal?.removeEventListener('abort', onAbort)
      sock.destroy()
      if (err !== null) rejectPromise(err)
      else resolvePromise(value as ControlResults[C])
    }

    function onLine (text: string): void {
      let reply
      try { reply = parseReply(text) } catch (err) {
        finish(new SwarmError('ERR_PROTOCOL', `the swarm node sent a malformed control reply: ${(err as Error).message}`))
        return
      }
      if (reply.id !== REQUEST_ID && reply.id !== null) return
      if ('error' in reply) {
        // The code comes from the node; it is one of ours or ERR_INTERNAL, carried as a string.
        finish(new SwarmError(reply.error.code as SwarmErrorCode, printable(reply.error.message, MAX_MESSAGE_CHARS)))
      } else if ('progress' in reply) {
        try { opts.onProgress?.(reply.progress) } catch (err) { finish(err as Error) }
      } else if (reply.id === REQUEST_ID) {
        finish(null, reply.result)
      }
    }

    sock.on('connect', () => { connected = true; sock.write(line) })
    sock.on('data', chunk => {
      let start = 0
      while (start < chunk.length && !settled) {
        const nl = chunk.indexOf(0x0a, start)
        const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl)
        if (bytes + piece.length > MAX_REPLY_BYTES) {
          finish(new SwarmError('ERR_PROTOCOL', `a control reply is longer than ${MAX_REPLY_BYTES} bytes`))
          return
        }
        if (nl === -1) { chunks.push(piece); bytes += piece.length; return }
        const text = Buffer.concat([...chunks, piece]).toString('utf8')
        chunks.length = 0
        bytes = 0
        start = nl + 1
        onLine(text)
      }
    })
    sock.on('error', (err: NodeJS.ErrnoException) => {
      finish(connected ? new SwarmError('ERR_CLOSED', `the control connection to the swarm node failed: ${err.message}`, { cause: err }) : connectError(err, stateDir, path))
    })
    sock.on('close', () => finish(new SwarmError('ERR_CLOSED', `the swarm node closed the control connection before answering ${cmd} (did it stop?)`)))
  })
}
