/**
 * The namespace clocks of removals (node/durability/removal-clocks.ts) over
 * the namespace's real member table (node/namespace/members.ts on a memory
 * KV): a removal is settled once every active member has seen it and its
 * own writes are here; who has seen what is read when a walk begins, not
 * later; a mark no longer stands once a file referring to its manifest was
 * told after its walk began, nor when there is none (a record of a run
 * before a restart); marks stay bounded and strictly ordered; no member
 * holds a removal back past the member timeout.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { VectorClock } from '../../../node/namespace/clock.js'
import { MAX_REMOVAL_MARKS, MAX_TOLD_REFERENCES, RemovalClocks } from '../../../node/durability/index.js'
import { namespaceClocksOf } from '../../helpers/namespace-clocks.js'

const M = 'manifest-1'

describe('removal clocks', () => {
  it('without a namespace every removal is settled, every mark stands, and a mark is the time now', () => {
    const now = { t: 5_000 }
    const removals = new RemovalClocks({ clock: { now: () => now.t } })
    const walk = removals.beginWalk()
    assert.equal(walk.mark(), 5_000)
    assert.deepEqual(walk.settled(M, 1), { settled: true })
    assert.equal(walk.stands(M, 1), true)
    assert.equal(removals.size, 0)
  })

  it('a removal waits for every active member to see it, and for the writes a member told of; who has seen what is read when the walk begins', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 4, p: 2 }
    const { ns, members } = namespaceClocksOf(now, applied)
    members.noteMember('p', { self: 3, p: 2 })
    members.noteMember('q', { self: 4, p: 2 })
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    // a walk found the file gone under {self: 4, p: 2}
    const since = removals.beginWalk().mark()
    assert.deepEqual(removals.beginWalk().settled(M, since), { settled: false, waitingOn: ['p'] })
    const begunBefore = removals.beginWalk()
    // p hears of the removal
    members.noteMember('p', { self: 4, p: 2 })
    assert.equal(begunBefore.settled(M, since).settled, false, 'read before p was heard')
    assert.deepEqual(removals.beginWalk().settled(M, since), { settled: true })
    // p made a write of its own (a move, say) that is not here yet: nothing is settled until it is
    members.noteMember('p', { self: 4, p: 3 })
    assert.deepEqual(removals.beginWalk().settled(M, since), { settled: false, waitingOn: ['p'] }, 'p\'s write 3 is not applied here')
    applied.p = 3
    assert.deepEqual(removals.beginWalk().settled(M, since), { settled: true })
  })

  it('a file referring to the manifest, told after the walk of its mark began, makes the mark stale; so does a snapshot merged; a record with no mark (a run before a restart) has none that stands', () => {
    const now = { t: 1_000 }
    const { ns } = namespaceClocksOf(now, { self: 1 })
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    assert.equal(removals.beginWalk().stands(M, 500), false, 'no mark at all')
    assert.deepEqual(removals.beginWalk().settled(M, 500), { settled: false, waitingOn: [] })
    // a file referred to it before the walk began: the walk saw it (or its removal is under the mark)
    removals.referenced(M)
    const walk = removals.beginWalk()
    // told during the walk: it may have missed the file
    removals.referenced('other')
    const since = walk.mark()
    assert.equal(removals.beginWalk().stands(M, since), true)
    assert.deepEqual(removals.beginWalk().settled(M, since), { settled: true })
    assert.equal(removals.beginWalk().stands('other', since), false)
    removals.referenced(M)
    assert.equal(removals.beginWalk().stands(M, since), false, 'a file refers to it again after the walk began')
    assert.deepEqual(removals.beginWalk().settled(M, since), { settled: false, waitingOn: [] })
    // marked again by a walk begun after: it stands
    const again = removals.beginWalk().mark()
    assert.equal(removals.beginWalk().stands(M, again), true)
    removals.referencedAny()
    assert.equal(removals.beginWalk().stands(M, again), false, 'a snapshot merged: any manifest may be referred to')
  })

  it('past the references it can tell apart, those told before every mark\'s walk are forgotten; if that is not room enough, every mark made before is stale', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 1 }
    const { ns } = namespaceClocksOf(now, applied)
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    for (let i = 0; i < MAX_TOLD_REFERENCES - 1; i++) removals.referenced(`old${i}`)
    const since = removals.beginWalk().mark()
    removals.referenced('new0')
    removals.referenced('new1')
    assert.equal(removals.beginWalk().stands(M, since), true, 'the old ones went, making room')
    assert.equal(removals.beginWalk().stands('new1', since), false)
    for (let i = 2; i <= MAX_TOLD_REFERENCES; i++) removals.referenced(`new${i}`)
    assert.equal(removals.beginWalk().stands(M, since), false, 'every one told after the mark: no room')
  })

  it('each record names its own mark: one per change of the state, strictly later than one another, the oldest dropped (its records marked again); no member holds a removal back past the member timeout', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 1 }
    const { ns, members } = namespaceClocksOf(now, applied)
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    const first = removals.beginWalk().mark()
    now.t = 1_500
    assert.equal(removals.beginWalk().mark(), first, 'the same state, nothing told: the same mark and time')
    assert.equal(removals.size, 1)
    applied.self = 2
    assert.equal(removals.beginWalk().mark(), 1_500)
    applied.self = 3
    now.t = 0
    assert.equal(removals.beginWalk().mark(), 1_501, 'a wall clock stepped back: still later')
    assert.equal(removals.beginWalk().stands(M, 1_200), false, 'no mark made at that time')
    const times: number[] = []
    for (let i = 0; i < MAX_REMOVAL_MARKS + 4; i++) {
      applied.self = 10 + i
      now.t = 3_000 + i
      times.push(removals.beginWalk().mark())
    }
    assert.equal(removals.size, MAX_REMOVAL_MARKS)
    // the first marks went: their records have none, and are marked again by the next walk
    members.noteMember('p', { self: 10 + MAX_REMOVAL_MARKS + 4 })
    assert.equal(removals.beginWalk().stands(M, times[0]), false)
    assert.deepEqual(removals.beginWalk().settled(M, times[0]), { settled: false, waitingOn: [] })
    assert.deepEqual(removals.beginWalk().settled(M, times[4]), { settled: true })
    // q never covers the newest mark (it does not trust one of its authors, say): past the member timeout it holds nothing back
    const newest = times.at(-1) ?? 0
    now.t = newest + ns.memberTimeout
    members.noteMember('p', { self: 100 })
    members.noteMember('q', { self: 10 })
    assert.deepEqual(removals.beginWalk().settled(M, newest), { settled: false, waitingOn: ['q'] })
    now.t++
    members.noteMember('q', { self: 10 })
    assert.deepEqual(removals.beginWalk().settled(M, newest), { settled: true })
  })

  it('a mark\'s whole clock comes back from the changes it is kept as, before and after the oldest go', () => {
    const now = { t: 1_000 }
    const applied: VectorClock = { self: 1, a: 1, b: 1 }
    const { ns, members } = namespaceClocksOf(now, applied)
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    const times: number[] = []
    const clocks: VectorClock[] = []
    for (let i = 0; i < MAX_REMOVAL_MARKS + 3; i++) {
      // each mark changes one author of three (the first mark all of them)
      if (i === 0) applied.self = 5
      if (i % 2 === 0) applied.a = 2 + i
      else applied.b = 2 + i
      now.t = 2_000 + i
      times.push(removals.beginWalk().mark())
      clocks.push({ ...applied })
    }
    assert.equal(removals.size, MAX_REMOVAL_MARKS)
    // a member that has seen exactly mark k's clock settles mark k, not the one after
    for (const k of [3, 4, 20, MAX_REMOVAL_MARKS + 1]) {
      members.noteMember('p', clocks[k])
      assert.deepEqual(removals.beginWalk().settled(M, times[k]), { settled: true }, `mark ${k}`)
      assert.deepEqual(removals.beginWalk().settled(M, times[k + 1]), { settled: false, waitingOn: ['p'] }, `mark ${k + 1}`)
    }
    // what only the dropped first mark changed is still part of every kept mark's clock
    members.noteMember('q', { ...clocks[3], self: 4 })
    assert.deepEqual(removals.beginWalk().settled(M, times[3]), { settled: false, waitingOn: ['q'] })
  })
})
