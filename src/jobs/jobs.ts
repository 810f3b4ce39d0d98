// The distribution jobs (put / mput / get / mget / bcast / diffuse / ls / nodes / chunks /
// local-chunks): write once, read many, content addressed by root, named in the replicated
// catalog. Every byte moves through the node's one piece exchange (node/content.ts), so a file
// several nodes want is traded among them (a swarm per root), exactly as a share's files are.
//
// Who tracks what: the catalog (catalog.ts) holds names; the blob store (store/blob-store.ts)
// holds content; RemoteJobs (remote.ts) the requests between nodes; this file only decides
// what to fetch where and reports progress.
import * as fs from 'node:fs'
import { basename, join, relative, resolve, sep, dirname, isAbsolute } from 'node:path'
import type { IndexDb } from '../store/db.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Catalog } from './catalog.js'
import type { StoredEntry } from '../model/entry.js'
import { RemoteJobs, freeBytes, type FetchProgress, type JobPeer, type PeerHoldings } from './remote.js'
import { hashFile } from '../merkle/hash-file.js'
import { MAX_HOLDS_PER_FRAME } from '../wire/control.js'
import { pieceCount, PIECE_SIZE } from '../merkle/bep52.js'
import { SwarmError } from '../errors.js'
import type {
  BcastResult, CatalogItem, ChunksResult, DiffuseResult, GetOptions, GetResult, JobOptions, JobsApi,
  LocalChunk, NodeInfo, NodeProgress, PutOptions, PutResult
} from './types.js'

/** A get with no new verified piece for this long, and nobody left to ask, fails (the pieces it has are kept). */
export const GET_STALL_MS = 20_000
/** How often progress is reported to the caller. */
const REPORT_MS = 250
/** diffuse: how many nodes should hold each file. */
export const DIFFUSE_COPIES = 2
/** mget: files fetched at once. */
const MGET_PARALLEL = 4
const HEX_ROOT = /^[0-9a-f]{64}$/

export interface JobsHost {
  readonly peerId: string
  readonly db: IndexDb
  readonly catalog: Catalog
  readonly blobs: BlobStore
  /** Connected, authenticated peers. */
  peers (): JobPeer[]
  nodes (): NodeInfo[]
  fetchBlob (root: Buffer, size: number, name: string): { done: Promise<number>, release: () => void }
  blobBits (root: Buffer, size: number, withBitfield?: boolean): { have: number, bitfield: Buffer, peers: number } | undefined
  /** The verified-pieces record of an interrupted blob download, if any. */
  savedBits (root: Buffer, size: number): Uint8Array | null
  /** Counts this node's piece uploads of `root` until stop(). */
  watchUploads (root: Buffer): { bytes: () => number, stop: () => void }
  putLayer (root: Buffer, layer: Buffer): void
  log (level: 'info' | 'warn' | 'error', msg: string): void
}

export class Jobs implements JobsApi {
  readonly remote: RemoteJobs

  constructor (private readonly host: JobsHost) {
    this.remote = new RemoteJobs({
      blobs: host.blobs,
      named: (root, size) => host.catalog.namesOf(root, size).length > 0,
      catalogChange: (ms) => new Promise<void>(resolve => {
        const t = setTimeout(done, ms)
        function done (): void { clearTimeout(t); host.catalog.off('changed', done); resolve() }
        host.catalog.once('changed', done)
      }),
      fetchBlob: (root, size, name) => host.fetchBlob(root, size, name),
      blobBits: (root, size, withBitfield) => host.blobBits(root, size, withBitfield),
      log: (level, msg) => host.log(level, msg)
    })
  }

  stop (): void { this.remote.stop() }

  // ---- publishing ---------------------------------------------------------------------------------

  async put (file: string, opts: PutOptions = {}): Promise<PutResult> {
    const abs = resolve(file)
    aborted(opts.signal, `put of ${abs}`)
    const blob = await this.host.blobs.import(abs)
    this.host.putLayer(blob.root, blob.layer)
    aborted(opts.signal, `put of ${abs}`)
    const e = this.host.catalog.publish(opts.name ?? basename(abs), blob.root, blob.size)
    const item = toItem(e)
    if (opts.to === undefined) return item
    const peer = this.pickPeer(opts.to)
    await this.remote.requestFetch(peer, blob, e.path, undefined, opts.signal)
    return { ...item, placedOn: peer.peerId }
  }

