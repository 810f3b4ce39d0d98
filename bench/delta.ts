// delta: only changed pieces move. A 128 MiB file replicated A → B (two processes, loopback QUIC);
// then 4 KiB overwritten in the middle on A, then 1 MiB appended on A. For each change: the bytes
// B fetched over the network (its `fetched` event) and the time from the write on A until B has
// the new version (including A noticing and rehashing the file; `-transfer-s` starts once A has
// indexed it). Goal: the edit moves ≤ 2 MiB (before: the whole file).
import { closeSync, openSync, rmSync, writeFileSync, writeSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { benchDir, startBenchNode, print, type BenchNode } from './lib.js'
import { fileRoot } from '../src/merkle/bep52.js'

const SIZE = Number(process.env.SIZE_MB ?? 128) * 1024 * 1024
const EDIT_BYTES = 4096
const APPEND_BYTES = 1024 * 1024
const MiB = 1024 * 1024

const base = benchDir()
const a = await startBenchNode(base, 'a')
const b = await startBenchNode(base, 'b', [a.address])

/** Runs `change` on A; resolves once B holds `data` (whose root is computed here first). */
async function replicate (data: Buffer, change: () => void): Promise<{ s: number, transferS: number, fetchedBytes: number, reusedBytes: number }> {
  const root = fileRoot(data).toString('hex')
  const indexed = a.waitEvent('file-updated', e => e.path === 'big.bin' && e.root === root)
  const fetched = b.waitEvent('fetched', e => e.path === 'big.bin' && e.root === root, 300_000)
  const arrived = b.waitEvent('file-updated', e => e.path === 'big.bin' && e.root === root, 300_000)
  const t0 = performance.now()
  change()
  await indexed
  const t1 = performance.now()
  const [f] = await Promise.all([fetched, arrived])
  const t2 = performance.now()
  await check(b, data)
  return { s: (t2 - t0) / 1000, transferS: (t2 - t1) / 1000, fetchedBytes: f.bytes as number, reusedBytes: f.reusedBytes as number }
}

async function check (n: BenchNode, data: Buffer): Promise<void> {
  const got = await readFile(join(n.dir, 'big.bin'))
  if (createHash('sha256').update(got).digest('hex') !== createHash('sha256').update(data).digest('hex')) throw new Error('file differs on B')
}

try {
  await b.waitEvent('peer-connected')
  await new Promise(r => setTimeout(r, 300))
  const path = join(a.dir, 'big.bin')
  let data = randomBytes(SIZE)
  const full = await replicate(data, () => writeFileSync(path, data))
  print('delta-full-copy-fetched-MiB', full.fetchedBytes / MiB)
  print('delta-full-copy-s', full.s)

  const edit = randomBytes(EDIT_BYTES)
  const at = Math.floor(SIZE / 2) + 1000
  edit.copy(data, at)
  const e = await replicate(data, () => {
    const fd = openSync(path, 'r+')
    try { writeSync(fd, edit, 0, edit.length, at) } finally { closeSync(fd) }
  })
  print('delta-edit-fetched-MiB', e.fetchedBytes / MiB)
  print('delta-edit-reused-MiB', e.reusedBytes / MiB)
  print('delta-edit-s', e.s)
  print('delta-edit-transfer-s', e.transferS)

  const tail = randomBytes(APPEND_BYTES)
  data = Buffer.concat([data, tail])
  const ap = await replicate(data, () => appendFileSync(path, tail))
  print('delta-append-fetched-MiB', ap.fetchedBytes / MiB)
  print('delta-append-reused-MiB', ap.reusedBytes / MiB)
  print('delta-append-s', ap.s)
  print('delta-append-transfer-s', ap.transferS)
  print('goal-edit-fetched-MiB', 2)
} finally {
  await Promise.all([a.stop(), b.stop()])
  rmSync(base, { recursive: true, force: true })
}
