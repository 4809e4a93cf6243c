/**
 * A node whose writes the members refuse is told (writer notices,
 * protocol/writer-notice.ts, node/namespace/write-refusals.ts). Before, the
 * members logged a warning and the writer saw its own writes succeed: its
 * status still said every member writes, its writes were applied nowhere
 * else, and nothing on it said so. Three real nodes of one private swarm on
 * 127.0.0.1: a and c list their writers (each other), b is left out.
 * Then the record's rules on their own: a notice from a non-member changes
 * nothing, a malformed one is counted and dropped, the record is bounded.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { parseChunker } from '../../../node/content/index.js'
import { createShoalNode, type ShoalNode } from '../../../node/node.js'
import { refusalLine } from '../../../node/peers/trust-admin.js'
import { WriteRefusals } from '../../../node/namespace/write-refusals.js'
import { MAX_NOTICE_BYTES, decodeWriterNotice, encodeWriterNotice } from '../../../protocol/writer-notice.js'
import * as dagCbor from '@ipld/dag-cbor'
import { connectAll, makeRepo, once, until } from '../../helpers/swarm.js'
import { tempDir } from '../../helpers/temp.js'

const TEST = { timeout: 60_000 }

describe('a writer the members do not trust', () => {
  it('is told by each member, says so in its trust status, and learns when a member trusts it again', TEST, async (t) => {
    const dir = await tempDir(t, 'shoal-writer-notice-')
    const nodes: ShoalNode[] = []
    t.after(async () => { await Promise.allSettled(nodes.map(async n => { await n.stop() })) })
    const bLines: Array<Record<string, any>> = []
    const make = async (name: string, logger = pino({ level: 'silent' })): Promise<ShoalNode> => {
      const n = await createShoalNode({ repo: await makeRepo(dir, name), logger })
      nodes.push(n)
      await n.start()
      return n
    }
    const a = await make('a')
    const b = await make('b', pino({ level: 'info' }, { write: (line: string) => { bLines.push(JSON.parse(line)) } }))
    const c = await make('c')
    const id = (n: ShoalNode): string => n.components.libp2p.peerId.toString()
    const [aId, bId, cId] = [id(a), id(b), id(c)]
    await connectAll([a, b, c])
    // a and c write; b, in the same private swarm, is not listed
    await a.components.trustAdmin.setWriters('listed')
    await a.components.trustAdmin.add(cId)
    await c.components.trustAdmin.setWriters('listed')
    await c.components.trustAdmin.add(aId)
    const chunker = parseChunker('fastcdc')
    assert.deepEqual(b.components.trustAdmin.status().ownWrites, { members: 2, refusedBy: [] })

    await b.components.files.add('/from-b.txt', once(Buffer.from('b wrote this')), { chunker, pin: 'none' })
    await until('b learned that both members refuse its writes',
      async () => b.components.trustAdmin.status().ownWrites.refusedBy.length === 2, 15_000)
    const status = b.components.trustAdmin.status()
    assert.deepEqual(status.ownWrites, { members: 2, refusedBy: [aId, cId].sort() })
    assert.equal(refusalLine(status), `your writes are refused by 2 of 2 connected members (they do not trust this node): ask a member to \`shoal trust add ${bId}\``)
    assert.ok(bLines.some(l => l.level === 40 && l.peer === aId && /refused by member/.test(l.msg)), 'b logged the refusal, naming the member')
    // nothing of b's applied on the members; b applies everything still (a notice stops nothing)
    assert.equal(a.components.namespace.state().clock[bId] ?? 0, 0)
    assert.equal(c.components.namespace.state().clock[bId] ?? 0, 0)

    // a second write within the minute: no second notice from either member
    await b.components.files.add('/from-b-2.txt', once(Buffer.from('b again')), { chunker, pin: 'none' })
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal(a.components.sync.noticeStats.sent, 1, 'one notice a minute per writer')
    assert.equal(b.components.sync.refusals.stats.received, 2)

    // a writes, b applies it: refusals change nothing in what b takes
    await a.components.files.add('/from-a.txt', once(Buffer.from('a wrote this')), { chunker, pin: 'none' })
    await until('b applied a\'s write', async () => (b.components.namespace.state().clock[aId] ?? 0) >= 1, 15_000)

    // a trusts b again: a takes b's writes, and b hears a's clock name them
    await a.components.trustAdmin.add(bId)
    await until('a applied b\'s writes', async () => (a.components.namespace.state().clock[bId] ?? 0) === 2, 15_000)
    await until('b knows a takes its writes again',
      async () => b.components.trustAdmin.status().ownWrites.refusedBy.join() === cId, 15_000)
    assert.equal(b.components.sync.refusals.stats.cleared, 1)

    // c goes away: a disconnected member is not counted
    await c.stop()
    await until('c is gone from b', async () => !b.components.libp2p.getPeers().some(p => p.toString() === cId), 15_000)
    assert.deepEqual(b.components.trustAdmin.status().ownWrites, { members: 1, refusedBy: [] })
  })
})

describe('the writer notice record', () => {
  const silent = pino({ level: 'silent' })
  const make = (trusted: string[], peers: string[], maxPeers?: number): WriteRefusals => new WriteRefusals({
    self: 'me',
    trust: { trusts: p => p === 'me' || trusted.includes(p) },
    peers: () => peers,
    logger: silent,
    clock: { now: () => 0 }
  }, { maxPeers })
  const notice = (applied: number): Uint8Array => encodeWriterNotice({ v: 1, type: 'refused', applied })

  it('takes notices from members only; malformed ones are counted and dropped', () => {
    const r = make(['m1', 'm2'], ['m1', 'm2', 'stranger'])
    r.receive('stranger', notice(0))
    r.receive('me', notice(0))
    assert.deepEqual(r.summary(), { members: 2, refusedBy: [] }, 'a non-member\'s notice changes nothing')
    assert.equal(r.stats.ignored, 2)
    for (const bad of [
      undefined,
      new Uint8Array([0xff]),
      dagCbor.encode({ v: 1, type: 'refused', applied: -1 }),
      dagCbor.encode({ v: 1, type: 'refused', applied: 0, more: 'x' }),
      dagCbor.encode({ v: 2, type: 'refused', applied: 0 }),
      dagCbor.encode({ v: 1, type: 'stop', applied: 0 }),
      dagCbor.encode({ v: 1, type: 'refused', applied: 0, pad: 'x'.repeat(MAX_NOTICE_BYTES) })
    ]) r.receive('m1', bad)
    assert.equal(r.stats.malformed, 7)
    assert.deepEqual(r.summary().refusedBy, [])
    r.receive('m1', notice(3))
    assert.deepEqual(r.summary(), { members: 2, refusedBy: ['m1'] })
    // its clock naming no more than it applied ends nothing; more does
    r.heard('m1', undefined)
    r.heard('m1', 3)
    assert.deepEqual(r.summary().refusedBy, ['m1'])
    r.heard('m1', 4)
    assert.deepEqual(r.summary().refusedBy, [])
    assert.equal(r.stats.cleared, 1)
  })

  it('is bounded, and counts a member only while trusted and connected', () => {
    const peers = ['m1', 'm2', 'm3']
    const trusted = ['m1', 'm2', 'm3']
    const r = make(trusted, peers, 2)
    for (const p of peers) r.receive(p, notice(0))
    assert.deepEqual(r.summary().refusedBy, ['m2', 'm3'], 'the oldest goes first')
    trusted.splice(trusted.indexOf('m3'), 1)
    assert.deepEqual(r.summary(), { members: 2, refusedBy: ['m2'] })
    peers.splice(peers.indexOf('m2'), 1)
    assert.deepEqual(r.summary(), { members: 1, refusedBy: [] })
  })

  it('round-trips and refuses oversize bytes', () => {
    assert.deepEqual(decodeWriterNotice(notice(7)), { v: 1, type: 'refused', applied: 7 })
    assert.throws(() => decodeWriterNotice(new Uint8Array(MAX_NOTICE_BYTES + 1)), { name: 'InvalidMessageError' })
  })
})
