// big file: one 256 MiB file written on A until complete and verified on B (two processes,
// loopback QUIC). The end-to-end time includes hashing on A; the transfer time starts when A
// has indexed the file. Goal ≤ 1.0 s. Anchor (same machine): Syncthing 1.67 s.
import { writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { benchDir, startBenchNode, print } from './lib.js'
import { fileRoot } from '../src/merkle/bep52.js'

const SIZE = Number(process.env.SIZE_MB ?? 256) * 1024 * 1024

const base = benchDir()
const a = await startBenchNode(base, 'a')
const b = await startBenchNode(base, 'b', [a.address])
try {
  await b.waitEvent('peer-connected')
  await new Promise(r => setTimeout(r, 300))
  const data = randomBytes(SIZE)
  // Without close-write events a file still being written can be indexed (and replicated) mid-way;
  // wait for the version with the final root.
  const root = fileRoot(data).toString('hex')
  const indexed = a.waitEvent('file-updated', e => e.path === 'big.bin' && e.root === root)
  const arrived = b.waitEvent('file-updated', e => e.path === 'big.bin' && e.root === root, 300_000)
  const t0 = performance.now()
  writeFileSync(join(a.dir, 'big.bin'), data)
  const tw = performance.now()
  await indexed
  const t1 = performance.now()
  await arrived
  const t2 = performance.now()
  const got = await readFile(join(b.dir, 'big.bin'))
  if (createHash('sha256').update(got).digest('hex') !== createHash('sha256').update(data).digest('hex')) throw new Error('file differs on B')
  print('bigfile-MiB', SIZE / 1024 / 1024)
  print('bigfile-write-on-A-s', (tw - t0) / 1000)
  print('bigfile-end-to-end-s', (t2 - tw) / 1000)
  print('bigfile-transfer-s', (t2 - t1) / 1000)
  print('bigfile-transfer-MBps', SIZE / 1e6 / ((t2 - t1) / 1000))
  print('anchor-syncthing-s', 1.67)
} finally {
  await Promise.all([a.stop(), b.stop()])
  rmSync(base, { recursive: true, force: true })
}
