/**
 * Durability under kill -9: a child process puts and commits blocks in a
 * loop and prints each acknowledged one; it is SIGKILLed at random moments,
 * and after each kill every acknowledged block must read back byte-identical
 * and nothing corrupt may be served.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { assertBytesEqual, randomBytes } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import { packFiles, runAndKill } from './fixtures.js'

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url))
const ROUNDS = 10

describe('pack store under kill -9', () => {
  it(`keeps every acknowledged block across ${ROUNDS} SIGKILLs at random moments and serves nothing corrupt`, { timeout: 240_000 }, async (t) => {
    const path = await tempDir(t)
    let state = 42
    const random = (): number => { state = (state * 1103515245 + 12345) % 2 ** 31; return state / 2 ** 31 }
    const acked = new Map<string, { seed: number, size: number }>()
    let cut = 0
    let deleted = 0
    let torn = 0
    for (let round = 1; round <= ROUNDS; round++) {
      for (const line of (await runAndKill(CHILD, [path, String(round)], 30 + Math.floor(random() * 800))).lines) {
        const [verb, cid, seed, size] = line.split(' ')
        if (verb === 'ack') acked.set(cid, { seed: Number(seed), size: Number(size) })
        if (verb === 'deleting') { acked.delete(cid); deleted++ }
      }
      const store = await openBlockStore(t, path)
      cut += store.recovery?.cutBytes ?? 0
      torn += store.recovery?.tornRecords ?? 0
      for (const [text, { seed, size }] of acked) {
        const cid = CID.parse(text)
        assert.equal(await store.has(cid), true, `acknowledged ${text} (round ${round}) is missing`)
        assertBytesEqual(await store.getBytes(cid), randomBytes(size, seed))
      }
      let served = 0
      for await (const _ of store.getAll()) served++ // crc- and hash-checked: throws on anything corrupt
      assert.ok(served >= acked.size)
      await store.close()
    }
    assert.ok(acked.size > ROUNDS, `${acked.size} blocks acknowledged`)
    assert.ok(deleted > 0, 'the writer deleted and compacted')
    const packs = await packFiles(path)
    t.diagnostic(`${acked.size} blocks acknowledged and kept, ${deleted} deleted; open cut ${cut} unacknowledged bytes, ${torn} torn records; ${packs.length} packs left`)
  })
})
