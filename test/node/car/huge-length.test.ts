/**
 * A CAR whose length prefix (of a block's section, or of the header) is
 * longer than the decoder reads — a varint of 9 bytes or more, 2^56 bytes
 * and up — is refused with `TooLargeError` like any length over its limit,
 * on a real LevelDB block store, and nothing is imported.
 *
 * Found by a probe: such a CAR was refused as "Could not decode varint"
 * (`InvalidCARError`), the decoder's own message.
 */
import '../../../node/polyfills.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CarWriter } from '@ipld/car/writer'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { importCar } from '../../../node/car/index.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'

/** A length varint of `bytes` bytes: every byte but the last says "more follows". */
function longVarint (bytes: number): Uint8Array {
  const out = new Uint8Array(bytes).fill(0xff)
  out[bytes - 1] = 0x01
  return out
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

/** The CAR header naming `root`. */
async function headerOf (root: CID): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create([root])
  const parts: Uint8Array[] = []
  const done = (async () => { for await (const p of out) parts.push(p) })()
  await writer.close()
  await done
  return Buffer.concat(parts)
}

describe('a CAR with a huge length prefix', () => {
  it('a section or a header declaring 2^56 bytes or more: TooLargeError, nothing imported', { timeout: 30_000 }, async t => {
    const data = new TextEncoder().encode('a block')
    const cid = CID.createV1(raw.code, await sha256.digest(data))
    const header = await headerOf(cid)
    const cases: Array<[string, Uint8Array]> = [
      ['a section of 9 length bytes', Buffer.concat([header, longVarint(9), cid.bytes, data])],
      ['a section of 10 length bytes', Buffer.concat([header, longVarint(10), cid.bytes, data])],
      ['a header of 9 length bytes', Buffer.concat([longVarint(9), header.subarray(1)])]
    ]
    for (const [what, car] of cases) {
      const store = await openBlockStore(t)
      const tmp = await tempDir(t)
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, once(car)), (err: Error) => {
        assert.equal(err.name, 'TooLargeError', `${what}: ${err.name}: ${err.message}`)
        assert.match(err.message, /2\^56 bytes or more, over the limit of \d+ bytes/)
        return true
      }, what)
      let blocks = 0
      for await (const _ of store.cids()) blocks++
      assert.equal(blocks, 0, `${what}: no block imported`)
      assert.deepEqual((await readdir(tmp)).filter(n => n.startsWith('car-')), [], `${what}: no staging left`)
    }
    // a length prefix cut short by the end of the input is a truncated CAR, as before
    const store = await openBlockStore(t)
    await assert.rejects(importCar({ blockstore: store, tmpDir: join(await tempDir(t), 'tmp') }, once(Buffer.concat([header, Uint8Array.of(0xff, 0xff, 0xff)]))), { name: 'InvalidCARError' })
    // a block's section cut in its body: the message says the CAR ends after the byte it names, before what starts
    // there is whole (it read as though the error were at that byte: an operator's test)
    const body = new Uint8Array(1000).fill(7)
    const bodyCid = CID.create(1, raw.code, await sha256.digest(body))
    const length = bodyCid.bytes.byteLength + body.byteLength
    const cut = Buffer.concat([header, Uint8Array.of((length & 0x7f) | 0x80, length >> 7), bodyCid.bytes, body.subarray(0, 500)])
    await assert.rejects(importCar({ blockstore: store, tmpDir: join(await tempDir(t), 'tmp') }, once(cut)),
      (err: Error) => err.name === 'InvalidCARError' && /^invalid CAR at byte \d+: .*\(truncated CAR: it ends before what starts there is whole\)$/.test(err.message))
  })
})
