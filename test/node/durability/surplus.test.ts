/**
 * Extra copies of a stripe's shards: which copy a node releases. At least
 * one copy of every shard stays whatever each holder's view, a node holding
 * two shards of a stripe gives one up, and nothing is released towards a
 * peer that is down or that holds more shards of the stripe; where every
 * holder of a shard holds others too, the node holding more gives its copy up.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { rendezvousHash } from '../../../node/durability/placement.js'
import { releaseConfirmed, surplusCopies, worstLoss, type SurplusInput } from '../../../node/durability/surplus.js'
import { simPeerIds } from '../../../simulations/durability-balance.js'
import { Prng } from '../../../simulations/prng.js'

let IDS: string[] = []
const KEY = new Prng(5).bytes(32)

before(async () => { IDS = await simPeerIds(new Prng(7), 12) })

/** The view of a 4+2 stripe: `held[i]` are the holders of shard i. */
function view (self: string, held: string[][], down: string[] = []): SurplusInput {
  return { key: KEY, k: 4, self, shards: 6, holders: i => held[i] ?? [], isAlive: p => !down.includes(p) }
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
    assert.deepEqual(surplusCopies(view(second, held)).map(r => [r.index, r.keeper]), [[0, best]])
  })

  it('several holders, whatever each one sees of the others: the one ranked first never releases', () => {
    const holders = byRank(IDS.slice(0, 5))
    const rest = [[IDS[6]], [IDS[7]], [IDS[8]], [IDS[9]], [IDS[10]]]
    // every subset of the other holders as a node's view
    for (let mask = 0; mask < 1 << 4; mask++) {
      const seen = [holders[0], ...holders.slice(1).filter((_, i) => (mask & (1 << i)) !== 0)]
      assert.deepEqual(surplusCopies(view(holders[0], [seen, ...rest])), [], 'the first keeps its copy')
      for (const self of seen.slice(1)) assert.deepEqual(surplusCopies(view(self, [seen, ...rest])).map(r => [r.index, r.keeper]), [[0, holders[0]]])
    }
  })

  it('a node holding two shards of a stripe releases the one another peer keeps, whatever the ranks', () => {
    const [best, second] = byRank([IDS[0], IDS[1]])
    const held = [[best, second], [best], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]]
    assert.deepEqual(surplusCopies(view(best, held)).map(r => [r.index, r.keeper]), [[0, second]])
    assert.deepEqual(surplusCopies(view(second, held)), [], 'its copy is the one that stays')
  })

  it('no release towards a peer that is down, nor one that holds more shards of the stripe', () => {
    const [best, second] = byRank([IDS[0], IDS[1]])
    assert.deepEqual(surplusCopies(view(second, [[best, second], [IDS[2]], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]], [best])), [])
    assert.deepEqual(surplusCopies(view(second, [[best, second], [best], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]])), [])
  })

  it('three, two and one shards on three nodes: the node holding three releases the copy that the node holding two keeps', () => {
    // a shard moved off a node holding more than m, onto the only node with room: a holder of another shard already
    const [a, b, c] = IDS
    const held = [[a], [a], [a, c], [b], [b], [c]]
    const [released] = surplusCopies(view(a, held))
    assert.deepEqual([released.index, released.keeper], [2, c])
    assert.deepEqual(surplusCopies(view(c, held)), [], 'the copy of the node holding fewer stays')
    assert.deepEqual(surplusCopies(view(b, held)), [])
  })

  it('two holders of a shard that each hold another: the one ranked second releases it', () => {
    const [best, second] = byRank([IDS[0], IDS[1]])
    const held = [[best, second], [best], [second], [IDS[3]], [IDS[4]], [IDS[5]]]
    assert.deepEqual(surplusCopies(view(best, held)), [])
    assert.deepEqual(surplusCopies(view(second, held)).map(x => [x.index, x.keeper]), [[0, best]])
  })

  it('a node never gives up, in one pass, a copy it would then need: releases count the ones before them', () => {
    // Y holds 0 and 1; 1 is kept by W (holding it alone), 0 by X (holding another): Y gives up 1, then holds one
    // shard, fewer than X, and keeps 0
    const [x, y, w] = IDS
    const held = [[x, y], [y, w], [x], [IDS[3]], [IDS[4]], [IDS[5]]]
    assert.deepEqual(surplusCopies(view(y, held)).map(r => [r.index, r.keeper]), [[1, w]])
    // once Y's copy of 1 is gone, X (holding two) gives its copy of 0 up to Y (holding one)
    const after = [[x, y], [w], [x], [IDS[3]], [IDS[4]], [IDS[5]]]
    assert.deepEqual(surplusCopies(view(x, after)).map(r => [r.index, r.keeper]), [[0, y]])
    assert.deepEqual(surplusCopies(view(y, after)), [])
  })

  it('nodes releasing one after another on stale views, each confirming with the keeper and the holders as it goes: no shard loses its last copy, and no stripe gets worse against one lost node', () => {
    const rng = new Prng(21)
    const nodes = IDS.slice(0, 4)
    const rank = byRank(nodes)
    let releases = 0
    for (let round = 0; round < 600; round++) {
      // a true state: a shard on none to three of four nodes (one with none is missing, due for a rebuild)
      const truth: string[][] = Array.from({ length: 6 }, () => nodes.filter(() => rng.next() < 0.4))
      const worstBefore = worstLoss(truth)
      // every node's view is taken before any of them releases (a pass each, at about the same time), the others'
      // holdings partly unseen in half the rounds
      const exact = round % 2 === 0
      const views = new Map(nodes.map(self => [self, truth.map(l => l.filter(p => p === self || exact || rng.next() < 0.7))]))
      for (const self of [...nodes].sort(() => rng.next() - 0.5)) {
        for (const r of surplusCopies(view(self, views.get(self) ?? []))) {
          // as the repairer confirms it: the keeper holds the shard and comes first against this node's count now,
          // and the release leaves the stripe, as its holders answer now, no worse against one lost node
          if (!releaseConfirmed(truth, 4, self, r)) continue
          assert.equal(r.keeperRanksFirst, rank.indexOf(r.keeper) < rank.indexOf(self))
          truth[r.index] = truth[r.index].filter(p => p !== self)
          releases++
          assert.ok(truth[r.index].length > 0, `round ${round}: shard ${r.index} lost its last copy`)
        }
      }
      assert.ok(worstLoss(truth) >= Math.min(worstBefore, 4), `round ${round}: the stripe got worse against one lost node`)
    }
    assert.ok(releases > 100, `copies released: ${releases}`)
  })

  it('a release that would leave the stripe unable to survive one lost node is not made', () => {
    // A holds 0, 4, 5; B holds 2, 3, 4, 5; C holds 1: B comes after A for 4 and 5, but giving both up leaves A
    // holding three shards no one else has
    const [a, b, c] = IDS
    const held = [[a], [c], [b], [b], [a, b], [a, b]]
    assert.equal(surplusCopies(view(b, held)).length, 1)
  })

  it('a shard this node does not hold, or holds alone, is never released', () => {
    const held = [[IDS[0], IDS[1]], [IDS[2]], [IDS[3]], [IDS[4]], [IDS[5]], [IDS[6]]]
    assert.deepEqual(surplusCopies(view(IDS[2], held)), [])
    assert.deepEqual(surplusCopies(view(IDS[9], held)), [])
  })
})
