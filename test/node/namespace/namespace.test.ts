import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createNamespace, normalizePath, signerFromKey, type Namespace } from '../../../node/namespace/index.js'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { InvalidPathError } from '../../../node/errors.js'

const CID_A = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const CID_B = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'

async function openNamespace (t: CleanupContext, dir?: string): Promise<{ ns: Namespace, dir: string }> {
  const where = dir ?? join(await tempDir(t), 'ns')
  const ns = createNamespace({ path: where, signer: signerFromKey(await generateKeyPair('Ed25519')), logger: pino({ level: 'silent' }) })
  await ns.open()
  defer(t, async () => { await ns.close() })
  return { ns, dir: where }
}

function file (cid = CID_A, size = 0): { cid: string, size: number, mode: number, mtime: number } {
  return { cid, size, mode: 0o644, mtime: 1_700_000_000_000 }
}

async function paths (ns: Namespace, dir = '/'): Promise<string[]> {
  const out: string[] = []
  for await (const e of ns.walk(dir)) out.push(e.type === 'dir' ? e.path + '/' : e.path)
  return out
}

async function rejects (p: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(p, (err: any) => { assert.equal(err.name, name); return true })
}

describe('namespace paths', () => {
  it('normalises and rejects malformed paths', () => {
    assert.equal(normalizePath('/'), '/')
    assert.equal(normalizePath('/a/b/'), '/a/b')
    for (const bad of ['', 'a/b', '/a//b', '/a/./b', '/a/../b', '/a\0b']) {
      assert.throws(() => normalizePath(bad), (err: any) => err.name === 'InvalidPathError', JSON.stringify(bad.slice(0, 20)))
    }
    // too long: a subclass, which the mount answers with ENAMETOOLONG
    for (const long of ['/' + 'x'.repeat(256), '/' + 'a/'.repeat(2100)]) {
      assert.throws(() => normalizePath(long), (err: any) => err.name === 'NameTooLongError' && err instanceof InvalidPathError, JSON.stringify(long.slice(0, 20)))
    }
  })
})

