// The control socket and the job commands against a fake JobsApi: real Unix sockets in a temp
// dir, the request/progress/result round trip, strict refusal of bad requests, aborts on
// disconnect and Ctrl-C, the socket's permissions, and the CLI's lines and exit codes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as net from 'node:net'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SwarmError } from '../src/errors.js'
import type { JobsApi, ProgressEvent, JobOptions, GetOptions, CatalogItem } from '../src/jobs/types.js'
import { startControlServer, type ControlServer } from '../src/control/server.js'
import { callControl } from '../src/control/client.js'
import { MAX_LINE_BYTES } from '../src/control/protocol.js'
import { waitFor } from './helpers.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'swarm.js')
const ROOT = 'ab'.repeat(32)
const ITEM: CatalogItem = { name: 'photos/cat.jpg', root: ROOT, size: 1000, mtime: 1, by: 'Xy12Ab34' }
const PEER = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

interface Fake { api: JobsApi, calls: Array<{ cmd: string, args: unknown[] }>, signals: AbortSignal[] }

/** A JobsApi that records its calls; `over` replaces methods for one test. */
/** What the client asked for, without the AbortSignal every job gets from the server. */
function withoutSignal<T extends { signal?: AbortSignal }> (o: T | undefined): Omit<T, 'signal'> | undefined {
  if (o === undefined) return undefined
  const { signal: _s, ...rest } = o
  return rest
}

function fakeApi (over: Partial<JobsApi> = {}): Fake {
  const calls: Fake['calls'] = []
  const signals: AbortSignal[] = []
  const rec = (cmd: string, args: unknown[]) => {
    calls.push({ cmd, args })
    for (const a of args) if (typeof a === 'object' && a !== null && 'signal' in a) signals.push((a as JobOptions).signal!)
  }
  const base: JobsApi = {
    put: async (file, opts) => { rec('put', [file, withoutSignal(opts)]); return { ...ITEM, placedOn: opts?.to === undefined ? undefined : PEER } },
    mput: async (dir, opts) => { rec('mput', [dir, withoutSignal(opts)]); return [ITEM, { ...ITEM, name: 'photos/dog.jpg' }] },
    get: async (name, dest, opts) => { rec('get', [name, dest, opts]); return { ...ITEM, dest: dest ?? '?', bytesFetched: 1000, seconds: 0.5 } },
    mget: async (prefix, destDir, opts) => { rec('mget', [prefix, destDir, opts]); return [] },
    bcast: async (name, opts) => {
      rec('bcast', [name, opts])
      return { name: ITEM.name, root: ROOT, size: 1000, nodes: [{ peerId: PEER, have: 4, total: 4, state: 'done' }], seconds: 2, bytesPerSecond: 3e6, sourceCopies: 1.25 }
    },
    diffuse: async (names, opts) => { rec('diffuse', [names, opts]); return names.map(name => ({ name, holders: [PEER], added: [] })) },
    ls: (prefix) => { rec('ls', [prefix]); return [ITEM] },
    nodes: () => { rec('nodes', []); return [{ peerId: PEER, address: '127.0.0.1:4001', connected: true, self: true }] },
    chunks: async (name) => { rec('chunks', [name]); return { ...ITEM, pieceSize: 262144, pieces: 4, holders: [{ peerId: PEER, have: 2, pieces: '1010' }] } },
    localChunks: () => { rec('localChunks', []); return [{ root: ROOT, size: 1000, have: 4, pieces: 4, names: [ITEM.name] }] }
  }
  const api = { ...base }
  for (const [k, f] of Object.entries(over)) {
    (api as Record<string, unknown>)[k] = (...args: unknown[]) => { rec(k, args); return (f as (...a: unknown[]) => unknown)(...args) }
  }
  return { api, calls, signals }
}

/** A fake get that runs until its signal aborts, then rejects as the real one would. */
function untilAborted (signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal?.addEventListener('abort', () => reject(new SwarmError('ERR_ABORTED', 'aborted')), { once: true })
  })
}

async function withServer (fake: Fake, fn: (state: string, server: ControlServer) => Promise<void>): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'swarm-ctl-'))
  const state = join(base, 'st')
  mkdirSync(state, { mode: 0o700 })
  const server = await startControlServer(state, fake.api)
  try { await fn(state, server) } finally { await server.close(); rmSync(base, { recursive: true, force: true }) }
}

/** A raw connection: write lines, read reply objects. */
function raw (path: string) {
  const sock = net.createConnection(path)
  const replies: Array<Record<string, any>> = []
  let buf = ''
  let closed = false
  sock.on('data', d => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) { replies.push(JSON.parse(buf.slice(0, nl))); buf = buf.slice(nl + 1) }
  })
  sock.on('error', () => {})
  sock.on('close', () => { closed = true })
  return { sock, replies, isClosed: () => closed }
}

