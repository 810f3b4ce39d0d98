// `swarm demo`: three nodes on this machine, each replicating its own temp folder, with a small
// and a large file written into the first one and watched arriving at the other two.
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { startNode, generateSecret, type SwarmNode } from '../index.js'

export async function demo (): Promise<number> {
  const base = mkdtempSync(join(tmpdir(), 'swarm-demo-'))
  const secret = generateSecret()
  const nodes: SwarmNode[] = []
  const say = (s: string) => console.log(s)
  try {
    for (let i = 0; i < 3; i++) {
      const dir = join(base, `node${i}`, 'uploads')
      mkdirSync(dir, { recursive: true })
      const node = await startNode({
        stateDir: join(base, `node${i}`, 'state'), secret, listen: '127.0.0.1:0',
        peers: nodes.map(n => n.address), shares: [{ dir, id: 'uploads' }]
      })
      say(`node${i}: listening on ${node.address} as ${node.peerId}, sharing ${dir}`)
      nodes.push(node)
    }
    await until(() => nodes.every(n => n.connectedPeers().length === 2), 10_000)
    say('all three nodes connected')
    const show = async (name: string, data: Buffer) => {
      const t0 = performance.now()
      writeFileSync(join(base, 'node0', 'uploads', name), data)
      await until(() => [1, 2].every(i => {
        const p = join(base, `node${i}`, 'uploads', name)
        return existsSync(p) && readFileSync(p).equals(data)
      }), 30_000)
      say(`wrote ${name} (${data.length} bytes) on node0 → identical on node1 and node2 after ${(performance.now() - t0).toFixed(1)} ms`)
    }
    await show('hello.txt', Buffer.from('hello from node0\n'))
    await show('photo.bin', randomBytes(20 * 1024 * 1024))
    say('done; stopping the nodes')
    return 0
  } finally {
    await Promise.all(nodes.map(n => n.stop()))
    rmSync(base, { recursive: true, force: true })
  }
}

async function until (cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('demo timed out')
    await new Promise(r => setTimeout(r, 5))
  }
}
