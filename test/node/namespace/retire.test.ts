/**
 * Many lifetime authors: a replica that has applied entries of more than
 * 4,096 authors keeps syncing (pulls, heartbeats, compaction, a snapshot
 * bootstrap), and authors that left are retired so that clocks on the wire
 * name only the authors still writing (docs/namespace.md, "Retired
 * authors"). Real replicas and real `NamespaceSync` on the simulation's
 * virtual network and clock.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { pino } from 'pino'
import { join } from 'node:path'
import { LevelKV, cborCID, type Signer } from '../../../node/namespace/index.js'
import { tempDir } from '../../helpers/temp.js'
import { weight } from '../../../node/namespace/clock.js'
import { decodeEntry, encodeEntry, encodeEntryBody, type EntryBodyV2 } from '../../../protocol/namespace.js'
import type { NamespaceSim } from '../../../simulations/namespace-sim.js'
import { withSim } from '../../simulations/namespace-sim-helpers.js'
import { authors, cidOf, pullInto, replica, writes, type Sim } from './helpers.js'

/** How many authors the clock of node `i` names. */
function named (sim: NamespaceSim, i: number): number {
  return Object.keys(sim.nodes[i].replica.state().clock).length
}

describe('namespace with many lifetime authors', () => {
  it('a replica holding entries of more than 4,096 authors pulls, publishes heartbeats, compacts and serves a snapshot bootstrap', async () => {
    // the authors wrote once and are gone: members for 20 s
    await withSim({ nodes: 2, seed: 41, replica: { compactAfter: 100, memberTimeout: 20_000 }, sync: { heartbeatEvery: 10_000 }, logger: process.env.RETIRE_LOG !== undefined ? pino({ level: 'warn' }) : undefined }, async sim => {
      const [a, b] = sim.nodes
      const many = await authors(4_200)
      const received = await a.replica.receive(await writes(many, 'w'))
      assert.equal(received.applied, 4_200)
      assert.ok(named(sim, 0) > 4_096)
      // b gets them by pulling from a (a's answers carry a's clock)
      assert.ok(await sim.converge(120_000), (await sim.differences(3)).join('\n'))
      assert.equal((await b.replica.lookup('/w/4199'))?.type, 'file')
      // heartbeats go out
      const beats = a.sync.stats.heartbeats
      await sim.advance(30_000)
      assert.ok(a.sync.stats.heartbeats > beats, 'a published heartbeats')
      // both compact; a new node bootstraps from a snapshot
      await sim.time.runUntil(() => sim.nodes.every(n => weight(n.replica.state().pruned) >= 4_200), { deadline: sim.time.now() + 60_000, pollEvery: 500 })
      assert.ok(weight(a.replica.state().pruned) >= 4_200, 'a compacted')
      // the authors that left are retired, by one of the two (the active member with the smallest id; neither wrote anything else)
      assert.deepEqual([a, b].filter(n => n.replica.state().clock[n.id] !== undefined).map(n => n.id), [[a.id, b.id].sort()[0]])
      // the clocks a and b send name only themselves
      for (const i of [0, 1]) {
        const n = sim.nodes[i].replica
        assert.equal(n.retired, 4_200, `node ${i} retired every author that left`)
        assert.deepEqual(Object.keys(n.wireClock(n.state().clock)).sort(), [a.id, b.id].filter(id => n.state().clock[id] !== undefined).sort())
      }
      const c = await sim.join()
      assert.ok(await sim.converge(120_000), (await sim.differences(3)).join('\n'))
      const fresh = sim.nodes[c]
      assert.equal((await fresh.replica.lookup('/w/17'))?.type, 'file')
      assert.ok(fresh.sync.stats.snapshots > 0, 'the new node loaded a snapshot')
      // the snapshot carried the retirements: the new node reads its peers' clocks and leaves the authors out of its own
      assert.equal(fresh.replica.retired, 4_200)
      assert.deepEqual(fresh.replica.readClock(a.replica.wireClock(a.replica.state().clock)), a.replica.state().clock)
      assert.ok(Object.keys(fresh.replica.wireClock(fresh.replica.state().clock)).length <= 3)
      // and it keeps syncing by entries: a write of a reaches it, a write of its own reaches a, no snapshot more
      const snapshots = sim.nodes.map(n => n.sync.stats.snapshots)
      assert.ok((await sim.apply(0, { kind: 'put', path: '/after-a' })).ok)
      assert.ok((await sim.apply(c, { kind: 'put', path: '/after-c' })).ok)
      await sim.advance(20_000)
      assert.ok(await sim.converge(60_000), (await sim.differences(3)).join('\n'))
      assert.deepEqual(sim.nodes.map(n => n.sync.stats.snapshots), snapshots)
    })
  })
})

