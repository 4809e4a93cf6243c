/**
 * Shoal's `size-262144` import must give the CIDs Kubo publishes for
 * `ipfs add --cid-version=1` (test/fixtures/kubo-cids.json), stored in a real
 * LevelDB block store and read back intact.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { importContent, readContent, parseChunker } from '../../../node/content/index.js'
import { goRandomBytes } from '../../helpers/go-random.js'
import { sha256OfStream, toAsync } from '../../helpers/bytes.js'
import { openBlockStore } from '../../helpers/temp.js'

interface KuboVector {
  name: string
  source: string
  input: { kind: 'utf8', text: string } | { kind: 'go-math-rand', seed: number, sha1?: string }
  size: number
  chunker: string
  cid: string
}

const vectors: KuboVector[] = JSON.parse(readFileSync(new URL('../../../../test/fixtures/kubo-cids.json', import.meta.url), 'utf8'))

/** The vector's input bytes, regenerated piece by piece. */
function * generate (vector: KuboVector): Generator<Uint8Array> {
  const { input } = vector
  switch (input.kind) {
    case 'utf8': yield new TextEncoder().encode(input.text); return
    case 'go-math-rand': yield * goRandomBytes(vector.size, input.seed); return
    default: throw new Error(`unknown input kind in vector "${vector.name}"`)
  }
}

/** Pass pieces through while hashing them (sha1 for the Kubo record, sha256 to compare the read-back). */
function * hashing (source: Iterable<Uint8Array>, digests: { sha1?: string, sha256?: string }): Generator<Uint8Array> {
  const sha1 = createHash('sha1')
  const sha256 = createHash('sha256')
  for (const piece of source) {
    sha1.update(piece)
    sha256.update(piece)
    yield piece
  }
  digests.sha1 = sha1.digest('hex')
  digests.sha256 = sha256.digest('hex')
}

describe('Kubo CID vectors (test/fixtures/kubo-cids.json)', () => {
  it('has vectors to check', () => {
    assert.ok(vectors.length >= 7)
  })

  for (const vector of vectors) {
    it(`${vector.name} → ${vector.cid}`, async (t) => {
      const blockstore = await openBlockStore(t)
      const digests: { sha1?: string, sha256?: string } = {}
      const { cid, size } = await importContent(blockstore, toAsync(hashing(generate(vector), digests)), {
        chunker: parseChunker(vector.chunker)
      })
      assert.equal(size, vector.size, 'bytes imported')
      if ('sha1' in vector.input && vector.input.sha1 !== undefined) {
        assert.equal(digests.sha1, vector.input.sha1, 'go-random port reproduces the input Kubo hashed')
      }
      assert.equal(cid.toString(), vector.cid)

      const readBack = await sha256OfStream(readContent(blockstore, cid))
      assert.equal(readBack, digests.sha256, 'read back the imported bytes')
    })
  }
})
