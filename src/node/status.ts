// Owns the answer to "what is this node doing?": one plain JSON-able snapshot (NodeStatus) of the
// node, its peers, its shares (how far behind, in sync with whom), the transfers in flight and
// the recent past (activity.ts). `swarm status`, the metrics and the status page all read it.
//
// Cost: everything comes from memory except a few index queries per share. The live-file totals
// are one pass over a share's rows (~0.1 s per million files): they are reused while the share's
// root is unchanged (same root, same entries), and on a big share that keeps changing, for up to
// TOTALS_TTL_MS. The pending counts and each peer's not-yet-acknowledged count can be as costly:
// a peer that never acknowledged (a new one, or one that never will) makes its count a pass over
// every row of the share (~0.5 s per million files), and the pending table of a node catching up
// holds every file it lacks. Status is asked for every second by the page and on every scrape, so
// a count that took SLOW_COUNT_MS or more is reused for SLOW_COUNT_REUSE times as long as it took:
// counting never takes more than a small share of the node's time, however big the share.
import type { IndexDb, ItemsBytes } from '../store/db.js'
import type { Share } from '../sync/share.js'
import type { ShareMode } from '../model/share-mode.js'
import type { NodeActivity, ProgressInfo, FinishedTransfer, LogRecord } from './activity.js'
import type { ContentTotals } from './content.js'
import type { PeerSession } from './session.js'
import type { PeerRecord } from './peer-records.js'
import { readFileSync } from 'node:fs'

/** How long a big, changing share's live-file totals are reused before they are counted again. */
export const TOTALS_TTL_MS = 10_000
/** Shares with more files than this count as big for TOTALS_TTL_MS. */
export const TOTALS_BIG_SHARE = 100_000
/** A pending or unacknowledged count that took this long (ms) is reused instead of run again at once. */
export const SLOW_COUNT_MS = 5
/** ... for this many times as long as it took (at most ~1/SLOW_COUNT_REUSE of the time goes to counting). */
export const SLOW_COUNT_REUSE = 50
/** ... but never longer than this (ms): a stale count stays a recent one. */
export const SLOW_COUNT_MAX_REUSE_MS = 60_000

export interface PeerStatus {
  peerId: string | null
  /** Where it listens (or the address its connection came from). */
  address: string
  connected: boolean
  /** Since when it has been connected, or (when not) since when it has been away; null if never seen. */
  since: number | null
  /** Stream bytes over every connection to it since this node started. */
  bytesSent: number
  bytesReceived: number
  /** Round-trip time if the transport measures it. */
  rttMs: number | null
  /** The shares this peer has in common with us. */
  shares: string[]
  lastError: string | null
}

export interface PeerBacklog extends ItemsBytes { peerId: string }

export interface ShareStatus {
  id: string
  dir: string
  mode: ShareMode
  /** Why it is paused (its folder is not what its index describes), or null while it runs. */
  paused: string | null
  /** The startup sweep of its folder is still running. */
  scanning: boolean
  files: number
  bytes: number
  root: string
  /** Connected peers sharing it whose announced root equals ours (and is settled). */
  inSyncWith: string[]
  /** Connected peers sharing it. */
  peers: string[]
  /** What this node still has to fetch, by the peer the new version came from. */
  toFetch: PeerBacklog[]
  /** Per peer (connected, or gone since it last acknowledged): our entries it has not applied yet. */
  toSend: PeerBacklog[]
  updated: number
  deleted: number
  conflicts: number
  /** Peers' changes not applied since start: to ignored paths, and (send-only) to this folder. */
  notAppliedIgnored: number
  notAppliedSendOnly: number
  /** receive-only: local changes kept on this node and not sent. */
  localOnly: number
}

export interface NodeStatus {
  peerId: string
  address: string
  version: string
  pid: number
  stateDir: string
  startedAt: number
  /** When this snapshot was taken (ms epoch). */
  time: number
  peers: PeerStatus[]
  shares: ShareStatus[]
  transfers: ProgressInfo[]
  finished: FinishedTransfer[]
  errors: LogRecord[]
  totals: ContentTotals
}

/** What status needs from the node (node.ts builds it; kept narrow so this file reads no private state by accident). */
export interface StatusView {
  readonly peerId: string
  readonly address: string
  readonly stateDir: string
  readonly db: IndexDb
  readonly activity: NodeActivity
  readonly totals: ContentTotals
  shares (): Iterable<Share>
  modeOf (share: Share): ShareMode
  sessions (): Iterable<PeerSession>
  /** Every peer dialed or connected since start (peer-records.ts). */
  peerRecords (): PeerRecord[]
  /** Peers named by peer exchange, by id: where they listen. */
  learned (): Iterable<[string, string]>
}

