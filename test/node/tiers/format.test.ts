/**
 * The cold tier's pure parts, without S3: the index codec and its checks,
 * the streaming CAR section scanner (against @ipld/car's own indexer, with
 * the CAR cut at every kind of boundary), cold location and tier config
 * validation, and the mapping of SDK failures to typed errors.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { CarIndexer } from '@ipld/car/indexer'
import { exportCar } from '../../../node/car/index.js'
import { importContent, parseChunker } from '../../../node/content/index.js'
import {
  CarSectionScanner, createTierClient, decodeColdIndex, encodeColdIndex, normalizePrefix, parseColdLocation, toTierError,
  type ColdIndex, type ColdIndexEntry, type ColdLocation
} from '../../../node/tiers/index.js'
import { cborCid } from '../../../node/tiers/format.js'
import { collectBytes, randomBytes, toAsync } from '../../helpers/bytes.js'
import { openBlockStore } from '../../helpers/temp.js'
import { suiteContext } from './suite.js'
import type { CID } from 'multiformats/cid'

/** Feed `car` to a scanner in pieces of `size` bytes; the sections it found. */
function scan (car: Uint8Array, size: number, root?: CID): ColdIndexEntry[] {
  const found: ColdIndexEntry[] = []
  const scanner = new CarSectionScanner(entry => found.push(entry), root)
  for (let at = 0; at < car.byteLength; at += size) scanner.push(car.subarray(at, at + size))
  scanner.finish()
  assert.equal(scanner.position, car.byteLength)
  return found
}

