/**
 * An add names when its command began (`startedAt`): another node's version
 * of the path that arrived after that moment, before the daemon served the
 * add, is kept beside the new one, a conflict, not replaced unseen
 * (node/namespace/clock-history.ts). Real `Files` over a real namespace and
 * block store on disk; the other node is a second replica whose entries are
 * pulled in.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseChunker } from '../../../node/content/index.js'
import { ClockHistory, HISTORY_COUNTERS, HISTORY_MS, MIN_RECORDS, RECORD_GAP_MS } from '../../../node/namespace/clock-history.js'
import { file, pullInto, replica } from '../namespace/helpers.js'
import { filesOnDisk } from './fixtures.js'
import type { VectorClock } from '../../../node/namespace/index.js'

const CHUNKER = parseChunker('size-262144')

async function * bytesOf (text: string): AsyncGenerator<Uint8Array> { yield new TextEncoder().encode(text) }

describe('an add started before another node\'s version arrived', () => {
  it('keeps that version beside its own, a conflict; one that arrived before it began is replaced', async t => {
    const { files, namespace } = await filesOnDisk(t)
    const peer = await replica({ now: Date.now() })
    await peer.putFile('/x', file('theirs', Date.now()))
    await peer.putFile('/y', file('theirs too', Date.now()))

    // /x: the command began, then the other node's version arrived, then the add ran
    const started = Date.now()
    await sleep(5)
    await pullInto(namespace, peer)
    await sleep(5)
    await files.add('/x', bytesOf('mine'), { chunker: CHUNKER, startedAt: started })
    const conflicts = await namespace.conflicts()
    assert.equal(conflicts.length, 1, 'both versions kept')
    assert.equal(conflicts[0].path, '/x')

    // /y arrived with /x, before this command began: replaced, as any later write replaces
    await files.add('/y', bytesOf('mine too'), { chunker: CHUNKER, startedAt: Date.now() })
    assert.equal((await namespace.conflicts()).length, 1, 'no conflict at /y')

    // a moment older than the history: the add replaces what the path shows, as before
    await peer.putFile('/z', file('theirs, third', Date.now()))
    await pullInto(namespace, peer)
    await files.add('/z', bytesOf('mine, third'), { chunker: CHUNKER, startedAt: Date.now() - 10 * HISTORY_MS })
    assert.deepEqual((await namespace.conflicts()).map(c => c.path), ['/x'])
  })
})

/** Another node's replica. */
type Peer = Awaited<ReturnType<typeof replica>>

/**
 * Files on disk and another node's replica: what `before` writes there is
 * pulled in, then a caller begins (`started`), then what `after` writes
 * there is pulled in.
 */
async function arrivals (t: Parameters<typeof filesOnDisk>[0], writes: { before: (peer: Peer) => Promise<unknown>, after: (peer: Peer) => Promise<unknown> }): Promise<Awaited<ReturnType<typeof filesOnDisk>> & { peer: Peer, started: number }> {
  const disk = await filesOnDisk(t)
  const peer = await replica({ now: Date.now() })
  await writes.before(peer)
  await pullInto(disk.namespace, peer)
  // arrivals closer than RECORD_GAP_MS share one record (a moment between them gets the older clock)
  await sleep(RECORD_GAP_MS + 50)
  const started = Date.now()
  await sleep(5)
  await writes.after(peer)
  return { ...disk, peer, started }
}

