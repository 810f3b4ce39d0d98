// The distribution jobs as the library and the control socket see them: plain data in, plain
// data out. jobs.ts implements JobsApi; control/ carries it over a Unix socket; cli/ prints it.

/** A name in the catalog: a file published once, read many times, addressed by its root. */
export interface CatalogItem {
  name: string
  root: string          // hex BEP 52 root
  size: number
  mtime: number         // ms since the epoch, when it was published
  by: string            // short id of the node that published it
}

/** Progress of one node on one file (a piece count; a node that failed says why). */
export interface NodeProgress {
  peerId: string
  have: number          // verified pieces
  total: number         // pieces in the file
  state: 'running' | 'done' | 'failed'
  error?: string
}

export interface ProgressEvent {
  name: string
  /** Bytes verified so far / the file's size, for the local node (get) or summed over every node (bcast). */
  bytes: number
  size: number
  /** bcast: every node's state. */
  nodes?: NodeProgress[]
  /** get: how many connected nodes the pieces are coming from. */
  holders?: number
}

export interface JobOptions {
  signal?: AbortSignal
  onProgress?: (e: ProgressEvent) => void
}

export interface PutOptions {
  name?: string
  /** a peer id, or 'random': that node fetches a copy too */
  to?: string
  /** checked before publishing (the copy and hash of one file are not interrupted) and between mput's files */
  signal?: AbortSignal
}
export interface PutResult extends CatalogItem { placedOn?: string }

export interface GetOptions extends JobOptions { force?: boolean }
export interface GetResult extends CatalogItem { dest: string, bytesFetched: number, seconds: number }

export interface BcastResult {
  name: string
  root: string
  size: number
  nodes: NodeProgress[]
  seconds: number
  /** size × nodes that fetched it / seconds */
  bytesPerSecond: number
  /** Bytes this node uploaded for the file during the broadcast, in copies of the file. */
  sourceCopies: number
}

export interface DiffuseResult { name: string, holders: string[], added: string[] }

export interface NodeInfo { peerId: string, address: string, connected: boolean, self?: boolean }

export interface ChunkHolder { peerId: string, have: number, /** 'all', 'none', or a string of 0/1 per piece */ pieces: string }
export interface ChunksResult extends CatalogItem { pieceSize: number, pieces: number, holders: ChunkHolder[] }

export interface LocalChunk { root: string, size: number, have: number, pieces: number, names: string[] }

/**
 * Everything the jobs face offers; SwarmNode.jobs implements it, the control socket forwards it.
 *
 * Names: a catalog name (share path rules: `a/b/c`), or for get/chunks a 64-hex root. bcast takes a
 * catalog name, or the path of an existing local file, which is put first (a name wins if both).
 * Relative paths resolve against the calling process's working directory: the CLI sends absolute
 * ones, since the daemon's differs. Peer ids: NodeInfo, NodeProgress, DiffuseResult and ChunkHolder
 * carry full PeerIds; CatalogItem.by is the publishing node's short id (the tail of its PeerId),
 * as in version vectors. put/mput cannot be cancelled once started (hashing a copy); get, mget,
 * bcast and diffuse take an AbortSignal.
 */
export interface JobsApi {
  put (file: string, opts?: PutOptions): Promise<PutResult>
  mput (dir: string, opts?: { prefix?: string, to?: string, signal?: AbortSignal }): Promise<PutResult[]>
  get (nameOrRoot: string, dest?: string, opts?: GetOptions): Promise<GetResult>
  mget (prefix: string, destDir?: string, opts?: GetOptions): Promise<GetResult[]>
  bcast (nameOrFile: string, opts?: JobOptions): Promise<BcastResult>
  diffuse (names: string[], opts?: JobOptions): Promise<DiffuseResult[]>
  ls (prefix?: string): CatalogItem[]
  nodes (): NodeInfo[]
  chunks (name: string): Promise<ChunksResult>
  localChunks (): LocalChunk[]
}
