/**
 * The deferred coder's bookkeeping with many adds of one content (a mount
 * given identical files): what it reads and binds must not grow with the
 * adds before. Real `Holdings` over a store that counts the rows it reads;
 * the coder's encoder, placer and namespace binding are stand-ins that
 * record what they are asked (the whole path, with real nodes, is in
 * parts.test.ts).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Holdings } from '../../../node/durability/index.js'
import { DeferredCoder } from '../../../node/durability/deferred.js'
import type { DurabilityParts } from '../../../node/durability/components.js'
import { MemoryKV, type KVRange } from '../../../node/namespace/kv.js'

/** A store that counts the rows its range reads yield. */
class CountingKV extends MemoryKV {
  rowsRead = 0
  override async * iterate (range: KVRange): AsyncIterable<[string, Uint8Array]> {
    for await (const row of super.iterate(range)) {
      this.rowsRead++
      yield row
    }
  }
}

const POLICY = 'ec:4+2'
const MANIFEST = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

interface Bed { kv: CountingKV, holdings: Holdings, coder: DeferredCoder, root: CID, bound: string[], note: (path: string) => Promise<void> }

/** A coder over real holdings; `live` peers; `onBind` runs inside each binding (adds arriving while a file is coded). */
async function bed (live: number, onBind: (bound: readonly string[]) => Promise<void> = async () => {}, encode: () => Promise<unknown> = async () => ({ policy: POLICY, manifest: MANIFEST })): Promise<Bed> {
  const kv = new CountingKV()
  const holdings = new Holdings(kv)
  await holdings.open()
  const root = CID.createV1(0x55, await sha256.digest(new Uint8Array([1, 2, 3])))
  const bound: string[] = []
  const parts = {
    holdings,
    // the encoder below reads nothing: a session that must not be read
    blocks: { session: () => ({ getBytes: async () => { throw new Error('not read in these tests') }, close: () => {} }) },
    gcLock: { shared: async <T>(fn: () => Promise<T>): Promise<T> => await fn() },
    clock: { now: () => 1_000 },
    logger: { warn: () => {}, info: () => {}, debug: () => {} },
    files: async function * () {},
    rebind: async (_root: CID, _pin: unknown, paths?: readonly string[]) => {
      bound.push(...paths ?? [])
      await onBind(paths ?? [])
      // a path under /gone shows no file waiting (moved or removed before the coding)
      const left = (paths ?? []).filter(path => path.startsWith('/gone'))
      return { bound: (paths?.length ?? 0) - left.length, left }
    }
  } as unknown as DurabilityParts
  const coder = new DeferredCoder(parts, {
    encoder: { encode } as any,
    placer: { livePeers: async () => Array.from({ length: live }, (_, i) => `peer-${i}`), place: async () => ({ manifest: '', stripes: 1, pushed: 0, local: 0, peers: live, widest: 1, failed: [], released: 0 }) } as any
  })
  const note = async (path: string): Promise<void> => { await holdings.noteDeferred(root, { policy: POLICY, size: 4096, since: 1, paths: [path] }, false) }
  return { kv, holdings, coder, root, bound, note }
}

/** A bed whose one file, noted at /lost/f, has its blocks neither here nor on a peer until `found()`. */
async function lostFile (): Promise<{ b: Bed, found: () => void }> {
  let lost = true
  const b = await bed(3, async () => {}, async () => {
    if (lost) throw Object.assign(new Error('block bafk… not found here and no peer could supply it (0 providers known)'), { name: 'BlockUnavailableError' })
    return { policy: POLICY, manifest: MANIFEST }
  })
  await b.note('/lost/f')
  return { b, found: () => { lost = false } }
}