function runCli (args: string[], cwd: string): Promise<{ status: number | null, stdout: string, stderr: string, proc: ReturnType<typeof spawn> }> & { proc: ReturnType<typeof spawn> } {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout!.on('data', d => { stdout += d })
  proc.stderr!.on('data', d => { stderr += d })
  const p = new Promise<{ status: number | null, stdout: string, stderr: string, proc: typeof proc }>(resolve => {
    proc.on('close', status => resolve({ status, stdout, stderr, proc }))
  }) as Promise<{ status: number | null, stdout: string, stderr: string, proc: typeof proc }> & { proc: typeof proc }
  p.proc = proc
  return p
}

test('round trip: typed arguments in, progress and result out', async () => {
  const fake = fakeApi({
    get: async (name: string, dest?: string, opts?: GetOptions) => {
      const ev = (bytes: number): ProgressEvent => ({ name, bytes, size: 1000 })
      opts?.onProgress?.(ev(0))
      opts?.onProgress?.(ev(500))
      await new Promise(r => setTimeout(r, 10))
      opts?.onProgress?.(ev(1000))
      return { ...ITEM, dest: dest!, bytesFetched: 1000, seconds: 0.01 }
    }
  })
  await withServer(fake, async (state) => {
    const progress: ProgressEvent[] = []
    const r = await callControl(state, 'get', { name: ITEM.name, dest: '/tmp/x/cat.jpg', force: true }, { onProgress: e => progress.push(e) })
    assert.equal(r.dest, '/tmp/x/cat.jpg')
    assert.equal(r.root, ROOT)
    const [name, dest, opts] = fake.calls[0]!.args as [string, string, GetOptions]
    assert.deepEqual([name, dest, opts.force], [ITEM.name, '/tmp/x/cat.jpg', true])
    assert.ok(opts.signal instanceof AbortSignal)
    // The first event goes out at once; events in between are coalesced; the last always arrives before the result.
    assert.equal(progress[0]!.bytes, 0)
    assert.equal(progress.at(-1)!.bytes, 1000)
    assert.ok(progress.length <= 3)
    assert.deepEqual(await callControl(state, 'ls', { prefix: 'photos/' }), [ITEM])
    assert.deepEqual(fake.calls.at(-1), { cmd: 'ls', args: ['photos/'] })
    assert.equal((await callControl(state, 'nodes', {}))[0]!.self, true)
    assert.equal((await callControl(state, 'ping', {})).pong, true)
    const put = await callControl(state, 'put', { file: '/data/cat.jpg', to: 'random' })
    assert.equal(put.placedOn, PEER)
    assert.deepEqual(fake.calls.at(-1), { cmd: 'put', args: ['/data/cat.jpg', { to: 'random' }] }, 'absent options are not sent as undefined keys')
  })
})

test('errors keep their code; other failures are ERR_INTERNAL', async () => {
  const fake = fakeApi({
    chunks: async (name: string) => { throw new SwarmError('ERR_UNKNOWN_NAME', `no name '${name}' in the catalog`) },
    ls: () => { throw new TypeError('boom') }
  })
  await withServer(fake, async (state) => {
    await assert.rejects(callControl(state, 'chunks', { name: 'nope' }), (e: SwarmError) => e.code === 'ERR_UNKNOWN_NAME' && /no name 'nope'/.test(e.message))
    await assert.rejects(callControl(state, 'ls', {}), (e: SwarmError) => (e.code as string) === 'ERR_INTERNAL' && e.message === 'boom')
    // The client checks a request before sending it.
    await assert.rejects(callControl(state, 'put', { file: 'relative.txt' }), (e: SwarmError) => e.code === 'ERR_BAD_ARGUMENT' && /absolute/.test(e.message))
  })
})

