/**
 * Trusted writers on replicas that exchange entries directly (no network):
 * an untrusted author's entries are dropped, counted and logged (rate
 * limited); trusted entries that depend on them still apply; removing and
 * re-adding a writer; snapshots by or carrying untrusted authors; members
 * and compaction.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import type { CID } from 'multiformats/cid'
import {
  InvalidSnapshotError, MemoryKV, UntrustedSnapshotError, WriterTrust, signerFromKey, type KV, type Replica
} from '../../../node/namespace/index.js'
import { WarnLimit } from '../../../node/namespace/trust.js'
import { registerNamespaceMetrics } from '../../../node/namespace/metrics.js'
import type { Logger } from '../../../node/logger.js'
import { cidOf, converged, file, pullInto, replica, tree, type ReplicaParts, type Sim } from './helpers.js'

/** A replica of an open swarm: it trusts itself and `peers`, through a trust list the test changes. */
async function listed (sim: Sim, peers: Replica[] = [], parts: ReplicaParts = {}, options: Parameters<typeof replica>[1] = {}): Promise<{ r: Replica, trust: WriterTrust }> {
  const key = parts.key ?? await generateKeyPair('Ed25519')
  const trust = new WriterTrust({ self: signerFromKey(key).id, privateSwarm: false, trusted: peers.map(p => p.id) })
  return { r: await replica(sim, options, { ...parts, key, trust }), trust }
}

/** Every entry `r` writes from now on. */
function record (r: Replica): Uint8Array[] {
  const out: Uint8Array[] = []
  r.onLocalEntries(entries => out.push(...entries))
  return out
}

/** A logger that keeps its warnings (parsed). */
function warnings (): { logger: Logger, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  return { logger: pino({ level: 'warn' }, { write: (line: string) => { lines.push(JSON.parse(line)) } }), lines }
}

/** True when some key or value of `kv` mentions `text`. */
async function mentions (kv: KV, text: string): Promise<boolean> {
  for await (const [key, value] of kv.iterate({})) {
    if (key.includes(text) || Buffer.from(value).toString('latin1').includes(text)) return true
  }
  return false
}

