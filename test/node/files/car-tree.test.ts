/**
 * TreeShapes on a real block store: each block of an imported tree is read
 * once however many paths link it, a tree too large is refused after its
 * distinct blocks only, and names are checked per directory block.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { TreeShapes, type Shape } from '../../../node/files/car-tree.js'
import { openBlockStore, type CleanupContext } from '../../helpers/temp.js'
import { directory, rawBlock, type Block } from '../../helpers/dags.js'
import type { BlockGetter } from '../../../node/content/index.js'

/** A block store on disk holding `blocks`, and a reader over it that counts its reads. */
async function storeOf (t: CleanupContext, blocks: Block[]): Promise<{ reader: BlockGetter, reads: () => number }> {
  const blockstore = await openBlockStore(t)
  for (const b of blocks) await blockstore.put(b.cid, b.bytes)
  let reads = 0
  return { reader: { getBytes: async (cid, options) => { reads++; return await blockstore.getBytes(cid, options) } }, reads: () => reads }
}

/** Every path a shape names under `path`, in order. */
function paths (shape: Shape, path: string): string[] {
  if (shape.kind !== 'dir') return [path]
  return [path, ...shape.links.flatMap(l => paths(l.shape, `${path}/${l.name}`))]
}

describe('TreeShapes', () => {
  it('a directory linked from two places is read once and named at both', async t => {
    const leaf = await rawBlock('same bytes')
    const sub = await directory([{ name: 'f.txt', block: leaf }])
    const top = await directory([{ name: 'one', block: sub }, { name: 'two', block: sub }, { name: 'g.txt', block: leaf }])
    const { reader, reads } = await storeOf(t, [leaf, sub, top])
    const shapes = new TreeShapes(reader, { maxEntries: 100 })
    const shape = await shapes.root(top.cid)
    assert.deepEqual(paths(shape, '/t'), ['/t', '/t/g.txt', '/t/one', '/t/one/f.txt', '/t/two', '/t/two/f.txt'])
    assert.equal(shape.kind === 'dir' && shape.entries, 6)
    assert.equal(reads(), 3, 'one read per distinct block')
  })

  it('a 22-block tree naming 2^20 paths is refused (TooLargeError) after reading its 22 blocks', async t => {
    const x = await rawBlock('x')
    let level = await directory([{ name: 'leaf.txt', block: x }])
    const blocks: Block[] = [x, level]
    for (let i = 0; i < 20; i++) {
      level = await directory([{ name: 'a', block: level }, { name: 'b', block: level }])
      blocks.push(level)
    }
    const { reader, reads } = await storeOf(t, blocks)
    const shapes = new TreeShapes(reader, { maxEntries: 100_000 })
    await assert.rejects(shapes.root(level.cid), (err: any) => err.name === 'TooLargeError' && /100000 entries/.test(err.message))
    assert.equal(reads(), blocks.length)
  })

  it('the limit holds across roots: two trees of 3 entries pass a limit of 6, a third does not', async t => {
    const trees: Block[] = []
    const blocks: Block[] = []
    for (const name of ['a', 'b', 'c']) {
      const f = await rawBlock(name)
      const d = await directory([{ name: `${name}1`, block: f }, { name: `${name}2`, block: await rawBlock(`${name}!`) }])
      blocks.push(f, await rawBlock(`${name}!`), d)
      trees.push(d)
    }
    const { reader } = await storeOf(t, blocks)
    const shapes = new TreeShapes(reader, { maxEntries: 6 })
    await shapes.root(trees[0].cid)
    await shapes.root(trees[1].cid)
    await assert.rejects(shapes.root(trees[2].cid), (err: any) => err.name === 'TooLargeError')
  })

  it('a name given twice or one that is not a file name is refused (InvalidCARError)', async t => {
    const x = await rawBlock('one')
    const twice = await directory([{ name: 'same', block: x }, { name: 'same', block: x }])
    const dotdot = await directory([{ name: '..', block: x }])
    const { reader } = await storeOf(t, [x, twice, dotdot])
    const shapes = new TreeShapes(reader, { maxEntries: 100 })
    await assert.rejects(shapes.root(twice.cid), (err: any) => err.name === 'InvalidCARError' && /twice/.test(err.message))
    await assert.rejects(shapes.root(dotdot.cid), (err: any) => err.name === 'InvalidCARError' && err.message.includes('".."'))
  })
})
