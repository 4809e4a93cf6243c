/**
 * A change of a file's pin is written onto the version it read, never past a
 * removal (node/files/index.ts `bindPin`, `pinRm`; the namespace's
 * `PutOptions.rewriting`). Found through a mount: `rm -rf` of files just
 * added while a peer was up left a few of them in place, because the
 * background coding looked a file up, the removal landed, and the coding's
 * write of the pin put the file back. Real `Files` over a real namespace and
 * block store on disk; the removal is made to land between the look and the
 * write by running it from inside the look (that moment cannot be hit
 * otherwise, short of a race).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { cborCidOf, cidOf, file, pullInto, replica } from '../namespace/helpers.js'
import { filesOnDisk } from './fixtures.js'
import type { Entry, Replica } from '../../../node/namespace/index.js'

const POLICY = 'ec:4+2'

/** A file at `path` pinned `ec:4+2` and not coded yet: what an add leaves for the background coding. */
async function uncoded (namespace: Replica, path: string, text: string): Promise<void> {
  await namespace.putFile(path, { cid: cidOf(text), size: text.length, mode: 0o644, mtime: 1_000, pin: { policy: POLICY } })
}

/** Runs `action` right after `method` of `namespace` has read `path`, once. */
function afterRead (namespace: Replica, method: 'lookup' | 'stat', path: string, action: () => Promise<unknown>): void {
  const read = namespace[method].bind(namespace) as (p: string) => Promise<Entry | undefined>
  let done = false
  namespace[method] = (async (p: string) => {
    const entry = await read(p)
    if (p === path && !done) {
      done = true
      await action()
    }
    return entry
  }) as any
}

/** Removes `path` right after `method` of `namespace` has read it, once. */
function removedAfterRead (namespace: Replica, method: 'lookup' | 'stat', path: string): void {
  afterRead(namespace, method, path, async () => { await namespace.remove(path) })
}

