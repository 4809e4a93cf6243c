/**
 * `MemoryKV`: range reads (gt/gte/lt/lte, reverse, limit) and iterations
 * that read the store as it was when they started while batches write it —
 * fixed cases, then seeded random operations run against a real `LevelKV`
 * in a temporary directory with the same answers expected.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelKV, MemoryKV, encodeJSON, getMany, type KV, type KVOp, type KVRange } from '../../../node/namespace/kv.js'
import { Prng } from '../../../simulations/prng.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

function put (key: string, value = key): KVOp { return { type: 'put', key, value: encoder.encode(value) } }
function del (key: string): KVOp { return { type: 'del', key } }

/** The entries of a range as [key, value text] pairs. */
async function read (kv: KV, range: KVRange): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const [key, value] of kv.iterate(range)) out.push([key, decoder.decode(value)])
  return out
}

async function keys (kv: KV, range: KVRange): Promise<string[]> {
  return (await read(kv, range)).map(([key]) => key)
}

/** A seeded source (the simulations' mulberry32): `rand(n)` is uniform in 0..n-1, and the test replays exactly. */
function prng (seed: number): (n: number) => number {
  const p = new Prng(seed)
  return n => p.int(0, n - 1)
}

async function filled (): Promise<MemoryKV> {
  const kv = new MemoryKV()
  await kv.batch(['a', 'b', 'c', 'd', 'e', 'f'].map(k => put(k)))
  return kv
}

describe('MemoryKV ranges', () => {
  it('honours gt, gte, lt and lte, alone and together', async () => {
    const kv = await filled()
    assert.deepEqual(await keys(kv, {}), ['a', 'b', 'c', 'd', 'e', 'f'])
    assert.deepEqual(await keys(kv, { gt: 'b' }), ['c', 'd', 'e', 'f'])
    assert.deepEqual(await keys(kv, { gte: 'b' }), ['b', 'c', 'd', 'e', 'f'])
    assert.deepEqual(await keys(kv, { lt: 'd' }), ['a', 'b', 'c'])
    assert.deepEqual(await keys(kv, { lte: 'd' }), ['a', 'b', 'c', 'd'])
    assert.deepEqual(await keys(kv, { gt: 'b', lt: 'e' }), ['c', 'd'])
    assert.deepEqual(await keys(kv, { gte: 'bb', lte: 'dd' }), ['c', 'd'])
    assert.deepEqual(await keys(kv, { gt: 'f' }), [])
    assert.deepEqual(await keys(kv, { lt: 'a' }), [])
    assert.deepEqual(await keys(kv, { gt: 'd', lt: 'c' }), [])
    // As LevelDB: gte wins over gt, lte over lt.
    assert.deepEqual(await keys(kv, { gt: 'b', gte: 'c', lt: 'e', lte: 'd' }), ['c', 'd'])
    assert.deepEqual(await keys(kv, { gt: 'c', gte: 'b', lt: 'd', lte: 'e' }), ['b', 'c', 'd', 'e'])
  })

  it('honours reverse and limit', async () => {
    const kv = await filled()
    assert.deepEqual(await keys(kv, { reverse: true }), ['f', 'e', 'd', 'c', 'b', 'a'])
    assert.deepEqual(await keys(kv, { gt: 'b', lte: 'e', reverse: true }), ['e', 'd', 'c'])
    assert.deepEqual(await keys(kv, { gte: 'b', lt: 'e', reverse: true }), ['d', 'c', 'b'])
    assert.deepEqual(await keys(kv, { limit: 2 }), ['a', 'b'])
    assert.deepEqual(await keys(kv, { limit: 2, reverse: true }), ['f', 'e'])
    assert.deepEqual(await keys(kv, { gt: 'a', lt: 'f', limit: 3, reverse: true }), ['e', 'd', 'c'])
    assert.deepEqual(await keys(kv, { limit: 0 }), [])
    assert.deepEqual(await keys(kv, { limit: -1 }), ['a', 'b', 'c', 'd', 'e', 'f'])
    assert.deepEqual(await keys(kv, { limit: 100 }), ['a', 'b', 'c', 'd', 'e', 'f'])
  })

  it('keeps the keys sorted through single writes, small batches and large ones, read between them or not', async () => {
    const kv = new MemoryKV()
    const rand = prng(5)
    const reference = new Map<string, string>()
    const sorted = (): Array<[string, string]> => [...reference].sort(([a], [b]) => a < b ? -1 : 1)
    for (let round = 0; round < 200; round++) {
      // reads between the writes see the sorted keys of that moment
      if (rand(4) === 0) assert.deepEqual(await read(kv, {}), sorted(), `before round ${round}`)
      const size = [1, 3, 100][rand(3)]
      const ops: KVOp[] = []
      for (let i = 0; i < size; i++) {
        const key = `k${rand(400)}`
        if (rand(3) === 0) {
          ops.push(del(key))
          reference.delete(key)
        } else {
          ops.push(put(key, `${round}`))
          reference.set(key, `${round}`)
        }
      }
      await kv.batch(ops)
    }
    assert.deepEqual(await read(kv, {}), sorted())
    assert.equal(kv.size, reference.size)
  })

  it('getMany reads keys in their order, undefined for missing ones, in memory and in LevelDB alike', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-kv-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const level = new LevelKV(dir)
    await level.open()
    t.after(async () => { await level.close() })
    for (const kv of [await filled(), level]) {
      if (kv === level) await kv.batch(['a', 'b', 'c', 'd', 'e', 'f'].map(k => put(k)), true)
      const values = await getMany(kv, ['e', 'zz', 'a', 'c', 'a'])
      assert.deepEqual(values.map(v => v === undefined ? undefined : decoder.decode(v)), ['e', undefined, 'a', 'c', 'a'])
      // as get would read them
      assert.deepEqual(values, await Promise.all(['e', 'zz', 'a', 'c', 'a'].map(async k => await kv.get(k))))
    }
  })

  it('keeps its own copy of a value that is a view into a larger buffer', async () => {
    const kv = new MemoryKV()
    const slab = encoder.encode('xxabcxx')
    await kv.batch([{ type: 'put', key: 'k', value: slab.subarray(2, 5) }])
    slab.fill(0)
    const value = await kv.get('k')
    assert.equal(decoder.decode(value), 'abc')
    assert.equal(value?.buffer.byteLength, 3, 'the whole buffer is not kept for one value')
  })

  it('copies a row encodeJSON sliced from the shared Buffer pool (a Buffer\'s slice() would share it)', async () => {
    const kv = new MemoryKV()
    const row = encodeJSON({ a: 1 })
    assert.ok(row.buffer.byteLength > row.byteLength, 'a small row is a view into the pool')
    await kv.batch([{ type: 'put', key: 'k', value: row }])
    const value = await kv.get('k')
    assert.equal(decoder.decode(value), '{"a":1}')
    assert.equal(value?.buffer.byteLength, row.byteLength, 'the pool slab is not kept for one row')
  })
})

