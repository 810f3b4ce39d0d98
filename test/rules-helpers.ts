// Test helpers for share rules (ignore patterns, share modes): nodes of a Cluster started and
// restarted with a share spec of their own, and the Share's 'not-applied' reports.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { startNode, type ShareSpec } from '../src/index.js'
import type { Share, ShareEvents } from '../src/sync/share.js'
import { type Cluster, type TestNode, SECRET } from './helpers.js'

export type Rules = Pick<ShareSpec, 'mode' | 'ignore'>

/** Like Cluster.add (share 'share' at <base>/<name>/share, dialing every node before it), with `rules`. */
export async function addWithRules (c: Cluster, name: string, rules: Rules, prepare?: (dir: string) => void): Promise<TestNode> {
  const dir = join(c.base, name, 'share')
  const state = join(c.base, name, 'state')
  mkdirSync(dir, { recursive: true })
  prepare?.(dir)
  const node = await startNode({
    stateDir: state, secret: SECRET, listen: '127.0.0.1:0',
    peers: c.nodes.map(n => n.node.address),
    shares: [{ dir, id: 'share', ...rules }]
  })
  const t = { node, dir, state, name }
  c.nodes.push(t)
  await node.scanned()
  return t
}

/** Restarts a stopped node on its port with the same folder and state, and `rules`. */
export async function restartWithRules (t: TestNode, peers: string[], rules: Rules): Promise<TestNode> {
  const port = t.node.port
  t.node = await startNode({ stateDir: t.state, secret: SECRET, listen: `127.0.0.1:${port}`, peers, shares: [{ dir: t.dir, id: 'share', ...rules }] })
  await t.node.scanned()
  return t
}

export function shareOf (t: TestNode): Share { return t.node.shares.get('share')! }

/** Collects the share's 'not-applied' reports from now on. */
export function notApplied (t: TestNode): Array<ShareEvents['not-applied'][0]> {
  const out: Array<ShareEvents['not-applied'][0]> = []
  shareOf(t).on('not-applied', e => out.push(e))
  return out
}
