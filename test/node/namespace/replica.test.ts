/**
 * Semantics of the namespace CRDT on a few replicas that exchange entries
 * directly (no network): concurrent writes, conflicts, deletes, moves,
 * forged entries, out-of-order delivery, snapshots and compaction.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeEntry, encodeEntry, encodeEntryBody } from '../../../protocol/namespace.js'
import { CID } from 'multiformats/cid'
import { decodeSnapshotRoot } from '../../../protocol/namespace.js'
import { decodeTreeNode } from '../../../protocol/snapshot-tree.js'
import { cidOf, converged, file, pullInto, replica, syncAll, tree } from './helpers.js'
import { MemoryKV, type Replica } from '../../../node/namespace/index.js'
import { LevelKV } from '../../../node/namespace/kv.js'
import { MAX_NAME_BYTES, MAX_PATH_BYTES, normalizePath } from '../../../protocol/paths.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

describe('namespace CRDT semantics', () => {
  it('a write on one replica reaches another, with clock and heads', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/docs/a.txt', file('a'))
    await a.mkdir('/empty')
    await syncAll([a, b])
    assert.deepEqual(await converged([a, b]), ['/docs/', `/docs/a.txt ${cidOf('a').slice(-6)}`, '/empty/'])
    assert.equal(b.state().clock[a.id], 2)
    assert.equal(b.state().heads.length, 1)
  })

  it('concurrent writes to one path: same winner everywhere, the loser visible as a conflict copy', async () => {
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const [a, b, c] = [await replica(sim), await replica(sim), await replica(sim)]
    await a.putFile('/notes.txt', file('base'))
    await syncAll([a, b, c])
    await a.putFile('/notes.txt', file('from a', 2_000))
    await b.putFile('/notes.txt', file('from b', 3_000))
    await syncAll([a, b, c])
    const t = await converged([a, b, c])
    assert.equal(t.length, 2, t.join('\n'))
    const winner = await c.stat('/notes.txt')
    assert.equal(winner.type === 'file' && winner.cid, cidOf('from b'), 'latest mtime wins')
    const conflicts = await c.conflicts()
    assert.equal(conflicts.length, 1)
    assert.equal(conflicts[0].path, '/notes.txt')
    assert.equal(conflicts[0].copy, `/notes.conflict-${a.id.slice(-8)}-20261122-103005.txt`)
    assert.equal(conflicts[0].cid, cidOf('from a'))
    const copy = await c.stat(conflicts[0].copy)
    assert.equal(copy.type === 'file' && copy.cid, cidOf('from a'))
    assert.equal(copy.conflictOf, '/notes.txt')
  })

  it('a conflict copy of a long name or in a long path is a path the API takes: it can be read and removed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-long-copy-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const [a, b] = [await replica(sim, {}, { kv: new LevelKV(join(dir, 'a')) }), await replica(sim, {}, { kv: new LevelKV(join(dir, 'b')) })]
    t.after(async () => { await a.close(); await b.close() })
    // a name whose extension alone leaves no room for the copy's suffix, and a name a byte short of PATH_MAX
    const longExt = '/a.' + 'x'.repeat(250)
    const deep = '/' + Array.from({ length: 16 }, () => 'd'.repeat(250)).join('/')
    const longPath = `${deep}/${'f'.repeat(MAX_PATH_BYTES - Buffer.byteLength(deep) - 2)}`
    for (const [i, p] of [longExt, longPath].entries()) {
      await a.putFile(p, file(`a${i}`, 1_000))
      await b.putFile(p, file(`b${i}`, 2_000))
    }
    await syncAll([a, b])
    const conflicts = await a.conflicts()
    assert.deepEqual(conflicts.map(c => c.path).sort(), [longExt, longPath].sort())
    for (const c of conflicts) {
      assert.ok(Buffer.byteLength(c.copy) <= MAX_PATH_BYTES, `${c.copy.length}-byte copy path`)
      assert.ok(c.copy.split('/').every(name => Buffer.byteLength(name) <= MAX_NAME_BYTES), 'every name within NAME_MAX')
      assert.equal(normalizePath(c.copy), c.copy)
      const copy = await a.stat(c.copy)
      assert.equal(copy.type === 'file' && copy.cid, c.cid)
      assert.equal(copy.conflictOf, c.path)
      // resolving the conflict: the loser removed by its copy's name
      await a.remove(c.copy)
    }
    await syncAll([a, b])
    for (const r of [a, b]) {
      assert.deepEqual(await r.conflicts(), [])
      for (const [i, p] of [longExt, longPath].entries()) assert.equal((await r.stat(p)).type === 'file' && (await r.stat(p) as { cid: string }).cid, cidOf(`b${i}`))
    }
  })

  it('a file written at a conflict copy\'s name stays visible on every replica; the copy shows again once the name is free', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-copy-name-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const [a, b, c] = [await replica(sim, {}, { kv: new LevelKV(join(dir, 'a')) }), await replica(sim, {}, { kv: new LevelKV(join(dir, 'b')) }), await replica(sim, {}, { kv: new LevelKV(join(dir, 'c')) })]
    t.after(async () => { await a.close(); await b.close(); await c.close() })
    await a.putFile('/y.txt', file('from a', 1_000))
    await b.putFile('/y.txt', file('from b', 2_000))
    await pullInto(a, b)
    await pullInto(b, a)
    const [conflict] = await a.conflicts()
    // c, which has not heard of the conflict, writes a file of that very name
    await c.putFile(conflict.copy, file('from c', 3_000))
    // a sees the copy first, then c's file; c sees its file first, then the conflict
    await pullInto(a, c)
    await pullInto(c, b)
    // the winner written again: a's copy of the loser is gone from /y.txt's view, c's file must not go with it
    await b.putFile('/y.txt', file('b again', 4_000))
    await syncAll([a, b, c])
    const shown = await converged([a, b, c])
    assert.ok(shown.includes(`${conflict.copy} ${cidOf('from c').slice(-6)}`), shown.join('\n'))
    for (const r of [a, b, c]) {
      assert.deepEqual(await r.conflicts(), [], 'the name shows c\'s file, not a copy')
      assert.equal((await r.list('/')).length, 2, 'the directory counts each name once')
    }
    // c's file removed: the loser shows again as the copy, on every replica
    await c.remove(conflict.copy)
    await syncAll([a, b, c])
    await converged([a, b, c])
    for (const r of [a, b, c]) {
      const copy = await r.stat(conflict.copy)
      assert.deepEqual([copy.type === 'file' && copy.cid, copy.conflictOf], [cidOf('from a'), '/y.txt'])
      assert.deepEqual((await r.conflicts()).map(x => [x.path, x.copy, x.cid]), [['/y.txt', conflict.copy, cidOf('from a')]])
    }
  })

  it('the same bytes written concurrently on two replicas are one file, not a conflict; rm and mv take both versions', async () => {
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const [a, b, c] = [await replica(sim), await replica(sim), await replica(sim)]
    await a.putFile('/same.txt', file('one content', 2_000))
    await b.putFile('/same.txt', file('one content', 3_000))
    // a real conflict beside it: different bytes
    await a.putFile('/diff.txt', file('from a', 2_000))
    await b.putFile('/diff.txt', file('from b', 3_000))
    await syncAll([a, b, c])
    assert.deepEqual((await c.conflicts()).map(x => x.path), ['/diff.txt'], 'only the different bytes are a conflict')
    for (const r of [a, b, c]) {
      const shown = await r.stat('/same.txt')
      assert.equal(shown.type === 'file' && shown.cid, cidOf('one content'))
    }
    const t = await converged([a, b, c])
    assert.equal(t.filter(line => line.startsWith('/same')).length, 1, t.join('\n'))
    // the same bytes under another mode are another file: a conflict, as before
    await a.putFile('/mode.txt', { ...file('x', 2_000), mode: 0o600 })
    await b.putFile('/mode.txt', { ...file('x', 3_000), mode: 0o644 })
    await syncAll([a, b, c])
    assert.deepEqual((await c.conflicts()).map(x => x.path).sort(), ['/diff.txt', '/mode.txt'])
    // a move takes both versions: nothing is left behind, no conflict appears
    await c.move('/same.txt', '/moved.txt')
    await syncAll([a, b, c])
    assert.equal(await a.lookup('/same.txt'), undefined)
    assert.deepEqual((await a.conflicts()).map(x => x.path).sort(), ['/diff.txt', '/mode.txt'])
    // and rm removes the file for good, on every replica (both versions)
    await a.remove('/moved.txt')
    await syncAll([a, b, c])
    for (const r of [a, b, c]) assert.equal(await r.lookup('/moved.txt'), undefined)
    await converged([a, b, c])
  })

  it('a put that names the version it started from keeps a version written meanwhile, as a conflict, on every replica', async () => {
    const sim = { now: 5_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    // b writes /new and a receives it before its own new file at /new lands: a started from nothing
    await b.putFile('/new', file('from b', 2_000))
    await syncAll([a, b])
    await a.putFile('/new', file('from a', 3_000), { replacing: null })
    // a edits /old from the version it read, while b's newer version arrived
    await a.putFile('/old', file('v1'))
    await syncAll([a, b])
    await b.putFile('/old', file('v2 from b', 4_000))
    await syncAll([a, b])
    await a.putFile('/old', file('v2 from a', 5_000), { replacing: cidOf('v1') })
    // what a replaces when it started from the version there, or writes the same bytes: no conflict
    await a.putFile('/same', file('s1'))
    await a.putFile('/same', file('s2'), { replacing: cidOf('s1') })
    await a.putFile('/same', file('s2'), { replacing: cidOf('something else') })
    await syncAll([a, b])
    await converged([a, b])
    for (const r of [a, b]) {
      const conflicts = (await r.conflicts()).map(c => [c.path, c.cid]).sort()
      assert.deepEqual(conflicts, [['/new', cidOf('from b')], ['/old', cidOf('v2 from b')]], 'the versions written meanwhile are kept')
      const kept = await r.stat('/new')
      assert.equal(kept.type === 'file' && kept.cid, cidOf('from a'), 'the later mtime is shown at the path')
      const same = await r.stat('/same')
      assert.equal(same.type === 'file' && same.cid, cidOf('s2'))
    }
    // without `replacing`, a put replaces whatever is shown there, as before (a conflict copy goes by its own name)
    await b.putFile('/new', file('plain', 6_000))
    await syncAll([a, b])
    const shown = await a.stat('/new')
    assert.equal(shown.type === 'file' && shown.cid, cidOf('plain'))
  })

  it('a put that started from a version shown as a conflict copy replaces that version: one copy, not one more per write', async () => {
    const sim = { now: 5_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    // a's v1 and b's later version: b's is shown, a's is the copy
    await a.putFile('/f', file('v1 from a', 1_000))
    await b.putFile('/f', file('from b', 4_000))
    await syncAll([a, b])
    assert.deepEqual((await a.conflicts()).map(c => c.cid), [cidOf('v1 from a')])
    // a writes on from the version it had (a file open through its mount, committed again), still older than b's
    await a.putFile('/f', file('v2 from a', 2_000), { replacing: cidOf('v1 from a') })
    await a.putFile('/f', file('v3 from a', 3_000), { replacing: cidOf('v2 from a') })
    await syncAll([a, b])
    await converged([a, b])
    for (const r of [a, b]) {
      assert.deepEqual((await r.conflicts()).map(c => c.cid), [cidOf('v3 from a')], 'its last version is the one copy')
      const shown = await r.stat('/f')
      assert.equal(shown.type === 'file' && shown.cid, cidOf('from b'), 'b\'s version still shown')
    }
  })

  it('a put that changes a version in place (rewriting) is made only while that version is shown: after a removal, a move, another version or another change, nothing is written, and the file does not come back', async () => {
    const sim = { now: 5_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    for (const name of ['kept', 'removed', 'moved', 'replaced', 'remote', 'repinned']) await a.putFile(`/${name}`, file(name))
    await syncAll([a, b])
    // the version still shown: changed in place (its mode here; a pin in the files service)
    await a.putFile('/kept', { ...file('kept'), mode: 0o600 }, { rewriting: file('kept') })
    const kept = await a.stat('/kept')
    assert.ok(kept.type === 'file' && kept.cid === cidOf('kept') && kept.mode === 0o600)
    // two changes made from one read: the second would undo the first (a pin rm landing before the coding binds its manifest)
    const read = await a.stat('/repinned')
    assert.ok(read.type === 'file')
    await a.putFile('/repinned', { ...file('repinned'), pin: { policy: 'replicas:2' } }, { rewriting: read })
    await assert.rejects(a.putFile('/repinned', { ...file('repinned'), pin: { policy: 'replicas:3' } }, { rewriting: read }),
      (err: Error) => err.name === 'VersionGoneError' && err.message.includes('(changed since it was read)'))
    const repinned = await a.stat('/repinned')
    assert.ok(repinned.type === 'file' && repinned.pin?.policy === 'replicas:2')
    // gone since it was read: here, and on another replica (b's removal received first)
    await a.remove('/removed')
    await a.move('/moved', '/elsewhere')
    await a.putFile('/replaced', file('replaced v2', 2_000))
    await b.remove('/remote')
    await syncAll([a, b])
    const clock = a.state().clock
    for (const [path, gone] of [['/removed', 'removed'], ['/moved', 'removed'], ['/replaced', 'replaced'], ['/remote', 'removed']]) {
      const name = path.slice(1)
      await assert.rejects(a.putFile(path, { ...file(name), mode: 0o600 }, { rewriting: file(name) }),
        (err: Error) => err.name === 'VersionGoneError' && err.message.includes(`(${gone} since it was read)`), path)
    }
    assert.deepEqual(a.state().clock, clock, 'nothing was written')
    await syncAll([a, b])
    await converged([a, b])
    for (const r of [a, b]) {
      for (const path of ['/removed', '/moved', '/remote']) assert.equal(await r.lookup(path), undefined, `${path} stays gone`)
      const replaced = await r.stat('/replaced')
      assert.ok(replaced.type === 'file' && replaced.cid === cidOf('replaced v2') && replaced.mode === 0o644)
      assert.deepEqual(await r.conflicts(), [])
    }
  })

  it('a moved path takes its conflict with it: the same version shown, the others still conflict copies, on every replica', async () => {
    const sim = { now: 7_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    // equal mtimes: the winner is decided by the entry time, then the author
    await a.putFile('/d/x.txt', file('from a'))
    await b.putFile('/d/x.txt', file('from b'))
    await a.putFile('/d/y', file('y from a', 1_000))
    await b.putFile('/d/y', file('y from b', 2_000))
    await syncAll([a, b])
    const shown = async (r: Replica, path: string): Promise<string> => {
      const e = await r.stat(path)
      return e.type === 'file' ? e.cid : ''
    }
    const xWinner = await shown(a, '/d/x.txt')
    const xLoser = xWinner === cidOf('from a') ? cidOf('from b') : cidOf('from a')
    assert.equal(await shown(a, '/d/y'), cidOf('y from b'), 'the later mtime wins')
    sim.now += 1_000
    // a file moved on its own
    await a.move('/d/x.txt', '/x.txt')
    await syncAll([a, b])
    for (const r of [a, b]) {
      assert.equal(await r.lookup('/d/x.txt'), undefined, 'no version left behind at the old path')
      assert.equal(await shown(r, '/x.txt'), xWinner, 'the version shown before is shown after')
      const conflicts = (await r.conflicts()).map(c => [c.path, c.cid]).sort()
      assert.deepEqual(conflicts, [['/d/y', cidOf('y from a')], ['/x.txt', xLoser]])
    }
    // a directory moved with a conflicted file inside
    sim.now += 1_000
    await b.move('/d', '/e')
    await syncAll([a, b])
    const t = await converged([a, b])
    assert.equal(t.filter(l => l.startsWith('/d')).length, 0, t.join('\n'))
    for (const r of [a, b]) {
      assert.equal(await shown(r, '/e/y'), cidOf('y from b'))
      const conflicts = (await r.conflicts()).map(c => [c.path, c.cid]).sort()
      assert.deepEqual(conflicts, [['/e/y', cidOf('y from a')], ['/x.txt', xLoser]])
      const copy = (await r.conflicts()).find(c => c.path === '/e/y')
      assert.ok(copy !== undefined && (await r.stat(copy.copy)).conflictOf === '/e/y', 'the copy is still a conflict copy, not a plain file')
    }
    // moving the copy itself is how a user keeps it: then it is a file of its own
    const [copyOfX] = (await a.conflicts()).filter(c => c.path === '/x.txt')
    await a.move(copyOfX.copy, '/x.theirs.txt')
    await syncAll([a, b])
    for (const r of [a, b]) {
      assert.deepEqual((await r.conflicts()).map(c => c.path), ['/e/y'])
      assert.equal(await shown(r, '/x.theirs.txt'), xLoser)
      assert.equal(await shown(r, '/x.txt'), xWinner)
    }
  })

  it('resolving a conflict is an ordinary write; the resolution propagates without new conflicts', async () => {
    const sim = { now: 5_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/x', file('a'))
    await b.putFile('/x', file('b'))
    await syncAll([a, b])
    const [conflict] = await a.conflicts()
    assert.ok(conflict !== undefined)
    // keep the loser under another name, then write the merged content
    await a.move(conflict.copy, '/x.theirs')
    await a.putFile('/x', file('merged'))
    await syncAll([a, b])
    assert.deepEqual(await b.conflicts(), [])
    const t = await converged([a, b])
    assert.equal(t.filter(l => l.includes('conflict')).length, 0, t.join('\n'))
    const x = await b.stat('/x')
    assert.equal(x.type === 'file' && x.cid, cidOf('merged'))
    assert.ok(await b.lookup('/x.theirs') !== undefined)
    // removing a conflict copy removes only that version
    await a.putFile('/y', file('y1'))
    await b.putFile('/y', file('y2'))
    await syncAll([a, b])
    const [c2] = await b.conflicts()
    await b.remove(c2.copy)
    await syncAll([a, b])
    assert.deepEqual(await a.conflicts(), [])
    assert.ok(await a.lookup('/y') !== undefined)
  })

  it('a modification beats a concurrent delete', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/d/f', file('v1'))
    await syncAll([a, b])
    await a.remove('/d', { recursive: true })
    await b.putFile('/d/f', file('v2'))
    await b.putFile('/d/new', file('new'))
    await syncAll([a, b])
    const t = await converged([a, b])
    assert.deepEqual(t, ['/d/', `/d/f ${cidOf('v2').slice(-6)}`, `/d/new ${cidOf('new').slice(-6)}`])
  })

  it('a delete of what was seen removes it everywhere; the emptied implicit directory vanishes', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/d/f', file('v1'))
    await syncAll([a, b])
    await b.remove('/d', { recursive: true })
    await syncAll([a, b])
    assert.deepEqual(await converged([a, b]), [])
  })

  it('concurrent mkdir of one directory merges', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.mkdir('/shared/photos', { parents: true })
    await a.putFile('/shared/photos/1.jpg', file('1'))
    await b.mkdir('/shared/photos', { parents: true })
    await b.putFile('/shared/photos/2.jpg', file('2'))
    await syncAll([a, b])
    assert.deepEqual(await converged([a, b]), ['/shared/', '/shared/photos/', `/shared/photos/1.jpg ${cidOf('1').slice(-6)}`, `/shared/photos/2.jpg ${cidOf('2').slice(-6)}`])
    assert.deepEqual(await a.conflicts(), [])
    // removing the merged directory removes both versions
    await a.remove('/shared', { recursive: true })
    await syncAll([a, b])
    assert.deepEqual(await converged([a, b]), [])
  })

  it('mv of a directory moves its subtree on every replica', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/src/a/1', file('1'))
    await a.putFile('/src/a/2', file('2'))
    await a.mkdir('/src/empty')
    await a.mkdir('/dst')
    await syncAll([a, b])
    await b.move('/src', '/dst')
    await syncAll([a, b])
    assert.deepEqual(await converged([a, b]), ['/dst/', '/dst/src/', '/dst/src/a/', `/dst/src/a/1 ${cidOf('1').slice(-6)}`, `/dst/src/a/2 ${cidOf('2').slice(-6)}`, '/dst/src/empty/'])
  })

  it('a file and a directory written concurrently at one path: the directory wins, the file is a conflict copy', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/x', file('file'))
    await b.putFile('/x/inside', file('inside'))
    await syncAll([a, b])
    const t = await converged([a, b])
    assert.equal((await a.stat('/x')).type, 'dir')
    assert.ok(t.some(l => l.includes('(conflict of /x)')), t.join('\n'))
    // once the directory is gone, the file is back at its path
    await b.remove('/x', { recursive: true })
    await syncAll([a, b])
    const x = await a.stat('/x')
    assert.equal(x.type === 'file' && x.cid, cidOf('file'))
  })

  it('entries delivered out of order wait for their causal past', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    const sent: Uint8Array[] = []
    a.onLocalEntries(e => sent.push(...e))
    await a.putFile('/1', file('1'))
    await a.putFile('/2', file('2'))
    await a.remove('/1')
    const r1 = await b.receive([sent[2], sent[1]])
    assert.equal(r1.applied, 0)
    assert.equal(r1.pending, 2)
    const r2 = await b.receive([sent[0], sent[0]])
    assert.equal(r2.applied, 3)
    assert.deepEqual(await converged([a, b]), [`/2 ${cidOf('2').slice(-6)}`])
  })

  it('a full buffer of early entries does not stop the entries that are ready: a catch-up still applies its pages, and what was held after them', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-pending-full-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const sim = { now: 1_000 }
    const a = await replica(sim, {}, { kv: new LevelKV(join(dir, 'a')) })
    const b = await replica(sim, { maxPending: 3 }, { kv: new LevelKV(join(dir, 'b')) })
    t.after(async () => { await a.close(); await b.close() })
    const sent: Uint8Array[] = []
    a.onLocalEntries(e => sent.push(...e))
    for (let i = 1; i <= 10; i++) await a.putFile(`/f${i}`, file(`f${i}`))
    // pushes that came before the history they build on (a node catching up while the swarm writes): the buffer fills
    const early = await b.receive(sent.slice(5))
    assert.deepEqual([early.applied, early.pending], [0, 3])
    // the history arrives, in order: each entry is ready when its turn comes
    const history = await b.receive(sent.slice(0, 5))
    assert.equal(history.applied, 8, 'the five of the history and the three held after them')
    assert.equal(b.state().clock[a.id], 8)
    await pullInto(b, a)
    assert.deepEqual(await converged([a, b]), Array.from({ length: 10 }, (_, i) => `/f${i + 1} ${cidOf(`f${i + 1}`).slice(-6)}`).sort())
  })

  it('rejects forged, altered, non-canonical and equivocating entries and changes nothing', async () => {
    const sim = { now: 1_000 }
    const [a, b, mallory] = [await replica(sim), await replica(sim), await replica(sim)]
    const sent: Uint8Array[] = []
    a.onLocalEntries(e => sent.push(...e))
    await a.putFile('/real', file('real'))
    const real = decodeEntry(sent[0])
    // claims to be a, signed by mallory's key
    const forgedBody = { ...real, ops: [{ ...real.ops[0], path: '/forged' }] }
    const { sig: _sig, ...body } = forgedBody
    const forged = encodeEntry({ ...body, sig: await (mallory as any).components.signer.sign(encodeEntryBody(body)) })
    // a's signature over different content
    const altered = encodeEntry({ ...forgedBody, sig: real.sig })
    // a second, different entry with a's seq 1 would need a's key: simulate a by re-signing with a's signer
    const equivocation = encodeEntry({ ...body, sig: await (a as any).components.signer.sign(encodeEntryBody(body)) })
    const garbage = new Uint8Array([0xa1, 0x61, 0x76, 0x01])
    const before = await tree(b)
    const r = await b.receive([forged, altered, garbage])
    assert.equal(r.rejected, 3)
    assert.equal(r.applied, 0)
    assert.deepEqual(await tree(b), before)
    assert.deepEqual(b.state().clock, {})
    await b.receive([sent[0]])
    const r2 = await b.receive([equivocation])
    assert.equal(r2.rejected, 1)
    assert.deepEqual(await tree(b), [`/real ${cidOf('real').slice(-6)}`])
    assert.equal(b.rejected, 4)
  })

  it('compacts stable history into a snapshot; a new replica bootstraps from it and keeps up', async () => {
    const sim = { now: 1_000 }
    const options = { compactAfter: 10 }
    const [a, b] = [await replica(sim, options), await replica(sim, options)]
    for (let i = 0; i < 30; i++) await a.putFile(`/dir${i % 3}/f${i}`, file(`f${i}`))
    await syncAll([a, b])
    // each has seen the other's clock: everything is stable
    a.noteMember(b.id, b.state().clock)
    assert.equal(await a.compact(), true)
    assert.deepEqual(a.state().pruned, a.state().clock)
    const c = await replica(sim, options)
    const answer = await a.pull(c.state().clock, 100)
    assert.equal(answer.type, 'snapshot')
    await pullInto(c, a)
    await a.putFile('/after', file('after'))
    await pullInto(c, a)
    assert.equal((await tree(c)).length, 34)
    assert.deepEqual(await tree(c), await tree(a))
    assert.deepEqual(c.state().clock, a.state().clock)
  })

  it('a member away longer than the pruned history bootstraps from a snapshot and keeps the writes it made while away', async () => {
    const sim = { now: 1_000 }
    const options = { compactAfter: 5, memberTimeout: 60_000 }
    const [a, b, away] = [await replica(sim, options), await replica(sim, options), await replica(sim, options)]
    await a.putFile('/common', file('common'))
    await syncAll([a, b, away])
    // away goes offline and writes; the others go on and time it out
    await away.putFile('/offline/1', file('offline'))
    await away.putFile('/common', file('away edit', 5_000))
    for (let i = 0; i < 20; i++) await a.putFile(`/a/${i}`, file(`a${i}`))
    await syncAll([a, b])
    sim.now += 120_000
    a.noteMember(b.id, b.state().clock)
    b.noteMember(a.id, a.state().clock)
    assert.equal(await a.compact(), true)
    assert.equal(await b.compact(), true)
    // back online
    const answer = await a.pull(away.state().clock, 100)
    assert.equal(answer.type, 'snapshot')
    await syncAll([a, b, away])
    const t = await converged([a, b, away])
    assert.ok(t.includes(`/offline/1 ${cidOf('offline').slice(-6)}`), t.join('\n'))
    const common = await b.stat('/common')
    assert.equal(common.type === 'file' && common.cid, cidOf('away edit'))
    assert.equal(t.length, 1 + 2 + 1 + 20)
  })

  it('a snapshot larger than one answer is fetched as byte-bounded prefixes', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    await putMany(a, 3_000)
    const root = await a.snapshot()
    const nodes = await treeNodes(a, root)
    assert.ok(nodes.length >= 3, `${nodes.length} tree nodes`)
    const b = await replica(sim)
    let asks = 0
    let cut = 0
    // one block per answer, as when nodes are large: the walker asks again for the rest
    assert.equal(await b.loadSnapshot(root, async cids => {
      asks++
      const got = await a.blocks(cids, 1)
      if (got.length < cids.length) cut++
      return got
    }, a.id), true)
    // the root, the author's tip, then every tree node, one per answer
    assert.ok(asks >= 2 + nodes.length, `${asks} requests for ${nodes.length} tree nodes`)
    assert.ok(cut > 0, 'some answers were prefixes of what was asked')
    assert.deepEqual(await tree(b), await tree(a))
    // a snapshot served by someone else than its author is refused
    const c = await replica(sim)
    await assert.rejects(c.loadSnapshot(root, async cids => await a.blocks(cids), b.id), (err: any) => err.name === 'InvalidSnapshotError')
  })

  it('a snapshot with a corrupt tree node is refused and changes nothing', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    await putMany(a, 1_500)
    const root = await a.snapshot()
    const nodes = await treeNodes(a, root)
    assert.ok(nodes.length >= 2, `${nodes.length} tree nodes`)
    for (const bad of [nodes[0], nodes[nodes.length - 1]]) {
      const b = await replica(sim)
      await b.putFile('/mine', file('mine'))
      const before = await tree(b)
      await assert.rejects(b.loadSnapshot(root, async cids => {
        const blocks = await a.blocks(cids)
        return blocks.map((bytes, i) => cids[i].equals(bad) ? bytes.slice(1) : bytes)
      }), (err: any) => err.name === 'InvalidSnapshotError' && /snapshot tree/.test(err.message))
      assert.deepEqual(await tree(b), before)
    }
  })

  it('a second compaction writes only the tree nodes that changed; a fresh replica bootstraps from it', async (t) => {
    const sim = { now: 1_000 }
    const options = { compactAfter: 1 }
    const kv = new MemoryKV()
    const [a, b] = [await replica(sim, options, { kv }), await replica(sim, options)]
    await putMany(a, 5_000)
    await syncAll([a, b])
    a.noteMember(b.id, b.state().clock)
    assert.equal(await a.compact(), true)
    const first = await blockKeys(kv)
    const firstNodes = await treeNodes(a, await snapshotRoot(a))
    assert.ok(firstNodes.length >= 5, `${firstNodes.length} tree nodes`)
    // the snapshot's blocks are its tree's nodes and its root, nothing else
    assert.deepEqual([...first].sort(), [...firstNodes.map(String), (await snapshotRoot(a)).toString()].sort())
    // a few paths change: two neighbours (/d0/f00014, /d0/f00021: one leaf) and one far away
    for (const i of [14, 21]) await a.putFile(pathOf(i), file(`changed ${i}`))
    await a.remove(pathOf(3_000))
    await syncAll([a, b])
    a.noteMember(b.id, b.state().clock)
    assert.equal(await a.compact(), true)
    const second = await blockKeys(kv)
    const added = [...second].filter(k => !first.has(k))
    const removed = [...first].filter(k => !second.has(k))
    const secondNodes = await treeNodes(a, await snapshotRoot(a))
    // the 2 changed leaves (3 if a boundary moved), the branch above them, and the signed root
    assert.ok(added.length <= 5, `${added.length} new blocks of ${secondNodes.length + 1}`)
    assert.ok(added.length < secondNodes.length / 2, `${added.length} new blocks of ${secondNodes.length + 1}`)
    assert.equal(added.length, removed.length, 'the nodes replaced (and the old root) are deleted')
    assert.equal(second.size, secondNodes.length + 1)
    t.diagnostic(`first compaction: ${first.size} blocks; second: ${added.length} new, ${removed.length} deleted, ${second.size} in all`)
    // a fresh replica bootstraps from the second snapshot
    const c = await replica(sim, options)
    assert.equal((await a.pull(c.state().clock, 100)).type, 'snapshot')
    await pullInto(c, a)
    assert.equal((await tree(c)).length, 7 + 5_000 - 1, 'the 7 directories and the files but the one removed')
    assert.deepEqual(await tree(c), await tree(a))
    assert.deepEqual(c.state().clock, a.state().clock)
  })
})

/** The path of {@link putMany}'s file i. */
function pathOf (i: number): string {
  return `/d${i % 7}/f${String(i).padStart(5, '0')}`
}