describe('MemoryKV iterations while the store is written', () => {
  it('read the store as it was at their first step', async () => {
    const kv = await filled()
    const it = kv.iterate({ gt: 'a' })[Symbol.asyncIterator]()
    assert.deepEqual((await it.next()).value?.[0], 'b')
    await kv.batch([del('c'), put('cc'), put('d', 'new'), del('e'), put('e', 'again'), put('g'), del('b')])
    const rest: Array<[string, string]> = []
    for (let r = await it.next(); r.done !== true; r = await it.next()) rest.push([r.value[0], decoder.decode(r.value[1])])
    assert.deepEqual(rest, [['c', 'c'], ['d', 'd'], ['e', 'e'], ['f', 'f']])
    assert.deepEqual(await keys(kv, {}), ['a', 'cc', 'd', 'e', 'f', 'g'])
  })

  it('in reverse and with a limit, over several batches and a large one', async () => {
    const kv = await filled()
    const it = kv.iterate({ lt: 'f', limit: 4, reverse: true })[Symbol.asyncIterator]()
    assert.deepEqual((await it.next()).value?.[0], 'e')
    await kv.batch([del('d'), put('dd')])
    assert.deepEqual((await it.next()).value?.[0], 'd')
    await kv.batch([put('d'), del('c')])
    await kv.batch(Array.from({ length: 100 }, (_, i) => put(`b${i}`)))
    await kv.batch([del('c'), del('b')])
    const rest: string[] = []
    for (let r = await it.next(); r.done !== true; r = await it.next()) rest.push(r.value[0])
    assert.deepEqual(rest, ['c', 'b'])
  })

  it('see writes made before their first step, and none after one that breaks off', async () => {
    const kv = await filled()
    const iterable = kv.iterate({})
    await kv.batch([del('a'), put('aa')])
    const seen: string[] = []
    for await (const [key] of iterable) {
      seen.push(key)
      if (key === 'b') break
    }
    assert.deepEqual(seen, ['aa', 'b'])
    await kv.batch([put('a')])
    assert.deepEqual(await keys(kv, { lt: 'b' }), ['a', 'aa'])
  })

  it('answer as LevelKV does for seeded random writes, ranges and interleavings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-memory-kv-'))
    try {
      for (const seed of [1, 2, 3]) {
        const level = new LevelKV(join(dir, String(seed)))
        await level.open()
        try {
          await compare(seed, [new MemoryKV(), level])
        } finally {
          await level.close()
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

/** A random key from a small alphabet, so that ranges, writes and iterations collide. */
function randomKey (rand: (n: number) => number): string {
  let key = ''
  const length = 1 + rand(3)
  for (let i = 0; i < length; i++) key += 'abcdé'[rand(5)]
  return key
}

function randomRange (rand: (n: number) => number): KVRange {
  const range: KVRange = {}
  const a = randomKey(rand)
  const b = randomKey(rand)
  const [lo, hi] = a < b ? [a, b] : [b, a]
  switch (rand(3)) { case 0: range.gt = lo; break; case 1: range.gte = lo; break }
  switch (rand(3)) { case 0: range.lt = hi; break; case 1: range.lte = hi; break }
  if (rand(2) === 0) range.reverse = true
  if (rand(3) === 0) range.limit = rand(8)
  return range
}

function randomBatch (rand: (n: number) => number, round: number): KVOp[] {
  const ops: KVOp[] = []
  const size = rand(4) === 0 ? 40 + rand(40) : 1 + rand(5)
  for (let i = 0; i < size; i++) ops.push(rand(3) === 0 ? del(randomKey(rand)) : put(randomKey(rand), `${round}.${i}`))
  return ops
}

/**
 * The same random operations on every store of `stores`: batches, range
 * reads, and up to three iterations open at once, stepped and written
 * under; every answer must be the same on each store.
 */
async function compare (seed: number, stores: KV[]): Promise<void> {
  const rand = prng(seed)
  type Open = Array<AsyncIterator<[string, Uint8Array]>>
  const open: Array<{ its: Open, range: KVRange }> = []
  const step = async (its: Open, what: string): Promise<boolean> => {
    const results = await Promise.all(its.map(async it => await it.next()))
    const seen = results.map(r => r.done === true ? null : [r.value[0], decoder.decode(r.value[1])])
    for (const s of seen.slice(1)) assert.deepEqual(s, seen[0], what)
    return seen[0] !== null
  }
  for (let round = 0; round < 400; round++) {
    const action = rand(10)
    if (action < 4) {
      const ops = randomBatch(rand, round)
      for (const kv of stores) await kv.batch(ops, false)
    } else if (action < 6) {
      const range = randomRange(rand)
      const answers = await Promise.all(stores.map(async kv => await read(kv, range)))
      for (const a of answers.slice(1)) assert.deepEqual(a, answers[0], `seed ${seed} round ${round} ${JSON.stringify(range)}`)
    } else if (action < 8 && open.length < 3) {
      const range = randomRange(rand)
      const its = stores.map(kv => kv.iterate(range)[Symbol.asyncIterator]())
      open.push({ its, range })
      if (rand(3) !== 0 && !await step(its, `seed ${seed} round ${round} first ${JSON.stringify(range)}`)) open.pop()
    } else if (open.length > 0) {
      const i = rand(open.length)
      const o = open[i]
      if (rand(5) === 0) {
        await Promise.all(o.its.map(async it => await it.return?.()))
        open.splice(i, 1)
        continue
      }
      for (let k = 1 + rand(3); k > 0; k--) {
        if (!await step(o.its, `seed ${seed} round ${round} ${JSON.stringify(o.range)}`)) {
          open.splice(i, 1)
          break
        }
      }
    }
  }
  for (const o of open) while (await step(o.its, `seed ${seed} end ${JSON.stringify(o.range)}`));
  const answers = await Promise.all(stores.map(async kv => await read(kv, {})))
  for (const a of answers.slice(1)) assert.deepEqual(a, answers[0])
}
