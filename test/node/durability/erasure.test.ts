/**
 * The Reed-Solomon coder: golden parity vectors (the on-disk format), an
 * independent GF(2^8) reference encoder that defines the same parity, every
 * combination of lost shards, and argument checks that keep the wasm from
 * trapping.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createErasureCoder, type ErasureCoder } from '../../../node/durability/erasure.js'
import { randomBytes } from '../../helpers/bytes.js'
import { indexSubsets } from '../../helpers/subsets.js'

interface ParityVector {
  name: string
  k: number
  m: number
  shardSize: number
  zeroDataShards: number
  dataSha256: string[]
  paritySha256: string[]
  data?: string[]
  parity?: string[]
}

const vectors: { parity: ParityVector[] } = JSON.parse(readFileSync(new URL('../../../../test/fixtures/erasure/vectors.json', import.meta.url), 'utf8'))

const sha = (bytes: Uint8Array | string): Buffer => createHash('sha256').update(bytes).digest()
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** The deterministic input stream described in test/fixtures/erasure/README.md. */
function stream (seed: string, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0, at = 0; at < n; i++, at += 32) out.set(sha(`${seed}:${i}`).subarray(0, Math.min(32, n - at)), at)
  return out
}

function vectorData (v: ParityVector): Uint8Array[] {
  return Array.from({ length: v.k }, (_, i) => i >= v.k - v.zeroDataShards ? new Uint8Array(v.shardSize) : stream(`${v.name}/${i}`, v.shardSize))
}

// ---------------------------------------------------------------------------
// reference encoder: GF(2^8) with x^8+x^4+x^3+x^2+1 (0x11d); the parity rows
// of V·(V_top)^-1 where V[r][c] = r^c (r = 0..k+m-1, c = 0..k-1)

const EXP = new Uint8Array(512)
const LOG = new Uint8Array(256)
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = x
  LOG[x] = i
  x <<= 1
  if ((x & 0x100) !== 0) x ^= 0x11d
}
for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]
const mul = (a: number, b: number): number => a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]]
const pow = (a: number, n: number): number => n === 0 ? 1 : a === 0 ? 0 : EXP[(LOG[a] * n) % 255]

function invert (matrix: number[][]): number[][] {
  const n = matrix.length
  const a = matrix.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => i === j ? 1 : 0)])
  for (let c = 0; c < n; c++) {
    let p = c
    while (a[p][c] === 0) p++
    ;[a[c], a[p]] = [a[p], a[c]]
    const inv = EXP[255 - LOG[a[c][c]]]
    a[c] = a[c].map(v => mul(v, inv))
    for (let r = 0; r < n; r++) {
      if (r === c || a[r][c] === 0) continue
      const f = a[r][c]
      a[r] = a[r].map((v, j) => v ^ mul(f, a[c][j]))
    }
  }
  return a.map(row => row.slice(n))
}

function referenceParity (data: Uint8Array[], m: number): Uint8Array[] {
  const k = data.length
  const vandermonde = Array.from({ length: k + m }, (_, r) => Array.from({ length: k }, (_, c) => pow(r, c)))
  const top = invert(vandermonde.slice(0, k))
  const rows = vandermonde.slice(k).map(row => Array.from({ length: k }, (_, j) => {
    let sum = 0
    for (let t = 0; t < k; t++) sum ^= mul(row[t], top[t][j])
    return sum
  }))
  return rows.map(row => {
    const out = new Uint8Array(data[0].byteLength)
    for (let j = 0; j < k; j++) for (let b = 0; b < out.byteLength; b++) out[b] ^= mul(row[j], data[j][b])
    return out
  })
}

