/**
 * Recovery of a replica behind its own writes (recovery.ts) against clock
 * claims: a claim backed by this node's signed entries holds writes back
 * until they are applied; a member claiming writes this node never made
 * holds them back only until a pull from it ends. Real replicas and keys.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { decodeEntry } from '../../../protocol/namespace.js'
import { signerFromKey, type Replica } from '../../../node/namespace/index.js'
import { file, pullInto, replica } from './helpers.js'

/** The seq of the entry a local write of `path` by `r` makes. */
async function seqOfWrite (r: Replica, path: string): Promise<number> {
  const sent: Uint8Array[] = []
  const stop = r.onLocalEntries(e => sent.push(...e))
  await r.putFile(path, file(path.slice(1)))
  stop()
  return decodeEntry(sent[0]).seq
}

/** A node (`before`, key `key`) that wrote `/1`…`/n`, and a peer `b` that pulled them. */
async function pastWrites (sim: { now: number }, n: number): Promise<{ key: Awaited<ReturnType<typeof generateKeyPair>>, before: Replica, b: Replica }> {
  const key = await generateKeyPair('Ed25519')
  const before = await replica(sim, {}, { key })
  const b = await replica(sim)
  for (let i = 1; i <= n; i++) await before.putFile(`/${i}`, file(String(i)))
  await pullInto(b, before)
  return { key, before, b }
}

describe('recovery against clock claims', () => {
  it('a member claiming writes of this node that it cannot send holds writes back only until a pull from it ends', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim, { recoveryTimeout: 60_000 })
    const mallory = signerFromKey(await generateKeyPair('Ed25519')).id
    await a.putFile('/1', file('1'))
    a.noteMember(mallory, { [a.id]: 1000 })
    assert.equal(a.recovering, true, 'a claim above the store starts recovery')
    // mallory answered a pull with nothing of a's
    a.pulledFrom(mallory)
    assert.equal(a.recovering, false)
    assert.equal(await seqOfWrite(a, '/2'), 2)
  })

  it('a claim backed by this node\'s own entries holds writes back until they are applied: no seq is used twice', async () => {
    const sim = { now: 1_000 }
    const { key, b } = await pastWrites(sim, 2)
    // the same identity, its store lost; b says it wrote up to seq 2
    const after = await replica(sim, { recoveryTimeout: 60_000 }, { key })
    after.noteMember(b.id, b.state().clock)
    assert.equal(after.recovering, true)
    await pullInto(after, b)
    after.pulledFrom(b.id)
    assert.equal(after.recovering, false)
    assert.equal(await seqOfWrite(after, '/3'), 3)
  })

  it('the word of a peer that holds no entry at all does not end recovery: a node that joined a moment ago knows nothing of this node\'s writes', async () => {
    const sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const before = await replica(sim, {}, { key })
    await before.putFile('/1', file('1'))
    // the same identity, its store lost, with an empty store that recovers
    const after = await replica(sim, { recoveryTimeout: 60_000, recoverEmptyStore: true }, { key })
    assert.equal(after.recovering, true)
    const newcomer = signerFromKey(await generateKeyPair('Ed25519')).id
    after.noteMember(newcomer, { [after.id]: 0 })
    assert.equal(after.recovering, true, 'an empty clock says nothing')
    after.noteMember(newcomer, { [after.id]: 0, [newcomer]: 1 })
    assert.equal(after.recovering, true, 'a peer that holds entries, none of this node\'s: its word counts, but one word is not the quorum')
    const other = signerFromKey(await generateKeyPair('Ed25519')).id
    after.noteMember(other, { [after.id]: 0, [other]: 3 })
    assert.equal(after.recovering, false, 'a second peer\'s word ends it')
  })

  it('one peer that is itself behind does not end the recovery of a lost store: the highest of two peers\' views is fetched, no seq is used twice (with a quorum of one, it is)', async () => {
    for (const quorum of [2, 1]) {
      const sim = { now: 1_000 }
      const key = await generateKeyPair('Ed25519')
      const before = await replica(sim, {}, { key })
      const stale = await replica(sim)
      const current = await replica(sim)
      await before.putFile('/1', file('1'))
      await pullInto(stale, before) // stale holds seq 1 only: say, restored from a backup as old
      await before.putFile('/2', file('2'))
      await before.putFile('/3', file('3'))
      await pullInto(current, before)
      const after = await replica(sim, { recoveryTimeout: 60_000, recoverEmptyStore: true, recoveryQuorum: quorum }, { key })
      after.noteMember(stale.id, stale.state().clock)
      await pullInto(after, stale)
      after.pulledFrom(stale.id)
      if (quorum === 2) assert.equal(after.recovering, true, 'the stale peer\'s word alone does not end it')
      else assert.equal(after.recovering, false)
      if (quorum === 2) {
        after.noteMember(current.id, current.state().clock)
        await pullInto(after, current)
        after.pulledFrom(current.id)
        assert.equal(after.recovering, false)
      }
      // seq 4 follows every past write; with a quorum of one the node wrote seq 2 again (peers refuse it: the namespace diverges)
      assert.equal(await seqOfWrite(after, '/4'), quorum === 2 ? 4 : 2)
      for (const r of [before, stale, current, after]) await r.close()
    }
  })

  it('another writer\'s entries are no word on this node\'s seq: they name only what their author saw (its parents), not this node\'s writes', async () => {
    const sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const before = await replica(sim, {}, { key })
    await before.putFile('/1', file('1'))
    const writer = await replica(sim)
    await writer.putFile('/w', file('w')) // knows nothing of this node's writes
    const after = await replica(sim, { recoveryTimeout: 60_000, recoverEmptyStore: true, recoverySettleMs: 50 }, { key })
    await pullInto(after, writer)
    assert.equal((await after.lookup('/w'))?.type, 'file', 'the writer\'s entry is applied')
    await new Promise(resolve => setTimeout(resolve, 150))
    assert.equal(after.recovering, true, 'still waiting for a peer\'s word on its own seq')
    for (const r of [before, writer, after]) await r.close()
  })

  it('with a single peer in the swarm, its word ends the recovery once the settle window has passed', async () => {
    const sim = { now: 1_000 }
    const { key, before, b } = await pastWrites(sim, 1)
    const after = await replica(sim, { recoveryTimeout: 60_000, recoverEmptyStore: true, recoverySettleMs: 100 }, { key })
    after.noteMember(b.id, b.state().clock)
    await pullInto(after, b)
    assert.equal(after.recovering, true, 'one view, within the settle window')
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(after.recovering, false)
    assert.equal(await seqOfWrite(after, '/2'), 2)
    for (const r of [before, b, after]) await r.close()
  })
})
