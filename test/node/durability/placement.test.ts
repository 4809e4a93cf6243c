/**
 * Placement rules: XOR-closest candidates, rendezvous order, zone cap,
 * distinct peers, round-robin below k+m peers, determinism.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  CANDIDATE_FACTOR, explainPlacement, peerKadKey, placeStripe, rankByDistance, type PlacementPeer
} from '../../../node/durability/placement.js'
import { simPeerIds } from '../../../simulations/durability-balance.js'
import { Prng } from '../../../simulations/prng.js'

let IDS: string[] = []
const rng = new Prng(42)

before(async () => { IDS = await simPeerIds(new Prng(7), 60) })

function peers (n: number, zone?: (i: number) => string | undefined): PlacementPeer[] {
  return IDS.slice(0, n).map((id, i) => {
    const z = zone?.(i)
    return z === undefined ? { id } : { id, zone: z }
  })
}

function shuffle<T> (list: T[], r: Prng): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(0, i)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

function xorBig (a: Uint8Array, b: Uint8Array): bigint {
  return BigInt('0x' + Buffer.from(a.map((x, i) => x ^ b[i])).toString('hex'))
}

function countBy (items: string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const x of items) out.set(x, (out.get(x) ?? 0) + 1)
  return out
}

function isInvalidArgument (err: any): boolean { return err.name === 'InvalidArgumentError' }

describe('peerKadKey and rankByDistance', () => {
  it('is sha-256 of the multihash, as kad-dht computes it, and cached', () => {
    const id = IDS[0]
    const expected = createHash('sha256').update(peerIdFromString(id).toMultihash().bytes).digest()
    assert.deepEqual(Buffer.from(peerKadKey(id)), expected)
    assert.equal(peerKadKey(id), peerKadKey(id))
  })

  it('rejects what is not a peer id', () => {
    assert.throws(() => peerKadKey('not-a-peer-id'), isInvalidArgument)
  })

  it('sorts by XOR distance, closest first, whatever the input order', () => {
    const key = rng.bytes(32)
    const ranked = rankByDistance(key, shuffle(peers(40), rng)).map(p => p.id)
    const expected = [...IDS.slice(0, 40)].sort((a, b) => {
      const d = xorBig(peerKadKey(a), key) - xorBig(peerKadKey(b), key)
      return d < 0n ? -1 : d > 0n ? 1 : 0
    })
    assert.deepEqual(ranked, expected)
    assert.deepEqual(rankByDistance(key, shuffle(peers(40), rng)).map(p => p.id), expected)
  })

  it('rejects a key that is not 32 bytes', () => {
    assert.throws(() => rankByDistance(new Uint8Array(31), peers(3)), isInvalidArgument)
  })
})

describe('placeStripe', () => {
  it('puts the k+m shards on distinct peers among the XOR-closest candidates', () => {
    for (let t = 0; t < 50; t++) {
      const key = rng.bytes(32)
      const placed = placeStripe(key, peers(50), 6, 2)
      assert.equal(placed.length, 6)
      assert.equal(new Set(placed).size, 6)
      const closest = new Set(rankByDistance(key, peers(50)).slice(0, CANDIDATE_FACTOR * 6).map(p => p.id))
      for (const id of placed) assert.ok(closest.has(id), 'a shard left the candidate set')
    }
  })

  it('with candidates = k+m, is exactly the k+m XOR-closest peers', () => {
    const key = rng.bytes(32)
    const placed = placeStripe(key, peers(50), 6, 2, { candidates: 6 })
    assert.deepEqual(new Set(placed), new Set(rankByDistance(key, peers(50)).slice(0, 6).map(p => p.id)))
  })

  it('is deterministic: same key and peers in any order give the same assignment', () => {
    for (let t = 0; t < 30; t++) {
      const key = rng.bytes(32)
      const zoned = peers(30, i => i % 4 === 0 ? undefined : `z${i % 3}`)
      const a = placeStripe(key, zoned, 6, 2)
      const b = placeStripe(key, shuffle(zoned, rng), 6, 2)
      assert.deepEqual(a, b)
    }
  })

  it('holds no more than m shards per zone with 3 zones and 4+2', () => {
    for (let t = 0; t < 50; t++) {
      const placed = placeStripe(rng.bytes(32), peers(30, i => `z${i % 3}`), 6, 2)
      const zoneOf = new Map(peers(30, i => `z${i % 3}`).map(p => [p.id, p.zone ?? '']))
      const perZone = countBy(placed.map(id => zoneOf.get(id) ?? ''))
      assert.deepEqual([...perZone.values()].sort(), [2, 2, 2])
      assert.equal(new Set(placed).size, 6)
    }
  })

  it('honours the cap with uneven zones when their slots suffice (10 + 3 + 3 peers)', () => {
    const zoned = peers(16, i => i < 10 ? 'big' : i < 13 ? 'b' : 'c')
    const zoneOf = new Map(zoned.map(p => [p.id, p.zone ?? '']))
    for (let t = 0; t < 30; t++) {
      const perZone = countBy(placeStripe(rng.bytes(32), zoned, 6, 2).map(id => zoneOf.get(id) ?? ''))
      for (const n of perZone.values()) assert.ok(n <= 2)
    }
  })

  it('counts each zoneless peer as its own zone', () => {
    const mixed = peers(16, i => i < 10 ? 'big' : undefined)
    const inBig = new Set(mixed.filter(p => p.zone === 'big').map(p => p.id))
    for (let t = 0; t < 30; t++) {
      const placed = placeStripe(rng.bytes(32), mixed, 6, 2)
      assert.ok(placed.filter(id => inBig.has(id)).length <= 2)
      assert.equal(new Set(placed).size, 6)
    }
  })

  it('raises the cap as little as possible when zones cannot honour it', () => {
    const two = peers(20, i => `z${i % 2}`)
    const zoneOf = new Map(two.map(p => [p.id, p.zone ?? '']))
    const placed = placeStripe(rng.bytes(32), two, 6, 2)
    assert.deepEqual([...countBy(placed.map(id => zoneOf.get(id) ?? '')).values()], [3, 3])
    const lopsided = peers(12, i => i < 10 ? 'a' : `solo${i}`) // slots: 2 + 1 + 1 = 4 < 6
    const e = explainPlacement(placeStripe(rng.bytes(32), lopsided, 6, 2), lopsided, 2)
    assert.equal(e.distinct, true)
    assert.equal(e.zoneCapPossible, false)
    assert.equal(e.maxInZone, 4)
    assert.match(e.reason ?? '', /cannot honour/)
  })

  it('spreads shards round-robin when there are fewer peers than shards', () => {
    for (const n of [2, 3, 4, 5]) {
      const placed = placeStripe(rng.bytes(32), peers(n), 6, 2)
      const perPeer = countBy(placed)
      assert.equal(perPeer.size, n)
      for (const c of perPeer.values()) assert.ok(c <= Math.ceil(6 / n))
    }
  })

  it('puts every shard on the only peer', () => {
    assert.deepEqual(placeStripe(rng.bytes(32), peers(1), 6, 2), new Array(6).fill(IDS[0]))
  })

  it('rejects an empty peer list, repeated ids and bad counts with InvalidArgumentError', () => {
    const key = rng.bytes(32)
    assert.throws(() => placeStripe(key, [], 6, 2), isInvalidArgument)
    assert.throws(() => placeStripe(key, [...peers(5), peers(1)[0]], 6, 2), isInvalidArgument)
    assert.throws(() => placeStripe(key, peers(5), 0, 2), isInvalidArgument)
    assert.throws(() => placeStripe(key, peers(5), 6, 0), isInvalidArgument)
    assert.throws(() => placeStripe(key, peers(5), 6, 2, { candidates: 0 }), isInvalidArgument)
    assert.throws(() => placeStripe(new Uint8Array(8), peers(5), 6, 2), isInvalidArgument)
  })
})

describe('explainPlacement', () => {
  it('has no reason for a placement that meets every rule', () => {
    const zoned = peers(30, i => `z${i % 3}`)
    const e = explainPlacement(placeStripe(rng.bytes(32), zoned, 6, 2), zoned, 2)
    assert.deepEqual({ ...e, reason: e.reason }, {
      shards: 6, peersUsed: 6, distinct: true, maxPerPeer: 1, zonesUsed: 3, maxInZone: 2,
      zoneCapHonoured: true, zoneCapPossible: true, reason: undefined
    })
  })

  it('says why shards share a peer or a zone', () => {
    const few = peers(4)
    const e = explainPlacement(placeStripe(rng.bytes(32), few, 6, 2), few, 2)
    assert.equal(e.distinct, false)
    assert.equal(e.maxPerPeer, 2)
    assert.match(e.reason ?? '', /only 4 peers for 6 shards/)
    const zoned = peers(30, i => `z${i % 3}`)
    const sameZone = zoned.filter(p => p.zone === 'z0').slice(0, 3).map(p => p.id)
    const others = zoned.filter(p => p.zone !== 'z0').slice(0, 3).map(p => p.id)
    const broken = explainPlacement([...sameZone, ...others], zoned, 2)
    assert.equal(broken.zoneCapHonoured, false)
    assert.equal(broken.zoneCapPossible, true)
    assert.match(broken.reason ?? '', /over the cap of 2/)
  })
})
