// Owns the status page: one HTML document, its stylesheet and its script, served by server.ts.
// The script listens to /events (server-sent events, one status snapshot a second) and redraws
// four tables: peers, shares, transfers, recent errors. Every value is set with textContent,
// never as HTML: names and reasons can come from peers.

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>swarm status</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>swarm <span id="node-id"></span></h1>
  <p id="node-line">connecting…</p>
  <p id="live" class="stale">not connected to the node</p>
</header>
<main>
  <section><h2>Peers</h2>
    <table id="peers"><thead><tr><th>peer</th><th>address</th><th>state</th><th>since</th><th class="num">RTT</th><th class="num">sent</th><th class="num">received</th></tr></thead><tbody></tbody></table>
    <p class="empty" id="peers-empty">no peers known</p>
  </section>
  <section><h2>Shares</h2>
    <table id="shares"><thead><tr><th>share</th><th>folder</th><th>state</th><th class="num">files</th><th class="num">size</th><th>root</th><th>to fetch</th></tr></thead><tbody></tbody></table>
    <p class="empty" id="shares-empty">no shares</p>
  </section>
  <section><h2>Transfers</h2>
    <table id="transfers"><thead><tr><th>file</th><th>progress</th><th class="num">rate</th><th class="num">ETA</th><th class="num">holders</th></tr></thead><tbody></tbody></table>
    <p class="empty" id="transfers-empty">nothing in flight</p>
    <h3>Recently finished</h3>
    <table id="finished"><thead><tr><th>file</th><th class="num">size</th><th class="num">time</th><th>when</th></tr></thead><tbody></tbody></table>
    <p class="empty" id="finished-empty">none yet</p>
  </section>
  <section><h2>Recent errors and warnings</h2>
    <table id="errors"><thead><tr><th>when</th><th>level</th><th>message</th></tr></thead><tbody></tbody></table>
    <p class="empty" id="errors-empty">none</p>
  </section>
</main>
</body>
</html>
`

export const PAGE_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 } h1 span { font: 0.9rem ui-monospace, monospace; color: #555 }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.4rem } h3 { font-size: 0.95rem; margin: 1rem 0 0.3rem }
table { border-collapse: collapse; width: 100%; background: #fff }
th, td { text-align: left; padding: 0.25rem 0.6rem; border-bottom: 1px solid #e3e3e3; white-space: nowrap }
td.msg { white-space: normal; word-break: break-all }
th { font-weight: 600; background: #f0f0f0 } .num { text-align: right }
.ok { color: #17692b; font-weight: 600 } .warn { color: #8a5a00; font-weight: 600 } .bad { color: #a11; font-weight: 600 }
.empty { color: #777; margin: 0.3rem 0 } .stale { color: #a11 } #live:not(.stale) { color: #666 }
progress { width: 10rem; vertical-align: middle }
code, .mono { font-family: ui-monospace, monospace; font-size: 0.9em }
`

