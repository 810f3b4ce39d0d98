// Owns the per-peer record the status command reads (SwarmNode.peerRecords()): for every peer
// this node dialed or that authenticated to it, whether it is connected, since when, how often it
// was dialed, the last error, the bytes carried and the round-trip time.
//
// Records are keyed by PeerId once it is known and by address before (a --peer address that never
// answered has no PeerId yet); when a dial reveals the PeerId behind an address the two merge.
// Strangers never get a record: inbound connections count only once authenticated.
import type { Connection } from '../transport/types.js'

export interface PeerRecord {
  peerId?: string
  /** Where the peer is reached: the address we dial, else where it said it listens, else the address it came from. */
  address: string
  connected: boolean
  /** Since when (ms since the epoch) the peer is connected, or not connected. */
  since: number
  lastError?: string
  /** Dials to this peer made by this node since it started (successful ones too). */
  attempts: number
  /** Stream bytes over every connection to this peer since this node started. */
  bytesSent: number
  bytesReceived: number
  /** The transport's round-trip estimate on the current connection (undefined when not connected or not kept). */
  rttMs?: number
}

/** Records kept at most; beyond, the record disconnected the longest goes (peer exchange can name many nodes). */
export const MAX_PEER_RECORDS = 10_000

/** How sure we are of an address: one we dial beats one the peer announced, which beats its source address. */
type AddressKind = 'remote' | 'listen' | 'dial'
const ADDRESS_RANK: Record<AddressKind, number> = { remote: 0, listen: 1, dial: 2 }

interface Rec {
  peerId?: string
  address: string
  addressKind: AddressKind
  connected: boolean
  since: number
  lastError?: string
  attempts: number
  /** Bytes of connections that have closed; the live connection's are added when read. */
  closedSent: number
  closedReceived: number
  conn: Connection | null
}

export class PeerBook {
  private readonly byPeer = new Map<string, Rec>()
  /** Records whose PeerId is not known yet, by address. */
  private readonly byAddress = new Map<string, Rec>()

  constructor (private readonly now: () => number = Date.now) {}

  /** A dial to `address` starts (peerId: the peer it should reach, when known). */
  dialing (address: string, peerId?: string): void {
    const r = this.find(address, peerId) ?? this.add({ address, addressKind: 'dial', peerId })
    this.setAddress(r, address, 'dial')
    r.attempts++
  }

  /** A dial to `address` failed, or its connection closed before it authenticated. */
  dialFailed (address: string, error: string, peerId?: string): void {
    const r = this.find(address, peerId) ?? this.add({ address, addressKind: 'dial', peerId })
    if (r.connected) return   // another connection to the same peer is up: this failure changes nothing
    r.lastError = error
  }

  /** A dial reached `peerId` at `address`: the address's record becomes the peer's. */
  identified (address: string, peerId: string): void {
    const anon = this.byAddress.get(address)
    if (anon === undefined) return
    this.byAddress.delete(address)
    const known = this.byPeer.get(peerId)
    if (known === undefined) { anon.peerId = peerId; this.byPeer.set(peerId, anon); return }
    known.attempts += anon.attempts
    this.setAddress(known, address, 'dial')
  }

  /** An authenticated session to `peerId` is the peer's connection now. */
  connected (peerId: string, address: string, conn: Connection): void {
    const r = this.byPeer.get(peerId) ?? this.add({ address, addressKind: 'remote', peerId })
    this.setAddress(r, address, 'remote')
    this.retire(r)
    r.conn = conn
    if (!r.connected) { r.connected = true; r.since = this.now() }
  }

  /** The peer said where it accepts connections. */
  listening (peerId: string, address: string): void {
    const r = this.byPeer.get(peerId)
    if (r !== undefined) this.setAddress(r, address, 'listen')
  }

  /** The peer's connection closed (reason: why, as peer-disconnected says it). */
  disconnected (peerId: string, reason: string): void {
    const r = this.byPeer.get(peerId)
    if (r === undefined) return
    this.retire(r)
    if (r.connected) { r.connected = false; r.since = this.now() }
    r.lastError = reason
  }

  /** An address that turned out to be this node: it is no peer. */
  forget (address: string): void {
    this.byAddress.delete(address)
    for (const [id, r] of this.byPeer) if (r.address === address && !r.connected) this.byPeer.delete(id)
  }

  /** Whether a record says the peer is connected. */
  isConnected (peerId: string): boolean { return this.byPeer.get(peerId)?.connected === true }

  list (): PeerRecord[] {
    return [...this.byPeer.values(), ...this.byAddress.values()].map(r => {
      const live = r.conn
      const out: PeerRecord = {
        address: r.address,
        connected: r.connected,
        since: r.since,
        attempts: r.attempts,
        bytesSent: r.closedSent + (live?.bytes.sent ?? 0),
        bytesReceived: r.closedReceived + (live?.bytes.received ?? 0)
      }
      if (r.peerId !== undefined) out.peerId = r.peerId
      if (r.lastError !== undefined) out.lastError = r.lastError
      const rtt = live?.rttMs?.()
      if (rtt !== undefined && Number.isFinite(rtt)) out.rttMs = rtt
      return out
    })
  }

  /** The live connection's bytes move to the closed totals (it closed, or another replaced it). */
  private retire (r: Rec): void {
    if (r.conn === null) return
    r.closedSent += r.conn.bytes.sent
    r.closedReceived += r.conn.bytes.received
    r.conn = null
  }

  private find (address: string, peerId?: string): Rec | undefined {
    return (peerId === undefined ? undefined : this.byPeer.get(peerId)) ?? this.byAddress.get(address) ??
      [...this.byPeer.values()].find(r => r.address === address && r.addressKind === 'dial')
  }

  private setAddress (r: Rec, address: string, kind: AddressKind): void {
    if (ADDRESS_RANK[kind] < ADDRESS_RANK[r.addressKind]) return
    r.address = address
    r.addressKind = kind
  }

  private add (init: { address: string, addressKind: AddressKind, peerId?: string }): Rec {
    if (this.byPeer.size + this.byAddress.size >= MAX_PEER_RECORDS) this.evictOne()
    const r: Rec = { ...init, connected: false, since: this.now(), attempts: 0, closedSent: 0, closedReceived: 0, conn: null }
    if (init.peerId === undefined) this.byAddress.set(init.address, r); else this.byPeer.set(init.peerId, r)
    return r
  }

  private evictOne (): void {
    let oldest: Rec | undefined
    for (const r of [...this.byAddress.values(), ...this.byPeer.values()]) if (!r.connected && (oldest === undefined || r.since < oldest.since)) oldest = r
    if (oldest === undefined) return
    if (oldest.peerId === undefined) this.byAddress.delete(oldest.address); else this.byPeer.delete(oldest.peerId)
  }
}
