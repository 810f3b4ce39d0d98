// The jobs' requests between nodes, over each peer's control stream:
//   FETCH / PROGRESS — "fetch this blob into your store" and the answers on how it goes
//                      (put --to, bcast, diffuse); the fetching node reports every PROGRESS_MS.
//   HOLDS? / HOLDS   — "which of these blobs do you hold, and how much?" (get, chunks, diffuse).
//
// Who tracks what: RemoteJobs keeps the requests we sent (by peer and request id) until their
// answer, and the fetches peers asked of us until they end; the content exchange (node/content.ts)
// does the fetching and the blob store (store/blob-store.ts) holds the result. Values in the
// messages were checked by the wire codec; a peer answering a request we never sent is ignored.
import * as fs from 'node:fs'
import type { BlobStore } from '../store/blob-store.js'
import type { BlobRef, FetchState, Holding, JobMessage } from '../wire/control.js'
import { pieceCount, PIECE_SIZE } from '../merkle/bep52.js'
import { SwarmError } from '../errors.js'

/** How often a node fetching for a peer reports its progress. */
export const PROGRESS_MS = 250
/** A holdings query unanswered for this long counts as "holds nothing". */
export const HOLDS_TIMEOUT_MS = 5000
/** Fetches one peer may have asked of us at once; more are refused (a bcast or diffuse asks a handful). */
export const MAX_FETCHES_PER_PEER = 64
/** A FETCH for a root our catalog does not name yet waits this long for the catalog entry (it is sent first). */
export const CATALOG_WAIT_MS = 3000
/** Bitfield bytes in one HOLDS answer; past this, partial holdings are sent as counts only. */
export const MAX_HOLDS_BITFIELD_BYTES = 1024 * 1024

/** What the jobs need of a connected peer (node/session.ts PeerSession is one). */
export interface JobPeer {
  readonly peerId: string
  readonly ready: boolean
  once (event: 'closed', fn: (reason: string) => void): unknown
  off (event: 'closed', fn: (reason: string) => void): unknown
  sendFetch (req: number, root: Buffer, size: number, name: string): void
  sendProgress (req: number, have: number, total: number, state: FetchState, message?: string): void
  sendCancel (req: number): void
  sendHoldsQuery (req: number, blobs: BlobRef[]): void
  sendHolds (req: number, storeBytes: number, holdings: Holding[]): void
}

export interface RemoteHost {
  readonly blobs: BlobStore
  /** Does the catalog name this content? Only named content is fetched for a peer. */
  named (root: Buffer, size: number): boolean
  /** Resolves when the catalog changes next (or after `ms`). */
  catalogChange (ms: number): Promise<void>
  fetchBlob (root: Buffer, size: number, name: string): { done: Promise<number>, release: () => void }
  /** Verified pieces (and bitfield, if asked) of a blob download in progress here. */
  blobBits (root: Buffer, size: number, withBitfield?: boolean): { have: number, bitfield: Buffer } | undefined
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export interface FetchProgress { have: number, total: number, state: FetchState, message: string }
export interface PeerHoldings { storeBytes: number, holdings: Holding[] }

interface Outbound { peer: JobPeer, resolve: (v: unknown) => void, reject: (e: Error) => void, onProgress?: (p: FetchProgress) => void, cleanup: () => void }

export class RemoteJobs {
  private nextReq = 1
  private readonly outbound = new Map<string, Outbound>()
  /** Fetches peers asked of us, by peer, with the release of each. */
  private readonly inbound = new Map<string, Map<number, () => void>>()
  /** Bytes the fetches peers asked of us will still write (checked against free space). */
  private claimed = 0

  constructor (private readonly host: RemoteHost) {}

  stop (): void {
    for (const o of this.outbound.values()) { o.cleanup(); o.reject(new SwarmError('ERR_CLOSED', 'node stopping')) }
    this.outbound.clear()
    for (const m of this.inbound.values()) for (const release of m.values()) release()
    this.inbound.clear()
  }

  // ---- requests we make -------------------------------------------------------------------------