describe('deferred coding of many adds of one content', () => {
  it('a node with too few live peers answers an add "waiting" without reading the paths of the adds before', async () => {
    const { kv, coder, root, note } = await bed(0)
    for (let i = 0; i < 1000; i++) await note(`/c/f${i}`)
    kv.rowsRead = 0
    for (let i = 1000; i < 1010; i++) {
      await note(`/c/f${i}`)
      assert.deepEqual(await coder.code(root, POLICY), { kind: 'waiting' })
    }
    // it read every path row of the content for every add: 1,000+ rows each
    assert.equal(kv.rowsRead, 0, `${kv.rowsRead} rows read by 10 adds`)
  })

  it('adds of the same content arriving while it is coded are bound in later rounds, each path once', async () => {
    let next = 3
    const b = await bed(6, async () => {
      // three more adds arrive during each of the first rounds
      if (next >= 12) return
      for (let i = 0; i < 3; i++) await b.note(`/c/f${next++}`)
    })
    for (let i = 0; i < 3; i++) await b.note(`/c/f${i}`)
    const outcome = await b.coder.code(b.root, POLICY)
    assert.equal(outcome.kind, 'coded')
    assert.deepEqual([...b.bound].sort(), Array.from({ length: 12 }, (_, i) => `/c/f${i}`).sort(), 'every path bound exactly once')
    assert.equal(await b.holdings.deferredOf(b.root, POLICY), undefined, 'nothing waits any more')
    // a path noted again while it was being bound waits for one more binding
    let renoted = false
    const again = await bed(6, async bound => {
      if (renoted || !bound.includes('/x')) return
      renoted = true
      await again.note('/x')
    })
    await again.note('/x')
    await again.coder.code(again.root, POLICY)
    assert.deepEqual(again.bound, ['/x', '/x'])
    assert.equal(await again.holdings.deferredOf(again.root, POLICY), undefined)
  })

  it('one content added under two policies is coded under each, each path bound to its own', async () => {
    const b = await bed(6)
    const coded: string[] = []
    // the bed's encoder, recording the policy it is asked for
    ;(b.coder as any).init.encoder = { encode: async (_root: CID, _size: number, policy: string) => { coded.push(policy); return { policy, manifest: MANIFEST } } }
    await b.holdings.noteDeferred(b.root, { policy: 'replicas:3', size: 4096, since: 1, paths: ['/y1/f'] }, false)
    await b.note('/y2/f')
    // both codings at once (an add's and a repair pass's): neither joins the other
    const [first, second] = await Promise.all([b.coder.code(b.root, 'replicas:3'), b.coder.code(b.root, POLICY)])
    assert.equal(first.kind, 'coded')
    assert.equal(second.kind, 'coded')
    assert.deepEqual(coded.sort(), [POLICY, 'replicas:3'].sort())
    assert.deepEqual([...b.bound].sort(), ['/y1/f', '/y2/f'])
    assert.equal(await b.holdings.deferredOf(b.root, 'replicas:3'), undefined)
    assert.equal(await b.holdings.deferredOf(b.root, POLICY), undefined)
  })

  it('a file whose blocks are neither here nor on a peer says so while it waits, not that it is coded in the background; a coding that succeeds clears it', async () => {
    const { b, found } = await lostFile()
    await assert.rejects(b.coder.code(b.root, POLICY), (err: Error) => err.name === 'BlockUnavailableError')
    assert.match(b.coder.blocksMissing(b.root, POLICY) ?? '', /not found here and no peer could supply it/)
    assert.notEqual(await b.holdings.deferredOf(b.root, POLICY), undefined, 'still waiting: a peer may bring the blocks back')
    // the blocks back (a peer had them after all): coded, and nothing more is said of them
    found()
    assert.equal((await b.coder.code(b.root, POLICY)).kind, 'coded')
    assert.equal(b.coder.blocksMissing(b.root, POLICY), undefined)
  })

  it('a path that shows no file waiting keeps the record for the repair pass with that path alone: later adds of the content do not grow it', async () => {
    let during: string | undefined
    const b = await bed(6, async () => {
      // an add of the same content arriving while the first round binds
      if (during !== undefined) { const path = during; during = undefined; await b.note(path) }
    })
    await b.note('/p1')
    await b.note('/gone/p2')
    during = '/p3'
    const first = await b.coder.code(b.root, POLICY)
    assert.equal(first.kind, 'coded')
    assert.deepEqual(b.bound, ['/gone/p2', '/p1', '/gone/p2', '/p3'], '/p3, noted during the first round, bound by a second (paths in key order)')
    assert.deepEqual((await b.holdings.deferredOf(b.root, POLICY))?.paths, ['/gone/p2'], 'kept, with the path left alone')
    for (let i = 4; i < 8; i++) {
      b.bound.length = 0
      await b.note(`/p${i}`)
      await b.coder.code(b.root, POLICY)
      assert.deepEqual(b.bound, ['/gone/p2', `/p${i}`], 'each coding binds the new path and looks at the one left, not at every path so far')
      assert.deepEqual((await b.holdings.deferredOf(b.root, POLICY))?.paths, ['/gone/p2'])
    }
  })

  it('a record whose only waiting file is a conflict copy stays, uncoded, until the conflict is resolved; then the pass codes the file where the user put it', async () => {
    let encoded = 0
    const b = await bed(6, async () => {}, async () => { encoded++; return { policy: POLICY, manifest: MANIFEST } })
    await b.note('/x')
    const components = (b.coder as any).components
    // long after the add: a record no file waits for would be dropped as stale
    components.clock = { now: () => 60 * 60_000 }
    const entry = { type: 'file', cid: b.root.toString(), size: 4096, mode: 0o644, mtime: 1, pin: { policy: POLICY } }
    components.files = async function * () { yield { ...entry, path: '/x.conflict-peer-1', conflictOf: '/x' } }
    assert.deepEqual(await b.coder.codeAll(), { coded: 0, waiting: 0, lost: 0, errors: [] })
    assert.equal(encoded, 0, 'not coded: its pin cannot be bound without ending the conflict')
    assert.notEqual(await b.holdings.deferredOf(b.root, POLICY), undefined, 'kept')
    // the user moves the copy to a path of its own
    components.files = async function * () { yield { ...entry, path: '/x-mine' } }
    assert.equal((await b.coder.codeAll()).coded, 1)
    assert.ok(b.bound.includes('/x-mine'), 'bound where the user put it')
    assert.equal(await b.holdings.deferredOf(b.root, POLICY), undefined)
  })

  it('a file moved again between the repair pass\'s scan and its coding keeps its record for the next pass', async () => {
    const b = await bed(6)
    await b.note('/gone/first')
    // the scan found it at /gone/second; by its coding it has moved on (the bed leaves every path under /gone unbound)
    ;(b.coder as any).components.files = async function * () { yield { type: 'file', path: '/gone/second', cid: b.root.toString(), size: 4096, mode: 0o644, mtime: 1, pin: { policy: POLICY } } }
    assert.equal((await b.coder.codeAll()).coded, 0)
    assert.deepEqual(b.bound, ['/gone/first', '/gone/second'])
    assert.notEqual(await b.holdings.deferredOf(b.root, POLICY), undefined, 'kept: dropped, the file was never coded')
  })

  it('a repair pass counts a file whose blocks are gone as lost before its coding, not as waiting nor left out', async () => {
    const { b, found } = await lostFile()
    // the file as the namespace shows it: pinned, no manifest yet
    ;(b.coder as any).components.files = async function * () { yield { type: 'file', path: '/lost/f', cid: b.root.toString(), size: 4096, mode: 0o644, mtime: 1, pin: { policy: POLICY } } }
    const report = await b.coder.codeAll()
    assert.equal(report.lost, 1, 'counted as lost (what status and the file states show)')
    assert.equal(report.waiting, 0)
    assert.equal(report.coded, 0)
    assert.match(report.errors.join('\n'), /no peer could supply it/)
    found()
    const again = await b.coder.codeAll()
    assert.deepEqual([again.coded, again.lost, again.waiting], [1, 0, 0], 'its blocks back: coded')
  })
})
