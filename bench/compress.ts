// compress: what the --compress toggle saves and costs. Two nodes in this process (real QUIC on
// loopback, real files); one publishes a file, the other gets it, with and without deflated piece
// streams, for compressible data (JSON-like log lines) and incompressible data (random bytes).
// Prints per case: seconds, CPU seconds (both nodes), and bytes on the wire / file bytes.
//
//   node dist/bench/compress.js [--mib 64] [--runs 3]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { startNode } from '../src/index.js'
import { deflateStats } from '../src/transport/deflate.js'

const arg = (name: string, dflt: number): number => { const i = process.argv.indexOf('--' + name); return i < 0 ? dflt : Number(process.argv[i + 1]) }
const MIB = arg('mib', 64)
const RUNS = arg('runs', 3)
const SECRET = 'compress-bench-secret-0123'

function logLines (bytes: number): Buffer {
  const parts: string[] = []
  let n = 0
  for (let i = 0; n < bytes; i++) {
    const line = JSON.stringify({ t: 1764000000000 + i * 13, level: i % 7 === 0 ? 'warn' : 'info', path: `/api/v1/items/${i % 5000}`, status: 200 + (i % 3), ms: (i * 7919) % 900, ua: 'Mozilla/5.0 (X11; Linux x86_64)' }) + '\n'
    parts.push(line)
    n += line.length
  }
  return Buffer.from(parts.join('')).subarray(0, bytes)
}

async function once (data: Buffer, compress: boolean): Promise<{ seconds: number, cpu: number, wire: number }> {
  const base = mkdtempSync(join(tmpdir(), 'swarm-compress-'))
  const a = await startNode({ stateDir: join(base, 'a'), secret: SECRET, listen: '127.0.0.1:0' })
  const b = await startNode({ stateDir: join(base, 'b'), secret: SECRET, listen: '127.0.0.1:0', peers: [a.address], compress })
  try {
    const file = join(base, 'f.bin')
    writeFileSync(file, data)
    await a.jobs.put(file, { name: 'f' })
    while (b.catalog.lookup('f') === undefined) await new Promise(r => setTimeout(r, 20))
    const before = { ...deflateStats }
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    await b.jobs.get('f', join(base, 'out.bin'))
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const c = process.cpuUsage(cpu0)
    const wire = compress ? deflateStats.wireBytes - before.wireBytes : data.length
    return { seconds, cpu: (c.user + c.system) / 1e6, wire }
  } finally {
    await b.stop(); await a.stop()
    rmSync(base, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]! }
const cases: Array<[string, Buffer]> = [['text', logLines(MIB * 1024 * 1024)], ['random', randomBytes(MIB * 1024 * 1024)]]
console.log(`file_mib: ${MIB}`)
console.log(`runs: ${RUNS} (medians)`)
for (const [kind, data] of cases) {
  for (const compress of [false, true]) {
    const rs = []
    for (let i = 0; i < RUNS; i++) rs.push(await once(data, compress))
    const tag = `${kind}_${compress ? 'deflate' : 'plain'}`
    console.log(`${tag}_seconds: ${median(rs.map(r => r.seconds)).toFixed(2)}`)
    console.log(`${tag}_cpu_seconds: ${median(rs.map(r => r.cpu)).toFixed(2)}`)
    console.log(`${tag}_wire_ratio: ${(median(rs.map(r => r.wire)) / data.length).toFixed(3)}`)
  }
}