  /** Asks `peer` to fetch a blob into its store; resolves when it holds a verified copy. */
  requestFetch (peer: JobPeer, blob: BlobRef, name: string, onProgress?: (p: FetchProgress) => void, signal?: AbortSignal): Promise<void> {
    return this.request<void>(peer, req => peer.sendFetch(req, blob.root, blob.size, name), onProgress, signal, req => peer.sendCancel(req))
  }

  /** What `peer` holds of each blob; a peer that does not answer in time holds nothing. */
  async queryHolds (peer: JobPeer, blobs: BlobRef[]): Promise<PeerHoldings> {
    const none: PeerHoldings = { storeBytes: 0, holdings: blobs.map(() => ({ have: 0, bitfield: Buffer.alloc(0) })) }
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), HOLDS_TIMEOUT_MS)
    try {
      const got = await this.request<PeerHoldings>(peer, req => peer.sendHoldsQuery(req, blobs), undefined, ac.signal)
      return got.holdings.length === blobs.length ? got : none
    } catch { return none } finally { clearTimeout(timer) }
  }

  private request<T> (peer: JobPeer, send: (req: number) => void, onProgress?: (p: FetchProgress) => void, signal?: AbortSignal, cancel?: (req: number) => void): Promise<T> {
    if (!peer.ready) return Promise.reject(new SwarmError('ERR_NO_HOLDER', `node ${peer.peerId} is not connected`))
    if (signal?.aborted === true) return Promise.reject(new SwarmError('ERR_ABORTED', 'aborted'))
    const req = this.nextReq
    this.nextReq = this.nextReq >= 0xffffffff ? 1 : this.nextReq + 1
    const key = peer.peerId + ':' + req
    return new Promise<T>((resolve, reject) => {
      const onClosed = (reason: string): void => { this.outbound.delete(key); cleanup(); reject(new SwarmError('ERR_NO_HOLDER', `node ${peer.peerId} disconnected: ${reason}`)) }
      const onAbort = (): void => { this.outbound.delete(key); cleanup(); cancel?.(req); reject(new SwarmError('ERR_ABORTED', 'aborted')) }
      const cleanup = (): void => { peer.off('closed', onClosed); signal?.removeEventListener('abort', onAbort) }
      peer.once('closed', onClosed)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.outbound.set(key, { peer, resolve: resolve as (v: unknown) => void, reject, onProgress, cleanup })
      send(req)
    })
  }

  // ---- messages from peers ----------------------------------------------------------------------

  onMessage (peer: JobPeer, msg: JobMessage): void {
    switch (msg.type) {
      case 'fetch': return this.onFetch(peer, msg.req, { root: msg.root, size: msg.size }, msg.name)
      case 'holds-query': return this.onHoldsQuery(peer, msg.req, msg.blobs)
      case 'cancel': { this.inbound.get(peer.peerId)?.get(msg.req)?.(); return }
      case 'progress': {
        const key = peer.peerId + ':' + msg.req
        const o = this.outbound.get(key)
        if (o === undefined) return
        o.onProgress?.(msg)
        if (msg.state === 'running') return
        this.outbound.delete(key)
        o.cleanup()
        if (msg.state === 'done') o.resolve(undefined)
        else o.reject(new SwarmError('ERR_NO_HOLDER', `node ${peer.peerId} could not fetch it: ${msg.message}`))
        return
      }
      case 'holds': {
        const key = peer.peerId + ':' + msg.req
        const o = this.outbound.get(key)
        if (o === undefined) return
        this.outbound.delete(key)
        o.cleanup()
        o.resolve({ storeBytes: msg.storeBytes, holdings: msg.holdings })
      }
    }
  }

  /**
   * Answers what we hold of each blob: complete (have = pieces, no bitfield) or a download in
   * progress (a bitfield while the answer's bitfield budget lasts). Each distinct blob is looked
   * at once, however often the query names it.
   */
  private onHoldsQuery (peer: JobPeer, req: number, blobs: BlobRef[]): void {
    const none: Holding = { have: 0, bitfield: Buffer.alloc(0) }
    const seen = new Map<string, Holding>()
    let budget = MAX_HOLDS_BITFIELD_BYTES
    const holdings = blobs.map(b => {
      const key = b.root.toString('hex') + ':' + b.size
      const known = seen.get(key)
      if (known !== undefined) return known
      let h: Holding = none
      if (this.host.blobs.has(b.root, b.size)) h = { have: pieceCount(b.size, PIECE_SIZE), bitfield: Buffer.alloc(0) }
      else {
        const bits = this.host.blobBits(b.root, b.size, budget >= Math.ceil(pieceCount(b.size, PIECE_SIZE) / 8))
        if (bits !== undefined) { h = bits; budget -= bits.bitfield.length }
      }
      seen.set(key, h)
      return h
    })
    peer.sendHolds(req, this.host.blobs.bytes(), holdings)
  }

  /**
   * A peer asks us to fetch a blob: if our catalog names it (its entry travels ahead of the
   * FETCH on the same stream; we wait briefly for it), there is room, and the peer is not over its
   * share of requests, we do, and report until it is done or failed.
   */
  private onFetch (peer: JobPeer, req: number, blob: BlobRef, name: string): void {
    const total = pieceCount(blob.size, PIECE_SIZE)
    if (this.host.blobs.has(blob.root, blob.size)) { peer.sendProgress(req, total, total, 'done'); return }
    const mine = this.inbound.get(peer.peerId) ?? new Map<number, () => void>()
    if (mine.size >= MAX_FETCHES_PER_PEER || mine.has(req)) { peer.sendProgress(req, 0, total, 'failed', 'too many fetches asked at once'); return }
    this.inbound.set(peer.peerId, mine)
    let cancelled = false
    mine.set(req, () => { cancelled = true })
    void (async () => {
      const end = Date.now() + CATALOG_WAIT_MS
      while (!this.host.named(blob.root, blob.size) && Date.now() < end && !cancelled && peer.ready) await this.host.catalogChange(end - Date.now())
      mine.delete(req)
      if (mine.size === 0 && this.inbound.get(peer.peerId) === mine) this.inbound.delete(peer.peerId)
      if (cancelled || !peer.ready) return
      if (!this.host.named(blob.root, blob.size)) { peer.sendProgress(req, 0, total, 'failed', 'not in this node\'s catalog'); return }
      this.startFetch(peer, req, blob, name, mine)
    })()
  }

  private startFetch (peer: JobPeer, req: number, blob: BlobRef, name: string, mine: Map<number, () => void>): void {
    const total = pieceCount(blob.size, PIECE_SIZE)
    const free = freeBytes(this.host.blobs.dir)
    if (free !== null && free - this.claimed < blob.size) { peer.sendProgress(req, 0, total, 'failed', `disk full: ${blob.size} bytes needed, ${Math.max(0, free - this.claimed)} free`); return }
    this.inbound.set(peer.peerId, mine)
    this.claimed += blob.size
    const f = this.host.fetchBlob(blob.root, blob.size, name)
    const report = (): void => { const b = this.host.blobBits(blob.root, blob.size, false); if (b !== undefined) peer.sendProgress(req, b.have, total, 'running') }
    const timer = setInterval(report, PROGRESS_MS)
    let ended = false
    const end = (): void => {
      if (ended) return
      ended = true
      this.claimed -= blob.size
      clearInterval(timer)
      peer.off('closed', onClosed)
      mine.delete(req)
      if (mine.size === 0 && this.inbound.get(peer.peerId) === mine) this.inbound.delete(peer.peerId)
    }
    // The asker went away, or cancelled (CANCEL): nobody waits for the copy any more.
    let dropped = false
    const onClosed = (): void => { dropped = true; end(); f.release() }
    peer.once('closed', onClosed)
    mine.set(req, onClosed)
    f.done.then(
      () => { end(); f.release(); peer.sendProgress(req, total, total, 'done') },
      (err: Error) => {
        end()
        f.release()
        if (dropped || !peer.ready) return   // the asker left or cancelled (and so let go of the fetch)
        this.host.log('warn', `fetching ${name} for ${peer.peerId}: ${err.message}`)
        peer.sendProgress(req, 0, total, 'failed', err.message)
      }
    )
  }
}

/** Bytes free for an unprivileged writer on the filesystem holding `dir`, or null if unknown. */
export function freeBytes (dir: string): number | null {
  try { const s = fs.statfsSync(dir); return s.bavail * s.bsize } catch { return null }
}
