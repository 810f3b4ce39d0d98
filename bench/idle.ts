// idle: two nodes holding 10,000 files, in sync, doing nothing: CPU used over IDLE_S seconds.
// The goal is near zero: no polling, no periodic rescans; only QUIC keep-alives.
import { writeFileSync, mkdirSync, rmSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { benchDir, startBenchNode, print } from './lib.js'

const FILES = Number(process.env.FILES ?? 10000)
const IDLE_S = Number(process.env.IDLE_S ?? 10)
const TICKS = 100   // USER_HZ on Linux

function cpuTicks (pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(f[11]) + Number(f[12])   // utime + stime
}

const base = benchDir()
const seed = join(base, 'a', 'share')
for (let i = 0; i < FILES; i++) {
  if (i % 100 === 0) mkdirSync(join(seed, `d${i / 100}`), { recursive: true })
  writeFileSync(join(seed, `d${Math.floor(i / 100)}`, `f${i}`), `file ${i}`)
}
const a = await startBenchNode(base, 'a')
const b = await startBenchNode(base, 'b', [a.address])
try {
  await b.waitEvent('in-sync', undefined, 300_000)
  await new Promise(r => setTimeout(r, 2000))
  const before = [cpuTicks(a.proc.pid!), cpuTicks(b.proc.pid!)]
  await new Promise(r => setTimeout(r, IDLE_S * 1000))
  const after = [cpuTicks(a.proc.pid!), cpuTicks(b.proc.pid!)]
  print('idle-files', FILES)
  print('idle-seconds', IDLE_S)
  print('idle-cpu-percent-node-a', (after[0]! - before[0]!) / TICKS / IDLE_S * 100)
  print('idle-cpu-percent-node-b', (after[1]! - before[1]!) / TICKS / IDLE_S * 100)
} finally {
  await Promise.all([a.stop(), b.stop()])
  rmSync(base, { recursive: true, force: true })
}
