/**
 * A pull of many pages asks for the next page while the current one is
 * applied (node/namespace/sync.ts, `pull`): real replicas on in-memory
 * stores and a real `NamespaceSync` pulling from a source's sync over a
 * direct in-memory link whose answers a test may replace. Also: the dot
 * reader the pages asked ahead are computed with, and compaction waiting
 * for a pull that is catching up.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as tick } from 'node:timers/promises'
import { weight, type VectorClock } from '../../../node/namespace/clock.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork } from '../../../node/namespace/sync.js'
import { claimedDot } from '../../../protocol/namespace.js'
import type { Replica } from '../../../node/namespace/index.js'
import {
  decodeEntry, decodeSyncRequest, encodeSyncResponse, type PullRequest, type SyncResponse
} from '../../../protocol/namespace.js'
import { defer, type CleanupContext } from '../../helpers/temp.js'
import { file, pullInto, replica, silent, type ReplicaParts, type Sim } from './helpers.js'
import { MemoryKV, peerIdVerifier, type KV, type Verifier } from '../../../node/namespace/index.js'
import type { KVOp, KVRange } from '../../../node/namespace/kv.js'

/** A store whose next fsynced batch, once armed, waits until released. */
class GatedKV implements KV {
  private armed = false
  private release: (() => void) | undefined
  /** Resolves when an armed batch is waiting. */
  readonly blocked: Promise<void>
  private onBlocked!: () => void

  constructor (private readonly inner: KV) {
    this.blocked = new Promise(resolve => { this.onBlocked = resolve })
  }

  arm (): void { this.armed = true }
  open = async (): Promise<void> => { await this.inner.open() }
  close = async (): Promise<void> => { await this.inner.close() }
  get = async (key: string): Promise<Uint8Array | undefined> => await this.inner.get(key)
  iterate = (range: KVRange): AsyncIterable<[string, Uint8Array]> => this.inner.iterate(range)
  async batch (ops: KVOp[], sync: boolean): Promise<void> {
    if (this.armed && sync) {
      this.armed = false
      await new Promise<void>(resolve => {
        this.release = resolve
        this.onBlocked()
      })
    }
    await this.inner.batch(ops, sync)
  }

  /** Let the waiting batch go on. */
  letGo (): void { this.release?.() }
}

/** Timers that never fire: rounds run by hand. */
const noTimers = { setTimeout: () => undefined, clearTimeout: () => {} }

/** What the link saw of one pull request, when it was sent. */
interface Sent {
  /** The weight of the clock the request was sent with. */
  asked: number
  /** The weight of the puller's applied clock at that moment. */
  applied: number
  /** The puller's pruned history at that moment. */
  pruned: number
}

/** Replaces the source's answer to the `n`th pull request (from 1), or returns undefined to let the source answer. */
type Answer = (n: number, request: PullRequest) => Promise<SyncResponse | undefined>

interface Pair {
  source: Replica
  /** The other author of the source's entries. */
  writer: Replica
  puller: Replica
  sync: NamespaceSync
  sent: Sent[]
}

/**
 * A source holding `entries` entries by two authors (itself and another
 * writer), and a puller whose sync pulls from it in pages of `pageSize`
 * (started: it pulls at once). Every request crosses a macrotask, so a page
 * asked ahead is really in flight while the page before is applied.
 */
async function pair (t: CleanupContext, init: { entries: number, pageSize: number, compactAfter?: number, answer?: Answer, puller?: ReplicaParts, beforeStart?: () => void }): Promise<Pair> {
  const sim: Sim = { now: 1_000 }
  const source = await replica(sim, { compactAfter: Number.MAX_SAFE_INTEGER })
  const writer = await replica(sim)
  const puller = await replica(sim, { compactAfter: init.compactAfter ?? Number.MAX_SAFE_INTEGER }, init.puller)
  for (let i = 0; i < init.entries / 2; i++) {
    await writer.putFile(`/w/${i}`, file(`w ${i}`))
    await source.putFile(`/s/${i}`, file(`s ${i}`))
  }
  await pullInto(source, writer)
  assert.equal(weight(source.state().clock), init.entries)
  let serve: SyncHandlers | undefined
  const sourceSync = new NamespaceSync({
    replica: source,
    network: {
      handle: async (h) => { serve = h },
      unhandle: async () => { serve = undefined },
      publish: async () => {},
      request: async () => { throw new Error('the source asks nothing') },
      peers: () => []
    },
    timers: noTimers,
    random: () => 0.5,
    logger: silent
  }, { interval: 1e9 })
  await sourceSync.start()
  const sent: Sent[] = []
  let pulls = 0
  const network: SyncNetwork = {
    handle: async () => {},
    unhandle: async () => {},
    publish: async () => {},
    peers: () => [source.id],
    request: async (peer, data, signal) => {
      const request = decodeSyncRequest(data)
      let n = 0
      if (request.type === 'pull') {
        n = ++pulls
        sent.push({ asked: weight(request.clock), applied: weight(puller.state().clock), pruned: weight(puller.state().pruned) })
      }
      await tick()
      signal.throwIfAborted()
      const replaced = request.type === 'pull' ? await init.answer?.(n, request) : undefined
      if (replaced !== undefined) return encodeSyncResponse(replaced)
      if (serve === undefined) throw new Error('the source is not serving')
      const answer = await serve.request(puller.id, data)
      signal.throwIfAborted()
      return answer
    }
  }
  const sync = new NamespaceSync({ replica: puller, network, timers: noTimers, random: () => 0.5, logger: silent }, { interval: 1e9, pageSize: init.pageSize })
  defer(t, async () => {
    await sync.stop()
    await sourceSync.stop()
    for (const r of [puller, writer, source]) await r.close()
  })
  init.beforeStart?.()
  await sync.start()
  return { source, writer, puller, sync, sent }
}

