// The TOML config file (--config) and IPv6 addresses, as the real `swarm` process uses them: what
// the node ends up listening on and sharing when the file and the flags both speak (flags win,
// folders add up, relative paths follow the file), and a bad file stops with exit 3 naming the
// key and its line.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { start, run, freeUdpPort, type Event } from './cli-helpers.js'
import { loadConfig, nodeSettings } from '../src/cli/config.js'
import { parseHostPort } from '../src/node/address.js'

const SECRET = 'config-test-secret-0123456789'

const logs = (events: Event[]) => events.filter(e => e.event === 'log').map(e => String(e.message))

test('config file and flags: the file sets the node up, flags win, folders add up, paths follow the file', async () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-config-'))
  const etc = join(base, 'etc')
  const elsewhere = join(base, 'cwd')
  mkdirSync(join(etc, 'alpha'), { recursive: true })
  mkdirSync(join(base, 'beta'))
  mkdirSync(elsewhere)
  writeFileSync(join(etc, 'secret'), SECRET, { mode: 0o600 })
  const port = await freeUdpPort()
  writeFileSync(join(etc, 'swarm.toml'), [
    '# relative paths are relative to this file',
    `listen = "127.0.0.1:${port}"`,
    'secret_file = "secret"',
    'state = "state"',
    'json = true',
    'quiet = true',
    'metrics = "127.0.0.1:0"',
    '',
    '[[share]]',
    'dir = "alpha"',
    'id = "photos"',
    'mode = "receive-only"',
    'ignore = ["*.tmp"]'
  ].join('\n'))
  try {
    // The file alone (run from another folder, with --verbose overriding the file's quiet).
    const a = start(['share', '--config', join(etc, 'swarm.toml'), '--verbose'], elsewhere)
    try {
      await a.until(() => a.events.some(e => e.event === 'scan-done'))
      const listening = a.events.find(e => e.event === 'listening')!
      assert.equal(listening.address, `127.0.0.1:${port}`)
      assert.equal(typeof listening.time, 'string')
      assert.equal(a.events.find(e => e.event === 'scan-done')!.share, 'photos')
      const said = logs(a.events)
      assert.ok(said.includes(`share ${join(etc, 'alpha')} as photos (receive-only, ignoring *.tmp)`), said.join('\n'))
      assert.ok(said.some(l => l.startsWith(`state ${join(etc, 'state')},`) && l.includes('metrics 127.0.0.1:0')), said.join('\n'))
    } finally { assert.equal(await a.stop(), 0) }

    // Flags over the file: --listen wins; a folder on the command line is added, with its own mode.
    const b = start(['share', '--config', join(etc, 'swarm.toml'), '--listen', '127.0.0.1:0', '--verbose', `${join(base, 'beta')}=music`, '--send-only'], elsewhere)
    try {
      await b.until(() => ['photos', 'music'].every(s => b.events.some(e => e.event === 'scan-done' && e.share === s)))
      const address = String(b.events.find(e => e.event === 'listening')!.address)
      assert.notEqual(address, `127.0.0.1:${port}`)
      assert.ok(logs(b.events).includes(`share ${join(base, 'beta')} as music (send-only)`))
    } finally { assert.equal(await b.stop(), 0) }

    // The file's quiet = true, without --verbose: nothing but warnings and errors.
    const c = start(['share', '--config', join(etc, 'swarm.toml'), '--listen', '127.0.0.1:0'], elsewhere)
    try {
      await new Promise(r => setTimeout(r, 1500))
      assert.deepEqual(c.events.filter(e => e.event !== 'log' || (e.level !== 'warn' && e.level !== 'error')), [])
    } finally { assert.equal(await c.stop(), 0) }
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('a bad config file is exit 3 with the key and its line', () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-config-'))
  const cases: Array<[string, RegExp]> = [
    ['listen = "127.0.0.1:0"\nlisten_port = 4001\n', /:2: listen_port is not a known key/],
    ['compress = "yes"\n', /:1: compress must be true or false, got "yes"/],
    ['peers = ["10.0.0.1:4001", "nope"]\n', /:1: peers must be a list of "host:port" strings/],
    ['[[share]]\ndir = "a"\n\n[[share]]\ndir = "b"\nmode = "both"\n', /:6: share\[2\]\.mode must be one of "send-receive", "send-only", "receive-only", got "both"/],
    ['[[share]]\nid = "x"\n', /:1: share\[1\]\.dir is missing/],
    ['[[share]]\ndir = "a"\nignore = "*.tmp"\n', /:3: share\[1\]\.ignore must be a list of strings/],
    ['listen = \n', /:1:\d+: not valid TOML/]
  ]
  try {
    for (const [i, [toml, expected]] of cases.entries()) {
      const file = join(base, `bad${i}.toml`)
      writeFileSync(file, toml)
      const r = run(['share', '--config', file, '--secret-file', file])
      assert.equal(r.status, 3, `${toml}: ${r.stderr}`)
      assert.match(r.stderr, expected)
      assert.match(r.stderr, /\(ERR_CONFIG\)\n$/)
    }
    const missing = run(['daemon', '--config', join(base, 'absent.toml'), '--json'])
    assert.equal(missing.status, 3)
    const e = JSON.parse(missing.stdout) as Event
    assert.deepEqual([e.event, e.code, e.exit], ['error', 'ERR_CONFIG', 3])
    assert.match(String(e.message), /cannot read config file .*absent\.toml/)
    // json = true in the file: a later error is a JSON object too.
    writeFileSync(join(base, 'json.toml'), 'json = true\nsecret_file = "no-such-secret"\n')
    const later = run(['daemon', '--config', join(base, 'json.toml')])
    assert.equal(later.status, 3)
    assert.match(String((JSON.parse(later.stdout) as Event).message), /cannot read secret file .*no-such-secret/)
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('settings: the environment secret is only a fallback; peers add up; quiet and verbose from the file', () => {
  const base = mkdtempSync(join(tmpdir(), 'swarm-config-'))
  const saved = process.env.SWARM_SECRET
  try {
    writeFileSync(join(base, 'secret'), 'from-the-file-0123456789\n', { mode: 0o600 })
    writeFileSync(join(base, 'swarm.toml'), 'secret_file = "secret"\npeers = ["10.0.0.1:4001"]\nverbose = true\npeer_exchange = false\n')
    process.env.SWARM_SECRET = 'from-the-environment-0123456789'
    const s = nodeSettings({ config: join(base, 'swarm.toml'), peer: ['[::1]:4001', '10.0.0.1:4001'] }, [])
    assert.equal(s.options.secret, 'from-the-file-0123456789')
    assert.deepEqual(s.options.peers, ['10.0.0.1:4001', '[::1]:4001'])
    assert.equal(s.options.peerExchange, false)
    assert.equal(s.options.listen, '0.0.0.0:4001')
    assert.deepEqual(s.output, { json: false, quiet: false, verbose: true })
    assert.equal(nodeSettings({ quiet: true, config: join(base, 'swarm.toml') }, []).output.verbose, false, '--quiet replaces the file\'s verbose')
    assert.equal(nodeSettings({}, []).options.secret, 'from-the-environment-0123456789')
    assert.equal(loadConfig(join(base, 'swarm.toml')).secretFile, join(base, 'secret'))
  } finally {
    if (saved === undefined) delete process.env.SWARM_SECRET
    else process.env.SWARM_SECRET = saved
    rmSync(base, { recursive: true, force: true })
  }
})

test('the example config in contrib/ is valid and says what it shows', () => {
  const example = loadConfig(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'contrib', 'swarm.toml'))
  assert.equal(example.listen, '0.0.0.0:4001')
  assert.equal(example.secretFile, '/etc/swarm/secret')
  assert.deepEqual(example.shares.map(s => [s.dir, s.id, s.mode]), [['/srv/swarm/uploads', 'uploads', 'send-receive'], ['/srv/swarm/media', 'media', 'receive-only']])
  assert.deepEqual(example.shares[0]!.ignore, ['*.tmp', '*.part'])
})

test('IPv6: [::1]:port is accepted by --listen and --peer and printed back in that form', async () => {
  assert.deepEqual(parseHostPort('[::1]:4001'), { host: '::1', port: 4001 })
  assert.throws(() => parseHostPort('::1:4001'), /expected host:port/)
  const base = mkdtempSync(join(tmpdir(), 'swarm-config-'))
  const common = ['--secret-file', join(base, 'secret'), '--json']
  writeFileSync(join(base, 'secret'), SECRET, { mode: 0o600 })
  const a = start(['daemon', '--listen', '[::1]:0', '--state', join(base, 'a'), ...common], base)
  try {
    await a.until(() => a.events.some(e => e.event === 'listening'))
    const address = String(a.events.find(e => e.event === 'listening')!.address)
    assert.match(address, /^\[::1\]:\d+$/)
    const b = start(['daemon', '--listen', '[::1]:0', '--peer', address, '--state', join(base, 'b'), ...common], base)
    try {
      await b.until(() => b.events.some(e => e.event === 'peer-connected'))
      assert.match(String(b.events.find(e => e.event === 'peer-connected')!.address), /^\[::1\]:\d+$/)
    } finally { assert.equal(await b.stop(), 0) }
  } finally {
    assert.equal(await a.stop(), 0)
    rmSync(base, { recursive: true, force: true })
  }
})
