/**
 * Members with many authors: the stable clock and `memberClock`
 * against a plain-object reference (pointwise minimum and maximum over
 * vector clocks), reloading from the compact rows, rows of the older form
 * (`{ clock, seen }`) read and rewritten at open, counters past 32 bits, a
 * counter whose author number the authors row lacks, strangers and members
 * timed out.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryKV, Txn, type KV } from '../../../node/namespace/kv.js'
import { MEMBER_SAVE_MS, Members } from '../../../node/namespace/members.js'
import { meet, type VectorClock } from '../../../node/namespace/clock.js'
import { AUTHORS_KEY, MEMBER_RANGE, authorKey, memberKey } from '../../../node/namespace/rows.js'
import type { TrustPolicy } from '../../../node/namespace/trust.js'

const SELF = 'self'
const TIMEOUT = 3_600_000

interface Parts { kv: KV, now: { t: number }, trust?: TrustPolicy, applied?: VectorClock }

function members (parts: Parts): Members {
  return new Members({
    kv: parts.kv,
    id: SELF,
    trust: parts.trust ?? { trusts: () => true },
    clock: { now: () => parts.now.t },
    applied: () => parts.applied ?? {},
    heardSelf: () => {},
    memberTimeout: TIMEOUT
  })
}

/** A seeded generator (mulberry32): the test replays exactly. */
function prng (seed: number): (n: number) => number {
  let a = seed
  return n => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

const authors = Array.from({ length: 300 }, (_, i) => `author-${String(i).padStart(3, '0')}`)
const peers = Array.from({ length: 40 }, (_, i) => `peer-${String(i).padStart(2, '0')}`)

/** Per peer, the clocks it is heard with (several messages each, some authors left out, some counters at 0). */
function heard (seed: number): Map<string, VectorClock[]> {
  const rand = prng(seed)
  const out = new Map<string, VectorClock[]>()
  for (const peer of peers) {
    const clocks: VectorClock[] = []
    for (let k = 0; k < 3; k++) {
      const clock: VectorClock = {}
      for (const a of authors) if (rand(10) > 0) clock[a] = rand(50)
      clocks.push(clock)
    }
    out.set(peer, clocks)
  }
  return out
}

/** Pointwise maximum of `clocks`, zeros left out (what a member has been heard to have seen). */
function upper (clocks: VectorClock[]): VectorClock {
  const out: VectorClock = {}
  for (const c of clocks) for (const [a, n] of Object.entries(c)) if (n > (out[a] ?? 0)) out[a] = n
  return out
}

function applied (): VectorClock {
  return Object.fromEntries(authors.map((a, i) => [a, 40 + (i % 7)]))
}

/** Every observable answer of `m`, checked against the reference clocks. */
function check (m: Members, reference: Map<string, VectorClock>, self: VectorClock): void {
  assert.deepEqual(m.stableClock(), meet([self, ...reference.values()]))
  for (const [peer, clock] of reference) assert.deepEqual(m.memberClock(peer), clock)
}

describe('members with many authors', () => {
  it('stable clock and member clocks equal the vector-clock reference, and a reload from the rows gives the same', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const self = applied()
    const m = members({ kv, now, applied: self })
    const reference = new Map<string, VectorClock>()
    for (const [peer, clocks] of heard(7)) {
      for (const c of clocks) m.noteMember(peer, c)
      reference.set(peer, upper(clocks))
    }
    check(m, reference, self)

    await kv.batch(m.rows())
    const stored = await kv.get(memberKey(peers[3]))
    assert.ok(stored !== undefined)
    const row = JSON.parse(new TextDecoder().decode(stored))
    assert.deepEqual(Object.keys(row).sort(), ['counters', 'seen'], 'a compact row names no author')
    assert.ok(stored.byteLength < 4 * authors.length, `a row of ${authors.length} counters takes ${stored.byteLength} bytes`)

    const again = members({ kv, now, applied: self })
    await again.load(undefined)
    check(again, reference, self)
    assert.deepEqual(again.rows(), [], 'nothing to rewrite after a reload of compact rows')
  })

  it('reads rows of the older form ({ clock, seen }) and rewrites them compactly with the next save', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const self = applied()
    const reference = new Map<string, VectorClock>()
    const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
    for (const [peer, clocks] of heard(11)) {
      await kv.batch([{ type: 'put', key: memberKey(peer), value: encode({ clock: clocks[0], seen: 900 }) }])
      reference.set(peer, upper([clocks[0]]))
    }
    const m = members({ kv, now, applied: self })
    await m.load(undefined)
    check(m, reference, self)

    now.t += MEMBER_SAVE_MS
    await m.save()
    const rewritten = JSON.parse(new TextDecoder().decode(await kv.get(memberKey(peers[0]))))
    assert.equal(rewritten.clock, undefined)
    assert.equal(rewritten.seen, 900, 'when the member was last heard from is kept')
    const again = members({ kv, now, applied: self })
    await again.load(undefined)
    check(again, reference, self)
  })

  it('keeps counters past 32 bits exactly', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const m = members({ kv, now })
    m.noteMember('p', { a: 3, b: 2 ** 40 + 1 })
    m.noteMember('p', { a: 2 ** 33 })
    assert.deepEqual(m.memberClock('p'), { a: 2 ** 33, b: 2 ** 40 + 1 })
    await kv.batch(m.rows())
    const again = members({ kv, now })
    await again.load(undefined)
    assert.deepEqual(again.memberClock('p'), { a: 2 ** 33, b: 2 ** 40 + 1 })
  })

  it('a counter whose author the authors row lacks counts as 0: it holds compaction back, never forward', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const m = members({ kv, now, applied: { a: 5, b: 5 } })
    m.noteMember('p', { a: 5, b: 5 })
    await kv.batch(m.rows())
    // the author rows as a failed save left them: only `a`
    await kv.batch([{ type: 'del', key: authorKey(1) }])
    const again = members({ kv, now, applied: { a: 5, b: 5 } })
    await again.load(undefined)
    assert.deepEqual(again.memberClock('p'), { a: 5 })
    assert.deepEqual(again.stableClock(), { a: 5 })
  })

  it('the authors list of an older store is read, and authors numbered past it are rows of their own', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
    // an older build: the whole list in one row, a member counted by it
    await kv.batch([
      { type: 'put', key: AUTHORS_KEY, value: json(['a', 'b']) },
      { type: 'put', key: memberKey('p'), value: json({ seen: 1_000, counters: [3, 4] }) }
    ])
    const m = members({ kv, now })
    await m.load(undefined)
    assert.deepEqual(m.memberClock('p'), { a: 3, b: 4 })
    m.noteMember('q', { c: 7 })
    const txn = new Txn(kv)
    const done = m.writeNew(txn)
    assert.equal(txn.size, 2, 'q\'s row and c\'s row, not the list again')
    await txn.commit()
    done?.()
    assert.deepEqual(await kv.get(AUTHORS_KEY), json(['a', 'b']), 'the old list is left as it is')
    assert.deepEqual(await kv.get(authorKey(2)), json('c'))
    const again = members({ kv, now })
    await again.load(undefined)
    assert.deepEqual(again.memberClock('p'), { a: 3, b: 4 })
    assert.deepEqual(again.memberClock('q'), { c: 7 })
    // nothing new: a commit writes no author row
    const next = new Txn(kv)
    assert.equal(m.writeNew(next), undefined)
    assert.equal(next.size, 0)
  })

  it('new members go with the next commit, with the authors their rows are numbered by', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const m = members({ kv, now })
    m.noteMember('p', { a: 1, b: 2 })
    const txn = new Txn(kv)
    const done = m.writeNew(txn)
    await txn.commit()
    done?.()
    m.noteMember('p', { c: 4 })
    const again = members({ kv, now })
    await again.load(undefined)
    assert.deepEqual(again.memberClock('p'), { a: 1, b: 2 }, 'what was heard after the commit waits for the next save')

    // an author's row goes with the commits until one of them is durable
    m.noteMember('q', { a: 3 })
    const second = new Txn(kv)
    const secondDone = m.writeNew(second)
    assert.equal(second.size, 2, 'q\'s row and c\'s (c was numbered since the last commit)')
    m.noteMember('r', { b: 1 })
    const third = new Txn(kv)
    const thirdDone = m.writeNew(third)
    assert.equal(third.size, 2, 'r\'s row, and c\'s again: the commit that wrote it is not durable yet')
    await second.commit()
    secondDone?.()
    await third.commit()
    thirdDone?.()
    const fourth = new Txn(kv)
    m.noteMember('s', { a: 1 })
    m.writeNew(fourth)
    assert.equal(fourth.size, 1, 's\'s row alone')
    const last = members({ kv, now })
    await last.load(undefined)
    assert.deepEqual(last.memberClock('q'), { a: 3 })
    assert.deepEqual(last.memberClock('r'), { b: 1 })
  })

  it('a new member that has seen few of many authors is stored in a row that names those few, and reads back the same', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const m = members({ kv, now })
    // 5,000 authors, each a member that has seen itself and the author before it (a namespace that grew one author at a time)
    const id = (i: number): string => `author-${String(i).padStart(5, '0')}`
    for (let i = 0; i < 5_000; i++) {
      m.noteMember(id(i), i === 0 ? { [id(0)]: 1 } : { [id(i - 1)]: 1, [id(i)]: 1 })
      const txn = new Txn(kv)
      const done = m.writeNew(txn)
      await txn.commit()
      done?.()
    }
    // each member's row was written once, at its first commit: it names two counters, not one for every author numbered before it (~25 MB in all)
    let bytes = 0
    for await (const [, value] of kv.iterate({ ...MEMBER_RANGE })) bytes += value.byteLength
    assert.ok(bytes < 5_000 * 60, `${bytes} bytes of rows for 5,000 members`)
    const again = members({ kv, now })
    await again.load(undefined)
    assert.deepEqual(again.memberClock(id(4_999)), { [id(4_998)]: 1, [id(4_999)]: 1 })
    assert.deepEqual(again.memberClock(id(0)), { [id(0)]: 1 })
    // and a member that has seen most authors keeps the dense row
    const all: VectorClock = {}
    for (let i = 0; i < 5_000; i++) all[id(i)] = 2
    again.noteMember('p', all)
    await kv.batch(again.rows())
    const row = JSON.parse(new TextDecoder().decode(await kv.get(memberKey('p'))))
    assert.equal(row.counters.length, 5_000)
    const third = members({ kv, now })
    await third.load(undefined)
    assert.deepEqual(third.memberClock('p'), all)
  })

  it('strangers are not members; members not trusted any more or timed out no longer hold compaction back', async () => {
    const kv = new MemoryKV()
    const now = { t: 1_000 }
    const trusted = new Set(['p', 'q'])
    const m = members({ kv, now, applied: { a: 9 }, trust: { trusts: peer => trusted.has(peer) } })
    m.noteMember('stranger', { a: 1 })
    assert.equal(m.memberClock('stranger'), undefined)
    assert.deepEqual(m.stableClock(), { a: 9 })
    m.noteMember('p', { a: 2 })
    now.t += TIMEOUT
    m.noteMember('q', { a: 4 })
    assert.deepEqual(m.stableClock(), { a: 2 })
    now.t += 1
    assert.deepEqual(m.stableClock(), { a: 4 }, 'p timed out')
    trusted.delete('q')
    assert.deepEqual(m.stableClock(), { a: 9 })
    assert.equal(m.memberClock('q'), undefined)
    assert.deepEqual(m.rows().map(r => r.key).sort(), [authorKey(0), memberKey('p'), memberKey('q')].sort())
  })
})