test('bad requests get clear errors and the server keeps serving', async () => {
  await withServer(fakeApi(), async (state, server) => {
    const c = raw(server.path)
    const lines = [
      '{"id":1,"cmd":"frob"}',
      '{"id":2,"cmd":"get","args":{}}',
      '{"id":3,"cmd":"get","args":{"name":5}}',
      'this is not json',
      '{"id":4,"cmd":"get","args":{"name":"x","dest":"rel/path"}}',
      '{"id":5,"cmd":"ls","args":{"bogus":1}}',
      JSON.stringify({ id: 6, cmd: 'chunks', args: { name: 'n'.repeat(5000) } }),
      '{"id":-1,"cmd":"ping"}',
      '{"id":7,"cmd":"diffuse","args":{"names":[]}}',
      '{"id":8,"cmd":"get","args":{"name":"x","force":"yes"}}',
      '',
      '{"id":9,"cmd":"ping"}'
    ]
    c.sock.write(lines.join('\n') + '\n')
    await waitFor('replies', () => c.replies.some(r => r.id === 9))
    const err = (id: number | null, i = 0) => c.replies.filter(r => r.id === id)[i]?.error
    assert.match(err(1).message, /unknown command 'frob'/)
    assert.match(err(2).message, /get: missing required argument 'name'/)
    assert.match(err(3).message, /argument 'name' must be a string, got number/)
    assert.match(err(null, 0).message, /not valid JSON/)
    assert.match(err(4).message, /must be an absolute path/)
    assert.match(err(5).message, /unknown argument 'bogus'/)
    assert.match(err(6).message, /5000 characters long; the limit is 4096/)
    assert.match(err(null, 1).message, /id must be an integer/)
    assert.match(err(7).message, /at least one/)
    assert.match(err(8).message, /must be true or false/)
    for (const r of c.replies) if (r.error !== undefined) assert.equal(r.error.code, 'ERR_BAD_ARGUMENT')
    assert.equal(c.replies.find(r => r.id === 9)!.result.pong, true, 'the same connection still serves')

    // An over-long line: an error reply, then the connection is closed; the server still serves.
    const big = raw(server.path)
    big.sock.write('{"id":1,"cmd":"ls","args":{"prefix":"' + 'x'.repeat(MAX_LINE_BYTES))
    await waitFor('close', () => big.isClosed())
    assert.match(big.replies[0]!.error.message, /longer than 1048576 bytes/)
    assert.equal((await callControl(state, 'ping', {})).pong, true)
  })
})

test('a client that goes away aborts its job', async () => {
  const fake = fakeApi({ bcast: async (_name: string, opts?: JobOptions) => untilAborted(opts?.signal) })
  await withServer(fake, async (state, server) => {
    const ac = new AbortController()
    const call = callControl(state, 'bcast', { name: 'x' }, { signal: ac.signal })
    await waitFor('the job to start', () => fake.signals.length === 1)
    ac.abort()
    await assert.rejects(call, (e: SwarmError) => e.code === 'ERR_ABORTED')
    await waitFor('the node-side abort', () => fake.signals[0]!.aborted)

    // The same for a raw connection that just closes, with two requests in flight.
    const c = raw(server.path)
    c.sock.write('{"id":1,"cmd":"bcast","args":{"name":"a"}}\n{"id":2,"cmd":"bcast","args":{"name":"b"}}\n')
    await waitFor('both jobs', () => fake.signals.length === 3)
    assert.ok(!fake.signals[1]!.aborted)
    c.sock.destroy()
    await waitFor('both aborted', () => fake.signals[1]!.aborted && fake.signals[2]!.aborted)
  })
})

