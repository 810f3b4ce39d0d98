// The fuzzer (test/fuzz-lib.ts) at a fixed seed and a small count: control decode() and
// FrameSplitter.push() may only throw SwarmError ERR_PROTOCOL; serveWire() and Download.addPeer()
// fed valid, mutated and random BitTorrent messages over duplex pairs never let anything escape
// (uncaughtException / unhandledRejection), never need guardWire's catch (WireChecker refuses
// first), and buffer nothing without bound. bench/fuzz.ts runs the same at >= 1M inputs.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { SwarmError } from '../src/errors.js'
import { maxFrameFor } from '../src/swarm/framing.js'
import { FUZZ_SEND_CAP, Fuzzer, Rng, forceGc, mib, mutateMany, randomExtendedHandshake, runCodec, tempDir, validControlFrame, type Crash } from './fuzz-lib.js'

const SEED = 0xf00d
/** inputs over all four targets; about 3 s on one core */
const COUNT = 150_000
/** a seeded run may keep this much more heap than it started with (the Download, caches, JIT) */
const MAX_HEAP_GROWTH_MIB = 32

const tmp = tempDir()
after(() => { tmp.remove() })

function show (crashes: Crash[]): string {
  return crashes.slice(0, 5).map(c => `${c.target}: ${c.input}\n${c.error}`).join('\n\n')
}

test(`${COUNT} seeded inputs: no crash, no parser throw, no unbounded buffering`, async () => {
  forceGc()
  const heap0 = process.memoryUsage().heapUsed
  const report = await new Fuzzer(SEED, join(tmp.dir, 'fuzz.part')).run(COUNT)
  forceGc()
  const growth = mib(process.memoryUsage().heapUsed - heap0)
  assert.deepEqual(report.crashes, [], show(report.crashes))
  assert.deepEqual(report.parserThrows, [], show(report.parserThrows))
  // every target was exercised, and deep enough to matter
  for (const [target, n] of Object.entries(report.inputs)) assert.ok(n > COUNT / 10, `${target}: ${n} inputs`)
  assert.ok(report.sessions.serve > 100 && report.sessions.download > 100, JSON.stringify(report.sessions))
  assert.ok(report.peerDropped > 100, `peers dropped: ${report.peerDropped}`)
  assert.ok(report.downloadsCompleted > 0, 'some downloads completed from fuzzed sessions')
  assert.ok(report.maxWireBuffered <= maxFrameFor(16384, 4), `wire buffered ${report.maxWireBuffered}`)
  assert.ok(report.notReading > 0, 'peers that never read were dropped')
  assert.ok(report.maxQueued <= FUZZ_SEND_CAP + maxFrameFor(16384, 4), `queued ${report.maxQueued}`)
  assert.ok(growth < MAX_HEAP_GROWTH_MIB, `heap grew ${growth.toFixed(1)} MiB`)
})

test('a target throwing anything but ERR_PROTOCOL is reported as a crash', () => {
  const crashes: Crash[] = []
  const input = Buffer.from('0102', 'hex')
  runCodec('decode', input, () => { throw new SwarmError('ERR_PROTOCOL', 'fine') }, crashes)
  assert.equal(crashes.length, 0)
  runCodec('decode', input, () => { throw new SwarmError('ERR_BAD_ARGUMENT', 'wrong code') }, crashes)
  runCodec('decode', input, () => { throw new RangeError('out of bounds') }, crashes)
  assert.equal(crashes.length, 2)
  assert.equal(crashes[1]?.input, '0102')
  assert.match(crashes[1]?.error ?? '', /RangeError: out of bounds/)
})

test('the generator is reproducible from its seed', () => {
  const gen = (seed: number): string[] => {
    const rng = new Rng(seed)
    return Array.from({ length: 200 }, () => mutateMany(rng, validControlFrame(rng)).toString('hex') + randomExtendedHandshake(rng).toString('hex'))
  }
  assert.deepEqual(gen(42), gen(42))
  assert.notDeepEqual(gen(42), gen(43))
})