describe('a pin written onto the version it read', () => {
  it('the background coding binds no pin to a file removed between its look and its write: the file stays removed', async t => {
    const { files, namespace } = await filesOnDisk(t)
    await uncoded(namespace, '/d/gone', 'same bytes')
    await uncoded(namespace, '/d/kept', 'same bytes')
    removedAfterRead(namespace, 'lookup', '/d/gone')
    const manifest = cborCidOf('manifest')
    const bound = await files.bindPin(CID.parse(cidOf('same bytes')), { policy: POLICY, manifest }, ['/d/gone', '/d/kept'])
    assert.deepEqual(bound, { bound: 1, left: ['/d/gone'] }, 'only the file still there is bound; the coding is told which path it left')
    assert.equal(await namespace.lookup('/d/gone'), undefined, 'the removed file did not come back')
    const kept = await namespace.stat('/d/kept')
    assert.ok(kept.type === 'file' && kept.pin?.manifest === manifest)
    assert.deepEqual(await namespace.conflicts(), [])
  })

  it('the background coding binds no pin over a pin rm that landed between its look and its write: the pin rm stands', async t => {
    const { files, namespace } = await filesOnDisk(t)
    await uncoded(namespace, '/f', 'bytes')
    afterRead(namespace, 'lookup', '/f', async () => { await files.pinRm('/f') })
    const bound = await files.bindPin(CID.parse(cidOf('bytes')), { policy: POLICY, manifest: cborCidOf('manifest') }, ['/f'])
    assert.deepEqual(bound, { bound: 0, left: ['/f'] })
    const f = await namespace.stat('/f')
    assert.ok(f.type === 'file' && f.cid === cidOf('bytes'))
    assert.deepEqual(f.pin, { policy: 'none' }, 'unpinned, as the user asked')
  })

  it('the background coding binds no pin to a conflict copy: the conflict stays for the user to resolve', async t => {
    const { files, namespace } = await filesOnDisk(t)
    await uncoded(namespace, '/x', 'mine')
    // another node's version of /x, concurrent and later: mine loses, and is shown as a conflict copy
    const peer = await replica({ now: 5_000 })
    await peer.putFile('/x', { ...file('theirs', 5_000), pin: { policy: POLICY } })
    await pullInto(namespace, peer)
    const [copy, ...more] = await namespace.conflicts()
    assert.ok(copy !== undefined && more.length === 0 && copy.cid === cidOf('mine'), 'mine is the conflict copy')
    const manifest = cborCidOf('manifest')
    // the coding of mine at the path its add noted (theirs is there), and by a scan (a record without paths)
    assert.deepEqual(await files.bindPin(CID.parse(cidOf('mine')), { policy: POLICY, manifest }, ['/x']), { bound: 0, left: ['/x'] })
    assert.deepEqual(await files.bindPin(CID.parse(cidOf('mine')), { policy: POLICY, manifest }), { bound: 0, left: [] })
    assert.deepEqual(await namespace.conflicts(), [copy], 'the conflict is still there, as it was')
    const x = await namespace.stat('/x')
    assert.ok(x.type === 'file' && x.cid === cidOf('theirs'))
    // a user's pin rm of the copy is refused in one line: written at the copy's name, it ended the conflict
    await assert.rejects(files.pinRm(copy.copy), (err: Error) => err.name === 'ConflictCopyError' && err.message.includes(copy.copy) && !err.message.includes('\n'))
    assert.deepEqual(await namespace.conflicts(), [copy])
    const still = await namespace.stat(copy.copy)
    assert.ok(still.type === 'file' && still.conflictOf === '/x' && still.pin?.policy === POLICY, 'the copy as it was')
  })

  it('pin rm of a file removed meanwhile fails with VersionGoneError and writes nothing', async t => {
    const { files, namespace } = await filesOnDisk(t)
    await uncoded(namespace, '/f', 'bytes')
    removedAfterRead(namespace, 'stat', '/f')
    const clock = namespace.state().clock
    await assert.rejects(files.pinRm('/f'), (err: Error) => err.name === 'VersionGoneError' && /\/f: .* no longer there \(removed since it was read\)/.test(err.message))
    assert.equal(await namespace.lookup('/f'), undefined)
    // the removal was the last write
    const after = namespace.state().clock
    assert.equal(Object.values(after).reduce((n, seq) => n + seq, 0), Object.values(clock).reduce((n, seq) => n + seq, 0) + 1)
  })

  it('a change of the file\'s mode or pin meanwhile is no removal: the coding binds over a chmod, and pin rm is made over the coding\'s bind', async t => {
    const { files, namespace } = await filesOnDisk(t)
    await uncoded(namespace, '/chmod', 'bytes')
    afterRead(namespace, 'lookup', '/chmod', async () => { await namespace.putFile('/chmod', { cid: cidOf('bytes'), size: 5, mode: 0o600, mtime: 1_000, pin: { policy: POLICY } }) })
    const manifest = cborCidOf('manifest')
    assert.deepEqual(await files.bindPin(CID.parse(cidOf('bytes')), { policy: POLICY, manifest }, ['/chmod']), { bound: 1, left: [] })
    assert.deepEqual(await files.bindPin(CID.parse(cidOf('bytes')), { policy: POLICY, manifest }, ['/chmod']), { bound: 0, left: [] }, 'a path bound already is not one left')
    const chmodded = await namespace.stat('/chmod')
    assert.ok(chmodded.type === 'file' && chmodded.mode === 0o600 && chmodded.pin?.manifest === manifest, 'bound, and the chmod kept')

    await uncoded(namespace, '/unpinned', 'other bytes')
    afterRead(namespace, 'stat', '/unpinned', async () => { await files.bindPin(CID.parse(cidOf('other bytes')), { policy: POLICY, manifest }, ['/unpinned']) })
    await files.pinRm('/unpinned')
    const unpinned = await namespace.stat('/unpinned')
    assert.ok(unpinned.type === 'file' && unpinned.cid === cidOf('other bytes'))
    assert.deepEqual(unpinned.pin, { policy: 'none' }, 'the pin rm made over the bind, not refused')
  })
})