/** An entry of `signer` at `seq` with `ops`, after `parent` (encoded, signed). */
async function entryOf (signer: Signer, seq: number, ops: EntryBodyV2['ops'], parent?: Uint8Array): Promise<Uint8Array> {
  const parents = parent === undefined ? [] : [cborCID(parent)]
  const deps: Array<[string, number]> = parent === undefined ? [] : [[signer.id, seq - 1]]
  const body: EntryBodyV2 = { v: 2, author: signer.id, seq, time: 1_000 + seq, parents, deps, ops }
  return encodeEntry({ ...body, sig: await signer.sign(encodeEntryBody(body)) })
}

function put (path: string): EntryBodyV2['ops'][number] {
  return { op: 'put', path, cid: CID.parse(cidOf(path)), size: 1, mode: 0o644, mtime: 1_000, replaces: [] }
}

describe('retired authors in a swarm', () => {
  it('nodes away past memberTimeout are retired by one member, every clock sent leaves them out, and when one comes back and writes nothing is lost', async () => {
    await withSim({ nodes: 6, seed: 43, replica: { compactAfter: 10, memberTimeout: 30_000 }, sync: { heartbeatEvery: 10_000 } }, async sim => {
      const paths = ['/a', '/b', '/c', '/d/e']
      const issuers = new Set<string>()
      for (const n of sim.nodes.slice(0, 4)) n.replica.onLocalEntries(entries => { for (const bytes of entries) if (decodeEntry(bytes).ops.some(op => op.op === 'retire')) issuers.add(n.id) })
      for (let k = 0; k < 3; k++) for (let i = 0; i < 6; i++) assert.ok((await sim.apply(i, { kind: 'put', path: paths[(i + k) % paths.length] })).ok)
      assert.ok(await sim.converge(), (await sim.differences(3)).join('\n'))
      const [gone1, gone2] = [sim.nodes[4], sim.nodes[5]]
      await sim.crash(4)
      await sim.crash(5)
      // the others write on, and time passes beyond memberTimeout
      for (let k = 0; k < 3; k++) {
        for (let i = 0; i < 4; i++) assert.ok((await sim.apply(i, { kind: 'put', path: paths[(i + k + 1) % paths.length] })).ok)
        await sim.advance(20_000)
      }
      await sim.advance(60_000)
      assert.ok(await sim.converge(), (await sim.differences(3)).join('\n'))
      for (const n of sim.up()) {
        assert.equal(n.replica.retired, 2, `node ${n.index} knows both retirements`)
        const wire = n.replica.wireClock(n.replica.state().clock)
        assert.equal(wire[gone1.id], undefined)
        assert.equal(wire[gone2.id], undefined)
      }
      // one member retired them: the one with the smallest id among the four
      assert.deepEqual([...issuers], [sim.nodes.slice(0, 4).map(n => n.id).sort()[0]])
      // node 4 comes back with its store and writes: taken everywhere, named again
      await sim.restart(4, 'keep')
      assert.ok((await sim.apply(4, { kind: 'put', path: '/back' })).ok)
      // and a new node bootstraps meanwhile
      const fresh = await sim.join()
      assert.ok(await sim.converge(180_000), (await sim.differences(3)).join('\n'))
      assert.deepEqual(await sim.lostWrites(), [])
      for (const n of sim.up()) {
        assert.equal((await n.replica.lookup('/back'))?.type, 'file', `node ${n.index} has the returning author's write`)
        assert.ok((n.replica.wireClock(n.replica.state().clock)[gone1.id] ?? 0) > 0, `node ${n.index} names the returning author`)
      }
      assert.equal(sim.nodes[fresh].replica.retired, 2)
    })
  })
})