  async mput (dir: string, opts: { prefix?: string, to?: string, signal?: AbortSignal } = {}): Promise<PutResult[]> {
    const root = resolve(dir)
    if (fs.statSync(root, { throwIfNoEntry: false })?.isDirectory() !== true) throw new SwarmError('ERR_BAD_ARGUMENT', `${root} is not a directory`)
    const out: PutResult[] = []
    for (const f of walkFiles(root)) {
      const name = (opts.prefix ?? '') + relative(root, f).split(sep).join('/')
      aborted(opts.signal, `mput of ${root} (${out.length} files published)`)
      out.push(await this.put(f, { name, to: opts.to, signal: opts.signal }))
    }
    return out
  }

  private pickPeer (to: string): JobPeer {
    const peers = this.host.peers()
    if (to === 'random') {
      if (peers.length === 0) throw new SwarmError('ERR_NO_HOLDER', 'no other node is connected to place a copy on')
      return peers[Math.floor(Math.random() * peers.length)]!
    }
    const p = peers.find(s => s.peerId === to || s.peerId.endsWith(to))
    if (p === undefined) throw new SwarmError('ERR_NO_HOLDER', `node ${to} is not connected`)
    return p
  }

  // ---- reading ------------------------------------------------------------------------------------

  /** The catalog entry for a name, or for a hex root. */
  private resolveName (nameOrRoot: string): StoredEntry {
    const byName = this.host.catalog.lookup(nameOrRoot)
    if (byName !== undefined) return byName
    if (HEX_ROOT.test(nameOrRoot.toLowerCase())) {
      const hit = this.host.catalog.byRoot(Buffer.from(nameOrRoot, 'hex'))
      if (hit !== undefined) return hit
    }
    throw new SwarmError('ERR_UNKNOWN_NAME', `no file named ${JSON.stringify(nameOrRoot)} in the catalog (swarm ls lists them)`)
  }

  async get (nameOrRoot: string, dest?: string, opts: GetOptions = {}): Promise<GetResult> {
    const t0 = Date.now()
    const e = this.resolveName(nameOrRoot)
    const target = resolve(dest ?? basename(e.path))
    const finalDest = fs.statSync(target, { throwIfNoEntry: false })?.isDirectory() === true ? join(target, basename(e.path)) : target
    const done = { ...toItem(e), dest: finalDest, bytesFetched: 0 }
    // Everything about the destination is checked before a byte is fetched.
    const there = fs.lstatSync(finalDest, { throwIfNoEntry: false })
    if (there !== undefined) {
      if (there.isDirectory()) throw new SwarmError('ERR_EXISTS', `${finalDest} is a directory`)
      // Already this very content (a get or mget run again after an interruption): nothing to do.
      if (there.isFile() && there.size === e.size && (await hashFile(finalDest).catch(() => null))?.root.equals(e.root) === true) return { ...done, seconds: (Date.now() - t0) / 1000 }
      if (opts.force !== true) throw new SwarmError('ERR_EXISTS', `${finalDest} exists (use --force to replace it)`)
    }
    const parent = dirname(finalDest)
    try { fs.accessSync(parent, fs.constants.W_OK) } catch {
      throw new SwarmError('ERR_BAD_ARGUMENT', `cannot write into ${parent}: it does not exist or is not writable`)
    }
    const bytesFetched = await this.fetchLocal(e, opts)
    await this.host.blobs.export(this.host.blobs.get(e.root, e.size)!, finalDest, opts.force === true, opts.signal)
    return { ...done, bytesFetched, seconds: (Date.now() - t0) / 1000 }
  }

