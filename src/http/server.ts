// Owns the opt-in HTTP listener (`--metrics <host:port>`): Prometheus text at /metrics, the status
// page at / (page.ts), the node's status as JSON at /status.json and as a live stream of
// server-sent events at /events. Read-only: GET and HEAD only, nothing here changes the node.
//
// It has no authentication (neither has a Prometheus exporter): it binds where it is told, and
// the CLI warns when that is not a loopback address.
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { SwarmError } from '../errors.js'
import { joinHostPort, parseHostPort } from '../node/address.js'
import { PAGE_HTML, PAGE_SCRIPT, PAGE_STYLE } from './page.js'

/** The page's live view is pushed this often. */
export const EVENTS_INTERVAL_MS = 1000
/** Open event streams at most; more get 503 (each costs a status snapshot per interval). */
export const MAX_EVENT_CLIENTS = 32
/** A request that has not sent its headers by then is dropped. */
const HEADERS_TIMEOUT_MS = 10_000
/**
 * An event stream whose reader has this many bytes not yet taken is closed: it stopped reading
 * (a suspended tab, a stuck client), and every frame would otherwise wait in this process's memory.
 */
export const MAX_EVENT_BACKLOG_BYTES = 4 * 1024 * 1024

/** The part of a response an event stream uses. */
export type EventStream = Pick<http.ServerResponse, 'writableLength' | 'write' | 'destroy'>

/** What the listener reads from the node: a snapshot, and the metrics text. */
export interface HttpSource {
  status (): unknown
  metrics (): Promise<{ contentType: string, text: string }>
}

export interface HttpServer {
  /** 'host:port' as bound (the port resolved when 0 was asked for). */
  readonly address: string
  close (): Promise<void>
}

type Log = (level: 'info' | 'warn' | 'error', message: string) => void

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // The page loads its own script and style and talks to its own origin: nothing else.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

export async function startHttpServer (source: HttpSource, listen: string, log: Log = () => {}): Promise<HttpServer> {
  const { host, port } = parseHostPort(listen)
  const streams = new Set<http.ServerResponse>()
  const server = http.createServer((req, res) => { handle(source, streams, req, res, log) })
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = 0   // event streams stay open
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new SwarmError('ERR_ADDRESS_IN_USE', `the metrics address ${listen} (TCP) is in use: choose another with --metrics`)
        : new SwarmError('ERR_BAD_ARGUMENT', `cannot listen for metrics on ${listen}: ${err.message}`))
    }
    server.once('error', onError)
    server.listen(port, host, () => { server.off('error', onError); resolve() })
  })
  server.on('error', err => log('warn', `metrics listener: ${err.message}`))
  const bound = server.address() as AddressInfo
  const address = joinHostPort(bound.address, bound.port)
  const timer = setInterval(() => {
    if (streams.size === 0) return
    const frame = eventFrame(source, log)
    if (frame !== null) pushFrame(streams, frame)
  }, EVENTS_INTERVAL_MS)
  timer.unref()
  let closing: Promise<void> | null = null
  return {
    address,
    close: () => {
      closing ??= new Promise<void>(resolve => {
        clearInterval(timer)
        for (const res of streams) res.end()
        streams.clear()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}

/** Writes one frame to every open event stream, and closes those whose reader fell MAX_EVENT_BACKLOG_BYTES behind. */
export function pushFrame (streams: Set<EventStream>, frame: string): void {
  for (const res of streams) {
    if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) { streams.delete(res); res.destroy(); continue }
    res.write(frame)
  }
}

/** The node's status as JSON, or null (logged) if taking it failed: a request must never take the node down. */
function statusJson (source: HttpSource, log: Log): string | null {
  try {
    return JSON.stringify(source.status())
  } catch (err) {
    log('warn', `status for the HTTP listener failed: ${(err as Error).message}`)
    return null
  }
}

function eventFrame (source: HttpSource, log: Log): string | null {
  const json = statusJson(source, log)
  // JSON has no raw newlines, so one `data:` line carries it whole.
  return json === null ? null : `event: status\ndata: ${json}\n\n`
}

function send (res: http.ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(head ? undefined : body)
}

function handle (source: HttpSource, streams: Set<http.ServerResponse>, req: http.IncomingMessage, res: http.ServerResponse, log: Log): void {
  const head = req.method === 'HEAD'
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD')
    send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', false)
    return
  }
  const path = (req.url ?? '/').split('?')[0]
  switch (path) {
    case '/': send(res, 200, 'text/html; charset=utf-8', PAGE_HTML, head); return
    case '/app.js': send(res, 200, 'text/javascript; charset=utf-8', PAGE_SCRIPT, head); return
    case '/app.css': send(res, 200, 'text/css; charset=utf-8', PAGE_STYLE, head); return
    case '/favicon.ico': res.writeHead(204, SECURITY_HEADERS); res.end(); return   // browsers ask; nothing to show
    case '/status.json': {
      const json = statusJson(source, log)
      if (json === null) send(res, 500, 'text/plain; charset=utf-8', 'status failed\n', head)
      else send(res, 200, 'application/json; charset=utf-8', json + '\n', head)
      return
    }
    case '/metrics':
      Promise.resolve().then(() => source.metrics()).then(
        m => send(res, 200, m.contentType, m.text, head),
        err => { log('warn', `metrics: ${(err as Error).message}`); send(res, 500, 'text/plain; charset=utf-8', 'metrics failed\n', head) }
      )
      return
    case '/events':
      if (streams.size >= MAX_EVENT_CLIENTS) { send(res, 503, 'text/plain; charset=utf-8', 'too many open event streams\n', head); return }
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' })
      if (head) { res.end(); return }
      res.write(`retry: ${EVENTS_INTERVAL_MS}\n` + (eventFrame(source, log) ?? ''))
      streams.add(res)
      res.on('close', () => streams.delete(res))
      return
    default: send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head)
  }
}
