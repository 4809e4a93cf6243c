/**
 * A real node that lost its namespace store (same key, empty store) must
 * not reuse one of its own past seqs: its first write waits until a peer
 * told it how far its own writes went and it pulled them back. Two real
 * nodes on 127.0.0.1 with LevelDB stores; the store is deleted on disk.
 * With `SHOAL_NAMESPACE_RECOVERY=skip` (the behaviour before recovery) it
 * fails: A reuses its seq 1, B refuses it, the trees never agree. And a
 * node restored from an old copy of its store that writes the moment it is
 * back (the check after a restart).
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { makeRepo, startNode, until } from '../../helpers/swarm.js'
import { randomBytes } from '../../helpers/bytes.js'
import { parseChunker } from '../../../node/content/index.js'
import { defer, tempDir } from '../../helpers/temp.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 120_000 }

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

/** Add a small file, not coded (two nodes cannot hold a striped file). */
async function put (node: ShoalNode, path: string, seed: number): Promise<void> {
  await node.components.files.add(path, once(randomBytes(1000, seed)), { chunker: parseChunker('size-262144'), pin: 'none' })
}

/** Every visible path of a node with what it holds, sorted. */
async function tree (node: ShoalNode): Promise<string[]> {
  const out: string[] = []
  for await (const e of node.components.namespace.walk('/')) out.push(`${e.path} ${e.type} ${e.type === 'file' ? String(e.cid) : ''}`)
  return out.sort()
}

async function dial (from: ShoalNode, to: ShoalNode): Promise<void> {
  await from.components.libp2p.dial(multiaddr(to.components.libp2p.getMultiaddrs()[0].toString()))
}

/** Two repos in a temp dir, and a start that tracks the running nodes (all stopped when the test ends). */
async function twoRepos (t: TestContext, prefix: string): Promise<{ dir: string, repoA: string, repoB: string, nodes: Set<ShoalNode>, start: (repo: string) => Promise<ShoalNode> }> {
  const dir = await tempDir(t, prefix)
  const [repoA, repoB] = [await makeRepo(dir, 'a'), await makeRepo(dir, 'b')]
  const nodes = new Set<ShoalNode>()
  defer(t, async () => { for (const n of nodes) await n.stop().catch(() => {}) })
  const start = async (repo: string): Promise<ShoalNode> => {
    const node = await startNode(repo)
    nodes.add(node)
    return node
  }
  return { dir, repoA, repoB, nodes, start }
}

describe('a node that lost its namespace store', () => {
  it('writes only once it has its own past writes back; both nodes end with every write, nothing rejected', TEST, async t => {
    const { repoA, repoB, nodes, start } = await twoRepos(t, 'shoal-disk-loss-')
    let a = await start(repoA)
    const b = await start(repoB)
    await dial(a, b)

    // A writes twice; B has both
    await put(a, '/before-1.txt', 1)
    await put(a, '/before-2.txt', 2)
    await until('B to have A\'s writes', async () => (await b.components.namespace.lookup('/before-2.txt')) !== undefined)

    // A stops, its namespace store is lost, it starts again with the same key
    await a.stop()
    nodes.delete(a)
    await rm(join(repoA, 'namespace'), { recursive: true, force: true })
    a = await start(repoA)
    assert.equal(await a.components.namespace.lookup('/before-1.txt'), undefined, 'the store is empty')

    // a write before any peer answered waits; it goes through once A is back in touch with B
    const writing = put(a, '/after.txt', 3)
    await dial(a, b)
    await writing

    await until('both nodes to hold every write', async () => {
      const [ta, tb] = [await tree(a), await tree(b)]
      return ta.length === tb.length && ta.every((line, i) => line === tb[i]) && ta.some(l => l.startsWith('/after.txt ')) && ta.some(l => l.startsWith('/before-1.txt '))
    })
    const paths = (await tree(a)).map(l => l.split(' ')[0])
    assert.deepEqual(paths, ['/after.txt', '/before-1.txt', '/before-2.txt'])
    assert.equal(a.components.namespace.rejected, 0, 'A refused nothing')
    assert.equal(b.components.namespace.rejected, 0, 'B refused nothing: A did not reuse a seq')
  })

  it('restored from an old copy of its store, its first write waits for the peer\'s word and reuses no seq', TEST, async t => {
    const { dir, repoA, repoB, nodes, start } = await twoRepos(t, 'shoal-backup-restore-')
    let a = await start(repoA)
    const b = await start(repoB)
    await dial(a, b)
    await put(b, '/from-b.txt', 4)
    await put(a, '/before-1.txt', 1)
    await until('each to have the other\'s write', async () => (await b.components.namespace.lookup('/before-1.txt')) !== undefined && (await a.components.namespace.lookup('/from-b.txt')) !== undefined)

    // a copy of A's store now (stopped, as a backup tool would take it), then one more write of A's
    await a.stop()
    nodes.delete(a)
    const backup = join(dir, 'namespace-backup')
    await cp(join(repoA, 'namespace'), backup, { recursive: true })
    a = await start(repoA)
    await dial(a, b)
    await put(a, '/before-2.txt', 2)
    await until('B to have A\'s second write', async () => (await b.components.namespace.lookup('/before-2.txt')) !== undefined)

    // A comes back on the old copy and writes at once: it must not number that write 2 again
    await a.stop()
    nodes.delete(a)
    await rm(join(repoA, 'namespace'), { recursive: true, force: true })
    await cp(backup, join(repoA, 'namespace'), { recursive: true })
    a = await start(repoA)
    assert.equal(await a.components.namespace.lookup('/before-2.txt'), undefined, 'the old copy lacks the second write')
    assert.equal(a.components.namespace.recovering, true, 'the restarted store checks with a peer before writing')
    const writing = put(a, '/after.txt', 3)
    await dial(a, b)
    await writing

    await until('both nodes to hold every write', async () => {
      const [ta, tb] = [await tree(a), await tree(b)]
      return ta.length === tb.length && ta.every((line, i) => line === tb[i]) && ta.some(l => l.startsWith('/after.txt '))
    })
    assert.deepEqual((await tree(a)).map(l => l.split(' ')[0]), ['/after.txt', '/before-1.txt', '/before-2.txt', '/from-b.txt'])
    assert.equal(a.components.namespace.rejected, 0, 'A refused nothing')
    assert.equal(b.components.namespace.rejected, 0, 'B refused nothing: A did not reuse its seq 2')
  })
})
