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
import { tempDir, type CleanupContext } from '../../helpers/temp.js'
import { file, replica, silent, type Sim } from './helpers.js'

/** A LevelDB store whose next batch can be made to fail (a full disk, say), and that logs whether each batch was synced. */
class FailingKV implements KV {
  failNext = false
  /** Per batch written (or tried), whether it asked for an fsync and whether it was the store's bare sync. */
  readonly writes: Array<{ sync: boolean, bare: boolean }> = []
  /** While set, a synced batch waits for it before it is written. */
  holdSyncs: Promise<void> | undefined
  constructor (private readonly inner: LevelKV) {}
  get location (): string | undefined { return this.inner.location }
  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }
  async get (key: string): Promise<Uint8Array | undefined> { return await this.inner.get(key) }
  async batch (ops: KVOp[], sync: boolean): Promise<void> {
    this.writes.push({ sync, bare: ops.length === 1 && ops[0].type === 'del' && ops[0].key === 'm!sync' })
    if (sync) await this.holdSyncs
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

  /** A replica on a logging LevelDB (`kv`), opened by `open`, and entries by another writer that wrote `/w/1..n`. */
  async function receiving (t: CleanupContext, n: number): Promise<{ r: Replica, kv: FailingKV, open: (store: KV) => Promise<Replica>, dir: string, writer: string, sent: Uint8Array[] }> {
    const sim: Sim = { now: 1_000 }
    const dir = join(await tempDir(t), 'ns')
    const key = await generateKeyPair('Ed25519')
    const open = async (store: KV): Promise<Replica> => {
      const opened = new Replica({ kv: store, signer: signerFromKey(key), verifier: peerIdVerifier(), clock: { now: () => sim.now }, logger: silent })
      await opened.open()
      return opened
    }
    const kv = new FailingKV(new LevelKV(dir))
    const r = await open(kv)
    const w = await replica(sim)
    const sent: Uint8Array[] = []
    w.onLocalEntries(e => sent.push(...e))
    for (let k = 1; k <= n; k++) await w.putFile(`/w/${k}`, file(`w${k}`))
    return { r, kv, open, dir, writer: w.id, sent }
  }

  /** Hold every fsync of `kv` until the returned function is called. */
  function holdSyncs (kv: FailingKV): () => void {
    let release = (): void => {}
    kv.holdSyncs = new Promise<void>(resolve => { release = resolve })
    return () => { release(); kv.holdSyncs = undefined }
  }

  it('entries from peers are readable before their fsync, which follows in the background; local writes are fsynced first', async (t) => {
    const { r, kv, writer, sent } = await receiving(t, 3)
    t.after(async () => { kv.holdSyncs = undefined; await r.close() })

    // every fsync held: the received entry is applied and readable all the same
    const release = holdSyncs(kv)
    kv.writes.length = 0
    assert.equal((await r.receive([sent[0]], writer)).applied, 1)
    assert.equal((await r.lookup('/w/1'))?.type, 'file')
    assert.deepEqual(kv.writes, [{ sync: false, bare: false }, { sync: true, bare: true }], 'the entry written unsynced, then one bare sync started')
    assert.equal(r.syncPending, true)
    // more entries while that sync waits: written unsynced, then one more sync covers them all
    assert.equal((await r.receive([sent[1], sent[2]], writer)).applied, 2)
    let flushed = false
    const flushing = r.flush().then(() => { flushed = true })
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(flushed, false, 'flush() waits for the held sync')
    release()
    await flushing
    assert.equal(r.syncPending, false)
    assert.deepEqual(kv.writes.map(x => x.sync), [false, true, false, true], 'two syncs for three entries in two batches')

    // a local write is fsynced before putFile resolves, and needs no sync after it
    kv.writes.length = 0
    await r.putFile('/mine', file('mine'))
    assert.deepEqual(kv.writes, [{ sync: true, bare: false }])
    assert.equal(r.syncPending, false)
  })

  it('a background sync that fails is tried again by flush(); a failing flush throws and leaves the entries applied', async (t) => {
    const { r, kv, writer, sent } = await receiving(t, 1)
    t.after(async () => { await r.close() })
    const release = holdSyncs(kv)
    assert.equal((await r.receive([sent[0]], writer)).applied, 1)
    kv.failNext = true
    release()
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(r.syncPending, true, 'the failed sync is still owed')
    kv.failNext = true
    await assert.rejects(r.flush(), /no space left/)
    assert.equal((await r.lookup('/w/1'))?.type, 'file', 'the entry stays applied')
    kv.writes.length = 0
    await r.flush()
    assert.deepEqual(kv.writes, [{ sync: true, bare: true }])
    assert.equal(r.syncPending, false)
  })

  it('close() syncs what was received and not yet synced; a reopened store has it', async (t) => {
    const { r, kv, open, dir, writer, sent } = await receiving(t, 1)
    const release = holdSyncs(kv)
    assert.equal((await r.receive([sent[0]], writer)).applied, 1)
    kv.writes.length = 0
    const closing = r.close()
    release()
    await closing
    assert.ok(kv.writes.some(x => x.sync), 'a sync before the store closed')
    const again = await open(new LevelKV(dir))
    t.after(async () => { await again.close() })
    assert.equal((await again.lookup('/w/1'))?.type, 'file')
  })
})