describe('members a removal waits for (durability: removal-clocks.ts)', () => {
  it('names the active members whose latest clock does not cover a clock, and those whose own writes are not all applied here', () => {
    const now = { t: 1_000 }
    const trusted = new Set(['p', 'q', 'r', 'old'])
    const parts: Parts = { kv: new MemoryKV(), now, trust: { trusts: peer => trusted.has(peer) }, applied: { self: 4, p: 2, q: 7 } }
    const m = members(parts)
    m.noteMember('old', { self: 1 })
    now.t += TIMEOUT + 1
    m.noteMember('p', { self: 4, p: 3 })
    m.noteMember('q', { self: 3, q: 7 })
    m.noteMember('r', { self: 4 })
    m.noteMember('stranger', { self: 0, x: 9 })
    // 'old' was last heard past the member timeout, 'stranger' is not trusted: neither holds anything back
    assert.deepEqual(m.membersNotSeen({ self: 4 }).sort(), ['q'])
    assert.deepEqual(m.membersNotSeen({ self: 3 }), [])
    // p told of its write 3, which is not applied here; q's 7 is; r wrote nothing
    assert.deepEqual(m.behindMembers(), ['p'])
    parts.applied = { self: 4, p: 3, q: 7 }
    assert.deepEqual(m.behindMembers(), [])
    // a member no longer trusted no longer counts
    trusted.delete('q')
    assert.deepEqual(m.membersNotSeen({ self: 4 }), [])
  })
})

