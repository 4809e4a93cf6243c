/**
 * An aborted or finished read of a cold copy stops its S3 traffic: against
 * a real S3 HTTP server (s3rver on 127.0.0.1) behind a real HTTP relay that
 * counts the GETs and body bytes it serves and can hold answers back, so
 * that a GET is certainly under way when a read is aborted. Nothing is
 * timed: each test waits (bounded) until the traffic is quiet, then checks
 * that no GET started and no byte was served after the abort, and that the
 * GETs under way then were cut rather than finished.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { join } from 'node:path'
import { importContent, parseChunker, readContent } from '../../../node/content/index.js'
import { linksOf } from '../../../node/car/index.js'
import { ColdReader, createTierClient, loadColdIndex, pushCold, type ColdLocation, type TierClient } from '../../../node/tiers/index.js'
import { assertBytesEqual, collectBytes, randomBytes, randomPieces, toAsync } from '../../helpers/bytes.js'
import { defer, openBlockStore, tempDir } from '../../helpers/temp.js'
import { Blocks } from '../../../node/reads/index.js'
import { TierService } from '../../../node/tiers/service.js'
import { createLogger } from '../../../node/logger.js'
import type { StoredColdCopy } from '../../../node/namespace/index.js'
import { startS3Server, startTrafficProxy, useS3rverCredentials, type ProxyTraffic, type TestS3Server, type TrafficProxy } from './s3-server.js'
import { suiteContext } from './suite.js'
import type { LevelBlockStore } from '../../../node/blocks/index.js'
import type { CID } from 'multiformats/cid'

const KiB = 1024
const MiB = 1024 * KiB
const SIZE = 16 * MiB
const RAW = 0x55

/** Wait (at most `ms`) until `condition` holds; returns whether it did. */
async function until (condition: () => boolean, ms = 5000): Promise<boolean> {
  for (let waited = 0; !condition() && waited < ms; waited += 10) await new Promise(resolve => setTimeout(resolve, 10))
  return condition()
}

/** Assert `promise` rejects with an error named `name`. */
async function rejectsWith (promise: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(promise, (err: Error) => { assert.equal(err.name, name, `${err.name}: ${err.message}`); return true })
}

