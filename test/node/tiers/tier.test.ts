/**
 * The S3 cold tier against a real S3 HTTP server (s3rver on 127.0.0.1): a
 * streamed upload comes back byte-identical; a multi-MiB file imported into
 * a real LevelDB block store is pushed, verified and read back whole and
 * ranged through the cold reader, counting the bytes fetched; every fault
 * (unreachable endpoint, wrong credentials, missing bucket, truncated,
 * altered or missing object, incomplete DAG) gives its typed error and
 * reports nothing as pushed or verified. No S3 mock objects.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { createServer, type Socket } from 'node:net'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { importContent, parseChunker, readContent, type BlockGetter } from '../../../node/content/index.js'
import { linksOf } from '../../../node/car/index.js'
import { NotFoundError } from '../../../node/errors.js'
import {
  ColdReader, createTierClient, deleteCold, loadColdIndex, parseColdLocation, probeTier, pushCold, verifyCold,
  type ColdLocation, type TierClient, type TierClientOptions, type TierConfig
} from '../../../node/tiers/index.js'
import { assertBytesEqual, collectBytes, randomBytes, randomPieces, sha256Hex, sha256OfStream, toAsync } from '../../helpers/bytes.js'
import { defer, openBlockStore } from '../../helpers/temp.js'
import { S3RVER_CREDENTIALS, closedPort, startCuttingProxy, startS3Server, useS3rverCredentials, type TestS3Server } from './s3-server.js'
import { suiteContext } from './suite.js'
import type { BlockStore, LevelBlockStore } from '../../../node/blocks/index.js'
import { Blocks, type BlockOrigin } from '../../../node/reads/index.js'
import { createLogger } from '../../../node/logger.js'
import type { StoredColdCopy } from '../../../node/namespace/index.js'
import type { CID } from 'multiformats/cid'

const KiB = 1024
const MiB = 1024 * KiB
const BIG = 24 * MiB
const SMALL = 10_000

/** Distinct blocks of the DAG under `root`. */
async function countBlocks (store: LevelBlockStore, root: CID): Promise<number> {
  const seen = new Set<string>([root.toString()])
  const queue = [root]
  for (let head = 0; head < queue.length; head++) {
    for (const link of linksOf(queue[head], await store.getBytes(queue[head]))) {
      if (!seen.has(link.toString())) { seen.add(link.toString()); queue.push(link) }
    }
  }
  return queue.length
}

