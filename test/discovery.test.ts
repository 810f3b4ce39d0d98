// Peer exchange: one bootstrap address is enough; nodes learn the rest of the cluster from each other.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Cluster, waitFor, fileIs } from './helpers.js'
import { decode, encode } from '../src/wire/control.js'
import { isSwarmError } from '../src/errors.js'

test('nodes given only a bootstrap address find and connect to each other', async () => {
  const c = new Cluster()
  try {
    const a = await c.add('a')
    const nodes = [a]
    for (const name of ['b', 'c', 'd']) nodes.push(await c.add(name, { peers: [a.node.address] }))
    await waitFor('full mesh', () => nodes.every(n => n.node.connectedPeers().length === nodes.length - 1), 20_000)
    // and data flows over the learned links too: d's file reaches b
    writeFileSync(join(nodes[3]!.dir, 'from-d.txt'), 'd')
    await waitFor('replicated', () => nodes.every(n => fileIs(join(n.dir, 'from-d.txt'), 'd')))
  } finally { await c.stop() }
})

test('peer lists are checked like every other remote value', () => {
  const ok = { peerId: '12D3KooWAsKc4Ukx3MmKcfTqBKmR6dybem37SUKWb9udjbk7XLSF', ip: '10.0.0.2', port: 4001 }
  const msg = decode(encode.peers([ok]).subarray(4))
  assert.deepEqual(msg, { type: 'peers', peers: [ok] })
  for (const bad of [{ ...ok, ip: 'example.org' }, { ...ok, ip: '10.0.0.2; rm -rf /' }, { ...ok, peerId: '../x' }, { ...ok, port: 0 }]) {
    assert.throws(() => decode(encode.peers([bad]).subarray(4)), (err: unknown) => isSwarmError(err, 'ERR_PROTOCOL'), JSON.stringify(bad))
  }
})
