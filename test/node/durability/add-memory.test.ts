/**
 * What an `add --wait` holds of its file in memory, on real nodes: with a
 * holder that answers slowly, the streamed placement's queue fills, the
 * import waits, and the coding and placement never hold more than
 * MAX_ADD_BYTES of the file at once, however large it is; once the holder
 * answers, every shard is placed.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseChunker } from '../../../node/content/index.js'
import { importContent } from '../../../node/content/import.js'
import { MAX_ADD_BYTES } from '../../../node/durability/in-flight.js'
import { defer } from '../../helpers/temp.js'
import { holdBackRequests, live, swarmOf, until } from '../../helpers/swarm.js'
import type { Block } from '../../../node/durability/stripes.js'

const MiB = 1024 * 1024

/** `total` random bytes in 1 MiB pieces (no more than one piece in memory here). */
async function * randomFile (total: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < total; at += MiB) yield randomBytes(Math.min(MiB, total - at))
}

describe('the memory of an add --wait', () => {
  it('stays under MAX_ADD_BYTES while a slow holder holds the placement back, and everything is placed in the end', { timeout: 180_000 }, async t => {
    const swarm = await swarmOf(t, 3)
    const [writer, , slow] = live(swarm)
    await until('every peer connected', async () => writer.components.libp2p.getPeers().length === 2)
    const { durability, blockstore } = writer.components
    const size = 3 * MAX_ADD_BYTES
    // the slow holder's reservations wait until the import has stalled (no leaf for 300 ms) or fed the whole file
    let fed = 0
    let lastLeaf = Date.now()
    let released = false
    let fedAtRelease = 0
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => { release = () => { released = true; fedAtRelease = fed; resolve() } })
    defer(t, async () => { release() })
    holdBackRequests(t, writer, (peer, message) => message.type === 'reserve' && peer === slow.components.peerId, gate)
    const watch = setInterval(() => { if (!released && (fed >= size || Date.now() - lastLeaf > 300)) release() }, 50)
    defer(t, async () => { clearInterval(watch) })

    const coding = durability.addEncoder({ policy: 'ec:2+1', place: true, sync: true })
    const onLeaf = async (leaf: Block): Promise<void> => {
      fed += leaf.bytes.byteLength
      lastLeaf = Date.now()
      await coding.onLeaf(leaf)
    }
    const { cid } = await importContent(blockstore, randomFile(size), { chunker: parseChunker('size-1048576'), onLeaf, commit: false })
    const encoded = await coding.finish(cid, size)
    assert.ok(released && fedAtRelease < size, `the import waited for the slow holder (${fedAtRelease} of ${size} bytes fed when it answered)`)
    assert.ok(encoded.peakBytes > 0)
    assert.ok(encoded.peakBytes <= MAX_ADD_BYTES, `held ${encoded.peakBytes} bytes at once, more than ${MAX_ADD_BYTES}`)
    const placed = await encoded.placement
    assert.deepEqual(placed?.failed, [])
    assert.ok((placed?.pushed ?? 0) > 0)
  })
})
