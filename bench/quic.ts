// Owns the QUIC transport benchmark: one-stream throughput over loopback
// (256 MiB), connection setup time and small-message round-trip latency.
// The receiving peer runs in a child process (as in real use) unless
// --same-process is given. Prints:
//   quic-stream-MBps: <n>            (MB = 10^6 bytes, median of the runs)
//   quic-connect-ms: <n>             (dial → Connection, fresh client, median)
//   quic-rtt-small-msg-us-p50: <n>   (32-byte ping/pong on one stream)
// Usage: node dist/bench/quic.js [--same-process] [--runs N] [--mib N]
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Duplex } from 'node:stream'
import { createIdentity } from '../src/transport/identity.js'
import { createQuicTransport } from '../src/transport/quic.js'
import type { Connection, Transport } from '../src/transport/types.js'

const WRITE_CHUNK = 1024 * 1024
const PING_SIZE = 32
const PINGS = 2000
const CONNECTS = 20

function arg (name: string, dflt: number): number {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}

/** Serves 'sink' streams (count bytes, reply with the count) and 'echo' streams. */
async function serve (): Promise<{ transport: Transport, port: number }> {
  const transport = createQuicTransport(createIdentity())
  const listener = await transport.listen('127.0.0.1', 0, conn => {
    conn.onStream(s => {
      s.once('readable', () => {
        const mode = s.read(5) as Buffer | null
        if (mode?.toString() === 'echo\n') {
          s.pipe(s)
        } else {
          let n = 0
          s.on('data', (c: Buffer) => { n += c.length })
          s.on('end', () => { s.end(String(n)) })
          s.resume()
        }
      })
    })
  })
  return { transport, port: listener.port }
}

async function readAll (s: Duplex): Promise<string> {
  let out = ''
  for await (const c of s.iterator({ destroyOnReturn: false })) out += String(c)
  return out
}

async function throughput (conn: Connection, bytes: number): Promise<number> {
  const s = await conn.openStream()
  const chunk = randomBytes(WRITE_CHUNK)
  const reply = readAll(s)
  const t0 = performance.now()
  s.write('sink\n')
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!s.write(chunk)) await new Promise(resolve => s.once('drain', resolve))
  }
  s.end()
  const counted = Number(await reply)
  const seconds = (performance.now() - t0) / 1000
  if (counted !== bytes) throw new Error(`receiver counted ${counted} of ${bytes} bytes`)
  return bytes / 1e6 / seconds
}

async function pingPong (conn: Connection): Promise<number[]> {
  const s = await conn.openStream()
  s.write('echo\n')
  const ping = randomBytes(PING_SIZE)
  const samples: number[] = []
  let pending = 0
  let wake: () => void = () => {}
  s.on('data', (c: Buffer) => { pending -= c.length; if (pending <= 0) wake() })
  for (let i = 0; i < PINGS; i++) {
    const t0 = process.hrtime.bigint()
    pending += PING_SIZE
    await new Promise<void>(resolve => { wake = resolve; s.write(ping) })
    samples.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  s.end()
  return samples
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function main (): Promise<void> {
  if (process.argv.includes('--serve')) {
    const { transport, port } = await serve()
    process.send?.(port)
    process.on('message', () => { void transport.close().then(() => process.exit(0)) })
    return
  }
  const sameProcess = process.argv.includes('--same-process')
  const runs = arg('--runs', 3)
  const bytes = arg('--mib', 256) * 1024 * 1024

  let port: number
  let stop: () => Promise<void>
  if (sameProcess) {
    const server = await serve()
    port = server.port
    stop = async () => { await server.transport.close() }
  } else {
    const child = fork(fileURLToPath(import.meta.url), ['--serve'])
    port = await new Promise<number>(resolve => child.once('message', m => resolve(Number(m))))
    stop = async () => { child.send('stop'); await new Promise(resolve => child.once('exit', resolve)) }
  }

  // connection setup: a fresh transport (new UDP socket, cold client) per dial
  const connectMs: number[] = []
  for (let i = 0; i < CONNECTS; i++) {
    const t = createQuicTransport(createIdentity())
    const t0 = performance.now()
    const c = await t.dial('127.0.0.1', port)
    connectMs.push(performance.now() - t0)
    c.close()
    await t.close()
  }

  const client = createQuicTransport(createIdentity())
  const conn = await client.dial('127.0.0.1', port)
  const rates: number[] = []
  for (let i = 0; i < runs; i++) rates.push(await throughput(conn, bytes))
  const rtts = await pingPong(conn)
  await client.close()
  await stop()

  console.log(`# ${sameProcess ? 'same process' : 'receiver in a child process'}, ${runs} x ${bytes / 1024 / 1024} MiB runs: ${rates.map(r => r.toFixed(0)).join(', ')} MB/s`)
  console.log(`quic-stream-MBps: ${median(rates).toFixed(0)}`)
  console.log(`quic-connect-ms: ${median(connectMs).toFixed(2)}`)
  console.log(`quic-rtt-small-msg-us-p50: ${median(rtts).toFixed(0)}`)
}

await main()
