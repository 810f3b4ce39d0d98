// fanout: one big file from one node to N−1 others, each node in its own network namespace with
// its upload and download capped (tc htb), `swarm share` processes, real QUIC. Measures the time
// until every node holds the verified file against the ideal S/B (one copy's time through one
// link), how many copies of the file the source uploaded, and CPU seconds per GiB delivered.
//
//   sudo node dist/bench/fanout.js [--nodes 8] [--mbit 100] [--mib 256] [--mode mesh|star|bcast] [--small 0] [--keep]
//
// mesh: every node is given every other as --peer (a swarm should form) and the file is moved into
// node 0's shared folder. star: receivers know only the source and peer exchange is off (what a
// plain HTTP server does: every copy crosses the source's uplink) — the naive anchor, run in the
// same harness. bcast: the nodes know only node 0 (peer exchange finds the rest) and
// `swarm bcast <file>` runs against node 0's control socket; the time is until it returns (every
// node holds a verified copy in its blob store), hashing the file on node 0 included.
// --small N (mesh/star): N small files (1–64 KiB) move into the share together with the big file. The goal for mesh: ≤ 1.15× ideal and the source
// uploading ≤ 1.3 copies; libtorrent 2.0.8 measured 1.69× and 1.6 copies in this setup.
//
// Needs root, `ip netns` and `tc`. Makes namespaces swfo<pid>-hub (a bridge) and swfo<pid>-n<i>
// (10.232.0.<i+1>/24 on eth0), removed on every exit path, like every process it starts.
import * as fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { FaultNode, flag, numFlag, boolFlag, onCleanup, print, requireRoot, runSync, sha256, waitUntil, workDir } from './fault-lib.js'

const execFileAsync = promisify(execFile)
requireRoot('fanout')
const N = numFlag('nodes', 8)
const MBIT = numFlag('mbit', 100)
const MIB = numFlag('mib', 256)
const MODE = flag('mode') ?? 'mesh'
const KEEP = boolFlag('keep')
const SUBNET = '10.232.0'
const PORT = 4001
const SMALL = numFlag('small', 0)
if (MODE !== 'mesh' && MODE !== 'star' && MODE !== 'bcast') throw new Error('--mode is mesh, star or bcast')
if (MODE === 'bcast' && SMALL > 0) throw new Error('--small is for the share modes')

// ---- namespaces, links, caps -----------------------------------------------------------------------