let version: string | null = null
/** This package's version (package.json two floors above dist/src/node). */
export function packageVersion (): string {
  if (version !== null) return version
  try {
    version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch { version = 'unknown' }
  return version
}

export class StatusBuilder {
  private readonly totalsCache = new Map<string, { at: number, root: string, value: ItemsBytes }>()
  /** Slow counts, by what they count, until when (clock ms) they are reused. */
  private readonly slowCounts = new Map<string, { until: number, value: unknown }>()

  /** `clock`: a monotonic ms clock that times the counts (tests pass their own). */
  constructor (private readonly view: StatusView, private readonly clock: () => number = () => performance.now()) {}

  build (): NodeStatus {
    const v = this.view
    const now = Date.now()
    const tick = this.clock()
    for (const [key, c] of this.slowCounts) if (c.until <= tick) this.slowCounts.delete(key)
    const ready = [...v.sessions()].filter(s => s.ready)
    return {
      peerId: v.peerId,
      address: v.address,
      version: packageVersion(),
      pid: process.pid,
      stateDir: v.stateDir,
      startedAt: v.activity.startedAt,
      time: now,
      peers: this.peers(ready),
      shares: [...v.shares()].map(s => this.share(s, ready, now)),
      transfers: v.activity.progress(now),
      finished: [...v.activity.finished],
      errors: [...v.activity.errors],
      totals: { ...v.totals }
    }
  }

  private peers (ready: PeerSession[]): PeerStatus[] {
    const v = this.view
    const sessions = new Map(ready.map(s => [s.peerId, s]))
    const mine = new Set([...v.shares()].map(s => s.id))
    const common = (peerId: string | undefined): string[] => {
      const s = peerId === undefined ? undefined : sessions.get(peerId)
      return s === undefined ? [] : [...s.remoteShares.keys()].filter(id => mine.has(id))
    }
    const out: PeerStatus[] = v.peerRecords().map(r => ({
      peerId: r.peerId ?? null,
      address: r.address,
      connected: r.connected,
      since: r.since,
      bytesSent: r.bytesSent,
      bytesReceived: r.bytesReceived,
      rttMs: r.rttMs ?? null,
      shares: common(r.peerId),
      lastError: r.lastError ?? null
    }))
    // Peers named by peer exchange that were never dialed (more than the peer cap) have no record yet.
    const listed = new Set(out.map(p => p.peerId))
    for (const [peerId, address] of v.learned()) {
      if (listed.has(peerId)) continue
      out.push({ peerId, address, connected: false, since: null, bytesSent: 0, bytesReceived: 0, rttMs: null, shares: [], lastError: null })
    }
    return out
  }

  private share (s: Share, ready: PeerSession[], now: number): ShareStatus {
    const v = this.view
    const root = s.root()
    const with_ = ready.filter(p => p.remoteShares.has(s.id))
    const inSync = s.pendingCount() === 0 && !s.isScanning && !s.paused
    const counters = v.activity.counters.get(s.id) ?? { updated: 0, deleted: 0, conflicts: 0 }
    const totals = this.totals(s.id, root.toString('hex'), now)
    return {
      id: s.id,
      dir: s.dir,
      mode: v.modeOf(s),
      paused: s.pausedReason,
      scanning: s.isScanning,
      files: totals.items,
      bytes: totals.bytes,
      root: root.toString('hex'),
      inSyncWith: inSync ? with_.filter(p => { const r = p.roots.get(s.id); return r !== undefined && r.settled && r.root.equals(root) }).map(p => p.peerId) : [],
      peers: with_.map(p => p.peerId),
      toFetch: s.pendingCount() === 0 ? [] : this.count(`pending\0${s.id}`, () => v.db.pendingBySource(s.id)).map(r => ({ peerId: r.src, items: r.items, bytes: r.bytes })),
      toSend: this.toSend(s.id, with_),
      ...counters,
      notAppliedIgnored: s.stats.notAppliedIgnored,
      notAppliedSendOnly: s.stats.notAppliedSendOnly,
      localOnly: s.stats.localOnly
    }
  }

  /** Connected peers sharing it, and peers that went away after acknowledging some of it. */
  private toSend (share: string, connected: PeerSession[]): PeerBacklog[] {
    const out: PeerBacklog[] = []
    const db = this.view.db
    for (const p of connected) out.push({ peerId: p.peerId, ...this.count(`unacked\0${p.peerId}\0${share}`, () => db.unackedBy(p.peerId, share))! })
    for (const peerId of this.view.activity.departed.keys()) {
      const b = this.count(`unacked\0${peerId}\0${share}`, () => db.unackedBy(peerId, share, true))
      if (b !== null) out.push({ peerId, ...b })
    }
    return out.filter(b => b.items > 0)
  }

  /** `run()`, or what it answered last time if that took SLOW_COUNT_MS or more and was not long ago. */
  private count<T> (key: string, run: () => T): T {
    const cached = this.slowCounts.get(key)
    const start = this.clock()
    if (cached !== undefined && start < cached.until) return cached.value as T
    const value = run()
    const took = this.clock() - start
    if (took >= SLOW_COUNT_MS) this.slowCounts.set(key, { until: start + took + Math.min(SLOW_COUNT_MAX_REUSE_MS, took * SLOW_COUNT_REUSE), value })
    else this.slowCounts.delete(key)
    return value
  }

  private totals (share: string, root: string, now: number): ItemsBytes {
    const c = this.totalsCache.get(share)
    if (c !== undefined && (c.root === root || (c.value.items > TOTALS_BIG_SHARE && now - c.at < TOTALS_TTL_MS))) return c.value
    const value = { ...this.view.db.liveTotals(share) }
    this.totalsCache.set(share, { at: now, root, value })
    return value
  }
}
