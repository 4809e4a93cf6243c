/**
 * A read by CID whose pin lookup fails: the read fails with its own error
 * (a typed `BlockUnavailableError`, a 404), not the lookup's, and the next
 * wanting block looks the pin up again. The lookup's failure (the gateway's
 * retrieval timeout, an unreadable index) is the fault, made by a lookup
 * function; the session under test is the real one.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { contentSession } from '../../../node/reads/content-session.js'
import { BlockUnavailableError } from '../../../node/exchange/errors.js'
import type { BlockReader, ReadSession, ReadTarget } from '../../../node/reads/api.js'

async function cidOf (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

describe('content sessions', () => {
  it('a failed pin lookup leaves the read its own error, and is made again by the next read', async () => {
    const leaf = new TextEncoder().encode('only the pinned session has me')
    const root = await cidOf(new TextEncoder().encode('root'))
    const cid = await cidOf(leaf)
    const pinnedTarget: ReadTarget = { root, manifest: root }
    // the plain session has nothing; the session on the pin has the leaf
    const blocks = {
      session: (target: ReadTarget): ReadSession => ({
        getBytes: async (wanted: CID) => {
          if (target.manifest !== undefined && wanted.equals(cid)) return leaf
          throw new BlockUnavailableError(`no peer could supply ${wanted.toString()}`)
        },
        close: () => {}
      })
    } as unknown as BlockReader
    let lookups = 0
    const session = contentSession({
      blocks,
      root,
      lookup: async () => {
        if (++lookups === 1) throw new Error('pin index unreadable')
        return pinnedTarget
      }
    })
    await assert.rejects(session.getBytes(cid), (err: Error) => err.name === 'BlockUnavailableError', 'the read fails with its own, typed error')
    assert.deepEqual(await session.getBytes(cid), leaf, 'the next read looks the pin up again and reads through it')
    assert.equal(lookups, 2)
  })
})