describe('retired authors', () => {
  it('two replicas on LevelDB with 4,200 lifetime authors: retirements are stored, survive a restart, and the wire clocks stay small', async (t) => {
    const sim: Sim = { now: 1_000 }
    const dir = await tempDir(t)
    const aKey = await generateKeyPair('Ed25519')
    const open = async (name: string, key?: Awaited<ReturnType<typeof generateKeyPair>>): Promise<Awaited<ReturnType<typeof replica>>> => await replica(sim, { memberTimeout: 1_000 }, { kv: new LevelKV(join(dir, name)), key })
    let a = await open('a', aKey)
    const b = await open('b')
    assert.equal((await a.receive(await writes(await authors(4_200), 'l'))).applied, 4_200)
    await pullInto(b, a)
    sim.now += 2_000
    // one entry of at most 4,096 retire ops per call
    assert.equal(await a.retire(), 4_096)
    assert.equal(await a.retire(), 104)
    await pullInto(b, a)
    assert.equal(b.retired, 4_200)
    const wire = a.wireClock(a.state().clock)
    assert.deepEqual(Object.keys(wire), [a.id])
    assert.deepEqual(b.readClock(wire), a.state().clock)
    await a.close()
    a = await open('a', aKey)
    assert.equal(a.retired, 4_200, 'the retirements were stored')
    assert.deepEqual(a.readClock(b.wireClock(b.state().clock)), b.state().clock)
    for (const r of [a, b]) await r.close()
  })

  it('an author that left is retired, left out of clocks on the wire and read back; when it comes back nothing it writes is lost', async () => {
    const sim: Sim = { now: 1_000 }
    const a = await replica(sim, { memberTimeout: 1_000 })
    const b = await replica(sim, { memberTimeout: 1_000 })
    const [x] = await authors(1)
    const x1 = await entryOf(x, 1, [put('/x1')])
    const x2 = await entryOf(x, 2, [put('/x2')], x1)
    assert.equal((await a.receive([x1, x2])).applied, 2)
    // x is active for memberTimeout after its entries: not retired
    assert.equal(await a.retire(), 0)
    sim.now += 2_000
    assert.equal(await a.retire(), 1)
    assert.equal(await a.retire(), 0, 'retired once')
    const wire = a.wireClock(a.state().clock)
    assert.equal(wire[x.id], undefined, 'x left out of the clock a sends')
    // to a peer not known to cover the retirement, x is named (it could not read it back)
    assert.equal(a.wireClock(a.state().clock, {})[x.id], 2)
    // a node that does not know the retirement reads the missing x as 0 (it would send x's entries again, never skip one)
    assert.equal(b.readClock(wire)[x.id], undefined)
    await pullInto(b, a)
    assert.equal(b.retired, 1, 'b applied the retirement')
    assert.deepEqual(b.readClock(wire), a.state().clock)
    assert.equal(b.wireClock(b.state().clock)[x.id], undefined)
    // x comes back: its next entry is taken as always and x is named again
    const x3 = await entryOf(x, 3, [put('/x3')], x2)
    assert.equal((await b.receive([x3])).applied, 1)
    const bWire = b.wireClock(b.state().clock)
    assert.equal(bWire[x.id], 3)
    assert.equal(a.readClock(bWire)[x.id], 3)
    assert.ok(a.lacks(a.readClock(bWire)), 'a sees that b holds more of x')
    await pullInto(a, b)
    assert.equal((await a.lookup('/x3'))?.type, 'file')
    // a peer that holds nothing of a retired author names it at 0, so it is never read as retired
    const fresh = await replica(sim)
    assert.equal(b.readClock(b.wireClock(fresh.state().clock))[x.id], undefined)
    for (const r of [a, b, fresh]) await r.close()
  })

  it('a retired node that lost its store does not take a clock that leaves it out as the end of its own writes', async () => {
    const sim: Sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const before = await replica(sim, { memberTimeout: 1_000 }, { key })
    const b = await replica(sim, { memberTimeout: 1_000 })
    await before.putFile('/1', { cid: cidOf('1'), size: 1, mode: 0o644, mtime: 1 })
    await pullInto(b, before)
    sim.now += 2_000
    assert.equal(await b.retire(), 1)
    const wire = b.wireClock(b.state().clock)
    assert.equal(wire[before.id], undefined)
    // the same identity, its store lost (no new-store mark): it recovers its writes before writing
    const after = await replica(sim, { memberTimeout: 1_000, recoverEmptyStore: true, recoveryTimeout: 60_000, recoveryQuorum: 1 }, { key })
    assert.equal(after.recovering, true)
    after.noteMember(b.id, after.readClock(wire), wire)
    assert.equal(after.recovering, true, 'a heartbeat that leaves it out is no word on its seq')
    // an answer to its pull names it (sync names the requester): recovery waits for seq 1, pulls it, and ends
    after.noteMember(b.id, { ...after.readClock(wire), [after.id]: 1 }, { ...wire, [after.id]: 1 })
    await pullInto(after, b)
    assert.equal(after.recovering, false)
    assert.equal((await after.lookup('/1'))?.type, 'file')
    for (const r of [before, b, after]) await r.close()
  })

  it('a validly signed hostile retirement hides no write: beyond what its author saw it is held, of an active author it only shortens clocks', async () => {
    const sim: Sim = { now: 1_000 }
    const b = await replica(sim)
    const [h, y] = await authors(2)
    const y1 = await entryOf(y, 1, [put('/y1')])
    assert.equal((await b.receive([y1])).applied, 1)
    // h claims y's history ends at 5: y wrote 1; the retirement's past (y up to 5) is missing: held, not applied
    const far = await entryOf(h, 1, [{ op: 'retire', author: y.id, seq: 5 }])
    const held = await b.receive([far])
    assert.deepEqual([held.applied, held.pending], [0, 1])
    assert.equal(b.retired, 0)
    assert.equal(b.wireClock(b.state().clock)[y.id], 1, 'y still named')
    // y writes on: its entries are applied as always
    const y2 = await entryOf(y, 2, [put('/y2')], y1)
    assert.equal((await b.receive([y2])).applied, 1)
    assert.equal((await b.lookup('/y2'))?.type, 'file')
    // a retirement of y at what b holds, by another entry of h (h's chain: its held entry first)
    const h2 = await entryOf(h, 2, [{ op: 'retire', author: y.id, seq: 2 }], far)
    assert.equal((await b.receive([h2])).applied, 0, 'h2 waits behind h1, which waits for y up to 5')
    assert.equal(b.retired, 0)
    const [g] = await authors(1)
    const g1 = await entryOf(g, 1, [{ op: 'retire', author: y.id, seq: 2 }])
    assert.equal((await b.receive([g1])).applied, 1)
    // y, active, is only left out of clocks where b holds exactly 2; its files stay, and its next write is named and applied
    assert.equal(b.wireClock(b.state().clock)[y.id], undefined)
    assert.equal((await b.lookup('/y1'))?.type, 'file')
    const y3 = await entryOf(y, 3, [put('/y3')], y2)
    assert.equal((await b.receive([y3])).applied, 1)
    assert.equal(b.wireClock(b.state().clock)[y.id], 3)
    assert.equal((await b.lookup('/y3'))?.type, 'file')
    await b.close()
  })
})