describe('what arrived after a caller began (`Files.arrivedAfter`, the `started` of `stat`)', () => {
  it('a folder another node made after the moment arrived after it; one made before, or made here, did not', async t => {
    const { files, namespace, peer, started } = await arrivals(t, {
      before: async peer => {
        await peer.mkdir('/before')
        await peer.mkdir('/touched')
        await peer.putFile('/touched/x', file('theirs, seen', Date.now()))
      },
      after: async () => {}
    })
    // the other node sets the attributes of a folder that was there (rsync, tar): a new version of it, not a new folder
    await peer.setDirAttrs('/touched', { mode: 0o700, mtime: Date.now() })
    await peer.mkdir('/d')
    await peer.putFile('/d/a', file('theirs', Date.now()))
    await namespace.mkdir('/mine')
    await pullInto(namespace, peer)
    assert.equal(await files.arrivedAfter('/d', started), true, 'the other node\'s /d arrived after the caller began')
    assert.equal(await files.arrivedAfter('/d/a', started), true, 'and its file')
    assert.equal(await files.arrivedAfter('/before', started), false, 'a folder that was here when it began')
    assert.equal(await files.arrivedAfter('/touched', started), false, 'a folder that was here, written again since (its attributes): what it holds was seen')
    assert.equal(await files.arrivedAfter('/mine', started), false, 'a folder this node made')
    assert.equal(await files.arrivedAfter('/nothing', started), false, 'no entry')
    assert.equal(await files.arrivedAfter('/d', Date.now()), false, 'a caller who began after it arrived saw it')
    assert.equal(await files.arrivedAfter('/d', started - 10 * HISTORY_MS), false, 'a moment older than the history: not known, treated as seen')
  })
})

describe('a file and a folder at one path, one of them arrived after the caller began', () => {
  it('a file added onto a folder it never saw is kept beside it, and a folder made onto such a file keeps the file beside it: the folder wins, as when both are written at once', async t => {
    const { files, namespace, peer, started } = await arrivals(t, {
      before: async peer => {
        await peer.mkdir('/old-dir')
        await peer.putFile('/old-file', file('theirs, before', Date.now()))
      },
      after: async peer => {
        await peer.mkdir('/d')
        await peer.putFile('/d/inside', file('theirs, inside', Date.now()))
        await peer.putFile('/f', file('theirs', Date.now()))
      }
    })
    await pullInto(namespace, peer)

    // a file onto the folder that arrived after the caller began: the folder stays, the file is its conflict copy
    await files.add('/d', bytesOf('mine'), { chunker: CHUNKER, startedAt: started })
    assert.equal((await namespace.stat('/d')).type, 'dir')
    assert.deepEqual((await namespace.list('/d')).map(e => e.name), ['inside'], 'the folder keeps what it holds')
    // a folder onto the file that arrived after the caller began: the folder is made, the file kept as its copy
    const made = await files.mkdir('/f', { parents: true, startedAt: started })
    assert.equal(made.type, 'dir')
    const copies = await namespace.conflicts()
    assert.deepEqual(copies.map(c => c.path).sort(), ['/d', '/f'], 'each file is kept as a conflict copy of its path')
    for (const c of copies) assert.equal((await namespace.stat(c.copy)).type, 'file')

    // a folder that arrives during the upload (after the add looked at the path): kept beside it too
    await peer.mkdir('/u')
    await files.add('/u', (async function * () {
      yield new TextEncoder().encode('mine, ')
      await pullInto(namespace, peer)
      yield new TextEncoder().encode('uploaded')
    })(), { chunker: CHUNKER, startedAt: started })
    assert.equal((await namespace.stat('/u')).type, 'dir')
    // a file at a parent that arrived after the caller began: the folder is made beside it
    await peer.putFile('/p', file('theirs, a parent', Date.now()))
    await pullInto(namespace, peer)
    await files.add('/p/below', bytesOf('mine, below'), { chunker: CHUNKER, startedAt: started })
    assert.equal((await namespace.stat('/p')).type, 'dir')
    assert.deepEqual((await namespace.conflicts()).map(c => c.path).sort(), ['/d', '/f', '/p', '/u'])
    // and a folder made with its parents below such a file, as the add does
    await peer.putFile('/q', file('theirs, a parent of a mkdir', Date.now()))
    await pullInto(namespace, peer)
    assert.equal((await files.mkdir('/q/sub/deeper', { parents: true, startedAt: started })).type, 'dir')
    assert.equal((await namespace.stat('/q/sub')).type, 'dir')
    assert.deepEqual((await namespace.conflicts()).map(c => c.path).sort(), ['/d', '/f', '/p', '/q', '/u'])

    // what was there when the caller began is refused, as before
    await assert.rejects(files.add('/old-file/below', bytesOf('mine'), { chunker: CHUNKER, startedAt: started }), { name: 'NotADirectoryError' })
    await assert.rejects(files.add('/old-dir', bytesOf('mine'), { chunker: CHUNKER, startedAt: started }), { name: 'IsADirectoryError' })
    await assert.rejects(files.mkdir('/old-file', { parents: true, startedAt: started }), { name: 'AlreadyExistsError' })
    await assert.rejects(files.mkdir('/old-file/below', { parents: true, startedAt: started }), { name: 'NotADirectoryError' })
    // and a caller that names no start is refused too
    await assert.rejects(files.mkdir('/f2', { parents: true }).then(async () => await files.add('/f2', bytesOf('x'), { chunker: CHUNKER })), { name: 'IsADirectoryError' })
    assert.equal((await namespace.conflicts()).length, 5)
    assert.equal((await namespace.stat('/old-file')).type, 'file', 'nothing made at what was refused')
  })
})