describe('erasure coder', () => {
  let coder: ErasureCoder
  before(async () => { coder = await createErasureCoder() })

  describe('golden parity vectors (test/fixtures/erasure/vectors.json)', () => {
    it('cover 1+1 up to 16+8, including a short stripe', () => {
      const names = vectors.parity.map(v => v.name)
      for (const name of ['1+1/8', '2+1/8', '4+2/16', '4+2/64-short', '16+8/64']) assert.ok(names.includes(name), name)
    })

    for (const v of vectors.parity) {
      it(`${v.name}: the coder's parity is the committed parity`, () => {
        const data = vectorData(v)
        assert.deepEqual(data.map(d => hex(sha(d))), v.dataSha256, 'the input stream changed')
        if (v.data !== undefined) assert.deepEqual(data.map(hex), v.data)
        const parity = coder.encode(data, v.m)
        assert.deepEqual(parity.map(p => hex(sha(p))), v.paritySha256)
        if (v.parity !== undefined) assert.deepEqual(parity.map(hex), v.parity)
      })

      it(`${v.name}: the GF(2^8) reference encoder gives the same parity`, () => {
        const data = vectorData(v).map(d => d.subarray(0, Math.min(d.byteLength, 4096)))
        const parity = referenceParity(data, v.m)
        if (data[0].byteLength === v.shardSize) assert.deepEqual(parity.map(p => hex(sha(p))), v.paritySha256)
        assert.deepEqual(parity, coder.encode(data, v.m))
      })
    }

    it('k=1 parity is a copy of the data (row 1 of the systematic matrix is all ones)', () => {
      const data = randomBytes(40, 1)
      assert.deepEqual(coder.encode([data], 3), [data, data, data])
    })
  })

  describe('reconstruct', () => {
    for (const [k, m, size] of [[2, 1, 64], [4, 2, 1000], [3, 3, 8], [1, 2, 16], [5, 3, 24]] as const) {
      it(`${k}+${m}: every combination of up to ${m} lost shards gives the data back`, () => {
        const data = Array.from({ length: k }, (_, i) => randomBytes(size, 100 * k + i))
        const all = [...data, ...coder.encode(data, m)]
        for (const lost of indexSubsets(k + m, m)) {
          const slots = all.map((s, i) => lost.includes(i) ? undefined : s.slice())
          assert.deepEqual(coder.reconstruct(slots, k, m), data, `lost ${lost.join(',')}`)
        }
      })

      it(`${k}+${m}: ${m + 1} lost shards are a StripeUnavailableError`, () => {
        const data = Array.from({ length: k }, (_, i) => randomBytes(size, i))
        const all = [...data, ...coder.encode(data, m)]
        for (const lost of indexSubsets(k + m, m + 1).filter(s => s.length === m + 1)) {
          const slots = all.map((s, i) => lost.includes(i) ? undefined : s)
          assert.throws(() => coder.reconstruct(slots, k, m), { name: 'StripeUnavailableError' })
        }
      })
    }

    it('16+8 with 64 KiB shards: any 8 lost shards (a sample) give the data back', () => {
      const k = 16
      const m = 8
      const data = Array.from({ length: k }, (_, i) => randomBytes(65536, 7000 + i))
      const all = [...data, ...coder.encode(data, m)]
      for (let trial = 0; trial < 12; trial++) {
        const order = Array.from({ length: k + m }, (_, i) => i).sort((a, b) => sha(`${trial}/${a}`).compare(sha(`${trial}/${b}`)))
        const lost = new Set(order.slice(0, m))
        const rebuilt = coder.reconstruct(all.map((s, i) => lost.has(i) ? undefined : s), k, m)
        assert.ok(rebuilt.every((d, i) => Buffer.compare(d, data[i]) === 0), `trial ${trial}`)
      }
    })

    it('is right call after call on one coder (the package\'s own wrapper is right only on an instance\'s first call: wasm-coder.ts)', () => {
      const data = [randomBytes(64, 31), randomBytes(64, 32), randomBytes(64, 33), randomBytes(64, 34)]
      const all = [...data, ...coder.encode(data, 2)]
      for (let round = 0; round < 3; round++) {
        for (const lost of [[4], [1], [2, 3], [0, 5], [4, 5]]) {
          assert.deepEqual(coder.reconstruct(all.map((s, i) => lost.includes(i) ? undefined : s), 4, 2), data, `round ${round}, lost ${lost.join(',')}`)
        }
      }
    })

    it('returns the present data shards as given and rebuilt ones as fresh buffers', () => {
      const data = [randomBytes(16, 1), randomBytes(16, 2)]
      const [p] = coder.encode(data, 1)
      const out = coder.reconstruct([data[0], undefined, p], 2, 1)
      assert.equal(out[0], data[0])
      assert.deepEqual(out[1], data[1])
      assert.equal(coder.reconstruct([data[0], data[1], undefined], 2, 1)[1], data[1])
    })

    it('zero-length shards: empty parity, empty rebuilt data', () => {
      const empty = new Uint8Array(0)
      assert.deepEqual(coder.encode([empty, empty], 2), [empty, empty])
      assert.deepEqual(coder.reconstruct([undefined, empty, empty, undefined], 2, 2), [empty, empty])
    })
  })

  describe('argument checks (the wasm would trap)', () => {
    const d = (n: number): Uint8Array => new Uint8Array(n)
    const cases: Array<[string, () => unknown]> = [
      ['no data shards', () => coder.encode([], 2)],
      ['m = 0', () => coder.encode([d(8)], 0)],
      ['m = 9', () => coder.encode([d(8)], 9)],
      ['k = 17', () => coder.encode(Array.from({ length: 17 }, () => d(8)), 1)],
      ['m not an integer', () => coder.encode([d(8)], 1.5)],
      ['unequal data lengths', () => coder.encode([d(8), d(16)], 1)],
      ['a missing data shard', () => coder.encode([d(8), undefined as unknown as Uint8Array], 1)],
      ['wrong slot count', () => coder.reconstruct([d(8), d(8)], 2, 1)],
      ['unequal slot lengths', () => coder.reconstruct([d(8), undefined, d(16)], 2, 1)],
      ['k = 0 in reconstruct', () => coder.reconstruct([d(8)], 0, 1)]
    ]
    for (const [name, call] of cases) {
      it(`${name}: InvalidArgumentError`, () => { assert.throws(call, { name: 'InvalidArgumentError' }) })
    }

    it('the coder still works after rejected calls, and coders share one module', async () => {
      const other = await createErasureCoder()
      const data = [randomBytes(24, 5), randomBytes(24, 6)]
      assert.deepEqual(other.encode(data, 2), coder.encode(data, 2))
      assert.deepEqual(coder.encode(data, 2), referenceParity(data, 2))
    })
  })
})
