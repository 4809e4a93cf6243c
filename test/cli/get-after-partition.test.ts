/**
 * `shoal get DIR -o OUT` right after a partition heals, on real daemons: a
 * node saves a tree whole — the other side's files fetched from their
 * holder, the files it added itself (under `replicas:3`, not placed yet: no
 * other node has them) read from its own store — as `shoal cat` reads each
 * of them. Before, `get` listed the tree through one read session on the
 * directory's CID: the providers it asked were those of the directory (a
 * DAG each node builds for itself, so often nobody), and once a file of
 * the other side had been fetched the session took the whole tree to be
 * remote and asked peers for this node's own blocks without looking here.

 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

/** A listen address of `d` with its peer id. */
async function addressOf (d: TestDaemon): Promise<string> {
  const id = await shoalJson<{ addresses: string[] }>(d.repo, ['id'])
  assert.ok(id.addresses.length > 0, 'the daemon listens somewhere')
  return id.addresses[0]
}

/** Names listed at `path` on `d`. */
async function namesAt (d: TestDaemon, path: string): Promise<string> {
  return (await shoalJson<Array<{ name: string }>>(d.repo, ['ls', path])).map(e => e.name).sort().join()
}

/** The CID of the directory `path` on `d` (`stat` builds and stores its directory DAG). */
async function dirCid (d: TestDaemon, path: string): Promise<string> {
  return (await shoalJson<{ cid: string }>(d.repo, ['stat', path])).cid
}

describe('get after a partition heals', () => {
  const ctx = suiteContext()
  let dir: string
  let a: TestDaemon
  /** Content by namespace path. */
  const content = new Map<string, Buffer>()

  /** Write `bytes` to a local file and add it on `d` at `path` under `policy`. */
  async function addOn (d: TestDaemon, path: string, bytes: Buffer, policy: string): Promise<void> {
    const file = join(dir, path.split('/').join('_'))
    await writeFile(file, bytes)
    await shoalOk(d.repo, ['add', file, '--to', path, '--pin', policy])
    content.set(path, bytes)
  }

  before(async () => {
    dir = await tempDir(ctx, 'shoal-get-partition-')
    const [repoA, repoB] = await initSwarm(dir, ['a', 'b'])
    a = await startDaemon(ctx, repoA)
    let b = await startDaemon(ctx, repoB)
    await shoalOk(a.repo, ['peers', 'connect', await addressOf(b)])

    // the partition: b is away while a writes, then a is away while b writes
    await b.stop()
    // replicas:3 with one live node: kept here only, placed once peers are live
    await addOn(a, '/shared/z.bin', randomBytes(250_000), 'replicas:3')
    await addOn(a, '/solo/z.bin', randomBytes(150_000), 'replicas:3')
    await a.stop()
    b = await startDaemon(ctx, repoB)
    // never placed elsewhere: only b holds them
    await addOn(b, '/shared/b.bin', randomBytes(200_000), 'none')
    await addOn(b, '/solo/b.bin', randomBytes(100_000), 'none')

    // the partition heals
    a = await startDaemon(ctx, repoA)
    await shoalOk(a.repo, ['peers', 'connect', await addressOf(b)])
    await eventually('both namespaces hold every file', async () => {
      for (const d of [a, b]) {
        if (await namesAt(d, '/shared') !== 'b.bin,z.bin' || await namesAt(d, '/solo') !== 'b.bin,z.bin') return false
      }
      return true
    }, 30_000)
    // b builds the DAG of /shared (not of /solo): it can serve that directory, and its own files
    assert.equal(await dirCid(b, '/shared'), await dirCid(a, '/shared'), 'one namespace on both sides')
  })

  /** `get PATH` on a into a new directory: every file whole, as `cat` reads it. */
  async function getsWhole (path: string): Promise<void> {
    const out = join(dir, `out${path.split('/').join('_')}`)
    const saved = await shoalJson<{ files: number }>(a.repo, ['get', path, '-o', out])
    assert.equal(saved.files, 2)
    assert.deepEqual((await readdir(out)).sort(), ['b.bin', 'z.bin'])
    for (const name of ['b.bin', 'z.bin']) {
      const expected = content.get(`${path}/${name}`) as Buffer
      assert.equal(Buffer.compare(await readFile(join(out, name)), expected), 0, `${path}/${name} saved whole`)
      assert.equal(Buffer.compare(await shoalOk(a.repo, ['cat', `${path}/${name}`]), expected), 0, `${path}/${name} read by cat`)
    }
  }

  it('reads the files this node added (unplaced) from its store, though a peer serves the rest of the tree', TEST, async () => {
    await getsWhole('/shared')
  })

  it('reads a peer\'s files from their holder, though no peer has the directory', TEST, async () => {
    await getsWhole('/solo')
  })
})