/**
 * A history over a test clock: `arrive(at, clock)` moves time to `at`,
 * makes `clock` the replica's, and tells the history; `applyUntold(at,
 * clock)` makes it the replica's without telling (a batch applied while
 * another waits for the store's lock, told only after that one began).
 */
function testHistory (first: Readonly<VectorClock>, openAt: number): { history: ClockHistory, time: { now: number }, arrive: (at: number, clock: Readonly<VectorClock>) => void, applyUntold: (at: number, clock: Readonly<VectorClock>) => void } {
  const time = { now: openAt }
  let seen = first
  let others = 0
  const history = new ClockHistory({ clock: { now: () => time.now }, seen: () => seen, others: () => others })
  const applyUntold = (at: number, clock: Readonly<VectorClock>): void => {
    time.now = at
    seen = clock
    others++
  }
  const arrive = (at: number, clock: Readonly<VectorClock>): void => {
    time.now = at
    // as the replica does: told before the entries apply, and after
    history.arriving()
    applyUntold(at, clock)
    history.changed()
  }
  return { history, time, arrive, applyUntold }
}

describe('a removal started before another node\'s write into the folder arrived', () => {
  it('`rm -r` keeps a file that arrived after its command began, and removes what the caller had seen', async t => {
    const { files, namespace, peer, started } = await arrivals(t, {
      before: async peer => {
        await peer.putFile('/d/old', file('theirs, seen', Date.now()))
        await peer.putFile('/e/old', file('theirs, seen too', Date.now()))
      },
      after: async peer => {
        await peer.putFile('/d/new', file('theirs, added as the rm began', Date.now()))
        await peer.putFile('/e/new', file('theirs, added as the other rm began', Date.now()))
      }
    })
    await pullInto(namespace, peer)
    // the rm names its start: the file added into the folder since is a write concurrent with it, and stays
    assert.deepEqual(await files.rm('/d', { recursive: true, startedAt: started }), { kept: ['/d/new'], keptCount: 1 }, 'what was kept is said')
    assert.equal(await namespace.lookup('/d/old'), undefined, 'what the caller had seen is removed')
    assert.equal((await namespace.lookup('/d/new'))?.type, 'file', 'the file that arrived after the rm began stays')
    // without its start, everything the folder shows goes, as before
    assert.deepEqual(await files.rm('/e', { recursive: true }), {})
    assert.equal(await namespace.lookup('/e'), undefined)
  })
})