describe('namespace trusted writers', () => {
  it('an untrusted author\'s put, move and delete never change the tree: dropped, counted, logged once a minute, never stored', async () => {
    const sim = { now: 1_000 }
    const kv = new MemoryKV()
    const { logger, lines } = warnings()
    const stranger = await replica(sim)
    const { r: a } = await listed(sim, [], { kv, logger })
    await a.putFile('/docs/a.txt', file('a'))
    await a.putFile('/docs/b.txt', file('b'))
    await pullInto(stranger, a)
    const before = await tree(a)
    const state = a.state()
    const sent = record(stranger)
    await stranger.putFile('/docs/a.txt', file('overwritten'))
    await stranger.move('/docs/b.txt', '/moved.txt')
    await stranger.remove('/docs', { recursive: true })
    await stranger.putFile('/new.txt', file('new'))
    assert.equal(sent.length, 4)

    const result = await a.receive(sent, stranger.id)
    assert.deepEqual(result, { applied: 0, duplicates: 0, rejected: 0, untrusted: 4, pending: 0 })
    assert.deepEqual(await tree(a), before)
    assert.deepEqual(a.state().clock, state.clock)
    assert.deepEqual(a.state().heads.map(String), state.heads.map(String))
    assert.equal(a.untrusted, 4)
    assert.equal(a.rejected, 0)
    const registry = new Registry()
    registerNamespaceMetrics(registry, a)
    assert.match(await registry.metrics(), /^shoal_namespace_untrusted_entries_total 4$/m)
    // pulled from the stranger: dropped the same way
    await pullInto(a, stranger)
    assert.deepEqual(await tree(a), before)
    assert.equal(a.untrusted, 8)
    assert.equal(await mentions(kv, stranger.id), false, 'nothing of the stranger is stored')

    const logged = (): Array<Record<string, any>> => lines.filter(l => l.author === stranger.id)
    assert.equal(logged().length, 1, 'one warning per author per minute')
    assert.equal(logged()[0].level, 40)
    sim.now += 60_000
    await a.receive(sent.slice(0, 1), stranger.id)
    assert.equal(logged().length, 2)
    assert.equal(logged()[1].suppressed, 7)
  })

  it('a flood of untrusted authors logs at most a bounded number of lines per minute', () => {
    const limit = new WarnLimit({ interval: 60_000, maxKeys: 3 })
    const allowed = Array.from({ length: 10 }, (_, i) => limit.take(`author${i}`, 0)).filter(s => s !== undefined)
    assert.equal(allowed.length, 3)
    assert.equal(limit.take('author0', 1_000), undefined)
    assert.equal(limit.take('author9', 60_000), 0, 'a new author once the minute is over')
    assert.equal(limit.take('author9', 60_001), undefined)
    assert.equal(limit.take('author9', 120_000), 1, 'with the number suppressed meanwhile')
  })

  it('trusted entries that causally follow untrusted ones still apply; every trusted path converges', async () => {
    const sim = { now: 1_000 }
    const stranger = await replica(sim)
    const c = await replica(sim) // trusts every author, the stranger too
    const { r: a } = await listed(sim, [c])
    await c.putFile('/base.txt', file('base'))
    await pullInto(stranger, c)
    await stranger.putFile('/x/only.txt', file('x only'))
    await stranger.putFile('/p.txt', file('x p'))
    await stranger.putFile('/x/gone.txt', file('gone'))
    await pullInto(c, stranger)
    // c builds on the stranger's writes: overwrites one, deletes another
    await c.putFile('/p.txt', file('c p', 2_000))
    await c.remove('/x/gone.txt')
    await c.putFile('/c/after.txt', file('after'))

    // a page of c's log: the stranger's entries first (dropped), then c's, which depend on them
    await pullInto(a, c)
    assert.equal(a.untrusted, 3)
    assert.deepEqual(a.state().clock, { [c.id]: c.state().clock[c.id] })
    assert.deepEqual(await tree(a), (await tree(c)).filter(l => !l.startsWith('/x')))
    assert.deepEqual(await a.conflicts(), [])
    const p = await a.stat('/p.txt')
    assert.equal(p.type === 'file' && p.cid, cidOf('c p'))
  })

  it('a version superseded before it arrived never comes back when its author is trusted later, across a restart (same tree, clock and heads)', async () => {
    const sim = { now: 1_000 }
    const stranger = await replica(sim)
    const c = await replica(sim)
    const kv = new MemoryKV()
    const key = await generateKeyPair('Ed25519')
    const { r: before, trust } = await listed(sim, [c], { kv, key })
    await stranger.putFile('/p.txt', file('x p'))
    await stranger.putFile('/x/gone.txt', file('gone'))
    await stranger.putFile('/x/kept.txt', file('kept'))
    await pullInto(c, stranger)
    await c.putFile('/p.txt', file('c p', 2_000)) // replaces the stranger's version
    await c.remove('/x/gone.txt')
    await pullInto(before, c)
    assert.equal(before.untrusted, 3)
    await before.close()
    const a = await replica(sim, {}, { kv, key, trust })

    trust.add(stranger.id)
    await pullInto(a, c)
    const t = await converged([a, c])
    assert.deepEqual(t, ['/p.txt ' + cidOf('c p').slice(-6), '/x/', '/x/kept.txt ' + cidOf('kept').slice(-6)])
    assert.deepEqual(await a.conflicts(), [])
    // later writes keep them converged
    await a.putFile('/a.txt', file('a'))
    await pullInto(c, a)
    await converged([a, c])
  })

  it('a writer removed from trust: its later entries are dropped, its earlier ones stay; added back, they apply', async () => {
    const sim = { now: 1_000 }
    const b = await replica(sim)
    const { r: a, trust } = await listed(sim, [b])
    await b.putFile('/early.txt', file('early'))
    await pullInto(a, b)
    assert.ok(await a.lookup('/early.txt') !== undefined)

    assert.equal(trust.remove(b.id), true)
    await b.putFile('/late.txt', file('late'))
    await b.remove('/early.txt')
    await pullInto(a, b)
    assert.deepEqual(await tree(a), ['/early.txt ' + cidOf('early').slice(-6)])
    assert.equal(a.untrusted, 2)

    assert.equal(trust.add(b.id), true)
    await pullInto(a, b)
    assert.deepEqual(await converged([a, b]), ['/late.txt ' + cidOf('late').slice(-6)])
  })

  it('entries held for their causal past are dropped when their author stops being trusted before they apply', async () => {
    const sim = { now: 1_000 }
    const b = await replica(sim)
    const { r: a, trust } = await listed(sim, [b])
    const sent = record(b)
    await b.putFile('/1', file('1'))
    await b.putFile('/2', file('2'))
    const held = await a.receive([sent[1]], b.id)
    assert.equal(held.pending, 1)
    trust.remove(b.id)
    await a.receive([], b.id)
    assert.equal(a.untrusted, 1)
    trust.add(b.id)
    const late = await a.receive([sent[0]], b.id)
    assert.equal(late.applied, 1, 'only the entry given again applies; the dropped one is pulled again later')
    assert.deepEqual(await tree(a), ['/1 ' + cidOf('1').slice(-6)])
  })

  it('a snapshot by an untrusted author is refused before its shards are fetched', async () => {
    const sim = { now: 1_000 }
    const stranger = await replica(sim)
    const { r: a } = await listed(sim)
    await stranger.putFile('/x.txt', file('x'))
    const root = await stranger.snapshot()
    const asked: CID[][] = []
    const err = await a.loadSnapshot(root, async cids => { asked.push(cids); return await stranger.blocks(cids) }, stranger.id).catch(e => e)
    assert.ok(err instanceof UntrustedSnapshotError, String(err))
    assert.ok(err instanceof InvalidSnapshotError)
    assert.equal(err.name, 'UntrustedSnapshotError')
    assert.deepEqual(asked.map(c => c.map(String)), [[root.toString()]], 'only the root was fetched')
    assert.deepEqual(await tree(a), [])
    assert.deepEqual(a.state().clock, {})
  })

  it('a trusted snapshot carrying untrusted versions loads without them; its clock for their authors is not adopted', async () => {
    const sim = { now: 1_000 }
    const stranger = await replica(sim)
    const c = await replica(sim, { memberTimeout: 10 })
    const { r: a, trust } = await listed(sim, [c, stranger])
    await a.putFile('/a.txt', file('a'))
    await stranger.putFile('/x-early.txt', file('x early'))
    await pullInto(a, stranger) // applied while trusted: it stays
    trust.remove(stranger.id)
    await pullInto(c, a)
    await pullInto(c, stranger)
    await stranger.putFile('/x-late.txt', file('x late'))
    await pullInto(c, stranger)
    await c.putFile('/c.txt', file('c'))
    sim.now += 100
    assert.equal(await c.compact(true), true)

    const answer = await c.pull(a.pullClock(c.state().clock), 1000)
    assert.equal(answer.type, 'snapshot')
    assert.ok(answer.type === 'snapshot' && await a.loadSnapshot(answer.root, async cids => await c.blocks(cids), c.id))
    assert.deepEqual(await tree(a), (await tree(c)).filter(l => !l.startsWith('/x-late')))
    assert.ok(await a.lookup('/x-early.txt') !== undefined)
    assert.equal(a.state().clock[stranger.id], 1, 'the stranger\'s counter stays what a applied')
    assert.equal(a.state().pruned[stranger.id] ?? 0, 0)
    assert.ok(a.state().heads.length > 0)

    // trusted again: the snapshot brings the rest
    trust.add(stranger.id)
    const again = await c.pull(a.pullClock(c.state().clock), 1000)
    assert.ok(again.type === 'snapshot' && await a.loadSnapshot(again.root, async cids => await c.blocks(cids), c.id))
    assert.deepEqual(await tree(a), await tree(c))
    assert.deepEqual(a.state().clock, c.state().clock)
  })

  it('a snapshot does not bring back a version this replica saw superseded before it arrived', async () => {
    const sim = { now: 1_000 }
    const stranger = await replica(sim)
    const [b, c] = [await replica(sim, { memberTimeout: 10 }), await replica(sim)]
    const { r: a, trust } = await listed(sim, [b, c])
    await stranger.putFile('/p.txt', file('x p'))
    await pullInto(c, stranger)
    await c.putFile('/p.txt', file('c p', 2_000)) // supersedes the stranger's version
    await pullInto(a, c)
    // b has the stranger's version but not c's overwrite, and compacts
    await pullInto(b, stranger)
    await b.putFile('/b.txt', file('b'))
    sim.now += 100
    assert.equal(await b.compact(true), true)
    trust.add(stranger.id)
    const answer = await b.pull(a.pullClock(b.state().clock), 1000)
    assert.ok(answer.type === 'snapshot' && await a.loadSnapshot(answer.root, async cids => await b.blocks(cids), b.id))
    const p = await a.stat('/p.txt')
    assert.equal(p.type === 'file' && p.cid, cidOf('c p'))
    assert.deepEqual(await a.conflicts(), [])
    await pullInto(b, a)
    await pullInto(c, a)
    await converged([a, b, c])
  })

  it('an untrusted peer\'s announced clock neither holds back compaction nor is stored; a trusted one does until removed', async () => {
    const sim = { now: 1_000 }
    const kv = new MemoryKV()
    const stranger = await replica(sim)
    const b = await replica(sim)
    const { r: a, trust } = await listed(sim, [b], { kv }, { compactAfter: 1 })
    await a.putFile('/1', file('1'))
    await a.putFile('/2', file('2'))
    a.noteMember(stranger.id, {})
    assert.deepEqual(a.stableClock(), a.state().clock)
    assert.equal(a.memberClock(stranger.id), undefined)
    // a trusted member that has seen nothing holds compaction back …
    a.noteMember(b.id, {})
    assert.deepEqual(a.stableClock(), {})
    assert.equal(await a.compact(), false)
    // … until it is no longer trusted
    trust.remove(b.id)
    assert.equal(await a.compact(), true)
    await a.close()
    assert.equal(await mentions(kv, stranger.id), false, 'the stranger is not stored among the members')
  })

  it('pullClock skips untrusted authors at the peer\'s counters; lacks ignores them', async () => {
    const sim = { now: 1_000 }
    const { r: a } = await listed(sim)
    await a.putFile('/1', file('1'))
    const peer = { [a.id]: 1, '12D3KooWStranger': 7 }
    assert.deepEqual(a.pullClock(peer), { [a.id]: 1, '12D3KooWStranger': 7 })
    assert.equal(a.lacks(peer), false)
    assert.equal(a.lacks({ [a.id]: 2 }), true)
  })
})
