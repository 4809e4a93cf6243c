/**
 * Closing a read session ends what it has under way: a `cat` whose reader
 * went away (`| head`), a gateway request that ended, a ranged read that is
 * done close their session, and its fetches from peers stop then, not when
 * they would have timed out. Two real nodes on 127.0.0.1; the holder's disk
 * hangs (its store's reads never return: a fault a test cannot make real).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { once, swarmOf, until } from '../../helpers/swarm.js'
import { defer } from '../../helpers/temp.js'
import type { ShoalNode } from '../../../node/node.js'

const MiB = 1024 * 1024

describe('closing a read session', () => {
  it('ends the fetches it has under way: a read waiting on a stalled holder fails at once, nothing is left in flight', { timeout: 120_000 }, async t => {
    const swarm = await swarmOf(t, 2)
    const [writer, reader] = swarm.nodes as ShoalNode[]
    const { cid } = await writer.components.files.add('/f.bin', once(randomBytes(4 * MiB)), { chunker: parseChunker('size-262144'), pin: 'none' })
    const root = CID.parse(cid)
    const session = reader.components.blocks.session({ root })
    const leaf = dagPb.decode(await session.getBytes(root)).Links[0].Hash
    // from now on the holder's disk hangs
    const store = writer.components.blockstore
    const original = store.getBytes.bind(store)
    let asked = 0
    store.getBytes = async () => { asked++; return await new Promise<never>(() => {}) }
    defer(t, async () => { store.getBytes = original })
    const waiting = session.getBytes(leaf)
    waiting.catch(() => {})
    await until('the holder is asked for the leaf', async () => asked > 0)
    session.close()
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('the read still waits 10 s after its session closed')) }, 10_000) })
    try {
      await assert.rejects(Promise.race([waiting, bound]), (err: Error) => err.name === 'AbortedError', 'the waiting read fails as aborted')
    } finally {
      clearTimeout(timer)
    }
    await until('no fetch left in flight', async () => {
      const s = reader.components.exchange.stats()
      return s.fetchesPending === 0 && s.requestsInFlight === 0
    }, 20_000)
  })
})