/** Write `n` files ({@link pathOf}), 500 per entry. */
async function putMany (r: Replica, n: number): Promise<void> {
  for (let from = 0; from < n; from += 500) {
    const files = []
    for (let i = from; i < Math.min(n, from + 500); i++) files.push({ path: pathOf(i), record: file(`f${i}`) })
    await r.putFiles(files)
  }
}

/** Every node of the snapshot tree under `root` (a snapshot root), read from `r`. */
async function treeNodes (r: Replica, root: CID): Promise<CID[]> {
  const [rootBytes] = await r.blocks([root])
  const out: CID[] = []
  const visit = async (cid: CID): Promise<void> => {
    out.push(cid)
    const [bytes] = await r.blocks([cid])
    const node = decodeTreeNode(bytes)
    if ('children' in node) for (const [, child] of node.children) await visit(child)
  }
  await visit(decodeSnapshotRoot(rootBytes).tree)
  return out
}

/** The `b!` keys of a store, without the prefix. */
async function blockKeys (kv: MemoryKV): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const [key] of kv.iterate({ gt: 'b!', lt: 'b"' })) out.add(key.slice(2))
  return out
}

/** The root of the snapshot `r` serves to a peer that has nothing. */
async function snapshotRoot (r: Replica): Promise<CID> {
  const answer = await r.pull({}, 1)
  assert.equal(answer.type, 'snapshot')
  return (answer as { root: CID }).root
}
