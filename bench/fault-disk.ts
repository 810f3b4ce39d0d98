// fault-disk: the receiving node's folder is on a small tmpfs; the sender adds more than fits.
//
//   npm run build && node dist/bench/fault-disk.js [--tmpfs-mib 64] [--ballast-mib 24] [--data-mib 48] [--hold 10] [--converge-timeout 120] [--keep] [--inject]
//   node dist/bench/fault-disk.js --selftest      # the checks on made-up folders, no mount
//
// Needs root (mount). Two `swarm share` processes on loopback: the sender's folder and both state
// dirs are ordinary directories under $TMPDIR; the receiver's folder is <work>/mnt/share on a fresh
// tmpfs of --tmpfs-mib, mounted by this bench. Beside the share on that tmpfs, outside the share,
// lies an unrelated --ballast-mib file (another application's data on the same disk). The sender
// then writes --data-mib of new files (4–8 MiB files and 8–64 KiB files interleaved, every write
// atomic), more than the free space. Once the receiver has logged a disk-full error, the sender
// writes 64 more small files and edits 16 existing small ones (small-file writes while the disk is
// full), and the disk is left full for --hold seconds. Then the user frees space the way a user
// would: deletes the ballast file. The receiver is never restarted; it must recover by itself.
// From the first write until the end, the receiver's folder is sampled every 250 ms.
//
// Printed: bytes_sent; disk_full_logged (the receiver said so, and after how long); receiver_alive
// (never exited, never restarted); partial_files_seen (distinct path+content visible in the
// receiver's folder, `.swarm/` ignored, that are not a version the sender wrote at that path nor a
// conflict copy of one: goal 0); converged (sender and receiver folders identical and both report
// the same in-sync root, within --converge-timeout s of freeing space); recover_seconds (freeing
// space → converged); missing_files / diverged_paths at the end.
// Exit status 1 if partial_files_seen > 0, the receiver died, no disk-full error was logged, or it
// did not converge. The tmpfs is unmounted and the work dir removed on every exit path
// (normal end, error, SIGINT/SIGTERM/SIGHUP); --keep keeps the work dir (node logs there).
//
// Self-check: `--selftest` runs the shared checks on made-up folders (see fault-lib.ts); `--inject`
// (real run) drops a file of bytes the sender never wrote into the receiver's folder before the
// data is sent, so partial_files_seen must be ≥ 1.
import * as fs from 'node:fs'
import { join } from 'node:path'
import {
  FaultNode, VersionBook, atomicWrite, badFiles, boolFlag, divergedPaths, freeUdpPort, numFlag, onCleanup, pick, print,
  randomContent, requireRoot, rnd, runCleanups, runSync, selftestChecks, sha256, sleep, sleepSync, snapshotTree,
  waitConverged, waitUntil, workDir, writerFiles, type Bad
} from './fault-lib.js'

if (boolFlag('selftest')) { selftestChecks(); process.exit(0) }
requireRoot('fault-disk')

const TMPFS_MIB = numFlag('tmpfs-mib', 64)
const BALLAST_MIB = numFlag('ballast-mib', 24)
const DATA_MIB = numFlag('data-mib', 48)
const HOLD_S = numFlag('hold', 10)
const CONVERGE_S = numFlag('converge-timeout', 120)
const KEEP = boolFlag('keep')
const INJECT = boolFlag('inject')
const DISK_FULL = /disk full|no space|ENOSPC/i

