// Owns the Prometheus view of a node (prom-client, one Registry per node so two nodes in one
// process never mix): gauges and counters read from one status snapshot per scrape (status.ts),
// a fetch-duration histogram fed by the node's `fetched` events, and prom-client's default
// process metrics (CPU, memory, event-loop lag).
//
// Counters come from the node's own running totals, so a scrape sets them to those totals
// rather than counting here: the numbers are the same whoever scrapes and however often.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { NodeStatus } from '../node/status.js'
import type { FetchedEvent } from '../node/content.js'

/** Fetch durations in seconds: from a 4 KiB edit on loopback to a many-GB file on a slow link. */
export const FETCH_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]

/**
 * The event-loop lag monitor samples the loop this often. prom-client's default (10 ms) wakes the
 * process 100 times a second: 1.07 % of a core on an idle node against 0.02 % without the
 * listener (`node dist/bench/status.js --files 20000`); each sample still measures the full delay.
 */
export const EVENT_LOOP_SAMPLE_MS = 200

/** What the metrics read from the node. */
export interface MetricsSource {
  status (): NodeStatus
  on (event: 'fetched', fn: (e: FetchedEvent) => void): unknown
  off (event: 'fetched', fn: (e: FetchedEvent) => void): unknown
}

export interface NodeMetrics {
  readonly contentType: string
  /** The exposition text of one scrape. */
  text (): Promise<string>
  /** Stops listening to the node. */
  close (): void
}

