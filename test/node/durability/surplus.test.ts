/**
 * Extra copies of a stripe's shards: which copy a node releases. At least
 * one copy of every shard stays whatever each holder's view, a node holding
 * two shards of a stripe gives one up, and nothing is released towards a
 * peer that is down or that holds another shard of the stripe.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { rendezvousHash } from '../../../node/durability/placement.js'
import { surplusCopies, type SurplusInput } from '../../../node/durability/surplus.js'
import { simPeerIds } from '../../../simulations/durability-balance.js'
import { Prng } from '../../../simulations/prng.js'

let IDS: string[] = []
const KEY = new Prng(5).bytes(32)

before(async () => { IDS = await simPeerIds(new Prng(7), 12) })

/** The view of a 4+2 stripe: `held[i]` are the holders of shard i. */
function view (self: string, held: string[][], down: string[] = []): SurplusInput {
  return { key: KEY, self, shards: 6, holders: i => held[i] ?? [], isAlive: p => !down.includes(p) }
}

/** The ids ordered by rank for KEY (best first). */
function byRank (ids: string[]): string[] {
  const hex = (id: string): string => Buffer.from(rendezvousHash(KEY, id)).toString('hex')
  return [...ids].sort((a, b) => hex(a).localeCompare(hex(b)))
}

describe('surplus copies', () => {
  it('two holders of one shard: exactly the one ranked second releases it, to the first', () => {
    const [best, second] = byRank([IDS[0], IDS[1]])
    const held = [[best, second], [IDS[2]], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]]
    assert.deepEqual(surplusCopies(view(best, held)), [])
    assert.deepEqual(surplusCopies(view(second, held)), [{ index: 0, keeper: best }])
  })

  it('several holders, whatever each one sees of the others: the one ranked first never releases', () => {
    const holders = byRank(IDS.slice(0, 5))
    const rest = [[IDS[6]], [IDS[7]], [IDS[8]], [IDS[9]], [IDS[10]]]
    // every subset of the other holders as a node's view
    for (let mask = 0; mask < 1 << 4; mask++) {
      const seen = [holders[0], ...holders.slice(1).filter((_, i) => (mask & (1 << i)) !== 0)]
      assert.deepEqual(surplusCopies(view(holders[0], [seen, ...rest])), [], 'the first keeps its copy')
      for (const self of seen.slice(1)) assert.deepEqual(surplusCopies(view(self, [seen, ...rest])), [{ index: 0, keeper: holders[0] }])
    }
  })

  it('a node holding two shards of a stripe releases the one another peer keeps, whatever the ranks', () => {
    const [best, second] = byRank([IDS[0], IDS[1]])
    const held = [[best, second], [best], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]]
    assert.deepEqual(surplusCopies(view(best, held)), [{ index: 0, keeper: second }])
    assert.deepEqual(surplusCopies(view(second, held)), [], 'its copy is the one that stays')
  })

  it('no release towards a peer that is down, nor one that holds another shard of the stripe', () => {
    const [best, second] = byRank([IDS[0], IDS[1]])
    assert.deepEqual(surplusCopies(view(second, [[best, second], [IDS[2]], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]], [best])), [])
    assert.deepEqual(surplusCopies(view(second, [[best, second], [best], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]])), [])
  })

  it('a shard this node does not hold, or holds alone, is never released', () => {
    const held = [[IDS[0], IDS[1]], [IDS[2]], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]]
    assert.deepEqual(surplusCopies(view(IDS[2], held)), [])
    assert.deepEqual(surplusCopies(view(IDS[9], held)), [])
  })
})
