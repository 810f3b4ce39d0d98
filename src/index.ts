// The library API: everything the `swarm` command does, typed, for programs that embed the engine.
//
//   const node = await startNode({ stateDir, secret, listen: '0.0.0.0:4001', peers: ['10.0.0.2:4001'],
//                                  shares: [{ dir: '/srv/uploads' }] })
//   node.on('file-updated', e => ...); await node.addShare('/srv/media', 'media'); await node.stop()
//   await node.jobs.put('/data/x.bin', { name: 'x.bin' }); await node.jobs.bcast('x.bin', { onProgress })
import { SwarmNode, type NodeOptions } from './node/node.js'
import { loadOrCreateIdentity } from './transport/identity.js'
import { newSecret } from './node/auth.js'

export { SwarmNode, type NodeOptions, type NodeEvents, type ShareSpec } from './node/node.js'
export { SwarmError, isSwarmError, type SwarmErrorCode } from './errors.js'
export type { Share } from './sync/share.js'
export type { Entry } from './model/entry.js'
export type * from './jobs/types.js'
export type { NodeStatus, PeerStatus, ShareStatus } from './node/status.js'
export type { ProgressInfo, SummaryInfo } from './node/activity.js'
export type { PeerRecord } from './node/peer-records.js'
export { SHARE_MODES, type ShareMode } from './model/share-mode.js'
/** Talks to a node already running on a state dir (its control socket), as the CLI's job commands do. */
export { callControl } from './control/client.js'
/** Serves a node's Prometheus metrics, status page and status JSON on an HTTP address (what --metrics does). */
export { serveNodeHttp } from './http/index.js'

/** Creates and starts a node; rejects with a SwarmError (bad folder, port in use, ...) and leaves nothing running. */
export async function startNode (opts: NodeOptions): Promise<SwarmNode> {
  const node = new SwarmNode(opts)
  await node.start()
  return node
}

/** A new random cluster secret. */
export function generateSecret (): string { return newSecret() }

/** The PeerId of the node whose state lives in `stateDir` (created on first use). */
export async function nodeId (stateDir: string): Promise<string> {
  return (await loadOrCreateIdentity(stateDir)).peerId
}