test('the socket is 0600, replaces a stale one, and goes away on close', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-ctl-'))
  try {
    writeFileSync(join(base, 'control.sock'), 'left over')
    // A file where the socket should be refuses connections: that is "no node running".
    await assert.rejects(callControl(base, 'ping', {}), (e: SwarmError) => e.code === 'ERR_NO_DAEMON')
    const server = await startControlServer(base, fakeApi().api)
    const st = statSync(server.path)
    assert.ok(st.isSocket())
    assert.equal(st.mode & 0o777, 0o600)
    assert.equal((await callControl(base, 'ping', {})).pong, true)
    await server.close()
    assert.ok(!existsSync(server.path))
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('no node, or a state dir too long for a socket path: clear errors', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-ctl-'))
  try {
    await assert.rejects(callControl(join(base, 'none'), 'ls', {}),
      (e: SwarmError) => e.code === 'ERR_NO_DAEMON' && /no swarm node is running for state dir .*none \(start one with swarm daemon or swarm share\)/.test(e.message))
    const long = join(base, 'd'.repeat(120))
    await assert.rejects(startControlServer(long, fakeApi().api), (e: SwarmError) => e.code === 'ERR_STATE_DIR' && /at most 107/.test(e.message))
    await assert.rejects(callControl(long, 'ls', {}), (e: SwarmError) => e.code === 'ERR_STATE_DIR')
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('the control socket refuses other users', async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root to run a process as another user'); return }
  // The child is inline code: it needs nothing from the (root-only) temp dirs but the socket path.
  const tryConnect = (path: string) => spawnSync(process.execPath, ['-e', `
    const s = require('node:net').connect(process.argv[1])
    s.on('connect', () => { console.log('CONNECTED'); process.exit(0) })
    s.on('error', e => { console.log(e.code); process.exit(0) })`, path], { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8', timeout: 10_000 })
  const base = mkdtempSync(join(tmpdir(), 'swarm-ctl-'))
  const state = join(base, 'st')
  mkdirSync(state, { mode: 0o700 })
  // spawnSync blocks this process: the server must not need to answer, only to exist.
  const server = await startControlServer(state, fakeApi().api)
  try {
    assert.equal(tryConnect(server.path).stdout.trim(), 'EACCES', 'a 0700 state dir keeps others out')
    // With the folders open to all, the socket's own 0600 is what refuses.
    chmodSync(base, 0o755)
    chmodSync(state, 0o755)
    assert.equal(tryConnect(server.path).stdout.trim(), 'EACCES', 'a 0600 socket keeps others out')
    chmodSync(server.path, 0o666)
    assert.equal(tryConnect(server.path).stdout.trim(), 'CONNECTED', 'control: the child can connect when allowed')
  } finally { await server.close(); rmSync(base, { recursive: true, force: true }) }
})

test('swarm <job> with no node running: one line, exit 4', () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-ctl-'))
  try {
    const r = spawnSync(process.execPath, [BIN, 'ls', '--state', base], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(r.status, 4)
    assert.match(r.stderr, /^swarm: no swarm node is running for state dir /)
    assert.equal(r.stderr.trim().split('\n').length, 1)
    const usage = spawnSync(process.execPath, [BIN, 'get', '--state', base], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(usage.status, 2)
    assert.match(usage.stderr, /missing required argument 'name\|root'\nusage: swarm get \[options\] <name\|root> \[dest\]/)
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('job commands: absolute paths sent, lines and JSON printed', async () => {
  const fake = fakeApi()
  await withServer(fake, async (state) => {
    const cwd = mkdtempSync(join(tmpdir(), 'swarm-cwd-'))
    try {
      writeFileSync(join(cwd, 'cat.jpg'), 'x')
      const put = await runCli(['put', 'cat.jpg', '--state', state, '--to', 'random'], cwd)
      assert.equal(put.status, 0, put.stderr)
      assert.equal(put.stdout, `photos/cat.jpg ${ROOT} 1000 placed on ${PEER.slice(-8)}\n`)
      assert.deepEqual(fake.calls.at(-1)!.args, [join(cwd, 'cat.jpg'), { to: 'random' }])

      const get = await runCli(['get', 'photos/cat.jpg', '--state', state, '--json'], cwd)
      assert.equal(get.status, 0, get.stderr)
      assert.equal(JSON.parse(get.stdout).dest, join(cwd, 'cat.jpg'), 'default dest: the name\'s last part in the cwd')
      mkdirSync(join(cwd, 'into'))
      await runCli(['get', ROOT, 'into', '--state', state], cwd)
      assert.equal(fake.calls.at(-1)!.args[1], join(cwd, 'into', ROOT), 'a folder as dest: the file goes inside it')
      const byRoot = await runCli(['get', ROOT, '--state', state], cwd)
      assert.match(byRoot.stdout, new RegExp(`^${join(cwd, 'cat.jpg')} 1000 bytes in 0.50 s\n$`), 'a root takes its name from the catalog')

      const ls = await runCli(['ls', '--state', state], cwd)
      assert.equal(ls.status, 0, ls.stderr)
      assert.match(ls.stdout, /SIZE +NAME +ROOT +BY\n.*1\.00 kB +photos\/cat\.jpg +abababababababab +Xy12Ab34\n/)
      const bcast = await runCli(['bcast', 'photos/cat.jpg', '--state', state], cwd)
      assert.equal(bcast.stdout, 'photos/cat.jpg: 1 node hold it, 2.00 s, 3.0 MB/s, source uploaded 1.3 copies\n')
      const chunks = await runCli(['chunks', 'photos/cat.jpg', '--state', state], cwd)
      assert.match(chunks.stdout, /4 pieces of 262\.1 kB\n +AAAAAAAA 2\/4 #\.#\.\n/)
    } finally { rmSync(cwd, { recursive: true, force: true }) }
  })
})

test('Ctrl-C during get aborts the job and exits 130', async () => {
  const fake = fakeApi({ get: async (_n: string, _d?: string, opts?: GetOptions) => untilAborted(opts?.signal) })
  await withServer(fake, async (state) => {
    const run = runCli(['get', 'photos/cat.jpg', '/tmp/unused-dest', '--state', state], tmpdir())
    await waitFor('the job to start', () => fake.signals.length === 1)
    run.proc.kill('SIGINT')
    const r = await run
    assert.equal(r.status, 130)
    assert.equal(r.stderr, 'swarm: interrupted; run the same get again to resume\n')
    await waitFor('the node-side abort', () => fake.signals[0]!.aborted)
  })
})
