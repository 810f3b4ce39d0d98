// The live progress line of `swarm share`: drawn in place on a terminal, cut to its width, gone
// when the download ends; never a control character when stdout is not a terminal; and the
// summary line that replaces one line per file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LiveLine, progressText, summaryText } from '../src/cli/live-line.js'

const P = { share: 'uploads', path: 'video.mp4', size: 1_070_000_000, bytes: 312_000_000, rate: 95_200_000, etaSeconds: 8, holders: 3 }
const fakeStream = (tty: boolean, columns = 200) => ({ isTTY: tty, columns }) as unknown as NodeJS.WriteStream

test('progress text: size, share of it, rate, ETA, holders', () => {
  assert.equal(progressText(P), 'uploads/video.mp4  312.0 MB of 1.07 GB (29%)  95.2 MB/s  ETA 8 s  3 holders')
  assert.equal(progressText({ ...P, etaSeconds: null, holders: 1 }), 'uploads/video.mp4  312.0 MB of 1.07 GB (29%)  95.2 MB/s  1 holder')
})

test('on a terminal the line is drawn in place, cut to the width, and cleared when done', () => {
  const l = new LiveLine(fakeStream(true, 40))
  const now = Date.now()
  l.progress(P, now)
  const drawn = l.redraw(now)
  assert.ok(drawn.startsWith('\r\x1b[2K'))
  assert.ok(drawn.length - '\r\x1b[2K'.length <= 39, 'fits the terminal')
  assert.equal(l.redraw(now), '', 'nothing to redraw when nothing changed')
  assert.equal(l.clear(), '\r\x1b[2K')
  l.done('uploads', 'video.mp4')
  assert.equal(l.redraw(now), '', 'nothing in flight: no line')
  l.progress(P, now)
  l.redraw(now)
  assert.equal(l.redraw(now + 10_000), '\r\x1b[2K', 'a download not heard of for a while is dropped')
})

test('not on a terminal: no control characters at all', () => {
  const l = new LiveLine(fakeStream(false))
  l.progress(P)
  assert.equal(l.enabled, false)
  assert.equal(l.redraw(), '')
  assert.equal(l.clear(), '')
})

test('summary line: files, bytes, deletions, source, time', () => {
  const self = '12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelfSelf'
  const peer = '12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeer3xYz1234'
  assert.equal(summaryText({ share: 'uploads', from: peer, updated: 2000, deleted: 3, bytes: 84_100_000, seconds: 3.2 }, self),
    'share uploads: 2000 files (84.1 MB), 3 deleted from 3xYz1234 in 3.20 s')
  assert.equal(summaryText({ share: 'uploads', from: self, updated: 1, deleted: 0, bytes: 5, seconds: 0 }, self),
    'share uploads: 1 file (5 B) found in the folder in 0.00 s')
})
