/**
 * A member removed from the writers keeps writing: the others refuse its
 * entries and each says so in its log, naming the peer (untrusted-gossip.ts).
 * Before, its gossip was ignored unread and nothing was logged: the removal
 * took effect in silence, seen only in a metric. Two real nodes in one
 * private swarm on 127.0.0.1.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { parseChunker } from '../../../node/content/index.js'
import { createShoalNode, type ShoalNode } from '../../../node/node.js'
import { connectAll, makeRepo, once, until } from '../../helpers/swarm.js'
import { tempDir } from '../../helpers/temp.js'

describe('writes by a peer removed from the writers', () => {
  it('are refused and logged, once, naming the peer; a peer that reads only is not named', async (t) => {
    const dir = await tempDir(t, 'shoal-untrusted-writer-')
    const lines: Array<Record<string, any>> = []
    const nodes: ShoalNode[] = []
    t.after(async () => { await Promise.allSettled(nodes.map(async n => { await n.stop() })) })
    const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(JSON.parse(line)) } })
    const a = await createShoalNode({ repo: await makeRepo(dir, 'a'), logger })
    nodes.push(a)
    const b = await createShoalNode({ repo: await makeRepo(dir, 'b'), logger: pino({ level: 'silent' }) })
    nodes.push(b)
    await a.start()
    await b.start()
    await connectAll([a, b])
    const bId = b.components.libp2p.peerId.toString()
    const chunker = parseChunker('fastcdc')

    // b writes while trusted: applied on a
    await b.components.files.add('/before.txt', once(Buffer.from('before')), { chunker, pin: 'none' })
    await until('a applied b\'s first write', async () => a.components.namespace.state().clock[bId] === 1, 15_000)

    // a keeps only itself as a writer: b is no longer trusted there
    await a.components.trustAdmin.setWriters('listed')
    const named = (): Array<Record<string, any>> => lines.filter(l => l.peer === bId && /not a trusted writer/.test(l.msg))
    // b's heartbeats alone (no new write) name nobody
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal(named().length, 0, JSON.stringify(lines))

    await b.components.files.add('/after.txt', once(Buffer.from('after')), { chunker, pin: 'none' })
    await until('a warned about b\'s refused write', async () => named().length > 0, 15_000)
    assert.equal(named()[0].unapplied, 1)
    assert.match(named()[0].msg, new RegExp(`shoal trust add ${bId}`))
    await b.components.files.add('/after-2.txt', once(Buffer.from('after 2')), { chunker, pin: 'none' })
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal(named().length, 1, 'one warning a minute per peer')
    // refused: what b wrote before stays, what it wrote after is not applied
    assert.equal(a.components.namespace.state().clock[bId], 1)
    const names = (await a.components.files.ls('/')).map((e: { name: string }) => e.name)
    assert.deepEqual(names.sort(), ['before.txt'])
  })
})
