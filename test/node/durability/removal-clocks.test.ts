/**
 * The namespace clocks of removals (node/durability/removal-clocks.ts) over
 * the namespace's real member table (node/namespace/members.ts on a memory
 * KV): a removal is settled once every active member has seen it and its
 * own writes are here; who has seen what is read when asked, not later; a
 * record older than every mark takes one then; marks stay bounded, an old
 * record falling back on a later (larger) clock.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { VectorClock } from '../../../node/namespace/clock.js'
import { MAX_REMOVAL_MARKS, RemovalClocks } from '../../../node/durability/index.js'
import { namespaceClocksOf } from '../../helpers/namespace-clocks.js'

const namespaceOf = namespaceClocksOf

describe('removal clocks', () => {
  it('without a namespace every removal is settled, and a mark is the time now', () => {
    const now = { t: 5_000 }
    const removals = new RemovalClocks({ clock: { now: () => now.t } })
    assert.equal(removals.mark(), 5_000)
    assert.deepEqual(removals.settledNow()(1), { settled: true })
    assert.equal(removals.size, 0)
  })

  it('a removal waits for every active member to see it, and for the writes a member told of; who has seen what is read when asked', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 4, p: 2 }
    const { ns, members } = namespaceOf(now, applied)
    members.noteMember('p', { self: 3, p: 2 })
    members.noteMember('q', { self: 4, p: 2 })
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    // the walk found the file gone under {self: 4}
    const since = removals.mark()
    assert.deepEqual(removals.settledNow()(since), { settled: false, waitingOn: ['p'] })
    const askedBefore = removals.settledNow()
    // p hears of the removal
    members.noteMember('p', { self: 4, p: 2 })
    assert.equal(askedBefore(since).settled, false, 'read before p was heard')
    assert.deepEqual(removals.settledNow()(since), { settled: true })
    // p made a write of its own (a move, say) that is not here yet: nothing is settled until it is
    members.noteMember('p', { self: 4, p: 3 })
    assert.deepEqual(removals.settledNow()(since), { settled: false, waitingOn: ['p'] }, 'p\'s write 3 is not applied here')
    applied.p = 3
    assert.deepEqual(removals.settledNow()(since), { settled: true })
  })

  it('a member that never covers the mark holds a removal back for the member timeout at most; marks are strictly later than one another', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 4, x: 9 }
    const { ns, members } = namespaceOf(now, applied)
    // p does not trust x: its clock never names x's writes
    members.noteMember('p', { self: 4 })
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    const since = removals.mark()
    assert.equal(removals.mark(), since + 1, 'the same millisecond: a later time')
    now.t = 0
    assert.equal(removals.mark(), since + 2, 'a wall clock stepped back: still later')
    now.t = since + ns.memberTimeout
    members.noteMember('p', { self: 4 })
    assert.deepEqual(removals.settledNow()(since), { settled: false, waitingOn: ['p'] })
    now.t = since + ns.memberTimeout + 1
    members.noteMember('p', { self: 4 })
    assert.deepEqual(removals.settledNow()(since), { settled: true })
  })

  it('a record older than every mark (a run before a restart) takes a mark when first asked about; marks stay bounded, an old record using a later clock', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 1 }
    const { ns, members } = namespaceOf(now, applied)
    members.noteMember('p', { self: 1 })
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    applied.self = 6
    now.t = 2_000
    // unreferenced since 500 by the run before: the clock now stands for it
    assert.deepEqual(removals.settledNow()(500), { settled: false, waitingOn: ['p'] })
    assert.equal(removals.size, 1)
    members.noteMember('p', { self: 6 })
    assert.deepEqual(removals.settledNow()(500), { settled: true })
    // an unchanged clock: the last mark stands for the new one
    now.t = 2_500
    removals.mark()
    assert.equal(removals.size, 1)
    // many marks of growing clocks: the oldest go
    const times: number[] = []
    for (let i = 0; i < MAX_REMOVAL_MARKS + 4; i++) {
      applied.self = 10 + i
      now.t = 3_000 + i
      times.push(removals.mark())
    }
    assert.equal(removals.size, MAX_REMOVAL_MARKS)
    // p saw the clock of the first mark: a record of that time now waits on a later, dropped-to clock
    members.noteMember('p', { self: 10 })
    assert.deepEqual(removals.settledNow()(times[0]), { settled: false, waitingOn: ['p'] })
    members.noteMember('p', { self: 10 + 4 })
    assert.deepEqual(removals.settledNow()(times[0]), { settled: true })
    assert.deepEqual(removals.settledNow()(times.at(-1) ?? 0), { settled: false, waitingOn: ['p'] })
  })
})