describe('cold reads stop their S3 traffic when aborted or done (s3rver)', () => {
  const suite = suiteContext()
  let s3: TestS3Server
  let store: LevelBlockStore
  let root: CID
  let location: ColdLocation
  let bytes: Uint8Array
  /** The file's leaves in file order. */
  let leaves: CID[]

  function client (endpoint: string): TierClient {
    const c = createTierClient({ endpoint, bucket: s3.bucket, prefix: 'cold/' }, { maxAttempts: 2 })
    defer(suite, async () => { c.destroy() })
    return c
  }

  /** A relay in front of the server, and a tier client that goes through it. */
  async function relayed (): Promise<{ proxy: TrafficProxy, tier: TierClient }> {
    const proxy = await startTrafficProxy(suite, s3.endpoint)
    return { proxy, tier: client(proxy.endpoint) }
  }

  /** A node's block service over an empty store, reading the cold copy through `endpoint` with its tier service. */
  async function coldBlocks (endpoint: string): Promise<{ blocks: Blocks, copy: StoredColdCopy, readers: ColdReader[] }> {
    const dir = await tempDir(suite, 'shoal-cold-abort-')
    const tiers = new TierService({ configFile: join(dir, 'config.json'), logger: createLogger('silent') }, undefined, { maxAttempts: 2 })
    defer(suite, async () => { tiers.stop() })
    // the readers its sessions make, so that a test waits until every GET they have under way is at the relay
    const readers: ColdReader[] = []
    const make = tiers.reader.bind(tiers)
    tiers.reader = (...args: Parameters<typeof make>) => { const r = make(...args); readers.push(r); return r }
    const { v: _v, root: _root, ...rest } = location
    const copy: StoredColdCopy = { endpoint, ...rest }
    return { blocks: new Blocks({ blockstore: await openBlockStore(suite), logger: createLogger('silent'), tiers }), copy, readers }
  }

  /** The CAR offset where the leaf holding file byte `byte` ends. */
  async function carEndOfLeafAt (byte: number): Promise<number> {
    const index = await loadColdIndex(client(s3.endpoint), location)
    const leaf = leaves[Math.floor(byte / (64 * KiB))]
    const entry = index.entries.find(e => e.cid.equals(leaf))
    assert.ok(entry !== undefined)
    return entry.offset + entry.length
  }

  /**
   * After an abort (or a close): wait until no answer is under way, held
   * ones included (they can only go by being cut) — bounded: when they stay,
   * the assertions that follow say what went on instead — then release what
   * is held and wait until nothing is under way.
   */
  async function quietAfter (proxy: TrafficProxy, readers: () => number): Promise<ProxyTraffic> {
    await until(() => proxy.traffic().open === 0)
    proxy.release()
    assert.ok(await until(() => proxy.traffic().open === 0 && readers() === 0, 10_000), 'traffic never went quiet')
    return proxy.traffic()
  }

  /**
   * What must hold after an abort at `atAbort`: no GET started since, no
   * byte served since, every held GET cut (and at most those under way).
   */
  function assertStopped (atAbort: ProxyTraffic, after: ProxyTraffic): void {
    assert.ok(atAbort.held > 0, 'a GET was under way at the abort')
    assert.equal(after.gets, atAbort.gets, `GETs started after the abort: ${after.gets - atAbort.gets}`)
    assert.equal(after.bytes, atAbort.bytes, `bytes served after the abort: ${after.bytes - atAbort.bytes}`)
    const cut = after.cut - atAbort.cut
    assert.ok(cut >= atAbort.held && cut <= atAbort.open, `${cut} GETs cut after the abort; ${atAbort.held} were held then, ${atAbort.open} under way`)
  }

  before(async () => {
    useS3rverCredentials(suite)
    s3 = await startS3Server(suite)
    store = await openBlockStore(suite)
    bytes = randomBytes(SIZE, 11)
    root = (await importContent(store, toAsync(randomPieces(SIZE, 11)), { chunker: parseChunker('size-65536') })).cid
    ;({ location } = await pushCold(client(s3.endpoint), store, root, { sizeHint: SIZE }))
    // depth-first, in file order
    leaves = []
    const walk = async (cid: CID): Promise<void> => {
      if (cid.code === RAW) { leaves.push(cid); return }
      for (const link of linksOf(cid, await store.getBytes(cid))) await walk(link)
    }
    await walk(root)
    assert.equal(leaves.length, SIZE / (64 * KiB))
  })

  it('an aborted sequential read cuts the GETs under way (read-ahead included) and starts no other', async () => {
    const { proxy, tier } = await relayed()
    const reader = new ColdReader(tier, location)
    defer(suite, async () => { reader.close() })
    const controller = new AbortController()
    let read = 0
    const reading = (async () => {
      for await (const chunk of readContent(reader, root, { signal: controller.signal })) {
        read += chunk.byteLength
        // past the read-ahead threshold (4 MiB): hold back everything not served yet
        if (read >= 6 * MiB) proxy.holdFrom(0)
      }
    })()
    reading.catch(() => {})
    // every GET of the reader has reached the relay and is held there: none is on its way
    assert.ok(await until(() => read >= 6 * MiB && proxy.traffic().held > 0 && proxy.traffic().held === reader.fetchesInFlight), 'the read got past 6 MiB and waits on held GETs')
    const atAbort = proxy.traffic()
    controller.abort()
    await rejectsWith(reading, 'AbortedError')
    assertStopped(atAbort, await quietAfter(proxy, () => reader.fetchesInFlight))
    assert.ok(read < SIZE)
  })

  it('a read that gives up on its blocks leaves no GET for them, and the next read of them is served', async () => {
    const { proxy, tier } = await relayed()
    // one GET at a time, one block per GET: every wanted block waits its turn
    const reader = new ColdReader(tier, location, { maxFetches: 1, maxGapBytes: 0, readAheadAfterBytes: Number.MAX_SAFE_INTEGER })
    defer(suite, async () => { reader.close() })
    await reader.load()
    const spread = leaves.filter((_, i) => i % 16 === 5)
    const controller = new AbortController()
    proxy.holdFrom(0)
    const given = spread.map(async cid => await reader.getBytes(cid, { signal: controller.signal }))
    for (const g of given) g.catch(() => {})
    assert.ok(await until(() => proxy.traffic().held === 1 && reader.fetchesInFlight === 1), 'the first GET is under way')
    const atAbort = proxy.traffic()
    controller.abort()
    for (const g of given) await rejectsWith(g, 'AbortedError')
    assertStopped(atAbort, await quietAfter(proxy, () => reader.fetchesInFlight))
    // the reader is as good as new: the same blocks, asked again, come (each once, checked)
    const again = await Promise.all(spread.map(async cid => await reader.getBytes(cid)))
    for (const [i, got] of again.entries()) assertBytesEqual(got, await store.getBytes(spread[i]))
    assert.ok(await until(() => reader.fetchesInFlight === 0))
    assert.equal(proxy.traffic().gets - atAbort.gets, spread.length)
  })

  it('a block asked for again right after its only reader gave up is served, not failed with that abort', async () => {
    const { proxy, tier } = await relayed()
    const reader = new ColdReader(tier, location, { readAheadAfterBytes: Number.MAX_SAFE_INTEGER })
    defer(suite, async () => { reader.close() })
    await reader.load()
    proxy.holdFrom(0)
    const controller = new AbortController()
    const first = reader.getBytes(leaves[40], { signal: controller.signal })
    first.catch(() => {})
    assert.ok(await until(() => proxy.traffic().held > 0))
    controller.abort()
    const second = reader.getBytes(leaves[40])
    await rejectsWith(first, 'AbortedError')
    proxy.release()
    assertBytesEqual(await second, await store.getBytes(leaves[40]))
    assert.ok(await until(() => reader.fetchesInFlight === 0 && proxy.traffic().open === 0))
  })

  it('many aborted reads on one long-lived signal leave no abort listener behind', async () => {
    const { tier } = await relayed()
    const lasting = new AbortController()
    const reader = new ColdReader(tier, location, { signal: lasting.signal })
    await reader.load()
    assert.equal(getEventListeners(lasting.signal, 'abort').length, 1, 'the reader\'s own listener')
    for (let n = 0; n < 50; n++) {
      const each = new AbortController()
      const read = collectBytes(readContent(reader, root, { signal: AbortSignal.any([lasting.signal, each.signal]), offset: (n % 8) * MiB, length: MiB }))
      setImmediate(() => { each.abort() })
      await read.catch(() => {})
      // a read that completes leaves none either
      await reader.getBytes(leaves[n], { signal: lasting.signal })
    }
    assert.equal(getEventListeners(lasting.signal, 'abort').length, 1, 'still only the reader\'s own listener')
    reader.close()
    assert.equal(getEventListeners(lasting.signal, 'abort').length, 0, 'closed: no listener left')
    assert.ok(await until(() => reader.fetchesInFlight === 0))
  })

  it('a read session whose signal fires closes its cold reader: the read fails at once and its GETs are cut', async () => {
    const { proxy } = await relayed()
    const { blocks, copy, readers } = await coldBlocks(proxy.endpoint)
    const owner = new AbortController()
    const session = blocks.session({ root, cold: copy }, { signal: owner.signal })
    let read = 0
    // the read itself carries no signal: only the session's end can stop it
    const reading = (async () => {
      for await (const chunk of readContent(session, root)) {
        read += chunk.byteLength
        if (read >= 6 * MiB) proxy.holdFrom(0)
      }
    })()
    reading.catch(() => {})
    // every GET the session's reader has under way is held at the relay (none still on its way to it)
    assert.ok(await until(() => read >= 6 * MiB && proxy.traffic().held > 0 && proxy.traffic().held === proxy.traffic().open && proxy.traffic().held === readers[0]?.fetchesInFlight), 'the read got past 6 MiB and waits on held GETs')
    const atAbort = proxy.traffic()
    owner.abort()
    await rejectsWith(reading, 'AbortedError')
    assertStopped(atAbort, await quietAfter(proxy, () => 0))
    assert.equal(getEventListeners(owner.signal, 'abort').length, 0)
  })

  it('closing a session after a finished ranged read cuts the read-ahead the read left running', async () => {
    const { proxy } = await relayed()
    const { blocks, copy, readers } = await coldBlocks(proxy.endpoint)
    const lasting = new AbortController()
    const session = blocks.session({ root, cold: copy }, { signal: lasting.signal })
    // every byte the range needs is served; read-ahead past it is held
    proxy.holdFrom(await carEndOfLeafAt(6 * MiB - 1))
    const got = await collectBytes(readContent(session, root, { offset: 0, length: 6 * MiB }))
    assertBytesEqual(got, bytes.subarray(0, 6 * MiB))
    assert.ok(await until(() => proxy.traffic().held > 0 && proxy.traffic().held === proxy.traffic().open && proxy.traffic().held === readers[0]?.fetchesInFlight), 'read-ahead past the range is under way')
    const atClose = proxy.traffic()
    session.close()
    assertStopped(atClose, await quietAfter(proxy, () => 0))
    assert.equal(getEventListeners(lasting.signal, 'abort').length, 0, 'the closed session left no listener on its signal')
  })
})