  async mget (prefix: string, destDir?: string, opts: GetOptions = {}): Promise<GetResult[]> {
    const items = this.host.catalog.list(prefix)
    if (items.length === 0) throw new SwarmError('ERR_UNKNOWN_NAME', `no file in the catalog starts with ${JSON.stringify(prefix)}`)
    // A name that is also a folder of other names cannot be written as both.
    const names = new Set(items.map(e => e.path))
    for (const e of items) {
      for (let i = e.path.indexOf('/'); i > 0; i = e.path.indexOf('/', i + 1)) {
        const dir = e.path.slice(0, i)
        if (names.has(dir)) throw new SwarmError('ERR_EXISTS', `${dir} is both a file and a folder in the catalog (${e.path}); get them one by one`)
      }
    }
    const base = resolve(destDir ?? '.')
    const out: GetResult[] = []
    let next = 0
    // The first failure stops the others (their verified pieces are kept for the next run).
    const stop = new AbortController()
    const signal = opts.signal === undefined ? stop.signal : AbortSignal.any([opts.signal, stop.signal])
    const worker = async (): Promise<void> => {
      while (next < items.length && !stop.signal.aborted) {
        const e = items[next++]!
        const dest = join(base, ...e.path.split('/'))
        try {
          try { fs.mkdirSync(dirname(dest), { recursive: true }) } catch (err) {
            throw new SwarmError('ERR_EXISTS', `cannot make the folder for ${dest}: ${(err as Error).message}`)
          }
          out.push(await this.get(e.path, dest, { ...opts, signal }))
        } catch (err) { if (!stop.signal.aborted) stop.abort(err); throw err }
      }
    }
    // Every worker stops taking files once one failed; the first failure is what the caller sees.
    const results = await Promise.allSettled(Array.from({ length: Math.min(MGET_PARALLEL, items.length) }, worker))
    if (stop.signal.aborted) throw stop.signal.reason
    const firstFailure = results.find(r => r.status === 'rejected')
    if (firstFailure !== undefined) throw (firstFailure as PromiseRejectedResult).reason
    return out.sort((a, b) => a.name < b.name ? -1 : 1)
  }

