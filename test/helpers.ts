// Test helpers: in-process clusters of real nodes (real QUIC on loopback, real SQLite, real
// folders in a temp dir), and waiting for conditions.
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync, readdirSync, statSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import type { EventEmitter } from 'node:events'
import { startNode, type SwarmNode, type NodeEvents, type NodeOptions } from '../src/index.js'
import type { StoredEntry } from '../src/model/entry.js'
import { loadOrCreateIdentity } from '../src/transport/identity.js'
import { createQuicTransport } from '../src/transport/quic.js'
import type { RedialTimings } from '../src/node/dialer.js'

export const SECRET = 'test-secret-0123456789'

export interface TestNode { node: SwarmNode, dir: string, state: string, name: string }

export class Cluster {
  readonly base = mkdtempSync(join(tmpdir(), 'swarm-test-'))
  readonly nodes: TestNode[] = []

  /** Starts a node sharing `<base>/<name>/share` as share id 'share', dialing every node started before it. */
  async add (name: string, opts: { secret?: string, peers?: string[], shareId?: string, handshakeTimeoutMs?: number, peerExchange?: boolean, scanInBackground?: boolean, options?: Partial<NodeOptions>, redial?: Partial<RedialTimings> } = {}): Promise<TestNode> {
    const dir = join(this.base, name, 'share')
    const state = join(this.base, name, 'state')
    mkdirSync(dir, { recursive: true })
    // A shorter QUIC handshake timeout makes dials to an address nobody answers fail sooner.
    const identity = opts.handshakeTimeoutMs === undefined ? undefined : await loadOrCreateIdentity(state)
    const transport = identity === undefined ? undefined : createQuicTransport(identity, { handshakeTimeoutMs: opts.handshakeTimeoutMs })
    const node = await startNode({
      stateDir: state, secret: opts.secret ?? SECRET, listen: '127.0.0.1:0',
      peers: opts.peers ?? this.nodes.filter(n => n.node !== null).map(n => n.node.address),
      shares: [{ dir, id: opts.shareId ?? 'share' }],
      identity, transport, peerExchange: opts.peerExchange, redial: opts.redial, ...opts.options
    })
    const t = { node, dir, state, name }
    this.nodes.push(t)
    // Most tests are about replication, not start-up: they begin once the start sweep indexed the folder.
    if (opts.scanInBackground !== true) await node.scanned()
    return t
  }

  /** Restarts a stopped node with the same folder and state, listening on the same port. */
  async restart (t: TestNode, peers: string[], opts: { scanInBackground?: boolean } = {}): Promise<TestNode> {
    const port = t.node.port
    t.node = await startNode({ stateDir: t.state, secret: SECRET, listen: `127.0.0.1:${port}`, peers, shares: [{ dir: t.dir, id: 'share' }] })
    if (opts.scanInBackground !== true) await t.node.scanned()
    return t
  }

  async stop (): Promise<void> {
    await Promise.all(this.nodes.map(n => n.node.stop()))
    rmSync(this.base, { recursive: true, force: true })
  }
}

export async function waitFor (what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 10))
  }
}

/** Every regular file and folder below `dir` (outside .swarm), with file contents, for comparing trees. */
export function snapshot (dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      const rel = relative(dir, p)
      if (rel === '.swarm') continue
      const st = statSync(p)
      if (st.isDirectory()) { out.set(rel + '/', 'dir'); walk(p) } else out.set(rel, readFileSync(p).toString('base64'))
    }
  }
  walk(dir)
  return out
}

export function sameTree (a: string, b: string): boolean {
  const x = snapshot(a)
  const y = snapshot(b)
  if (x.size !== y.size) return false
  for (const [k, v] of x) if (y.get(k) !== v) return false
  return true
}

export function fileIs (path: string, data: Buffer | string): boolean {
  if (!existsSync(path)) return false
  try { return readFileSync(path).equals(Buffer.isBuffer(data) ? data : Buffer.from(data)) } catch { return false }
}

export function rootsEqual (nodes: TestNode[], share = 'share'): boolean {
  const roots = nodes.map(n => n.node.shares.get(share)?.root().toString('hex'))
  return roots.every(r => r !== undefined && r === roots[0])
}

export function settled (nodes: TestNode[], share = 'share'): boolean {
  return rootsEqual(nodes, share) && nodes.every(n => n.node.shares.get(share)!.pendingCount() === 0)
}

/** Top-level names in a share (outside .swarm), sorted. */
export function listing (dir: string): string[] {
  return readdirSync(dir).filter(n => n !== '.swarm').sort()
}

/** Waits until every node holds the same tree and the same root with nothing pending (and `also` holds); on timeout, says how the trees differ. */
export async function waitConverged (nodes: TestNode[], what: string, also: () => boolean = () => true, ms = 15_000): Promise<void> {
  try {
    await waitFor(what, () => settled(nodes) && nodes.every(n => sameTree(nodes[0]!.dir, n.dir)) && also(), ms)
  } catch (err) {
    const trees = nodes.map(n => `${n.name} (pending ${n.node.shares.get('share')?.pendingCount()}): ${[...snapshot(n.dir).keys()].sort().join(', ')}`)
    throw new Error(`${(err as Error).message}\n${trees.join('\n')}`)
  }
}

/** The node's index row for a path of share 'share'. */
export function entryOf (t: TestNode, path: string): StoredEntry | undefined {
  return t.node.db.getEntry('share', path)
}

/**
 * Sets a file's mtime to `ms` (integer milliseconds). Half a millisecond is added because the
 * platform keeps microseconds of a double number of seconds: ms / 1000 can land a microsecond
 * below `ms`, which would read back as ms - 1.
 */
export function setMtime (path: string, ms: number): void {
  utimesSync(path, (ms + 0.5) / 1000, (ms + 0.5) / 1000)
}

/** Collects a node's events of one kind from now on. */
export function collect<K extends keyof NodeEvents> (t: TestNode, kind: K): Array<NodeEvents[K][0]> {
  const out: Array<NodeEvents[K][0]> = []
  ;(t.node as unknown as EventEmitter).on(kind, (e: NodeEvents[K][0]) => out.push(e))
  return out
}
