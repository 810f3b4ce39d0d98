// The `swarm` command's surface as a user meets it, run as a real process: --help of every
// command (printed, nothing run), `swarm help <cmd>`, --version, "did you mean" for typos, the
// documented exit codes (2 usage, 3 configuration, 4 no running node) and the JSON error object,
// and the secret commands and rules (never a leading '-', --out mode 0600, conflicting sources).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, readFileSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateSecret } from '../src/index.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = join(ROOT, 'bin', 'swarm.js')
const SECRET = 'cli-help-secret-0123456789'
const COMMANDS = ['share', 'daemon', 'put', 'mput', 'get', 'mget', 'bcast', 'diffuse', 'ls', 'nodes', 'chunks', 'local-chunks', 'secret', 'id', 'demo']
/** A base64url secret of 32 bytes. */
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/

function run (args: string[], env: Record<string, string> = {}, cwd?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, cwd, env: { ...process.env, ...env } })
}

function tempDir (): string { return mkdtempSync(join(tmpdir(), 'swarm-cli-help-')) }

test('every command prints its help with --help and with `swarm help <cmd>`, exits 0, and runs nothing', () => {
  const base = tempDir()
  // A state dir that any command actually run would create (id makes an identity there).
  const state = join(base, 'state')
  try {
    for (const cmd of COMMANDS) {
      const r = run([cmd, '--help'], { SWARM_STATE: state }, base)
      assert.equal(r.status, 0, `${cmd} --help: ${r.stderr}`)
      assert.match(r.stdout, new RegExp(`^Usage: swarm ${cmd} `), cmd)
      assert.equal(r.stderr, '', cmd)
      const viaHelp = run(['help', cmd], { SWARM_STATE: state }, base)
      assert.equal(viaHelp.status, 0, `help ${cmd}`)
      assert.equal(viaHelp.stdout, r.stdout, `help ${cmd} prints the same as ${cmd} --help`)
    }
    const secret = run(['secret', '--help'])
    assert.ok(!secret.stdout.split('\n').some(l => SECRET_RE.test(l.trim())), 'secret --help prints no secret')
    const demo = run(['demo', '--help'])
    assert.doesNotMatch(demo.stdout, /node0|listening/, 'demo --help starts no node')
    assert.ok(!existsSync(state), 'no command ran: no state dir was made')
    const share = run(['share', '--help'])
    assert.match(share.stdout, /default: "0\.0\.0\.0:4001"/)
    assert.match(share.stdout, /UDP \(QUIC\)/)
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('--version and -V print the package version; --help lists the exit codes', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  for (const flag of ['--version', '-V']) {
    const r = run([flag])
    assert.equal(r.status, 0)
    assert.equal(r.stdout.trim(), version)
  }
  const help = run(['--help'])
  assert.equal(help.status, 0)
  assert.match(help.stdout, /Exit codes:[\s\S]*\b3 +configuration[\s\S]*\b4 +no running node[\s\S]*130 +interrupted/)
})

test('no command prints help and exits 2; typos get "did you mean" and exit 2', () => {
  const none = run([])
  assert.equal(none.status, 2)
  assert.match(none.stderr, /Usage: swarm/)
  const cmd = run(['shar'])
  assert.equal(cmd.status, 2)
  assert.match(cmd.stderr, /unknown command 'shar'[\s\S]*Did you mean share\?/)
  const flag = run(['share', '--lisen', '127.0.0.1:0'])
  assert.equal(flag.status, 2)
  assert.match(flag.stderr, /unknown option '--lisen'[\s\S]*Did you mean --listen\?/)
  const badAddress = run(['daemon', '--listen', 'nowhere'])
  assert.equal(badAddress.status, 2)
  assert.match(badAddress.stderr, /expected host:port/)
  const extra = run(['nodes', 'surplus'])
  assert.equal(extra.status, 2)
})

test('a job command without a running node exits 4; under --json the error is one JSON object on stdout', () => {
  const base = tempDir()
  try {
    const plain = run(['ls', '--state', base])
    assert.equal(plain.status, 4)
    assert.match(plain.stderr, /no swarm node is running .*\(ERR_NO_DAEMON\)/)
    const json = run(['nodes', '--state', base, '--json'])
    assert.equal(json.status, 4)
    assert.equal(json.stderr, '')
    const lines = json.stdout.trim().split('\n')
    assert.equal(lines.length, 1)
    const e = JSON.parse(lines[0]!) as Record<string, unknown>
    assert.equal(e.event, 'error')
    assert.equal(e.code, 'ERR_NO_DAEMON')
    assert.equal(e.exit, 4)
    assert.match(String(e.message), /no swarm node is running/)
    assert.ok(!Number.isNaN(Date.parse(String(e.time))) && String(e.time).endsWith('Z'))
    const usage = JSON.parse(run(['nodes', '--bogus', '--json']).stdout) as Record<string, unknown>
    assert.deepEqual([usage.code, usage.exit], ['ERR_BAD_ARGUMENT', 2])
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('a generated secret never starts with "-" (it would read as a flag)', () => {
  // One draw in 64 starts with '-' without the guard: 20,000 draws would all but surely hit one.
  for (let i = 0; i < 20_000; i++) {
    const s = generateSecret()
    assert.ok(!s.startsWith('-'), s)
    assert.match(s, SECRET_RE)
  }
  const r = run(['secret'])
  assert.equal(r.status, 0)
  assert.match(r.stdout.trim(), SECRET_RE)
})

test('swarm secret --out writes a new file with mode 0600 and never overwrites', () => {
  const base = tempDir()
  try {
    const file = join(base, 'cluster.secret')
    const r = run(['secret', '--out', file])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, '', 'the secret is not printed')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const secret = readFileSync(file, 'utf8')
    assert.match(secret.trim(), SECRET_RE)
    const again = run(['secret', '--out', file])
    assert.notEqual(again.status, 0)
    assert.match(again.stderr, /exists/)
    assert.equal(readFileSync(file, 'utf8'), secret, 'the first secret is kept')
  } finally { rmSync(base, { recursive: true, force: true }) }
})

test('secret sources: flag + file is a usage error, the environment is only the fallback, warnings for ps and loose modes', () => {
  const base = tempDir()
  try {
    const file = join(base, 'secret')
    writeFileSync(file, SECRET + '\n', { mode: 0o600 })
    mkdirSync(join(base, 'dir'))
    const common = ['--state', join(base, 'st'), '--listen', '127.0.0.1:0']
    const both = run(['share', join(base, 'dir'), '--secret', SECRET, '--secret-file', file, ...common])
    assert.equal(both.status, 2)
    assert.match(both.stderr, /cannot be used with/)
    // With a secret file given, SWARM_SECRET is not used: an unreadable file is the error (3).
    const unreadable = run(['share', join(base, 'dir'), '--secret-file', join(base, 'missing'), ...common], { SWARM_SECRET: SECRET })
    assert.equal(unreadable.status, 3)
    assert.match(unreadable.stderr, /cannot read secret file/)
    // The warnings are printed before the node starts (here it cannot: the folder is missing).
    const onCommandLine = run(['share', join(base, 'nope'), '--secret', SECRET, ...common])
    assert.equal(onCommandLine.status, 3)
    assert.match(onCommandLine.stderr, /visible to every user .*--secret-file/)
    chmodSync(file, 0o644)
    const loose = run(['share', join(base, 'nope'), '--secret-file', file, ...common])
    assert.equal(loose.status, 3)
    assert.match(loose.stderr, new RegExp(`can be read by group or others \\(mode 0644\\); fix with: chmod 600 ${file}`))
    assert.match(loose.stderr, /ERR_NOT_A_DIRECTORY/)
  } finally { rmSync(base, { recursive: true, force: true }) }
})
