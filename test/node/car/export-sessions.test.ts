/**
 * A CAR export's read sessions live as long as its stream: none is opened
 * before the stream is read (a caller that gets the stream and drops it, an
 * API request that fails before its body, holds nothing), and every one
 * opened is closed when the stream ends or its reader stops. One real node.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseChunker } from '../../../node/content/index.js'
import { once, swarmOf } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'
import type { ReadSession } from '../../../node/reads/api.js'

const MiB = 1024 * 1024

/** Count the sessions `node`'s block service opens, and those closed. */
function countSessions (node: ShoalNode): { opened: number, closed: number } {
  const counts = { opened: 0, closed: 0 }
  const blocks = node.components.blocks
  const session = blocks.session.bind(blocks)
  blocks.session = (...args: Parameters<typeof session>): ReadSession => {
    const s = session(...args)
    counts.opened++
    const close = s.close.bind(s)
    s.close = () => { counts.closed++; close() }
    return s
  }
  return counts
}

describe('sessions of a CAR export', () => {
  it('are opened when the stream is read and closed when it ends or its reader stops', { timeout: 60_000 }, async t => {
    const swarm = await swarmOf(t, 1)
    const node = swarm.nodes[0] as ShoalNode
    await node.components.files.add('/d/a.bin', once(randomBytes(2 * MiB)), { chunker: parseChunker('size-262144'), pin: 'none' })
    await node.components.files.add('/d/b.bin', once(randomBytes(MiB)), { chunker: parseChunker('size-262144'), pin: 'none' })
    const counts = countSessions(node)

    // a stream never read
    const unread = await node.components.files.exportCar('/d')
    assert.equal(counts.opened, 0, 'no session before the stream is read')
    await unread.car.return(undefined)
    assert.equal(counts.opened, 0)

    // a stream read to its end
    const whole = await node.components.files.exportCar('/d')
    let bytes = 0
    for await (const chunk of whole.car) bytes += chunk.byteLength
    assert.ok(bytes > 3 * MiB, `the whole CAR (${bytes} bytes)`)
    assert.ok(counts.opened >= 1)
    assert.equal(counts.closed, counts.opened, 'every session closed at the end')

    // a reader that stops after the first bytes
    const before = counts.opened
    const cut = await node.components.files.exportCar('/d')
    for await (const chunk of cut.car) { assert.ok(chunk.byteLength > 0); break }
    assert.ok(counts.opened > before)
    assert.equal(counts.closed, counts.opened, 'every session closed when the reader stopped')
  })
})
