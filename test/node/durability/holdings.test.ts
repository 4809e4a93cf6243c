/**
 * The durability store on a real LevelDB: manifest records noted without
 * an fsync are visible at once, written in one batch by the next sync, and
 * never lost by a close.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Holdings } from '../../../node/durability/index.js'
import { LevelKV } from '../../../node/namespace/kv.js'
import { tempDir, defer } from '../../helpers/temp.js'

const record = (root: string, role: 'origin' | 'holder' = 'origin'): { root: string, k: number, m: number, role: 'origin' | 'holder', since: number } => ({ root, k: 1, m: 2, role, since: 1 })

describe('Holdings', () => {
  it('keeps records noted without sync readable, lists them, and writes them with the next sync', async t => {
    const dir = join(await tempDir(t), 'durability')
    let holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    await holdings.noteManifest('m1', record('r1'), false)
    await holdings.noteManifest('m2', record('r2'), false)
    // a holder note never demotes an origin record, even before it is written
    await holdings.noteManifest('m1', record('r1', 'holder'), false)
    assert.equal((await holdings.manifest('m1'))?.role, 'origin')
    const listed: string[] = []
    for await (const [id] of holdings.manifests()) listed.push(id)
    assert.deepEqual(listed, ['m1', 'm2'])
    await holdings.noteManifest('m3', record('r3'), false)
    await holdings.sync()
    await holdings.forget('m2')
    await holdings.close()
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    assert.deepEqual((await holdings.manifest('m3'))?.root, 'r3')
    assert.equal(await holdings.manifest('m2'), undefined)
    const after: string[] = []
    for await (const [id] of holdings.manifests()) after.push(id)
    assert.deepEqual(after, ['m1', 'm3'])
  })

  it('writes unwritten records when it closes', async t => {
    const dir = join(await tempDir(t), 'durability')
    let holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    await holdings.noteManifest('m1', record('r1'), false)
    await holdings.close()
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    assert.equal((await holdings.manifest('m1'))?.root, 'r1')
  })
})
