// fanout-suite: the fan-out issue's whole table in one command — each case is one run of
// bench/fanout.js (its own namespaces, nodes and cleanup), one after another, then a summary.
//
//   sudo node dist/bench/fanout-suite.js [--quick]
//
// Cases: 1 source → 7 nodes, 256 MiB, 100 Mbit/s, as star (naive: everyone fetches from the
// source), share mesh and bcast; how the time grows with 2, 4, 8 nodes (share and bcast) and 16
// nodes at 25 Mbit/s with 64 MiB (the same ideal time, 21.5 s); a mixed job (1,000 small files +
// 128 MiB, share mode). --quick: 64 MiB and no star / 16 / mixed.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const quick = process.argv.includes('--quick')
const FANOUT = join(import.meta.dirname, 'fanout.js')
const MIB = quick ? '64' : '256'
const cases: Array<{ label: string, args: string[] }> = [
  ...(quick ? [] : [{ label: 'star 8 (naive)', args: ['--nodes', '8', '--mode', 'star', '--mib', MIB] }]),
  { label: 'share 8', args: ['--nodes', '8', '--mode', 'mesh', '--mib', MIB] },
  { label: 'bcast 8', args: ['--nodes', '8', '--mode', 'bcast', '--mib', MIB] },
  { label: 'share 2', args: ['--nodes', '2', '--mode', 'mesh', '--mib', MIB] },
  { label: 'bcast 2', args: ['--nodes', '2', '--mode', 'bcast', '--mib', MIB] },
  { label: 'share 4', args: ['--nodes', '4', '--mode', 'mesh', '--mib', MIB] },
  { label: 'bcast 4', args: ['--nodes', '4', '--mode', 'bcast', '--mib', MIB] },
  ...(quick ? [] : [
    { label: 'share 16 @25 Mbit 64 MiB', args: ['--nodes', '16', '--mode', 'mesh', '--mib', '64', '--mbit', '25'] },
    { label: 'bcast 16 @25 Mbit 64 MiB', args: ['--nodes', '16', '--mode', 'bcast', '--mib', '64', '--mbit', '25'] },
    { label: 'mixed 8 (1000 small + 128 MiB, share)', args: ['--nodes', '8', '--mode', 'mesh', '--mib', '128', '--small', '1000'] }
  ])
]

const rows: string[] = []
for (const c of cases) {
  let out: string
  try {
    out = execFileSync(process.execPath, [FANOUT, ...c.args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 })
  } catch (err) { out = (err as { stdout?: string }).stdout ?? ''; console.log(`${c.label}: failed`) }
  const v = Object.fromEntries(out.split('\n').map(l => l.split(': ')).filter(p => p.length >= 2).map(([k, ...r]) => [k, r.join(': ')]))
  const row = `${c.label}: ${v.seconds ?? '?'} s = ${v.ratio_to_ideal ?? '?'}x ideal (${v.ideal_seconds ?? '?'} s), source ${v.source_upload_copies ?? '?'} copies, ` +
    `all nodes ${v.all_nodes_upload_copies ?? '?'}, ${v.cpu_seconds_per_GiB_delivered ?? '?'} CPU-s/GiB, verified ${v.verified_copies ?? '?'}${v.small_files_verified !== undefined ? `, small ${v.small_files_verified}` : ''}`
  console.log(row)
  rows.push(row)
}
console.log('---')
for (const r of rows) console.log(r)