const tag = `swfo${process.pid}`
const hub = `${tag}-hub`
const nsOf = (i: number) => `${tag}-n${i}`
const created: string[] = []
onCleanup(() => { for (const n of created.reverse()) runSync('ip', ['netns', 'del', n], true) })
const ip = (...args: string[]) => runSync('ip', args)
const tc = (netns: string, ...args: string[]) => runSync('ip', ['netns', 'exec', netns, 'tc', ...args])
for (const n of [hub, ...Array.from({ length: N }, (_, i) => nsOf(i))]) { ip('netns', 'add', n); created.push(n) }
ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge')
ip('-n', hub, 'link', 'set', 'br0', 'up')
/** Caps one direction of a link: htb on the device's egress. */
const cap = (netns: string, dev: string) => {
  tc(netns, 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10')
  tc(netns, 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', `${MBIT}mbit`, 'ceil', `${MBIT}mbit`)
}
for (let i = 0; i < N; i++) {
  ip('-n', hub, 'link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsOf(i))
  ip('-n', hub, 'link', 'set', `h${i}`, 'master', 'br0')
  ip('-n', hub, 'link', 'set', `h${i}`, 'up')
  ip('-n', nsOf(i), 'addr', 'add', `${SUBNET}.${i + 1}/24`, 'dev', 'eth0')
  ip('-n', nsOf(i), 'link', 'set', 'eth0', 'up')
  ip('-n', nsOf(i), 'link', 'set', 'lo', 'up')
  cap(nsOf(i), 'eth0')      // the node's upload
  cap(hub, `h${i}`)         // the node's download
}
const txBytes = (i: number) => Number(runSync('ip', ['netns', 'exec', nsOf(i), 'cat', '/sys/class/net/eth0/statistics/tx_bytes']).trim())

// ---- nodes ---------------------------------------------------------------------------------------

const base = workDir('fanout')
onCleanup(() => { if (KEEP) console.log(`workdir: ${base}`); else fs.rmSync(base, { recursive: true, force: true }) })
const secretFile = join(base, 'cluster.secret')
fs.writeFileSync(secretFile, 'fanout-bench-secret-' + sha256(base).slice(0, 24) + '\n', { mode: 0o600 })
const addr = (i: number) => `${SUBNET}.${i + 1}:${PORT}`
const nodes = Array.from({ length: N }, (_, i) => new FaultNode({
  name: `n${i}`,
  dir: join(base, `n${i}`, 'share'),
  state: join(base, `n${i}`, 'state'),
  listen: addr(i),
  peers: MODE === 'mesh' ? Array.from({ length: N }, (_, j) => j).filter(j => j !== i).map(addr) : (i === 0 ? [] : [addr(0)]),
  secretFile,
  netns: nsOf(i),
  extraArgs: MODE === 'star' ? ['--no-peer-exchange'] : [],
  logFile: join(base, `n${i}.log`)
}))
const cpuSeconds = (n: FaultNode): number => {
  try {
    const f = fs.readFileSync(`/proc/${n.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(f[11]) + Number(f[12])) / 100    // utime + stime, in clock ticks of 1/100 s
  } catch { return 0 }
}

try {
  await Promise.all(nodes.map(n => n.start()))
  // Every node reports in-sync (the empty share) once its peers are connected and settled.
  const connected = await waitUntil(() => nodes.every(n => n.inSyncRoot !== null), 60_000)
  if (!connected) console.log('fanout: not every node reported in-sync; measuring anyway')
  await new Promise(r => setTimeout(r, 1000))   // mesh: N×(N−1)/2 connections, let the last ones settle
  // The file is made outside the share and moved in at once: it appears whole at t0.
  const data = randomBytes(MIB * 1024 * 1024)
  const hash = sha256(data)
  const stage = join(base, 'n0', 'stage')
  fs.mkdirSync(stage, { recursive: true })
  fs.writeFileSync(join(stage, 'big.bin'), data)
  const small = new Map<string, string>()
  for (let i = 0; i < SMALL; i++) {
    const buf = randomBytes(1024 + Math.floor(Math.random() * 63 * 1024))
    const rel = `small/${Math.floor(i / 100)}/f${i}.bin`
    fs.mkdirSync(join(stage, 'small', String(Math.floor(i / 100))), { recursive: true })
    fs.writeFileSync(join(stage, rel), buf)
    small.set(rel, sha256(buf))
  }
  const tx0 = txBytes(0)
  const txAll0 = nodes.map((_, i) => txBytes(i))
  const cpu0 = nodes.map(cpuSeconds)
  const done = new Map<string, number>()
  /** Per receiver: pieces it got from the source, and from anyone (its `fetched` event). */
  const fromSource = new Map<string, { source: number, all: number }>()
  const smallDone = new Map<string, number>()
  for (const n of nodes.slice(1)) {
    n.onEvent(e => {
      if (e.event === 'file-updated' && e.path === 'big.bin' && !done.has(n.name)) done.set(n.name, Date.now())
      if (e.event === 'file-updated' && typeof e.path === 'string' && e.path.startsWith('small/')) smallDone.set(n.name, (smallDone.get(n.name) ?? 0) + 1)
      if (e.event === 'fetched' && (e.path === 'big.bin' || (MODE === 'bcast' && e.share === ''))) {
        const per = e.perPeer as Record<string, number>
        fromSource.set(n.name, { source: per[nodes[0]!.peerId] ?? 0, all: Object.values(per).reduce((a, b) => a + b, 0) })
      }
    })
  }
  const ideal = (MIB * 1024 * 1024 * 8) / (MBIT * 1e6)
  const t0 = Date.now()
  let all: boolean
  let bcastReport: Record<string, unknown> | null = null
  if (MODE === 'bcast') {
    // Asynchronously: the nodes' event lines must keep being read while the broadcast runs.
    const { stdout: out } = await execFileAsync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'swarm.js'), 'bcast', join(stage, 'big.bin'), '--state', nodes[0]!.spec.state, '--json'], { maxBuffer: 64 * 1024 * 1024 })
    bcastReport = JSON.parse(out) as Record<string, unknown>
    const states = (bcastReport.nodes as Array<{ peerId: string, state: string }>)
    for (const [i, n] of nodes.entries()) if (i > 0 && states.some(s => s.peerId === n.peerId && s.state === 'done')) done.set(n.name, Date.now())
    all = done.size === N - 1
  } else {
    if (SMALL > 0) fs.renameSync(join(stage, 'small'), join(nodes[0]!.spec.dir, 'small'))
    fs.renameSync(join(stage, 'big.bin'), join(nodes[0]!.spec.dir, 'big.bin'))
    all = await waitUntil(() => done.size === N - 1 && [...smallDone.values()].filter(v => v >= SMALL).length === (SMALL > 0 ? N - 1 : 0), Math.max(120_000, ideal * 1000 * (N + 2)), 100)
  }
  const seconds = (Math.max(...done.values()) - t0) / 1000
  const uploaded = (txBytes(0) - tx0) / data.length
  const uploadedAll = nodes.reduce((sum, _, i) => sum + txBytes(i) - txAll0[i]!, 0) / data.length
  const cpu = nodes.reduce((s, n, i) => s + cpuSeconds(n) - cpu0[i]!, 0)
  let verified = 0
  const copyOf = (n: FaultNode): string => MODE === 'bcast' ? join(n.spec.state, 'blobs', `${bcastReport!.root as string}-${data.length}`) : join(n.spec.dir, 'big.bin')
  for (const n of nodes.slice(1)) { try { if (sha256(fs.readFileSync(copyOf(n))) === hash) verified++ } catch {} }
  let smallOk = 0
  for (const n of nodes.slice(1)) for (const [rel, h] of small) { try { if (sha256(fs.readFileSync(join(n.spec.dir, rel))) === h) smallOk++ } catch {} }
  const out: Record<string, string | number> = {
    mode: MODE,
    nodes: N,
    link_mbit: MBIT,
    file_mib: MIB,
    all_received: all ? 'yes' : `no (${done.size} of ${N - 1})`,
    verified_copies: verified,
    ...(SMALL > 0 ? { small_files: SMALL, small_files_verified: `${smallOk} of ${SMALL * (N - 1)}` } : {}),
    ...(bcastReport !== null ? { bcast_reported_seconds: (bcastReport.seconds as number).toFixed(1), bcast_reported_source_copies: (bcastReport.sourceCopies as number).toFixed(2) } : {}),
    seconds: seconds.toFixed(1),
    ideal_seconds: ideal.toFixed(1),
    ratio_to_ideal: (seconds / ideal).toFixed(2),
    source_upload_copies: uploaded.toFixed(2),
    all_nodes_upload_copies: `${uploadedAll.toFixed(2)} (${N - 1} needed)`,
    cpu_seconds_per_GiB_delivered: (cpu / ((N - 1) * MIB / 1024)).toFixed(2),
    ...(MODE !== 'bcast' ? { first_done_seconds: ((Math.min(...done.values()) - t0) / 1000).toFixed(1) } : {}),
    pieces_from_source_per_receiver: [...fromSource.entries()].map(([k, v]) => `${k} ${v.source}/${v.all}`).join(', '),
    goal: 'mesh ≤ 1.15× ideal, source ≤ 1.3 copies; libtorrent 1.69× and 1.6 copies here'
  }
  for (const [k, v] of Object.entries(out)) print(k, v)
} finally {
  await Promise.all(nodes.map(n => n.stop(5000).catch(() => {})))
}