describe('cold tier formats', () => {
  const suite = suiteContext()
  let root: CID
  let car: Uint8Array
  let expected: ColdIndexEntry[]

  before(async () => {
    const store = await openBlockStore(suite)
    // 1 KiB leaves: 300 of them under two levels of dag-pb nodes
    root = (await importContent(store, toAsync([randomBytes(300 * 1024, 9)]), { chunker: parseChunker('size-1024') })).cid
    car = await collectBytes(exportCar(store, root))
    expected = []
    for await (const entry of await CarIndexer.fromBytes(car)) {
      expected.push({ cid: entry.cid, offset: entry.blockOffset, length: entry.blockLength })
    }
  })

  it('scanner finds every section, wherever the chunks are cut', () => {
    assert.ok(expected.length > 300)
    for (const size of [1, 2, 3, 7, 37, 128, 1000, 4096, car.byteLength]) {
      const found = scan(car, size, root)
      assert.equal(found.length, expected.length, `chunks of ${size}`)
      for (let i = 0; i < found.length; i++) {
        assert.ok(found[i].cid.equals(expected[i].cid))
        assert.equal(found[i].offset, expected[i].offset)
        assert.equal(found[i].length, expected[i].length)
      }
    }
  })

  it('scanner refuses a truncated CAR, a wrong root and garbage', () => {
    assert.throws(() => scan(car.subarray(0, car.byteLength - 10), 4096), { name: 'InvalidColdIndexError', message: /truncated/ })
    assert.throws(() => scan(car, 4096, expected[5].cid), { name: 'InvalidColdIndexError', message: /only root/ })
    assert.throws(() => scan(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 3), { name: 'InvalidColdIndexError' })
    assert.throws(() => scan(new Uint8Array([3, 1, 2, 3]), 1), { name: 'InvalidColdIndexError', message: /header/ })
    assert.throws(() => scan(new Uint8Array(0), 1), { name: 'InvalidColdIndexError' })
  })

  it('index round trip, compact, with its own CID', () => {
    const index: ColdIndex = { root, carSize: car.byteLength, carSha256: new Uint8Array(32).fill(7), entries: expected }
    const { bytes, cid } = encodeColdIndex(index)
    assert.ok(cid.equals(cborCid(bytes)))
    assert.ok(bytes.byteLength <= expected.length * 52, `${bytes.byteLength} bytes for ${expected.length} blocks`)
    const back = decodeColdIndex(bytes, { root, carSize: car.byteLength, blocks: expected.length })
    assert.ok(back.root.equals(root))
    assert.deepEqual(back.entries.map(e => [e.cid.toString(), e.offset, e.length]), expected.map(e => [e.cid.toString(), e.offset, e.length]))
    assert.deepEqual(encodeColdIndex(back).bytes, bytes, 'deterministic')
  })

  it('index decoding refuses what a reader must not trust', () => {
    const good: ColdIndex = { root, carSize: car.byteLength, carSha256: new Uint8Array(32), entries: expected }
    const bad = (change: Partial<ColdIndex>, expect = {}): void => {
      assert.throws(() => decodeColdIndex(encodeColdIndex({ ...good, ...change }).bytes, expect), { name: 'InvalidColdIndexError' })
    }
    bad({ carSize: expected[3].offset }) // blocks past the end of the CAR
    bad({ entries: [expected[1], expected[0], ...expected.slice(2)] }) // out of order, root not first
    bad({ entries: [expected[0], { ...expected[1], offset: expected[0].offset }] }) // overlapping
    bad({ entries: [] })
    bad({ carSha256: new Uint8Array(8) })
    bad({}, { root: expected[3].cid })
    bad({}, { carSize: 5 })
    bad({}, { blocks: 2 })
    assert.throws(() => decodeColdIndex(new Uint8Array([1, 2, 3])), { name: 'InvalidColdIndexError' })
  })

  it('cold locations: strict, validated, serialisable', () => {
    const location: ColdLocation = {
      v: 1, root: root.toString(), bucket: 'b', carKey: 'p/x.car', carSize: 10, indexKey: 'p/x.car.idx', indexSize: 5,
      indexCid: root.toString(), blocks: 1, blockBytes: 3
    }
    assert.deepEqual(parseColdLocation(JSON.parse(JSON.stringify(location))), location)
    for (const broken of [{ ...location, v: 2 }, { ...location, root: 'nope' }, { ...location, carSize: -1 }, { ...location, endpoint: 'http://x' }, { ...location, blocks: 1.5 }, null]) {
      assert.throws(() => parseColdLocation(broken), { name: 'InvalidColdLocationError' })
    }
  })

  it('tier config: endpoint, bucket and prefix checks', () => {
    assert.throws(() => createTierClient({ endpoint: 'http://key:secret@127.0.0.1:9000', bucket: 'b' }), (err: Error) => {
      assert.equal(err.name, 'InvalidArgumentError')
      assert.ok(!err.message.includes('secret'))
      return true
    })
    assert.throws(() => createTierClient({ endpoint: 'ftp://127.0.0.1', bucket: 'b' }), { name: 'InvalidArgumentError' })
    assert.throws(() => createTierClient({ endpoint: 'not a url', bucket: 'b' }), { name: 'InvalidArgumentError' })
    assert.throws(() => createTierClient({ endpoint: 'http://127.0.0.1:1', bucket: 'bad bucket' }), { name: 'InvalidArgumentError' })
    assert.throws(() => createTierClient({ endpoint: 'http://127.0.0.1:1', bucket: 'b', prefix: '/abs' }), { name: 'InvalidArgumentError' })
    assert.throws(() => createTierClient({ endpoint: 'http://127.0.0.1:1', bucket: 'b' }, { partSize: 1024 }), { name: 'InvalidArgumentError' })
    const client = createTierClient({ endpoint: 'http://127.0.0.1:1/', bucket: 'b', prefix: 'cold' })
    assert.deepEqual(client.describe(), { endpoint: 'http://127.0.0.1:1', bucket: 'b', prefix: 'cold/', region: 'us-east-1' })
    assert.equal(client.keyFor('x.car'), 'cold/x.car')
    client.destroy()
    assert.equal(normalizePrefix(undefined), '')
    assert.equal(normalizePrefix('a/b//'), 'a/b/')
  })

  it('maps SDK failures to typed one-line errors', () => {
    const where = { endpoint: 'http://127.0.0.1:9', bucket: 'b', operation: 'GetObject' }
    const cases: Array<[unknown, object, string]> = [
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), {}, 'TierUnreachableError'],
      [Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }), {}, 'TierUnreachableError'],
      [Object.assign(new Error('x'), { name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } }), {}, 'TierCredentialsError'],
      [Object.assign(new Error('UnknownError'), { name: 'Unknown', $metadata: { httpStatusCode: 403 } }), {}, 'TierCredentialsError'],
      [Object.assign(new Error('x'), { name: 'CredentialsProviderError' }), {}, 'TierCredentialsError'],
      [Object.assign(new Error('x'), { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }), { key: 'k' }, 'TierBucketNotFoundError'],
      [Object.assign(new Error('x'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }), { bucketLevel: true }, 'TierBucketNotFoundError'],
      [Object.assign(new Error('x'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }), { key: 'k' }, 'TierObjectNotFoundError'],
      [Object.assign(new Error('slow\ndown'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }), { key: 'k' }, 'TierRequestError'],
      [Object.assign(new Error('aborted'), { name: 'AbortError' }), {}, 'AbortedError']
    ]
    for (const [err, extra, name] of cases) {
      const mapped = toTierError(err, { ...where, ...extra })
      assert.equal(mapped.name, name, (err as Error).name)
      assert.ok(!mapped.message.includes('\n'))
      if (name.startsWith('Tier')) assert.ok(mapped.message.includes(where.endpoint), mapped.message)
    }
  })
})