  /**
   * Makes this node hold a verified copy of `e` in its blob store, from every holder at once;
   * returns the bytes that came over the network. Fails with ERR_NO_HOLDER when nobody online
   * holds any of it or progress stops with nobody left to ask; verified pieces are kept, so the
   * next get resumes.
   */
  private async fetchLocal (e: StoredEntry, opts: JobOptions): Promise<number> {
    const { root, size } = e
    if (this.host.blobs.has(root, size)) return 0
    // An empty file needs nobody: its root says all there is (a wrong root is refused).
    if (size === 0) { this.host.blobs.adoptEmpty(root); return 0 }
    const total = pieceCount(size, PIECE_SIZE)
    const free = freeBytes(this.host.blobs.dir)
    if (free !== null && free < size) throw new SwarmError('ERR_NO_SPACE', `not enough room in the blob store for ${e.path}: ${size} bytes needed, ${free} free (${this.host.blobs.dir})`)
    const held = await this.holdings([{ root, size }])
    const any = held.some(h => h.holdings[0]!.have > 0)
    if (!any && this.host.blobBits(root, size) === undefined) {
      throw new SwarmError('ERR_NO_HOLDER', `no online node holds ${e.path} (${held.length} connected)`)
    }
    const f = this.host.fetchBlob(root, size, e.path)
    let lastHave = -1
    let lastMove = Date.now()
    let failed: SwarmError | null = null
    const tick = (): void => {
      const b = this.host.blobBits(root, size, false)
      if (b === undefined) return
      if (b.have !== lastHave) { lastHave = b.have; lastMove = Date.now() }
      opts.onProgress?.({ name: e.path, bytes: Math.min(size, b.have * PIECE_SIZE), size, holders: b.peers })
      if (Date.now() - lastMove > GET_STALL_MS) {
        failed = new SwarmError('ERR_NO_HOLDER', `no connected node has the remaining ${total - b.have} of ${total} pieces of ${e.path}; the verified pieces are kept: run get again to resume`)
        f.release()
      }
    }
    const timer = setInterval(tick, REPORT_MS)
    const onAbort = (): void => { failed = new SwarmError('ERR_ABORTED', `get of ${e.path} interrupted; run it again to resume`); f.release() }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (opts.signal?.aborted === true) onAbort()
    let fetched: number
    try {
      fetched = await f.done
    } catch (err) {
      throw failed ?? err
    } finally {
      clearInterval(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      f.release()
    }
    if (failed !== null) throw failed
    opts.onProgress?.({ name: e.path, bytes: size, size })
    return fetched
  }

  /** What every connected node holds of these blobs (asked in batches a query may carry). */
  private async holdings (blobs: Array<{ root: Buffer, size: number }>): Promise<Array<PeerHoldings & { peer: JobPeer }>> {
    const peers = this.host.peers()
    return await Promise.all(peers.map(async peer => {
      const out: PeerHoldings = { storeBytes: 0, holdings: [] }
      for (let i = 0; i < blobs.length || i === 0; i += MAX_HOLDS_PER_FRAME) {
        const got = await this.remote.queryHolds(peer, blobs.slice(i, i + MAX_HOLDS_PER_FRAME))
        out.storeBytes = got.storeBytes
        out.holdings.push(...got.holdings)
      }
      return { peer, ...out }
    }))
  }

  // ---- spreading ----------------------------------------------------------------------------------

  async bcast (nameOrFile: string, opts: JobOptions = {}): Promise<BcastResult> {
    let e: StoredEntry
    // A catalog name wins; a file is only ever an absolute path (a relative one would be read
    // against this process's directory, not the caller's).
    if (this.host.catalog.lookup(nameOrFile) === undefined && isAbsolute(nameOrFile) && fs.statSync(nameOrFile, { throwIfNoEntry: false })?.isFile() === true) {
      const put = await this.put(nameOrFile, { signal: opts.signal })
      e = this.resolveName(put.name)
    } else e = this.resolveName(nameOrFile)
    const t0 = Date.now()
    const blob = { root: e.root, size: e.size }
    const total = pieceCount(e.size, PIECE_SIZE)
    const uploads = this.host.watchUploads(e.root)
    const peers = this.host.peers()
    const state = new Map<string, NodeProgress>()
    const report = (): void => {
      const nodes = [...state.values()]
      const bytes = nodes.reduce((n, p) => n + Math.min(e.size, p.have * PIECE_SIZE), 0)
      opts.onProgress?.({ name: e.path, bytes, size: e.size * nodes.length, nodes })
    }
    const timer = setInterval(report, REPORT_MS)
    const jobs: Array<Promise<void>> = []
    // This node takes part too: it holds the file at the end, and serves while it fetches.
    state.set(this.host.peerId, { peerId: this.host.peerId, have: this.host.blobs.has(e.root, e.size) ? total : 0, total, state: 'running' })
    jobs.push(this.fetchLocal(e, { signal: opts.signal }).then(
      () => { state.set(this.host.peerId, { peerId: this.host.peerId, have: total, total, state: 'done' }) },
      (err: Error) => { state.set(this.host.peerId, { peerId: this.host.peerId, have: 0, total, state: 'failed', error: err.message }) }
    ))
    for (const peer of peers) {
      state.set(peer.peerId, { peerId: peer.peerId, have: 0, total, state: 'running' })
      const onProgress = (p: FetchProgress): void => { state.set(peer.peerId, { peerId: peer.peerId, have: p.have, total, state: p.state, ...(p.state === 'failed' ? { error: p.message } : {}) }) }
      jobs.push(this.remote.requestFetch(peer, blob, e.path, onProgress, opts.signal).then(
        () => { state.set(peer.peerId, { peerId: peer.peerId, have: total, total, state: 'done' }) },
        (err: Error) => { state.set(peer.peerId, { peerId: peer.peerId, have: state.get(peer.peerId)?.have ?? 0, total, state: 'failed', error: err.message }) }
      ))
    }
    try { await Promise.all(jobs) } finally { clearInterval(timer); uploads.stop() }
    if (opts.signal?.aborted === true) throw new SwarmError('ERR_ABORTED', `bcast of ${e.path} interrupted`)
    report()
    const seconds = (Date.now() - t0) / 1000
    const nodes = [...state.values()]
    const fetched = nodes.filter(n => n.state === 'done').length
    return {
      name: e.path, root: e.root.toString('hex'), size: e.size, nodes, seconds,
      bytesPerSecond: seconds > 0 ? e.size * fetched / seconds : 0,
      sourceCopies: e.size > 0 ? uploads.bytes() / e.size : 0
    }
  }

  /** Spreads copies so each file is held by at least DIFFUSE_COPIES nodes, giving new copies to the nodes holding the fewest bytes. */
  async diffuse (names: string[], opts: JobOptions = {}): Promise<DiffuseResult[]> {
    const entries = (names.length === 0 ? this.host.catalog.list() : names.map(n => this.resolveName(n)))
    const blobs = entries.map(e => ({ root: e.root, size: e.size }))
    const held = await this.holdings(blobs)
    const load = new Map<string, number>([[this.host.peerId, this.host.blobs.bytes()], ...held.map(h => [h.peer.peerId, h.storeBytes] as [string, number])])
    const out: DiffuseResult[] = []
    const work: Array<Promise<void>> = []
    entries.forEach((e, i) => {
      const total = pieceCount(e.size, PIECE_SIZE)
      const holders = held.filter(h => h.holdings[i]!.have === total).map(h => h.peer.peerId)
      if (this.host.blobs.has(e.root, e.size)) holders.unshift(this.host.peerId)
      const added: string[] = []
      const candidates = held.map(h => h.peer).filter(p => !holders.includes(p.peerId))
      while (holders.length + added.length < DIFFUSE_COPIES && candidates.length > 0) {
        candidates.sort((a, b) => (load.get(a.peerId) ?? 0) - (load.get(b.peerId) ?? 0))
        const p = candidates.shift()!
        load.set(p.peerId, (load.get(p.peerId) ?? 0) + e.size)
        added.push(p.peerId)
        work.push(this.remote.requestFetch(p, { root: e.root, size: e.size }, e.path, undefined, opts.signal))
      }
      out.push({ name: e.path, holders: [...holders, ...added], added })
    })
    await Promise.all(work)
    return out
  }

  // ---- looking --------------------------------------------------------------------------------------

  ls (prefix = ''): CatalogItem[] { return this.host.catalog.list(prefix).map(toItem) }

  nodes (): NodeInfo[] { return this.host.nodes() }

  async chunks (name: string): Promise<ChunksResult> {
    const e = this.resolveName(name)
    const pieces = pieceCount(e.size, PIECE_SIZE)
    const held = await this.holdings([{ root: e.root, size: e.size }])
    const mine = this.host.blobs.has(e.root, e.size) ? { have: pieces, bitfield: Buffer.alloc(0) } : this.host.blobBits(e.root, e.size) ?? { have: 0, bitfield: Buffer.alloc(0) }
    const holders = [{ peerId: this.host.peerId, ...mine }, ...held.map(h => ({ peerId: h.peer.peerId, ...h.holdings[0]! }))]
    return {
      ...toItem(e), pieceSize: PIECE_SIZE, pieces,
      holders: holders.map(h => ({ peerId: h.peerId, have: h.have, pieces: pieceMap(h.have, pieces, h.bitfield) }))
    }
  }

  localChunks (): LocalChunk[] {
    const out: LocalChunk[] = []
    for (const b of this.host.blobs.list()) {
      const pieces = pieceCount(b.size, PIECE_SIZE)
      out.push({ root: b.root.toString('hex'), size: b.size, have: pieces, pieces, names: this.host.catalog.namesOf(b.root, b.size) })
    }
    // Downloads in progress, and interrupted ones whose verified pieces wait for the next get.
    const listed = new Set(out.map(o => o.root + ':' + o.size))
    for (const e of this.host.catalog.list()) {
      const key = e.root.toString('hex') + ':' + e.size
      if (listed.has(key) || e.size === 0) continue
      listed.add(key)
      const pieces = pieceCount(e.size, PIECE_SIZE)
      const live = this.host.blobBits(e.root, e.size, false)
      const saved = live === undefined ? this.host.savedBits(e.root, e.size) : null
      const have = live?.have ?? (saved === null ? 0 : countBits(saved, pieces))
      if (have > 0) out.push({ root: e.root.toString('hex'), size: e.size, have, pieces, names: this.host.catalog.namesOf(e.root, e.size) })
    }
    return out
  }
}

function aborted (signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) throw new SwarmError('ERR_ABORTED', `${what} interrupted`)
}

function toItem (e: { path: string, root: Buffer, size: number, mtime: number, by: string }): CatalogItem {
  return { name: e.path, root: e.root.toString('hex'), size: e.size, mtime: e.mtime, by: e.by }
}

function countBits (bits: Uint8Array, n: number): number {
  let c = 0
  for (let i = 0; i < n; i++) if ((bits[i >> 3]! & (0x80 >> (i & 7))) !== 0) c++
  return c
}

/** 'all', 'none', or one 0/1 per piece. */
function pieceMap (have: number, pieces: number, bitfield: Buffer): string {
  if (have >= pieces) return 'all'
  if (have === 0) return 'none'
  let s = ''
  for (let i = 0; i < pieces; i++) s += (bitfield[i >> 3]! & (0x80 >> (i & 7))) !== 0 ? '1' : '0'
  return s
}

/** Regular files below `dir`, depth first, in name order; symlinks are not followed. */
function * walkFiles (dir: string): Generator<string> {
  for (const d of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name < b.name ? -1 : 1)) {
    const p = join(dir, d.name)
    if (d.isDirectory()) yield * walkFiles(p)
    else if (d.isFile()) yield p
  }
}
