/**
 * The replica's clock through commits, on a real LevelDB: a batch reads
 * the replica's clock through (it is not copied per batch), so what a batch
 * sets must reach the replica only once its commit is durable — a failed
 * commit changes nothing — and what it adopts must be what is stored.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { LevelKV, Replica, peerIdVerifier, signerFromKey, type KV } from '../../../node/namespace/index.js'
import type { KVOp } from '../../../node/namespace/kv.js'
import { tempDir } from '../../helpers/temp.js'
import { file, replica, silent, type Sim } from './helpers.js'

/** A LevelDB store whose next batch can be made to fail (a full disk, say). */
class FailingKV implements KV {
  failNext = false
  constructor (private readonly inner: LevelKV) {}
  get location (): string | undefined { return this.inner.location }
  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }
  async get (key: string): Promise<Uint8Array | undefined> { return await this.inner.get(key) }
  async batch (ops: KVOp[], sync: boolean): Promise<void> {
    if (this.failNext) {
      this.failNext = false
      throw new Error('no space left on device')
    }
    await this.inner.batch(ops, sync)
  }

  iterate (range: Parameters<KV['iterate']>[0]): AsyncIterable<[string, Uint8Array]> { return this.inner.iterate(range) }
}

describe('replica store: the clock through commits', () => {
  it('a failed commit leaves the clock as it was; later commits adopt exactly what they stored', async (t) => {
    const sim: Sim = { now: 1_000 }
    const dir = join(await tempDir(t), 'ns')
    const key = await generateKeyPair('Ed25519')
    const open = async (kv: KV): Promise<Replica> => {
      const r = new Replica({ kv, signer: signerFromKey(key), verifier: peerIdVerifier(), clock: { now: () => sim.now }, logger: silent })
      await r.open()
      return r
    }
    const kv = new FailingKV(new LevelKV(dir))
    const r = await open(kv)
    // three other authors, two entries each
    const writers = [await replica(sim), await replica(sim), await replica(sim)]
    const sent = new Map<string, Uint8Array[]>()
    for (const w of writers) {
      sent.set(w.id, [])
      w.onLocalEntries(e => sent.get(w.id)?.push(...e))
      for (const k of [1, 2]) await w.putFile(`/${w.id.slice(-4)}/${k}`, file(`${w.id}${k}`))
    }
    const [a, b, c] = writers.map(w => sent.get(w.id) ?? [])
    assert.equal((await r.receive([a[0], b[0]], writers[0].id)).applied, 2)
    const before = r.state().clock
    assert.deepEqual(before, { [writers[0].id]: 1, [writers[1].id]: 1 })

    kv.failNext = true
    await assert.rejects(r.receive([a[1], c[0]], writers[0].id), /no space left/)
    assert.deepEqual(r.state().clock, before, 'nothing of the failed batch reached the clock')
    assert.equal(await r.lookup(`/${writers[2].id.slice(-4)}/1`), undefined)

    // the same entries again, and the rest: applied, and the clock a copy taken earlier does not move
    assert.equal((await r.receive([a[1], c[0], c[1], b[1]], writers[0].id)).applied, 4)
    const want = { [writers[0].id]: 2, [writers[1].id]: 2, [writers[2].id]: 2 }
    assert.deepEqual(r.state().clock, want)
    assert.deepEqual(r.clockNow(), want)
    assert.deepEqual(before, { [writers[0].id]: 1, [writers[1].id]: 1 }, 'state() gave a copy')
    // a local write counts on top of them
    await r.putFile('/mine', file('mine'))
    assert.equal(r.clockNow()[r.id], 1)
    await r.close()

    // what was adopted is what was stored
    const again = await open(new LevelKV(dir))
    assert.deepEqual(again.state().clock, { ...want, [r.id]: 1 })
    for (const w of writers) assert.equal((await again.lookup(`/${w.id.slice(-4)}/2`))?.type, 'file')
    await again.close()
  })
})