export function createMetrics (node: MetricsSource): NodeMetrics {
  const register = new Registry()
  // process_* and nodejs_* (nodejs_eventloop_lag_seconds), as every Node exporter names them.
  collectDefaultMetrics({ register, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
  // One snapshot per scrape, taken before prom-client calls the collect functions below.
  let snap: NodeStatus | null = null
  const s = (): NodeStatus => { snap ??= node.status(); return snap }

  /** A counter whose value is the node's total (set on each scrape; a restart resets it, which Prometheus expects). */
  const total = <L extends string>(name: string, help: string, labelNames: L[], read: (st: NodeStatus, set: (labels: Partial<Record<L, string>>, v: number) => void) => void) =>
    new Counter<L>({
      name, help, labelNames, registers: [register],
      collect () {
        this.reset()
        read(s(), (labels, v) => { this.inc(labels as never, Math.max(0, v)) })
      }
    })
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], read: (st: NodeStatus, set: (labels: Partial<Record<L, string>>, v: number) => void) => void) =>
    new Gauge<L>({
      name, help, labelNames, registers: [register],
      collect () {
        this.reset()
        read(s(), (labels, v) => { this.set(labels as never, v) })
      }
    })

  gauge('swarm_info', 'This node: always 1, with its id and version as labels.', ['peer_id', 'version'], (st, set) => set({ peer_id: st.peerId, version: st.version }, 1))
  gauge('swarm_peers_connected', 'Peers connected now.', [], (st, set) => set({}, st.peers.filter(p => p.connected).length))
  gauge('swarm_peer_connected', '1 if the peer is connected, 0 if known but not connected.', ['peer', 'address'], (st, set) => {
    for (const p of st.peers) set({ peer: p.peerId ?? '', address: p.address }, p.connected ? 1 : 0)
  })
  total('swarm_peer_sent_bytes_total', 'Stream bytes sent to the peer since this node started.', ['peer'], (st, set) => {
    for (const p of st.peers) if (p.peerId !== null) set({ peer: p.peerId }, p.bytesSent)
  })
  total('swarm_peer_received_bytes_total', 'Stream bytes received from the peer since this node started.', ['peer'], (st, set) => {
    for (const p of st.peers) if (p.peerId !== null) set({ peer: p.peerId }, p.bytesReceived)
  })
  gauge('swarm_peer_rtt_seconds', 'Round-trip time to the peer, where the transport measures it.', ['peer'], (st, set) => {
    for (const p of st.peers) if (p.connected && p.peerId !== null && p.rttMs !== null) set({ peer: p.peerId }, p.rttMs / 1000)
  })

  gauge('swarm_share_files', 'Live files in the share.', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.files) })
  gauge('swarm_share_bytes', 'Bytes of the live files in the share.', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.bytes) })
  gauge('swarm_share_pending_items', 'Items this node still has to fetch for the share.', ['share'], (st, set) => {
    for (const sh of st.shares) set({ share: sh.id }, sh.toFetch.reduce((n, b) => n + b.items, 0))
  })
  gauge('swarm_share_pending_bytes', 'Bytes this node still has to fetch for the share.', ['share'], (st, set) => {
    for (const sh of st.shares) set({ share: sh.id }, sh.toFetch.reduce((n, b) => n + b.bytes, 0))
  })
  gauge('swarm_share_unapplied_items', 'Items of ours the peer has not applied yet.', ['share', 'peer'], (st, set) => {
    for (const sh of st.shares) for (const b of sh.toSend) set({ share: sh.id, peer: b.peerId }, b.items)
  })
  gauge('swarm_share_peers', 'Connected peers sharing the share.', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.peers.length) })
  gauge('swarm_share_in_sync_peers', 'Connected peers whose root of the share equals ours.', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.inSyncWith.length) })
  gauge('swarm_share_paused', '1 while the share is paused (its folder is not what its index describes).', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.paused === null ? 0 : 1) })
  total('swarm_files_updated_total', 'Files written or changed in the share since start (local and remote).', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.updated) })
  total('swarm_files_deleted_total', 'Files deleted in the share since start (local and remote).', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.deleted) })
  total('swarm_not_applied_total', 'Peers\' changes not applied since start, by reason (ignored path, send-only share).', ['share', 'reason'], (st, set) => {
    for (const sh of st.shares) { set({ share: sh.id, reason: 'ignored' }, sh.notAppliedIgnored); set({ share: sh.id, reason: 'send-only' }, sh.notAppliedSendOnly) }
  })
  gauge('swarm_share_local_only', 'receive-only: local changes kept on this node and not sent.', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.localOnly) })
  total('swarm_conflicts_total', 'Conflicts in the share since start (the other version kept as a copy).', ['share'], (st, set) => { for (const sh of st.shares) set({ share: sh.id }, sh.conflicts) })

  gauge('swarm_transfers_in_progress', 'Downloads holding a slot now.', [], (st, set) => set({}, st.transfers.length))
  total('swarm_pieces_verified_total', 'Pieces fetched from peers and verified against their hash.', [], (st, set) => set({}, st.totals.piecesFetched))
  total('swarm_pieces_failed_total', 'Pieces from peers that failed verification (dropped, fetched again).', [], (st, set) => set({}, st.totals.verifyFailures))
  total('swarm_pieces_reused_total', 'Pieces copied from local files instead of fetched.', [], (st, set) => set({}, st.totals.piecesReused))
  total('swarm_fetched_bytes_total', 'Piece bytes fetched from peers.', [], (st, set) => set({}, st.totals.bytesFetched))
  total('swarm_downloads_total', 'Piece-exchange downloads that ended, by result.', ['result'], (st, set) => {
    set({ result: 'done' }, st.totals.downloadsDone)
    set({ result: 'failed' }, st.totals.downloadsFailed)
  })

  const fetchSeconds = new Histogram({
    name: 'swarm_fetch_duration_seconds',
    help: 'Time from a download getting its slot to its last piece verified (files larger than the inline limit).',
    labelNames: ['share'], buckets: FETCH_SECONDS_BUCKETS, registers: [register]
  })
  const onFetched = (e: FetchedEvent) => { fetchSeconds.observe({ share: e.share === '' ? '(jobs)' : e.share }, e.ms / 1000) }
  node.on('fetched', onFetched)

  return {
    contentType: register.contentType,
    text: async () => {
      snap = null
      try { return await register.metrics() } finally { snap = null }
    },
    close: () => { node.off('fetched', onFetched); register.clear() }
  }
}
