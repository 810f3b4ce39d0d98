// fault-repro: the two product faults fault-kill found, each cut down to a short deterministic
// run of two `swarm share` processes on loopback (no kills needed). Exit status 1 when reproduced.
//
//   npm run build && node dist/bench/fault-repro.js zeros         # a big file re-added under another name arrives as zeros
//   npm run build && node dist/bench/fault-repro.js race [--paths 150]   # a local write racing a remote version vanishes
//
// zeros: A writes one.dat (5 MiB) → B fetches it; A deletes it → B deletes it; A writes the same
//   bytes as two.dat → B reports file-updated two.dat with the right root, but the file holds zeros.
// race: for each of --paths paths, A writes p, then 0–7 ms later B writes p (temp + rename). B's
//   write is the last version of p: it must end up at p (it saw A's version first) or in a conflict
//   copy of p (it did not); counted lost when it is in neither place on a node.
import { writeFileSync, readFileSync, renameSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { benchDir, startBenchNode, print } from './lib.js'
import { numFlag, sha256, sleep } from './fault-lib.js'

const which = process.argv[2]
if (which !== 'zeros' && which !== 'race') { console.error('usage: fault-repro.js zeros | race [--paths N]'); process.exit(2) }
const base = benchDir()
const a = await startBenchNode(base, 'a')
const b = await startBenchNode(base, 'b', [a.address])
let reproduced = false
try {
  await b.waitEvent('peer-connected')
  if (which === 'zeros') {
    const data = randomBytes(5 << 20)
    const full = (name: string) => { try { return readFileSync(join(b.dir, name)).length === data.length } catch { return false } }
    const got = b.waitEvent('file-updated', e => e.path === 'one.dat' && full('one.dat'), 30_000)
    writeFileSync(join(base, 'tmp'), data); renameSync(join(base, 'tmp'), join(a.dir, 'one.dat'))
    await got
    print('one.dat-on-b-correct', readFileSync(join(b.dir, 'one.dat')).equals(data) ? 'yes' : 'no')
    const gone = b.waitEvent('file-deleted', e => e.path === 'one.dat', 30_000)
    rmSync(join(a.dir, 'one.dat'))
    await gone
    await sleep(1000)
    const got2 = b.waitEvent('file-updated', e => e.path === 'two.dat' && full('two.dat'), 30_000)
    writeFileSync(join(base, 'tmp'), data); renameSync(join(base, 'tmp'), join(a.dir, 'two.dat'))
    const ev = await got2
    const two = readFileSync(join(b.dir, 'two.dat'))
    reproduced = !two.equals(data)
    print('two.dat-on-b-correct', reproduced ? 'no' : 'yes')
    print('two.dat-on-b-all-zero', two.every(x => x === 0) ? 'yes' : 'no')
    print('two.dat-root-reported-by-b', String(ev.root))
  } else {
    const N = numFlag('paths', 150)
    const want = new Map<string, string>()
    for (let i = 0; i < N; i++) {
      const p = `p${i}.bin`
      writeFileSync(join(base, 'ta'), randomBytes(20_000)); renameSync(join(base, 'ta'), join(a.dir, p))
      await sleep(i % 8)
      const d = randomBytes(20_000)
      want.set(p, sha256(d))
      writeFileSync(join(base, 'tb'), d); renameSync(join(base, 'tb'), join(b.dir, p))
      await sleep(20)
    }
    await sleep(10_000)
    const snap = (dir: string) => new Map(readdirSync(dir).filter(f => f !== '.swarm').map(f => [f, sha256(readFileSync(join(dir, f)))]))
    const trees = [snap(a.dir), snap(b.dir)]
    let lost = 0
    for (const [p, w] of want) {
      const stem = p.slice(0, -'.bin'.length)
      const missing = trees.filter(t => ![...t].some(([f, h]) => h === w && (f === p || f.startsWith(stem + '.sync-conflict-'))))
      if (missing.length > 0) { lost++; if (lost <= 5) console.log(`lost: ${p} sha256 ${w.slice(0, 12)} on ${missing.length} of 2 nodes; there now: ${trees[0]!.get(p)?.slice(0, 12)}`) }
    }
    const diverged = [...new Set([...trees[0]!.keys(), ...trees[1]!.keys()])].filter(f => trees[0]!.get(f) !== trees[1]!.get(f)).length
    reproduced = lost > 0
    print('paths', N)
    print('lost_last_writes', lost)
    print('diverged_paths', diverged)
  }
} finally {
  await Promise.all([a.stop(), b.stop()])
  rmSync(base, { recursive: true, force: true })
}
process.exitCode = reproduced ? 1 : 0