function sameClock (a: VectorClock, b: VectorClock): boolean {
  return weight(a) === weight(b) && Object.entries(a).every(([author, n]) => b[author] === n)
}

async function paths (r: Replica): Promise<string[]> {
  const out: string[] = []
  for await (const e of r.walk('/')) out.push(`${e.path} ${e.type === 'file' ? e.cid : 'dir'}`)
  return out
}

/** The puller holds what the source holds. */
async function assertConverged (p: Pair): Promise<void> {
  assert.ok(sameClock(p.puller.state().clock, p.source.state().clock), `clocks differ: ${JSON.stringify(p.puller.state().clock)} vs ${JSON.stringify(p.source.state().clock)}`)
  assert.deepEqual(await paths(p.puller), await paths(p.source))
}

describe('namespace pull, one page ahead', () => {
  it('reads the dot of an entry off its bytes, and nothing from bytes that are not an entry map', async () => {
    const sim: Sim = { now: 1_000 }
    const r = await replica(sim)
    for (let i = 0; i < 5; i++) await r.putFile(`/a/${i}`, file(`a ${i}`))
    const answer = await r.pull({}, 100)
    assert.equal(answer.type, 'entries')
    if (answer.type !== 'entries') return
    for (const bytes of answer.entries) {
      const entry = decodeEntry(bytes)
      assert.deepEqual(claimedDot(bytes), [entry.author, entry.seq])
    }
    const whole = answer.entries[0]
    for (const bad of [new Uint8Array(0), new Uint8Array([0xa0]), new Uint8Array([0xbf, 0xff]), new Uint8Array([0x82, 0x01, 0x02]), whole.subarray(0, whole.byteLength - 40)]) {
      assert.equal(claimedDot(bad), undefined)
    }
    // a huge claimed length is refused, not walked
    assert.equal(claimedDot(new Uint8Array([0xa1, 0x61, 0x78, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), undefined)
    await r.close()
  })

  it('a pull of many pages converges, each page asked for while the one before is applied', async (t) => {
    const p = await pair(t, { entries: 600, pageSize: 50 })
    await p.sync.idle()
    await assertConverged(p)
    const { stats } = p.sync
    assert.equal(stats.pulls, 1)
    assert.equal(stats.pullFailures, 0)
    assert.equal(stats.pages, 12)
    assert.equal(stats.pagesAskedAhead, 11, 'every page but the first was asked ahead')
    assert.equal(stats.pagesAskedAheadDropped, 0)
    // asked ahead: sent with a clock ahead of what the puller had applied then, by the page in flight
    assert.equal(p.sent.filter(s => s.asked > s.applied).length, 11)
    assert.ok(p.sent.every(s => s.asked - s.applied <= 50), 'never more than one page ahead')
  })

  it('the entries of the page asked ahead are checked while the page before is committed', async (t) => {
    const kv = new GatedKV(new MemoryKV())
    const inner = peerIdVerifier()
    const signed: string[] = []
    const verifier: Verifier = async (author, data, sig) => {
      signed.push(author)
      return await inner(author, data, sig)
    }
    // the first page's commit (an fsynced batch) waits until released
    const p = await pair(t, { entries: 200, pageSize: 50, puller: { kv, verifier }, beforeStart: () => { kv.arm() } })
    await kv.blocked
    const before = signed.length
    assert.ok(before > 0, 'the first page was authenticated before its commit')
    assert.equal(weight(p.puller.state().clock), 0)
    for (let i = 0; i < 100 && signed.length === before; i++) await tick()
    assert.ok(signed.length > before, 'the page asked ahead was not checked while the first page was committed')
    assert.equal(weight(p.puller.state().clock), 0, 'nothing applied meanwhile')
    kv.letGo()
    await p.sync.idle()
    await assertConverged(p)
    assert.equal(p.sync.stats.pagesAskedAheadDropped, 0)
    assert.equal(p.puller.rejected, 0)
  })

  it('a page that does not apply in full drops the page asked after it and asks again: no entry is skipped', async (t) => {
    // the second page loses an entry in the middle: its author's later entries in the page wait for it
    const p = await pair(t, {
      entries: 400,
      pageSize: 50,
      answer: async (n, request) => {
        if (n !== 2) return undefined
        const page = await p.source.pull(request.clock, request.limit)
        assert.equal(page.type, 'entries')
        if (page.type !== 'entries') return undefined
        return { v: 1, type: 'entries', id: request.id, clock: p.source.state().clock, heads: [], entries: page.entries.filter((_, i) => i !== 20), more: page.more }
      }
    })
    await p.sync.idle()
    await assertConverged(p)
    assert.equal(p.sync.stats.pullFailures, 0)
    assert.ok(p.sync.stats.pagesAskedAheadDropped >= 1, 'the page asked after the short one was dropped')
    // once dropped, the page was asked again from what the puller really had
    const again = p.sent.findIndex((s, i) => i > 2 && s.asked <= s.applied)
    assert.ok(again > 2, `no page asked again from the applied clock: ${JSON.stringify(p.sent)}`)
  })

  it('a snapshot answer to a page asked ahead is loaded, and the pull goes on from it', async (t) => {
    let snapshotAsked: Sent | undefined
    const p = await pair(t, {
      entries: 400,
      pageSize: 50,
      answer: async (n, request) => {
        if (n !== 3) return undefined
        snapshotAsked = p.sent[n - 1]
        // a snapshot the source writes now, served as a source serves one to a peer behind its pruned history
        const root = await p.source.snapshot()
        return { v: 1, type: 'snapshot', id: request.id, root, clock: p.source.state().clock }
      }
    })
    await p.sync.idle()
    await assertConverged(p)
    assert.ok(snapshotAsked !== undefined && snapshotAsked.asked > snapshotAsked.applied, 'the snapshot answered a page asked ahead')
    assert.equal(p.sync.stats.snapshots, 1)
    assert.equal(p.sync.stats.pullFailures, 0)
    assert.equal(p.sync.stats.pulls, 1)
  })

  it('a failed page asked ahead fails the pull; the next pull goes on from what was applied', async (t) => {
    let failed: Sent | undefined
    const p = await pair(t, {
      entries: 400,
      pageSize: 50,
      answer: async (n, request) => {
        if (n !== 4) return undefined
        failed = p.sent[n - 1]
        return { v: 1, type: 'error', id: request.id, message: 'busy' }
      }
    })
    await p.sync.idle()
    assert.ok(failed !== undefined && failed.asked > failed.applied, 'the failing request was asked ahead')
    assert.equal(p.sync.stats.pullFailures, 1)
    // pages 1 to 3 were applied, the one asked ahead failed
    assert.equal(weight(p.puller.state().clock), 150)
    p.sync.pullFrom(p.source.id)
    await p.sync.idle()
    await assertConverged(p)
    assert.equal(p.sync.stats.pullFailures, 1)
    assert.equal(p.sync.stats.pulls, 2)
  })

  it('no compaction while a pull is catching up; the round\'s compaction runs when it ends, and at once otherwise', async (t) => {
    let rounds = 0
    const p = await pair(t, {
      entries: 400,
      pageSize: 50,
      compactAfter: 20,
      // a round during the pull, at the third and sixth pages
      answer: async (n) => {
        if (n === 3 || n === 6) {
          rounds++
          await p.sync.round()
        }
        return undefined
      }
    })
    await p.sync.idle()
    await assertConverged(p)
    assert.equal(rounds, 2)
    assert.equal(p.sync.stats.compactionsDeferred, 2)
    // the first pull's 8 pages (a round asked for a second pull, which starts as the first ends)
    assert.ok(p.sent.slice(0, 8).every(s => s.pruned === 0), `compacted during the pull: ${JSON.stringify(p.sent)}`)
    const pruned = weight(p.puller.state().pruned)
    assert.ok(pruned >= 20, `the deferred compaction did not run after the pull: pruned ${pruned}`)
    // caught up: a round compacts at once (the writer's entries: every member has seen them)
    for (let i = 0; i < 30; i++) await p.writer.putFile(`/late/${i}`, file(`late ${i}`))
    await pullInto(p.source, p.writer)
    p.sync.pullFrom(p.source.id)
    await p.sync.idle()
    await assertConverged(p)
    await p.sync.round()
    assert.equal(p.sync.stats.compactionsDeferred, 2)
    assert.ok(weight(p.puller.state().pruned) >= pruned + 20, 'a round compacted once caught up')
  })
})
