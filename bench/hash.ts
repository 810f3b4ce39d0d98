// Micro-benchmark: BEP 52 hashing (Bep52Hasher) vs plain SHA-256 over the same
// 256 MiB in-memory buffer. Prints `name: value` lines.
// Run: npx tsc -p tsconfig.json && node dist/bench/hash.js

import { createHash, randomFillSync } from 'node:crypto'
import { Bep52Hasher } from '../src/merkle/bep52.js'

const SIZE = 256 * 1024 * 1024
const CHUNK = 1024 * 1024
const data = Buffer.allocUnsafe(SIZE)
for (let off = 0; off < SIZE; off += 64 * 1024 * 1024) randomFillSync(data, off, Math.min(64 * 1024 * 1024, SIZE - off))

function mbps (ms: number): string {
  return (SIZE / (1024 * 1024) / (ms / 1000)).toFixed(1)
}

function bestOf (runs: number, fn: () => void): number {
  let best = Infinity
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    fn()
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

const bep52Ms = bestOf(3, () => {
  const h = new Bep52Hasher()
  for (let off = 0; off < SIZE; off += CHUNK) h.update(data.subarray(off, off + CHUNK))
  h.digest()
})
const rawMs = bestOf(3, () => {
  createHash('sha256').update(data).digest()
})

console.log(`bep52-hash-MBps: ${mbps(bep52Ms)}`)
console.log(`sha256-raw-MBps: ${mbps(rawMs)}`)