describe('namespace replica on LevelDB (single node)', () => {
  it('putFile creates missing parents and replaces an existing file', async (t) => {
    const { ns } = await openNamespace(t)
    await ns.putFile('/a/b/c.txt', file(CID_A, 1))
    assert.deepEqual(await paths(ns), ['/a/', '/a/b/', '/a/b/c.txt'])
    await ns.putFile('/a/b/c.txt', file(CID_B, 11))
    const e = await ns.stat('/a/b/c.txt')
    assert.equal(e.type === 'file' && e.cid, CID_B)
    assert.equal(e.name, 'c.txt')
  })

  it('refuses a file over a directory and a file as a parent', async (t) => {
    const { ns } = await openNamespace(t)
    await ns.mkdir('/d')
    await rejects(ns.putFile('/d', file()), 'IsADirectoryError')
    await ns.putFile('/f', file())
    await rejects(ns.putFile('/f/x', file()), 'NotADirectoryError')
    await rejects(ns.mkdir('/f/x', { parents: true }), 'NotADirectoryError')
    assert.deepEqual(await paths(ns), ['/d/', '/f'])
  })

  it('lists children sorted, not grandchildren, and not siblings sharing a prefix', async (t) => {
    const { ns } = await openNamespace(t)
    for (const p of ['/a/z', '/a/b', '/a/sub/deep', '/ab/x', '/a-b']) await ns.putFile(p, file())
    assert.deepEqual((await ns.list('/a')).map(e => e.name), ['b', 'sub', 'z'])
    assert.deepEqual((await ns.list('/')).map(e => e.name), ['a', 'a-b', 'ab'])
    await rejects(ns.list('/a/b'), 'NotADirectoryError')
    await rejects(ns.list('/nope'), 'NotFoundError')
  })

  it('mkdir needs the parent unless parents is set; existing is an error unless parents', async (t) => {
    const { ns } = await openNamespace(t)
    await rejects(ns.mkdir('/x/y'), 'NotFoundError')
    await ns.mkdir('/x/y', { parents: true })
    await rejects(ns.mkdir('/x/y'), 'AlreadyExistsError')
    assert.equal((await ns.mkdir('/x/y', { parents: true })).type, 'dir')
    await rejects(ns.mkdir('/'), 'AlreadyExistsError')
  })

  it('move renames a subtree atomically and moves into existing directories', async (t) => {
    const { ns } = await openNamespace(t)
    await ns.putFile('/src/a/1', file())
    await ns.putFile('/src/2', file())
    await ns.mkdir('/dst')
    const moved = await ns.move('/src', '/dst')
    assert.equal(moved.path, '/dst/src')
    assert.deepEqual(await paths(ns), ['/dst/', '/dst/src/', '/dst/src/2', '/dst/src/a/', '/dst/src/a/1'])
    await ns.move('/dst/src/2', '/dst/two')
    assert.equal((await ns.stat('/dst/two')).type, 'file')
  })

  it('move refuses overwriting, moving into itself, missing sources and missing parents, changing nothing', async (t) => {
    const { ns } = await openNamespace(t)
    await ns.putFile('/d/a', file())
    await ns.putFile('/d/b', file())
    const before = await paths(ns)
    await rejects(ns.move('/d/a', '/d/b'), 'AlreadyExistsError')
    await rejects(ns.move('/d', '/d/inner'), 'InvalidArgumentError')
    await rejects(ns.move('/nope', '/x'), 'NotFoundError')
    await rejects(ns.move('/d/a', '/no/such/place'), 'NotFoundError')
    await rejects(ns.move('/', '/x'), 'InvalidArgumentError')
    assert.deepEqual(await paths(ns), before)
  })

  it('refuses an mtime no clock gives (past what a date holds: no peer would take the entry), changing nothing', async (t) => {
    const { ns } = await openNamespace(t)
    await ns.putFile('/d/a', file())
    const before = await paths(ns)
    const late = 8_640_000_000_000_001
    await rejects(ns.putFile('/d/a', { ...file(CID_B), mtime: late }), 'InvalidArgumentError')
    await rejects(ns.putFile('/d/new', { ...file(), mtime: Number.MAX_SAFE_INTEGER }), 'InvalidArgumentError')
    await rejects(ns.putFiles([{ path: '/d/b', record: file() }, { path: '/d/c', record: { ...file(), mtime: late } }]), 'InvalidArgumentError')
    await rejects(ns.mkdir('/e', { mtime: late }), 'InvalidArgumentError')
    assert.deepEqual(await paths(ns), before)
    assert.deepEqual(await ns.stat('/d/a'), { type: 'file', ...file(), path: '/d/a', name: 'a' })
    // the latest a date holds is a time
    await ns.putFile('/d/a', { ...file(CID_B), mtime: 8_640_000_000_000_000 })
    assert.equal((await ns.stat('/d/a')).mtime, 8_640_000_000_000_000)
  })

  it('remove: files, empty dirs, recursive dirs; never the root', async (t) => {
    const { ns } = await openNamespace(t)
    await ns.putFile('/t/a/1', file())
    await ns.mkdir('/e')
    await rejects(ns.remove('/t'), 'DirectoryNotEmptyError')
    assert.equal((await paths(ns)).length, 4)
    await ns.remove('/e')
    await ns.remove('/t', { recursive: true })
    assert.deepEqual(await paths(ns), [])
    await rejects(ns.remove('/'), 'InvalidArgumentError')
    await rejects(ns.remove('/t'), 'NotFoundError')
  })

  it('survives close and reopen (every mutation is committed)', async (t) => {
    const { ns, dir } = await openNamespace(t)
    await ns.putFile('/keep/me', file(CID_B, 11))
    await ns.move('/keep', '/kept')
    await ns.close()
    const { ns: again } = await openNamespace(t, dir)
    const e = await again.stat('/kept/me')
    assert.deepEqual(e, { type: 'file', ...file(CID_B, 11), path: '/kept/me', name: 'me' })
  })

  it('serialises concurrent mutations', async (t) => {
    const { ns } = await openNamespace(t)
    const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) => await ns.mkdir('/same', { mtime: i })))
    assert.equal(results.filter(r => r.status === 'fulfilled').length, 1)
    assert.equal(results.filter(r => r.status === 'rejected').length, 19)
    await Promise.all(Array.from({ length: 50 }, async (_, i) => await ns.putFile(`/many/f${i}`, file())))
    assert.equal((await ns.list('/many')).length, 50)
  })
})