// Plain browser JavaScript (no build step); kept small and dependency-free.
export const PAGE_SCRIPT = `
'use strict'
const $ = (id) => document.getElementById(id)
function fmtBytes (n) {
  if (typeof n !== 'number' || !isFinite(n)) return ''
  const u = ['B', 'kB', 'MB', 'GB', 'TB']; let i = 0; let v = n
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++ }
  return i === 0 ? Math.round(n) + ' B' : v.toFixed(v < 10 ? 2 : 1) + ' ' + u[i]
}
function fmtSecs (s) {
  if (typeof s !== 'number' || !isFinite(s)) return ''
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s'
  if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s'
  return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min'
}
function when (ms) {
  if (typeof ms !== 'number') return ''
  const d = new Date(ms); if (isNaN(d)) return ''
  return d.toLocaleString()
}
const short = (id) => typeof id === 'string' && id.length > 16 ? id.slice(-8) : String(id ?? '')
function cell (tr, text, cls) {
  const td = document.createElement('td'); td.textContent = text == null ? '' : String(text)
  if (cls) td.className = cls; tr.appendChild(td); return td
}
function fill (id, rows, draw) {
  const body = $(id).querySelector('tbody')
  body.replaceChildren()
  for (const r of rows) { const tr = document.createElement('tr'); draw(tr, r); body.appendChild(tr) }
  $(id).hidden = rows.length === 0
  $(id + '-empty').hidden = rows.length !== 0
}
function render (s) {
  $('node-id').textContent = s.peerId || ''
  $('node-line').textContent = 'listening on ' + (s.address || '?') + ' (UDP)' + (s.version ? ' · version ' + s.version : '') +
    (s.startedAt ? ' · up since ' + when(s.startedAt) : '')
  const peers = Array.isArray(s.peers) ? s.peers : []
  fill('peers', peers, (tr, p) => {
    cell(tr, short(p.peerId), 'mono').title = p.peerId || ''
    cell(tr, p.address)
    cell(tr, p.connected ? 'connected' : 'not connected', p.connected ? 'ok' : 'bad')
    cell(tr, when(p.since))
    cell(tr, typeof p.rttMs === 'number' ? p.rttMs.toFixed(1) + ' ms' : '', 'num')
    cell(tr, fmtBytes(p.bytesSent), 'num')
    cell(tr, fmtBytes(p.bytesReceived), 'num')
  })
  const shares = Array.isArray(s.shares) ? s.shares : []
  fill('shares', shares, (tr, sh) => {
    cell(tr, sh.id, 'mono')
    cell(tr, sh.dir)
    const behind = Array.isArray(sh.toFetch) ? sh.toFetch.filter(b => b.items > 0) : []
    const peers = Array.isArray(sh.peers) ? sh.peers.length : 0
    const inSync = Array.isArray(sh.inSyncWith) ? sh.inSyncWith.length : 0
    const state = sh.paused ? 'paused: ' + sh.paused : sh.scanning ? 'scanning' : behind.length > 0 ? 'fetching' :
      peers === 0 ? 'no peer shares it' : inSync === peers ? 'in sync with ' + peers + ' peer' + (peers === 1 ? '' : 's') : 'in sync with ' + inSync + ' of ' + peers + ' peers'
    cell(tr, state + (sh.mode && sh.mode !== 'send-receive' ? ' · ' + sh.mode : ''), sh.paused ? 'bad' : behind.length > 0 || sh.scanning || inSync < peers ? 'warn' : 'ok')
    cell(tr, sh.files, 'num')
    cell(tr, fmtBytes(sh.bytes), 'num')
    cell(tr, typeof sh.root === 'string' ? sh.root.slice(0, 16) : '', 'mono')
    cell(tr, behind.map(b => b.items + ' items, ' + fmtBytes(b.bytes) + (b.peerId ? ' from ' + short(b.peerId) : '')).join('; '))
  })
  const transfers = Array.isArray(s.transfers) ? s.transfers : []
  fill('transfers', transfers, (tr, t) => {
    cell(tr, (t.share ? t.share + '/' : '') + t.path)
    const td = cell(tr, '')
    const bar = document.createElement('progress'); bar.max = Math.max(1, t.size || 0); bar.value = t.bytes || 0
    td.appendChild(bar); td.appendChild(document.createTextNode(' ' + fmtBytes(t.bytes) + ' / ' + fmtBytes(t.size)))
    cell(tr, fmtBytes(t.rate) + '/s', 'num')
    cell(tr, fmtSecs(t.etaSeconds), 'num')
    cell(tr, t.holders, 'num')
  })
  const finished = Array.isArray(s.finished) ? s.finished : []
  fill('finished', finished, (tr, t) => {
    cell(tr, (t.share ? t.share + '/' : '') + t.path)
    cell(tr, fmtBytes(t.size), 'num')
    cell(tr, fmtSecs(t.seconds), 'num')
    cell(tr, when(t.at))
  })
  const errors = Array.isArray(s.errors) ? s.errors.slice().reverse() : []
  fill('errors', errors, (tr, e) => { cell(tr, when(e.time)); cell(tr, e.level, e.level === 'error' ? 'bad' : 'warn'); cell(tr, e.message, 'msg') })
  $('live').textContent = 'live · updated ' + new Date().toLocaleTimeString()
  $('live').className = ''
}
function connect () {
  const es = new EventSource('/events')
  es.addEventListener('status', (ev) => { try { render(JSON.parse(ev.data)) } catch (err) { console.error(err) } })
  es.onerror = () => { $('live').textContent = 'connection to the node lost; retrying…'; $('live').className = 'stale' }
}
connect()
`
