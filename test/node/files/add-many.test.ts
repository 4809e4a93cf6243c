/**
 * `Files.addMany` on a real LevelDB block store and namespace: a batch is
 * one namespace entry, its bytes read back intact, and garbage collection
 * running during the batch keeps its blocks (the batch holds the GC lock
 * shared until its entry is written).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { filesOnDisk } from './fixtures.js'
import { parseChunker } from '../../../node/content/index.js'
import { pino } from 'pino'
import { Files, type AddManyItem } from '../../../node/files/index.js'
import type { DurabilityService } from '../../../node/durability/index.js'
import type { BlockReader } from '../../../node/reads/index.js'
import type { CID } from 'multiformats/cid'

const chunker = parseChunker('size-65536')
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Bytes in pieces, the later ones only once `gate` opens. */
async function * gated (bytes: Uint8Array, gate: Promise<void>): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += 50_000) {
    if (i > 0) await gate
    yield bytes.subarray(i, i + 50_000)
  }
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

describe('Files.addMany', () => {
  it('binds a batch as one entry; a collection during the batch waits for it and keeps its blocks', { timeout: 60_000 }, async t => {
    const { files, namespace, gc } = await filesOnDisk(t)

    const small = [randomBytes(10), randomBytes(4096), Buffer.alloc(0)]
    const big = randomBytes(300_000)
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const seq = namespace.state().clock[namespace.id] ?? 0
    const adding = files.addMany([
      { path: '/batch/s0', source: once(small[0]) },
      { path: '/batch/big', source: gated(big, gate), mode: 0o600 },
      { path: '/batch/s1', source: once(small[1]) },
      { path: '/batch/empty', source: once(small[2]) }
    ], { chunker })
    await new Promise(resolve => setTimeout(resolve, 100))
    let collected = false
    const collecting = gc().then(r => { collected = true; return r })
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(collected, false, 'the collection waits for the batch in flight')
    open()
    const infos = await adding
    assert.deepEqual(infos.map(i => [i.path, i.size]), [['/batch/s0', 10], ['/batch/big', 300_000], ['/batch/s1', 4096], ['/batch/empty', 0]])
    assert.equal(infos[1].mode, 0o600)
    assert.equal(namespace.state().clock[namespace.id], seq + 1, 'one namespace entry for the whole batch')
    assert.equal((await collecting).removed, 0)
    await gc()
    const read = async (path: string): Promise<Buffer> => {
      const chunks: Uint8Array[] = []
      for await (const c of files.cat(path)) chunks.push(c)
      return Buffer.concat(chunks)
    }
    assert.equal(sha(await read('/batch/big')), sha(big))
    assert.equal(sha(await read('/batch/s0')), sha(small[0]))
    assert.equal(sha(await read('/batch/s1')), sha(small[1]))
    assert.equal((await read('/batch/empty')).byteLength, 0)
  })

  it('refuses a batch naming a directory, binding none of it', async t => {
    const { files, namespace } = await filesOnDisk(t, { gcLock: false })
    await files.mkdir('/d')
    await assert.rejects(files.addMany([{ path: '/x', source: once(randomBytes(5)) }, { path: '/d', source: once(randomBytes(5)) }], { chunker }), { name: 'IsADirectoryError' })
    assert.equal(await namespace.lookup('/x'), undefined)
  })
})

describe('Files.addMany behind a placement backlog', () => {
  it('never waits for placement: past the backlog\'s bound, a batch is left to the periodic pass', { timeout: 60_000 }, async t => {
    const { blockstore, namespace } = await filesOnDisk(t)
    // a durability service whose background coding of each file waits for the test to let it go
    const released: Array<() => void> = []
    const asked: string[] = []
    const durability = {
      defaultPolicy: () => 'ec:2+1',
      defer: async () => {},
      sync: async () => {},
      codeDeferred: async (root: CID) => {
        asked.push(root.toString())
        await new Promise<void>(resolve => released.push(resolve))
        return 'coded'
      }
    } as unknown as DurabilityService
    // nothing is read back here: no block service is needed
    const blocks = {} as unknown as BlockReader
    const files = new Files({ blockstore, namespace, logger: pino({ level: 'silent' }), durability, blocks }, { maxPlacementBacklog: 8 })
    const batch = (from: number, n: number): AddManyItem[] => Array.from({ length: n }, (_, i) => ({ path: `/b/f${from + i}`, source: once(Buffer.from(`file ${from + i}`)) }))
    // 6 files queued for placement, none placed yet (every coding waits)
    const first = await files.addMany(batch(0, 6), { chunker })
    // 6 more would pass the bound of 8: this batch returns at once all the same, its files left to the periodic pass
    const second = await files.addMany(batch(6, 6), { chunker })
    assert.equal(files.leftToRepair, 6)
    // 2 more fit
    const third = await files.addMany(batch(12, 2), { chunker })
    assert.equal(files.leftToRepair, 6)
    for (let i = 0; i < 8; i++) {
      await until(() => released.length > 0)
      released.shift()?.()
    }
    await files.settled()
    assert.deepEqual(asked.sort(), [...first, ...third].map(f => f.cid).sort(), 'the queued batches were coded; the one past the bound was not')
    const policies = await Promise.all(second.map(async f => { const e = await namespace.stat(f.path as string); return e.type === 'file' ? e.pin?.policy : undefined }))
    assert.deepEqual(policies, Array(6).fill('ec:2+1'), 'the files left to the pass carry their policy, to be coded there')
  })
})

describe('Files: background placement', () => {
  it('codes and places several files at once, one at a time while adds run and shortly after', { timeout: 60_000 }, async t => {
    const { blockstore, namespace } = await filesOnDisk(t)
    const released: Array<() => void> = []
    let running = 0
    let most = 0
    const durability = {
      defaultPolicy: () => 'ec:2+1',
      defer: async () => {},
      sync: async () => {},
      codeDeferred: async () => {
        most = Math.max(most, ++running)
        await new Promise<void>(resolve => released.push(resolve))
        running--
        return 'coded'
      }
    } as unknown as DurabilityService
    const blocks = {} as unknown as BlockReader
    const files = new Files({ blockstore, namespace, logger: pino({ level: 'silent' }), durability, blocks }, { placementConcurrency: 4, foregroundQuietMs: 300 })
    const batch = (from: number, n: number): AddManyItem[] => Array.from({ length: n }, (_, i) => ({ path: `/p/f${from + i}`, source: once(Buffer.from(`file ${from + i}`)) }))
    await files.addMany(batch(0, 10), { chunker })
    // just after an add: one at a time
    await until(() => running === 1)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(running, 1, 'one placement at a time right after an add')
    // quiet for a while: up to the concurrency
    await until(() => running === 4)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(most, 4, 'never more than the concurrency')
    // an add while four run: those finish, and the next start one at a time again
    await files.addMany(batch(10, 1), { chunker })
    for (let i = 0; i < 4; i++) released.shift()?.()
    await until(() => running === 1)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(running, 1, 'back to one at a time while adds are recent')
    while (released.length > 0 || running > 0) {
      released.shift()?.()
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    await files.settled()
    assert.equal(most, 4)
  })
})

/** Resolves once `check` holds (bounded). */
async function until (check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise(resolve => setTimeout(resolve, 5))
  assert.ok(check(), 'the condition never held')
}
