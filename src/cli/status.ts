// Owns `swarm status`, `swarm peers` and `swarm shares`: asks the node running on a state dir for
// its status over the control socket and prints it as a few readable blocks (or, with --json, the
// NodeStatus object as it came). Every string that came from a peer goes through show().
import { callControl } from '../control/client.js'
import type { NodeStatus, PeerStatus, ShareStatus } from '../node/status.js'
import { fmtBytes, show, shortPeer } from './progress.js'

export type StatusView = 'status' | 'peers' | 'shares'

/** Fetches the status and prints the view; returns the lines (for tests) after writing them. */
export async function statusCommand (view: StatusView, opts: { state: string, json: boolean }): Promise<number> {
  const st = await callControl(opts.state, 'status', {})
  if (opts.json) {
    const out = view === 'status' ? st : view === 'peers' ? st.peers : st.shares
    process.stdout.write(JSON.stringify(out) + '\n')
    return 0
  }
  process.stdout.write(formatStatus(st, view).join('\n') + '\n')
  return 0
}

export function formatStatus (st: NodeStatus, view: StatusView, now = st.time): string[] {
  if (view === 'peers') return peerLines(st.peers, now)
  if (view === 'shares') return st.shares.flatMap(s => shareLines(s))
  const lines = [
    `node ${st.peerId}`,
    `  listening ${st.address} (UDP)   version ${st.version}   pid ${st.pid}   up ${fmtAge(now - st.startedAt)}`,
    `  state ${show(st.stateDir, 200)}`,
    '',
    `peers (${st.peers.filter(p => p.connected).length} connected of ${st.peers.length} known)`,
    ...indent(peerLines(st.peers, now)),
    '',
    `shares (${st.shares.length})`,
    ...indent(st.shares.flatMap(s => shareLines(s)))
  ]
  if (st.transfers.length > 0) {
    lines.push('', 'transfers')
    for (const t of st.transfers) {
      const eta = t.etaSeconds === null ? '' : `, ETA ${fmtAge(t.etaSeconds * 1000)}`
      lines.push(`  ${show(t.share)}/${show(t.path)}  ${fmtBytes(t.bytes)} of ${fmtBytes(t.size)} (${pct(t.bytes, t.size)}) at ${fmtBytes(t.rate)}/s${eta}, ${t.holders} holder${t.holders === 1 ? '' : 's'}`)
    }
  }
  if (st.finished.length > 0) {
    lines.push('', 'last transfers')
    for (const f of st.finished.slice(-5)) {
      lines.push(`  ${isoTime(f.at)}  ${show(f.share)}/${show(f.path)}  ${fmtBytes(f.size)} in ${f.seconds.toFixed(2)} s (${fmtBytes(f.fetchedBytes)} fetched)`)
    }
  }
  if (st.errors.length > 0) {
    lines.push('', 'last warnings and errors')
    for (const e of st.errors.slice(-5)) lines.push(`  ${isoTime(e.time)} ${e.level}: ${show(e.message, 300)}`)
  }
  return lines
}

function peerLines (peers: PeerStatus[], now: number): string[] {
  if (peers.length === 0) return ['(none: start with --peer <host:port>, or let another node dial this one)']
  return peers.map(p => {
    const who = p.peerId === null ? '(id unknown)' : shortPeer(p.peerId)
    const since = p.since === null ? '' : ` for ${fmtAge(now - p.since)}`
    if (!p.connected) return `${who}  ${show(p.address)}  not connected${since}${p.lastError === null ? '' : `: ${show(p.lastError, 200)}`}`
    const rtt = p.rttMs === null ? '' : `, rtt ${p.rttMs.toFixed(1)} ms`
    const shares = p.shares.length === 0 ? 'no shares in common' : `shares ${p.shares.map(s => show(s)).join(', ')}`
    return `${who}  ${show(p.address)}  connected${since}, sent ${fmtBytes(p.bytesSent)}, received ${fmtBytes(p.bytesReceived)}${rtt}; ${shares}`
  })
}

function shareLines (s: ShareStatus): string[] {
  let state: string
  if (s.paused !== null) state = `PAUSED: ${show(s.paused, 300)}`
  else if (s.scanning) state = 'scanning its folder'
  else if (s.peers.length === 0) state = 'no peer shares it'
  else if (s.inSyncWith.length === s.peers.length && s.toFetch.length === 0) state = `in sync with ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}`
  else state = `in sync with ${s.inSyncWith.length} of ${s.peers.length} peers`
  const mode = s.mode === 'send-receive' ? '' : ` [${s.mode}]`
  const lines = [
    `${show(s.id)}${mode}  ${show(s.dir, 200)}`,
    `  ${s.files} files, ${fmtBytes(s.bytes)}, root ${s.root.slice(0, 16)}…  ${state}`
  ]
  for (const b of s.toFetch) lines.push(`  to fetch from ${b.peerId === '' ? 'peers' : shortPeer(b.peerId)}: ${b.items} items, ${fmtBytes(b.bytes)}`)
  for (const b of s.toSend) lines.push(`  ${shortPeer(b.peerId)} has yet to apply ${b.items} items, ${fmtBytes(b.bytes)}`)
  if (s.updated + s.deleted + s.conflicts > 0) lines.push(`  since start: ${s.updated} updated, ${s.deleted} deleted, ${s.conflicts} conflicts`)
  if (s.notAppliedSendOnly > 0) lines.push(`  send-only: ${s.notAppliedSendOnly} changes from peers not applied here`)
  if (s.notAppliedIgnored > 0) lines.push(`  ${s.notAppliedIgnored} changes from peers to ignored paths not applied`)
  if (s.localOnly > 0) lines.push(`  receive-only: ${s.localOnly} local changes kept here, not sent`)
  return lines
}

const indent = (lines: string[]): string[] => lines.map(l => '  ' + l)

function pct (n: number, of: number): string { return of === 0 ? '100%' : `${Math.floor(n / of * 100)}%` }

/** A duration as people say it: 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function fmtAge (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 90) return `${s} s`
  const m = Math.round(s / 60)
  if (m < 90) return `${m} min`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

/** A time in ISO 8601 UTC (date, time and zone), as node-event lines show it. */
export function isoTime (ms: number): string { return new Date(ms).toISOString() }