const base = workDir('fault-disk')
let failed = false
onCleanup(() => {
  if (KEEP || failed) console.log(`workdir: ${base}  (node logs: sender.log, receiver.log)`)
  else fs.rmSync(base, { recursive: true, force: true })
})
const mnt = join(base, 'mnt')
fs.mkdirSync(mnt)
runSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m,mode=0755`, 'swarm-fault-disk', mnt])
onCleanup(() => {
  // Nodes are killed first (cleanups run last-registered first); the kernel may need a moment to close their files.
  for (let i = 0; i < 50; i++) {
    try { runSync('umount', [mnt]); return } catch { sleepSync(100) }
  }
  runSync('umount', ['-l', mnt], true)
})

const secretFile = join(base, 'cluster.secret')
fs.writeFileSync(secretFile, 'fault-disk-secret-' + sha256(base).slice(0, 24) + '\n', { mode: 0o600 })
const [sp, rp] = [await freeUdpPort(), await freeUdpPort()]
const sender = new FaultNode({ name: 'sender', dir: join(base, 'sender', 'share'), state: join(base, 'sender', 'state'), listen: `127.0.0.1:${sp}`, peers: [`127.0.0.1:${rp}`], secretFile, logFile: join(base, 'sender.log') })
const receiver = new FaultNode({ name: 'receiver', dir: join(mnt, 'share'), state: join(base, 'receiver', 'state'), listen: `127.0.0.1:${rp}`, peers: [`127.0.0.1:${sp}`], secretFile, logFile: join(base, 'receiver.log') })
const staging = join(base, 'sender', 'staging')
fs.mkdirSync(staging)
const ballast = join(mnt, 'ballast.bin')
fs.writeFileSync(ballast, randomContent(BALLAST_MIB << 20))

const book = new VersionBook()
let bytesSent = 0
function send (path: string, data: Buffer): void {
  book.add(path, sha256(data))
  atomicWrite(staging, join(sender.spec.dir, path), data)
  bytesSent += data.length
}

// ---- sampling the receiver ---------------------------------------------------------------------------

const partial = new Map<string, Bad>()
let sampling = true
let samples = 0
const sampler = (async () => {
  while (sampling) {
    for (const b of badFiles('receiver', snapshotTree(receiver.spec.dir), book)) partial.set(`${b.path}:${b.why}`, b)
    samples++
    await sleep(250)
  }
})()

// ---- run -----------------------------------------------------------------------------------------

await sender.start()
await receiver.start()
if (!await waitUntil(() => sender.inSyncRoot !== null && receiver.inSyncRoot !== null, 30_000)) throw new Error('nodes did not connect (no in-sync within 30 s)')
if (INJECT) { fs.writeFileSync(join(receiver.spec.dir, 'injected-never-written.bin'), randomContent(3000)); console.log('inject: wrote injected-never-written.bin into the receiver\'s folder') }

const tSend = Date.now()
let firstFullAt = 0
receiver.onEvent(e => { if (firstFullAt === 0 && e.event === 'log' && DISK_FULL.test(String(e.message))) firstFullAt = Date.now() })
let n = 0
while (bytesSent < DATA_MIB << 20) {
  for (let i = 0; i < 24 && bytesSent < DATA_MIB << 20; i++) send(`small/s${n++}.bin`, randomContent(rnd(8, 64) << 10))
  if (bytesSent < DATA_MIB << 20) send(`big/b${n++}.dat`, randomContent(rnd(4 << 20, 8 << 20)))
  await sleep(50)
}
console.error(`fault-disk: sent ${(bytesSent / 2 ** 20).toFixed(1)} MiB into a ${TMPFS_MIB} MiB tmpfs holding ${BALLAST_MIB} MiB of ballast`)
const full = await waitUntil(() => firstFullAt !== 0, 60_000)
// Small-file writes while the receiver's disk is full: new files and edits.
for (let i = 0; i < 64; i++) send(`late/l${i}.bin`, randomContent(rnd(1, 16) << 10))
const smalls = writerFiles(sender.spec.dir).filter(p => p.startsWith('small/'))
for (let i = 0; i < 16 && smalls.length > 0; i++) send(pick(smalls), randomContent(rnd(8, 64) << 10))
await sleep(HOLD_S * 1000)
const aliveWhileFull = receiver.alive
const dfFull = runSync('df', ['-k', mnt], true).trim().split('\n').pop()

fs.rmSync(ballast)
const tFree = Date.now()
console.error('fault-disk: ballast deleted; waiting for the receiver to catch up')
const conv = await waitConverged([sender, receiver], CONVERGE_S * 1000)
const recoverSeconds = (Date.now() - tFree) / 1000
sampling = false
await sampler
const aliveAtEnd = receiver.alive && receiver.starts === 1 && receiver.unexpectedExits.length === 0
await Promise.all([sender.stop(), receiver.stop()])

const [st, rt] = [snapshotTree(sender.spec.dir), snapshotTree(receiver.spec.dir)]
for (const b of badFiles('receiver', rt, book)) partial.set(`${b.path}:${b.why}`, b)
const missing = [...st].filter(([p, i]) => i.type === 'file' && rt.get(p)?.hash !== i.hash).map(([p]) => p)
const diverged = divergedPaths([st, rt])
const fullLogs = receiver.errors.filter(m => DISK_FULL.test(m))

print('bytes_sent', bytesSent)
print('tmpfs_mib', TMPFS_MIB)
print('ballast_mib', BALLAST_MIB)
print('receiver_df_while_full', dfFull ?? '?')
print('disk_full_logged', full ? `yes, ${((firstFullAt - tSend) / 1000).toFixed(1)} s after the first write` : 'no')
print('disk_full_error_logs', fullLogs.length)
print('receiver_alive', aliveWhileFull && aliveAtEnd ? 'yes' : 'no')
print('receiver_samples', samples)
print('partial_files_seen', partial.size)
print('converged', conv.converged ? 'yes' : `no (gave up after ${CONVERGE_S} s)`)
print('recover_seconds', conv.converged ? recoverSeconds : -1)
print('missing_files', missing.length)
const byFolder = new Map<string, number>()
for (const p of missing) byFolder.set(p.split('/')[0]!, (byFolder.get(p.split('/')[0]!) ?? 0) + 1)
print('missing_by_folder', ['big', 'small', 'late'].map(f => `${f} ${byFolder.get(f) ?? 0}`).join(', ') + '  (big: 4–8 MiB fetched files; small: 8–64 KiB, inline, sent before and edited while full; late: 1–16 KiB created while full)')
print('diverged_paths', diverged.length)
for (const b of [...partial.values()].slice(0, 15)) console.log(`partial: ${b.path}: ${b.why}`)
for (const p of missing.slice(0, 15)) console.log(`missing: ${p} (${st.get(p)!.size} bytes) ${rt.has(p) ? 'has other content on receiver' : 'absent on receiver'}`)
for (const m of [...new Set(receiver.errors)].slice(0, 8)) console.log(`receiver-error: ${m}`)
for (const u of receiver.unexpectedExits) console.log(`unexpected-exit: ${u}`)

failed = partial.size > 0 || !(aliveWhileFull && aliveAtEnd) || !full || !conv.converged || missing.length > 0 || diverged.length > 0
if (failed && INJECT) console.log('inject: the injected fault was reported (this is the expected outcome of --inject)')
process.exitCode = failed ? 1 : 0
runCleanups()