describe('a member forgotten (peers forget)', () => {
  it('is out of the stable clock and the removals\' wait, saved at once, back when heard from itself, not from its relayed entries', async () => {
    const now = { t: 1_000 }
    const kv = new MemoryKV()
    const parts: Parts = { kv, now, applied: { self: 4, p: 5 } }
    const m = members(parts)
    m.noteMember('p', { self: 2, p: 7 })
    m.noteMember('q', { self: 4 })
    assert.deepEqual(m.membersNotSeen({ self: 4 }), ['p'])
    assert.equal(await m.forget('nobody'), undefined)
    assert.equal(await m.forget(SELF), undefined)
    assert.deepEqual(await m.forget('p'), { unapplied: 2, seen: 1_000 })
    assert.deepEqual(m.membersNotSeen({ self: 4 }), [])
    assert.equal(m.active('p'), false)
    assert.ok(m.silentFor('p', 2), 'retired as an author without waiting for two member timeouts')
    assert.deepEqual(m.stableClock(), { self: 4 }, 'only q holds the stable clock back')
    // saved at once: a replica opened on the same store knows it
    const reopened = members({ ...parts })
    await reopened.load(undefined)
    assert.deepEqual(reopened.forgotten(), [{ peer: 'p', at: 1_000 }])
    // an entry of p relayed by another node does not bring it back; p's own word does, and that is saved
    reopened.noteMember('p', { self: 3, p: 8 }, { tellsSelf: false })
    assert.equal(reopened.active('p'), false)
    reopened.noteMember('p', { self: 4, p: 8 }, { direct: true })
    assert.equal(reopened.active('p'), true)
    await new Promise(resolve => setImmediate(resolve))
    const again = members({ ...parts })
    await again.load(undefined)
    assert.deepEqual(again.forgotten(), [])
  })

  it('a forget whose save fails changes nothing', async () => {
    const kv = new MemoryKV()
    const parts: Parts = { kv, now: { t: 1_000 } }
    const m = members(parts)
    m.noteMember('p', { self: 1 })
    const batch = kv.batch.bind(kv)
    kv.batch = async () => { throw Object.assign(new Error('no room left on the device'), { code: 'ENOSPC' }) }
    await assert.rejects(m.forget('p'), /no room left/)
    kv.batch = batch
    assert.deepEqual(m.forgotten(), [])
    assert.equal(m.active('p'), true)
    assert.deepEqual(m.membersNotSeen({ self: 2 }), ['p'])
  })
})