/** Wait (at most 5 s) until `reader` has no GET in flight, so that its counters are final. */
async function settled (reader: ColdReader): Promise<void> {
  for (let i = 0; i < 500 && reader.fetchesInFlight > 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  assert.equal(reader.fetchesInFlight, 0, 'GETs still running after 5 s')
}

/** Assert `promise` rejects with an error named `name`; returns it. */
async function rejectsWith (promise: Promise<unknown>, name: string): Promise<Error> {
  let error: Error | undefined
  try {
    await promise
  } catch (err) {
    error = err as Error
  }
  assert.ok(error !== undefined, `expected ${name}, but it succeeded`)
  assert.equal(error.name, name, `expected ${name}, got ${error.name}: ${error.message}`)
  assert.ok(!error.message.includes('\n'), 'one-line message')
  return error
}

describe('S3 cold tier (s3rver)', () => {
  const suite = suiteContext()
  let s3: TestS3Server
  let store: LevelBlockStore
  let bigRoot: CID
  let bigBytes: Uint8Array
  let smallRoot: CID
  let midRoot: CID
  let midBytes: Uint8Array
  let tier: TierClient
  let bigLocation: ColdLocation

  /** A client of the test bucket (credentials from the environment) or of another config. */
  function client (config: Partial<TierConfig> = {}, options: TierClientOptions = {}): TierClient {
    const c = createTierClient({ endpoint: s3.endpoint, bucket: s3.bucket, prefix: 'cold/', ...config }, { maxAttempts: 2, ...options })
    defer(suite, async () => { c.destroy() })
    return c
  }

  /** Overwrite an object of the bucket with `bytes` (what a damaged or tampered bucket holds). */
  async function overwrite (key: string, bytes: Uint8Array): Promise<void> {
    await (await tier.sdkClient()).send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }))
  }

  async function objectBytes (key: string): Promise<Uint8Array> {
    return await collectBytes((await tier.getObject(key)).body)
  }

  before(async () => {
    useS3rverCredentials(suite)
    s3 = await startS3Server(suite)
    store = await openBlockStore(suite)
    // 64 KiB leaves: 384 of them under 3 internal nodes, so the CAR interleaves nodes and leaves
    const chunker = parseChunker('size-65536')
    bigBytes = randomBytes(BIG, 1)
    bigRoot = (await importContent(store, toAsync(randomPieces(BIG, 1)), { chunker })).cid
    smallRoot = (await importContent(store, toAsync([randomBytes(SMALL, 2)]), { chunker })).cid
    midBytes = randomBytes(3 * MiB, 3)
    midRoot = (await importContent(store, toAsync([midBytes]), { chunker })).cid
    tier = client()
  })

  it('uses the checksum options, and a streamed upload comes back byte-identical (single PUT and multipart)', async () => {
    assert.equal(await (await tier.sdkClient()).config.requestChecksumCalculation(), 'WHEN_REQUIRED')
    assert.equal(await (await tier.sdkClient()).config.responseChecksumValidation(), 'WHEN_REQUIRED')
    assert.equal((await tier.sdkClient()).config.forcePathStyle, true)
    // a PutObject with a stream body: with the SDK's default checksums s3rver stores the aws-chunked framing
    const single = 3 * MiB + 5
    await (await tier.sdkClient()).send(new PutObjectCommand({
      Bucket: s3.bucket, Key: 'regression/streamed-put', Body: Readable.from(randomPieces(single, 4, 256 * KiB)), ContentLength: single
    }))
    const put = await tier.getObject('regression/streamed-put')
    assert.equal(put.length, single)
    assert.equal(await sha256OfStream(put.body), sha256Hex(randomBytes(single, 4)))
    // three parts of 5 MiB (the last one shorter), streamed from a generator
    const multi = 12 * MiB + 3
    await tier.upload('regression/multipart', toAsync(randomPieces(multi, 5, 700 * KiB)), { partSize: 5 * MiB })
    const got = await tier.getObject('regression/multipart')
    assert.equal(got.length, multi)
    assert.equal(await sha256OfStream(got.body), sha256Hex(randomBytes(multi, 5)))
  })

  it('pushes a multi-MiB file as a verified CAR plus index and returns a plain location', async () => {
    const events: string[] = []
    const { location, verification } = await pushCold(tier, store, bigRoot, { sizeHint: BIG, onProgress: e => { events.push(e.type) } })
    bigLocation = location
    assert.equal(location.root, bigRoot.toString())
    assert.equal(location.bucket, s3.bucket)
    assert.equal(location.carKey, `cold/${bigRoot.toString()}.car`)
    assert.equal(location.indexKey, `cold/${bigRoot.toString()}.car.idx`)
    assert.equal(location.blocks, await countBlocks(store, bigRoot))
    assert.equal(location.blocks, 384 + 3 + 1)
    assert.equal(location.blockBytes > BIG, true, 'leaves plus internal nodes')
    assert.ok(location.carSize > location.blockBytes && location.carSize < location.blockBytes + location.blocks * 64)
    assert.equal((await tier.head(location.carKey)).size, location.carSize)
    assert.equal((await tier.head(location.indexKey)).size, location.indexSize)
    assert.ok(location.indexSize < location.blocks * 64, `compact index: ${location.indexSize} bytes for ${location.blocks} blocks`)
    assert.deepEqual(verification.mode, 'sample')
    assert.equal(verification.blocksChecked, 8)
    assert.ok(events.includes('shoal:tier:push:bytes') && events.at(-1) === 'shoal:tier:push:verified')
    // plain data that survives JSON, without the endpoint or any credential
    const json = JSON.stringify(location)
    assert.deepEqual(parseColdLocation(JSON.parse(json)), location)
    assert.ok(!json.includes(s3.endpoint) && !json.includes('127.0.0.1') && !json.includes(S3RVER_CREDENTIALS.accessKeyId))
    // pushing the same root again writes the same bytes
    const again = await pushCold(tier, store, bigRoot, { sizeHint: BIG })
    assert.deepEqual(again.location, location)
  })

  it('reads the cold file back whole, byte-identical, in a few large ranged GETs', async (t) => {
    const reader = new ColdReader(tier, bigLocation)
    assert.equal(await sha256OfStream(readContent(reader, bigRoot)), sha256Hex(bigBytes))
    await settled(reader)
    const stats = reader.stats
    t.diagnostic(`whole read: ${stats.bytesFetched} of ${bigLocation.carSize} CAR bytes in ${stats.requests} GETs for ${bigLocation.blocks} blocks`)
    assert.equal(stats.indexBytes, bigLocation.indexSize)
    assert.ok(stats.bytesFetched <= bigLocation.carSize, `each byte fetched once at most (${stats.bytesFetched} of ${bigLocation.carSize})`)
    assert.ok(stats.bytesFetched >= bigLocation.blockBytes)
    assert.ok(stats.requests <= 24, `${stats.requests} GETs for ${bigLocation.blocks} blocks`)
    reader.close()
  })

  it('a ranged read fetches only about the bytes it needs', async (t) => {
    const ranges = [
      { offset: 10 * MiB + 12_345, length: MiB },
      { offset: 17 * MiB + 999, length: 100 },
      { offset: BIG - 1000, length: 1000 },
      { offset: 0, length: 4 * MiB },
      // longer than the read-ahead threshold: read-ahead may add up to half as much again
      { offset: 5 * MiB + 1, length: 12 * MiB }
    ]
    for (const { offset, length } of ranges) {
      const reader = new ColdReader(tier, bigLocation)
      const got = await collectBytes(readContent(reader, bigRoot, { offset, length }))
      assertBytesEqual(got, bigBytes.subarray(offset, offset + length), `range ${offset}+${length}`)
      await settled(reader)
      const { bytesFetched, requests } = reader.stats
      t.diagnostic(`range ${offset}+${length}: ${bytesFetched} bytes fetched (${(bytesFetched / length).toFixed(2)}×) in ${requests} GETs`)
      // the leaves that hold the range (64 KiB each, partly used at each end) plus the root and up to two internal nodes
      const exact = length + 2 * 64 * KiB + 20 * KiB
      const bound = length <= 4 * MiB ? exact : 1.5 * length + 256 * KiB
      assert.ok(bytesFetched <= bound, `range ${offset}+${length}: fetched ${bytesFetched} bytes, bound ${bound}`)
      assert.ok(requests <= (length <= 4 * MiB ? 10 : 24), `range ${offset}+${length}: ${requests} GETs`)
      reader.close()
    }
  })

  it('a read with a signal: its blocks share one abort listener, and an abort stops the read', async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error): void => { warnings.push(warning.name) }
    process.on('warning', onWarning)
    const reader = new ColdReader(tier, bigLocation)
    const controller = new AbortController()
    const head = await collectBytes(readContent(reader, bigRoot, { signal: controller.signal, length: 8 * MiB }))
    assertBytesEqual(head, bigBytes.subarray(0, 8 * MiB))
    const reading = collectBytes(readContent(reader, bigRoot, { signal: controller.signal, offset: 12 * MiB }))
    setImmediate(() => controller.abort())
    await rejectsWith(reading, 'AbortedError')
    await new Promise(resolve => setTimeout(resolve, 20))
    process.off('warning', onWarning)
    assert.deepEqual(warnings, [])
    reader.close()
    await rejectsWith(reader.getBytes(bigRoot), 'AbortedError')
  })

  it('serves a one-block file, prefers a hot copy, and reads cold blocks where the hot copy lost them', async () => {
    const { location } = await pushCold(tier, store, smallRoot)
    assert.equal(location.blocks, 1)
    const reader = new ColdReader(tier, location)
    assertBytesEqual(await collectBytes(readContent(reader, smallRoot)), randomBytes(SMALL, 2))
    assert.equal(reader.stats.requests, 1)
    // the hot store holds everything: nothing is fetched from the tier
    const big = new ColdReader(tier, bigLocation)
    // the block service of a node with this tier: the hot copy first, the tier for the rest
    const coldCopy = { endpoint: s3.endpoint, bucket: bigLocation.bucket } as unknown as StoredColdCopy
    const blocksOf = (blockstore: BlockStore): Blocks => new Blocks({ blockstore, logger: createLogger('silent'), tiers: { reader: () => big } })
    const origins: BlockOrigin[] = []
    await sha256OfStream(readContent(blocksOf(store).session({ root: bigRoot, cold: coldCopy }, { onProgress: e => { origins.push(e.from) } }), bigRoot, { length: MiB }))
    assert.equal(big.stats.requests, 0)
    assert.deepEqual([...new Set(origins)], ['local'])
    // a hot store without the file (its shards are gone): every block comes from the tier
    const empty = await openBlockStore(suite)
    origins.length = 0
    assert.equal(await sha256OfStream(readContent(blocksOf(empty).session({ root: bigRoot, cold: coldCopy }, { onProgress: e => { origins.push(e.from) } }), bigRoot)), sha256Hex(bigBytes))
    assert.ok(big.stats.requests > 0)
    assert.deepEqual([...new Set(origins)], ['cold'])
    // read without `keep`: nothing was stored
    assert.equal(await empty.has(bigRoot), false)
    await rejectsWith(big.getBytes(smallRoot), 'NotFoundError')
    reader.close()
    big.close()
  })

  it('a ranged GET the endpoint does not answer within answerTimeoutMs fails once, not tried again', async () => {
    // an endpoint that accepts connections and never answers (a hung S3 server), counting the GETs it was sent
    const sockets = new Set<Socket>()
    let gets = 0
    const hung = createServer(socket => {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('data', (chunk: Buffer) => { gets += chunk.toString('latin1').split('GET /').length - 1 })
    })
    await new Promise<void>(resolve => hung.listen(0, '127.0.0.1', resolve))
    defer(suite, async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => hung.close(() => resolve()))
    })
    const control = new ColdReader(tier, bigLocation)
    const index = await control.load()
    const silent = client({ endpoint: `http://127.0.0.1:${(hung.address() as { port: number }).port}` }, { answerTimeoutMs: 400 })
    const reader = new ColdReader(silent, bigLocation, { readAheadAfterBytes: Number.MAX_SAFE_INTEGER, loadIndex: async () => index })
    const err = await rejectsWith(collectBytes(readContent(reader, bigRoot, { offset: 5 * MiB, length: 1000 })), 'TierUnreachableError')
    assert.match(err.message, /did not answer GetObject within 400 ms/)
    // before, the reader tried the GET three times (bodyAttempts), each waiting out the timeout: a hung endpoint held a `cat` 3 × 30 s
    assert.equal(gets, 1, 'one GET was sent')
    control.close()
    reader.close()
  })

  it('a connection dropped in the middle of a ranged GET is retried from the first block not received', async () => {
    const proxy = await startCuttingProxy(suite, s3.endpoint)
    const flaky = client({ endpoint: proxy.endpoint })
    // no read-ahead: the bytes fetched depend on the range only
    const noReadAhead = { readAheadAfterBytes: Number.MAX_SAFE_INTEGER }
    const control = new ColdReader(tier, bigLocation, noReadAhead)
    const reader = new ColdReader(flaky, bigLocation, noReadAhead)
    const range = { offset: 3 * MiB + 17, length: 6 * MiB }
    const expected = sha256Hex(bigBytes.subarray(range.offset, range.offset + range.length))
    assert.equal(await sha256OfStream(readContent(control, bigRoot, range)), expected)
    await reader.load()
    proxy.cutAfter(300 * KiB)
    assert.equal(await sha256OfStream(readContent(reader, bigRoot, range)), expected)
    assert.equal(proxy.cuts(), 1)
    const extra = reader.stats.bytesFetched - control.stats.bytesFetched
    assert.ok(extra >= 0 && extra <= 300 * KiB, `the retry fetched only what the cut lost (${extra} bytes more)`)
    control.close()
    reader.close()
  })

  it('verifies a copy in full by reading the whole CAR back', async () => {
    const verification = await verifyCold(tier, bigLocation, { mode: 'full' })
    assert.equal(verification.blocksChecked, bigLocation.blocks)
    assert.equal(verification.bytesRead, bigLocation.carSize + bigLocation.indexSize)
  })

  it('detects a truncated CAR on verify and on read', async () => {
    const damaged = client({ prefix: 'truncated' })
    const { location } = await pushCold(damaged, store, midRoot)
    const car = await objectBytes(location.carKey)
    await overwrite(location.carKey, car.subarray(0, car.byteLength >> 1))
    const err = await rejectsWith(verifyCold(damaged, location), 'TierCorruptObjectError')
    assert.match(err.message, /truncated/)
    assert.ok(err.message.includes(location.carKey) && err.message.includes(s3.bucket))
    const reader = new ColdReader(damaged, location)
    await rejectsWith(collectBytes(readContent(reader, midRoot)), 'TierCorruptObjectError')
    reader.close()
  })

  it('detects an altered CAR: on read (only the altered block fails), on full verify, on sample verify of the root', async () => {
    const damaged = client({ prefix: 'altered' })
    const { location } = await pushCold(damaged, store, midRoot)
    const index = await loadColdIndex(damaged, location)
    const car = await objectBytes(location.carKey)
    // flip one byte in a leaf in the middle of the file (same size: HEAD cannot see it)
    const middle = index.entries[Math.floor(index.entries.length / 2)]
    car[middle.offset + 10] ^= 0xff
    await overwrite(location.carKey, car)
    // sizes and index still match: a sample of the first and last blocks cannot see it
    assert.equal((await verifyCold(damaged, location, { samples: 2 })).blocksChecked, 2)
    await rejectsWith(verifyCold(damaged, location, { mode: 'full' }), 'TierCorruptObjectError')
    const reader = new ColdReader(damaged, location)
    const err = await rejectsWith(collectBytes(readContent(reader, midRoot)), 'TierCorruptObjectError')
    assert.match(err.message, /altered/)
    assert.equal((err.cause as Error).name, 'InvalidBlockError')
    assertBytesEqual(await collectBytes(readContent(reader, midRoot, { length: 64 * KiB })), midBytes.subarray(0, 64 * KiB), 'other blocks still read')
    reader.close()
    // the root block is always among the samples
    car[index.entries[0].offset + 3] ^= 0xff
    await overwrite(location.carKey, car)
    await rejectsWith(verifyCold(damaged, location), 'TierCorruptObjectError')
  })

  it('refuses an altered, truncated or missing index', async () => {
    const damaged = client({ prefix: 'index' })
    const { location } = await pushCold(damaged, store, midRoot)
    const bytes = await objectBytes(location.indexKey)
    bytes[bytes.byteLength - 5] ^= 0x01
    await overwrite(location.indexKey, bytes)
    const err = await rejectsWith(new ColdReader(damaged, location).getBytes(midRoot), 'TierCorruptObjectError')
    assert.match(err.message, /does not match its CID/)
    await rejectsWith(verifyCold(damaged, location), 'TierCorruptObjectError')
    await overwrite(location.indexKey, bytes.subarray(0, 100))
    await rejectsWith(verifyCold(damaged, location), 'TierCorruptObjectError')
    await rejectsWith(new ColdReader(damaged, location).getBytes(midRoot), 'TierCorruptObjectError')
    assert.deepEqual(await deleteCold(damaged, location), [location.indexKey, location.carKey])
    await rejectsWith(verifyCold(damaged, location), 'TierObjectNotFoundError')
    await rejectsWith(new ColdReader(damaged, location).getBytes(midRoot), 'TierObjectNotFoundError')
    await deleteCold(damaged, location) // already gone: not an error
  })

  it('an unreachable endpoint: typed error naming it, nothing pushed, probe says unreachable', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const down = client({ endpoint })
    const err = await rejectsWith(pushCold(down, store, midRoot), 'TierUnreachableError')
    assert.ok(err.message.includes(endpoint), err.message)
    await rejectsWith(new ColdReader(down, bigLocation).getBytes(bigRoot), 'TierUnreachableError')
    const probe = await probeTier(down)
    assert.equal(probe.reachable, false)
    assert.equal(probe.error?.name, 'TierUnreachableError')
  })

  it('an endpoint that goes down in the middle of a multipart upload: TierUnreachableError naming it, not the stream\'s AbortError', async t => {
    const going = await startS3Server(t, 'going-down')
    const c = client({ endpoint: going.endpoint, bucket: 'going-down' })
    // 30 MiB in parts of 5 MiB: the server stops once two parts' worth has been read, the rest of the parts find it gone
    async function * source (): AsyncGenerator<Uint8Array> {
      let sent = 0
      for (const piece of randomPieces(30 * MiB, 6, 512 * KiB)) {
        if (sent === 10 * MiB) await going.stop()
        sent += piece.byteLength
        yield piece
      }
    }
    const err = await rejectsWith(c.upload('regression/going-down', source(), { partSize: 5 * MiB }), 'TierUnreachableError')
    assert.ok(err.message.includes(going.endpoint), err.message)
  })

  it('wrong credentials: typed error without the secret, nothing written', async () => {
    const secret = 'not-the-secret-0123456789'
    const wrong = client({ prefix: 'wrong-credentials' }, { credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: secret } })
    const err = await rejectsWith(pushCold(wrong, store, midRoot), 'TierCredentialsError')
    assert.ok(!err.message.includes(secret) && !err.message.includes('NOT-A-KEY'), err.message)
    assert.ok(err.message.includes(s3.endpoint) && err.message.includes(s3.bucket))
    await rejectsWith(new ColdReader(wrong, bigLocation).getBytes(bigRoot), 'TierCredentialsError')
    const probe = await probeTier(wrong)
    assert.equal(probe.error?.name, 'TierCredentialsError')
    assert.ok(!JSON.stringify(probe).includes(secret))
    const written = []
    for await (const object of tier.list({ prefix: 'wrong-credentials/' })) written.push(object.key)
    assert.deepEqual(written, [])
  })

  it('a missing bucket: typed error naming it, nothing pushed', async () => {
    const missing = client({ bucket: 'no-such-bucket' })
    const err = await rejectsWith(pushCold(missing, store, midRoot), 'TierBucketNotFoundError')
    assert.match(err.message, /no-such-bucket/)
    await rejectsWith(new ColdReader(missing, { ...bigLocation, bucket: 'no-such-bucket' }).getBytes(bigRoot), 'TierBucketNotFoundError')
    await rejectsWith(missing.head('x'), 'TierBucketNotFoundError')
    assert.equal((await probeTier(missing)).error?.name, 'TierBucketNotFoundError')
    assert.throws(() => new ColdReader(missing, bigLocation), { name: 'InvalidArgumentError' })
  })

  it('a DAG with a missing block is not pushed, and an aborted push is not either', async () => {
    const gapped = client({ prefix: 'incomplete' })
    const index = await loadColdIndex(tier, bigLocation)
    const lost = index.entries[200].cid
    const holey: BlockGetter = {
      async getBytes (cid, options) {
        if (cid.equals(lost)) throw new NotFoundError(`block ${cid.toString()} not found`)
        return await store.getBytes(cid, options)
      }
    }
    await rejectsWith(pushCold(gapped, holey, bigRoot), 'NotFoundError')
    const controller = new AbortController()
    const pushing = pushCold(gapped, store, bigRoot, {
      signal: controller.signal,
      onProgress: e => { if (e.type === 'shoal:tier:push:bytes' && (e.detail as { bytes: number }).bytes > 6 * MiB) controller.abort() }
    })
    await rejectsWith(pushing, 'AbortedError')
    const written = []
    for await (const object of tier.list({ prefix: 'incomplete/' })) written.push(object.key)
    assert.deepEqual(written, [], 'no CAR and no index left behind')
  })

  it('probes the tier (usage under the prefix) and deletes a cold copy', async () => {
    const probe = await probeTier(tier)
    assert.equal(probe.reachable, true)
    assert.equal(probe.endpoint, s3.endpoint)
    assert.equal(probe.prefix, 'cold/')
    assert.ok(probe.usage !== undefined && probe.usage.complete)
    assert.equal(probe.usage.coldCopies, 2)
    assert.equal(probe.usage.objects, 4)
    assert.ok(probe.usage.bytes > bigLocation.carSize + bigLocation.indexSize)
    const capped = await probeTier(tier, { maxObjects: 1 })
    assert.deepEqual(capped.usage, { ...capped.usage, objects: 1, complete: false })
    const doomed = client({ prefix: 'delete' })
    const { location } = await pushCold(doomed, store, smallRoot)
    await deleteCold(doomed, location)
    assert.equal((await probeTier(doomed)).usage?.objects, 0)
  })
})
