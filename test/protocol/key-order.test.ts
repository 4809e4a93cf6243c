import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { inKeyOrder } from '../../protocol/key-order.js'
import { decodeSyncRequest, encodeHeadsMessage, encodeSyncRequest, encodeSyncResponse } from '../../protocol/namespace.js'

const keys = (map: object): string[] => Object.keys(map)

test('inKeyOrder puts ASCII keys in dag-cbor order: shorter first, then bytewise', () => {
  const map = { bb: 1, a: 2, ab: 3, c: 4, Zz: 5, abc: 6 }
  const ordered = inKeyOrder(map)
  assert.deepEqual(keys(ordered), ['a', 'c', 'Zz', 'ab', 'bb', 'abc'])
  assert.deepEqual(ordered, map, 'the same entries')
  // the order dag-cbor encodes them in: decoding the encoding of the unordered map gives the same key order
  assert.deepEqual(keys(dagCbor.decode(dagCbor.encode(map)) as object), keys(ordered))
})

test('inKeyOrder returns a map already in order, or with a key that is not ASCII, as it is', () => {
  const ordered = { a: 1, b: 2, ab: 3 }
  assert.equal(inKeyOrder(ordered), ordered)
  const unicode = { é: 1, a: 2 }
  assert.equal(inKeyOrder(unicode), unicode)
  assert.deepEqual(inKeyOrder({}), {})
})

test('sync messages encode to the same bytes whatever the order of their clock\'s keys', () => {
  const authors = Array.from({ length: 50 }, (_, i) => `12D3KooW${String.fromCharCode(65 + (i * 7) % 26)}${'x'.repeat(i % 5)}${i}`)
  const forward: Record<string, number> = {}
  const backward: Record<string, number> = {}
  for (const a of authors) forward[a] = authors.indexOf(a) + 1
  for (const a of [...authors].reverse()) backward[a] = authors.indexOf(a) + 1
  const request = (clock: Record<string, number>): Uint8Array => encodeSyncRequest({ v: 1, type: 'pull', id: 7, clock, limit: 100 })
  assert.deepEqual(request(forward), request(backward))
  assert.deepEqual(request(forward), dagCbor.encode({ v: 1, type: 'pull', id: 7, clock: forward, limit: 100 }), 'what dag-cbor itself encodes')
  assert.deepEqual(decodeSyncRequest(request(backward)), { v: 1, type: 'pull', id: 7, clock: forward, limit: 100 })
  assert.deepEqual(encodeHeadsMessage({ v: 1, type: 'heads', clock: forward, heads: [], entries: [] }), encodeHeadsMessage({ v: 1, type: 'heads', clock: backward, heads: [], entries: [] }))
  const response = (clock: Record<string, number>): Uint8Array => encodeSyncResponse({ v: 1, type: 'entries', id: 7, clock, heads: [], entries: [], more: false })
  assert.deepEqual(response(forward), response(backward))
})