describe('clock history', () => {
  it('answers the clock that held at a moment, none before what it keeps, now for a moment to come', () => {
    const { history, arrive } = testHistory(Object.freeze({ a: 1 }), 1_000)
    assert.equal(history.at(1_000), undefined, 'not opened yet')
    history.changed()
    arrive(2_000, Object.freeze({ a: 2 }))
    arrive(3_000, Object.freeze({ a: 2, b: 1 }))
    assert.equal(history.at(999), undefined)
    assert.deepEqual(history.at(1_500), { a: 1 })
    assert.deepEqual(history.at(2_000), { a: 2 }, 'a change at the very moment counts as before it')
    assert.deepEqual(history.at(2_999), { a: 2 })
    assert.deepEqual(history.at(3_500), { a: 2, b: 1 })
    assert.deepEqual(history.at(10_000), { a: 2, b: 1 })
    assert.equal(history.at(Number.NaN), undefined)
    // a minute later the oldest go
    arrive(3_000 + HISTORY_MS + 1, Object.freeze({ a: 3, b: 1 }))
    assert.equal(history.at(2_500), undefined)
    assert.deepEqual(history.at(3_000 + HISTORY_MS), { a: 2, b: 1 })
  })

  it('a moment more than a minute ago has no answer, however quiet the swarm', () => {
    const { history, arrive } = testHistory(Object.freeze({ a: 1 }), 0)
    history.changed()
    arrive(200_000, Object.freeze({ a: 2 }))
    assert.equal(history.at(10_000), undefined)
    assert.deepEqual(history.at(200_000 - HISTORY_MS + 1), { a: 1 })
  })

  it('arrivals closer than RECORD_GAP_MS share a record: a moment between them gets the older clock, a moment after the last the clock now', () => {
    const { history, time, arrive } = testHistory(Object.freeze({ a: 1 }), 0)
    history.changed()
    arrive(1_000, Object.freeze({ a: 2 }))
    arrive(1_000 + RECORD_GAP_MS / 2, Object.freeze({ a: 3 }))
    assert.deepEqual(history.at(1_000 + RECORD_GAP_MS / 4), { a: 2 }, 'between the two: the clock before the second (older than the truth: a conflict too many, never a loss)')
    assert.deepEqual(history.at(1_000 + RECORD_GAP_MS / 2), { a: 3 }, 'after the last arrival: the clock now')
    time.now = 5_000
    assert.deepEqual(history.at(4_000), { a: 3 })
    // the next arrival, long after: a moment between the burst and it had seen the burst (before, the clock before the
    // burst answered every moment up to this arrival: what arrived in it counted as unseen by an add 30 s later)
    arrive(30_000, Object.freeze({ a: 4 }))
    assert.deepEqual(history.at(20_000), { a: 3 })
    assert.deepEqual(history.at(1_000 + RECORD_GAP_MS / 4), { a: 2 }, 'within the burst: still the older clock')
    assert.deepEqual(history.at(30_000), { a: 4 })
  })

  it('a batch applied and not told yet when the next one arrives never answers for a moment before it: the older clock does', () => {
    const { history, time, arrive, applyUntold } = testHistory(Object.freeze({ a: 1 }), 0)
    history.changed()
    arrive(1_000, Object.freeze({ a: 2 }))
    arrive(1_000 + RECORD_GAP_MS / 2, Object.freeze({ a: 3 }))
    // a batch applied at 10 s (its change told only later), then the next batch arrives
    applyUntold(10_000, Object.freeze({ a: 3, b: 1 }))
    time.now = 10_001
    history.arriving()
    history.changed()
    // a moment before b's entry arrived is never answered with a clock that has it
    assert.deepEqual(history.at(5_000), { a: 2 }, 'the older clock (a conflict too many, never a version replaced unseen)')
    assert.deepEqual(history.at(10_001), { a: 3, b: 1 })
  })

  it('keeps fewer records when the clocks name many authors', () => {
    const many = (n: number): Readonly<VectorClock> => Object.freeze(Object.fromEntries(Array.from({ length: HISTORY_COUNTERS / 4 }, (_, i) => [`author-${i}`, n])))
    const { history, time, arrive } = testHistory(many(1), 0)
    history.changed()
    for (let i = 2; i < 20; i++) arrive(time.now + RECORD_GAP_MS, many(i))
    assert.equal(history.at(RECORD_GAP_MS), undefined, `${HISTORY_COUNTERS / 4} authors: ${MIN_RECORDS} records, not 19`)
    assert.equal(history.at(time.now - RECORD_GAP_MS)?.['author-0'], 18)
  })
})
