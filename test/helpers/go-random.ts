/**
 * Byte-exact port of the `random <count> <seed>` tool that Kubo's sharness
 * tests use to generate their large inputs (jbenet/go-random,
 * `WritePseudoRandomBytes`).
 *
 * That tool seeds Go's `math/rand` (the Go 1 `rngSource`: an additive lagged
 * Fibonacci generator, length 607, tap 273, whose state is initialised from a
 * Park–Miller LCG XOR-ed with the `rngCooked` table of Go
 * `src/math/rand/rng.go`) and then repeatedly takes `n = rand.Uint32()`
 * (= `uint32(Int63() >> 31)`) and writes its 4 bytes little-endian until
 * `count` bytes have been produced.
 *
 * We need it to regenerate the inputs behind published Kubo CIDs
 * (test/fixtures/kubo-cids.json, e.g. `random 104857600 42`) without shipping
 * 100 MiB of fixture data. The 607 `rngCooked` values are loaded from
 * test/fixtures/go-rand-cooked.txt.
 *
 * The 63-bit state words are kept as two 32-bit halves (hi: 31 bits, lo: 32
 * bits) in typed arrays so the hot loop needs no BigInt.
 */
import { readFileSync } from 'node:fs'
import { packageFile } from '../../node/package-files.js'

const LEN = 607
const TAP = 273
const M = 2147483647
const A = 48271
const Q = 44488
const R = 3399
const MASK63 = (1n << 63n) - 1n
const PIECE = 4 * 1024 * 1024

// the fixture stays in test/fixtures/, found from the package's root (this code runs from tsc's output or a test bundle)
const COOKED_PATH = packageFile('test', 'fixtures', 'go-rand-cooked.txt')

let cooked: bigint[] | undefined

function loadCooked (): bigint[] {
  if (cooked == null) {
    const values = readFileSync(COOKED_PATH, 'utf8')
      .replace(/\s+/g, '')
      .split(',')
      .filter(Boolean)
      .map(BigInt)
    if (values.length !== LEN) {
      throw new Error(`expected ${LEN} rngCooked values in ${COOKED_PATH}, got ${values.length}`)
    }
    cooked = values
  }
  return cooked
}

/** Park–Miller step used by Go's `seedrand`: x[n+1] = 48271 * x[n] mod (2**31 - 1). */
function seedrand (x: number): number {
  const hi = Math.trunc(x / Q)
  const lo = x % Q
  x = A * lo - R * hi
  if (x < 0) x += M
  return x
}

/** Go 1 `math/rand` source (`rngSource`), seeded exactly as `rand.Seed(seed)`. */
export class GoRand {
  private readonly hi = new Uint32Array(LEN)
  private readonly lo = new Uint32Array(LEN)
  private tap = 0
  private feed = LEN - TAP

  constructor (seed: number) {
    const table = loadCooked()
    let s = BigInt(seed) % BigInt(M)
    if (s < 0n) s += BigInt(M)
    if (s === 0n) s = 89482311n
    let x = Number(s)
    for (let i = -20; i < LEN; i++) {
      x = seedrand(x)
      if (i >= 0) {
        let u = BigInt.asUintN(64, BigInt(x) << 40n)
        x = seedrand(x)
        u ^= BigInt.asUintN(64, BigInt(x) << 20n)
        x = seedrand(x)
        u ^= BigInt(x)
        u ^= BigInt.asUintN(64, table[i])
        u &= MASK63
        this.hi[i] = Number(u >> 32n)
        this.lo[i] = Number(u & 0xffffffffn)
      }
    }
  }

  /** Advances the generator; the new Int63 is `hi[feed]:lo[feed]`. */
  private next (): number {
    if (--this.tap < 0) this.tap += LEN
    if (--this.feed < 0) this.feed += LEN
    const f = this.feed
    const t = this.tap
    const sum = this.lo[f] + this.lo[t]
    const carry = sum > 0xffffffff ? 1 : 0
    const hi = (this.hi[f] + this.hi[t] + carry) & 0x7fffffff
    this.lo[f] = sum >>> 0
    this.hi[f] = hi
    return hi
  }

  /** Go's `rand.Uint32()`: bits 62..31 of the next Int63. */
  uint32 (): number {
    const hi = this.next()
    return ((hi << 1) | (this.lo[this.feed] >>> 31)) >>> 0
  }

  /** Go's `rand.Int63()`. */
  int63 (): bigint {
    const hi = this.next()
    return (BigInt(hi) << 32n) | BigInt(this.lo[this.feed])
  }
}

/**
 * Yields exactly the bytes `random <count> <seed>` (jbenet/go-random) writes,
 * in fresh pieces of at most 4 MiB.
 */
export function * goRandomBytes (count: number, seed: number): Generator<Uint8Array> {
  const rand = new GoRand(seed)
  let left = count
  while (left > 0) {
    const size = Math.min(left, PIECE)
    const piece = new Uint8Array(size)
    let i = 0
    const whole = size - (size % 4)
    while (i < whole) {
      const n = rand.uint32()
      piece[i++] = n & 0xff
      piece[i++] = (n >>> 8) & 0xff
      piece[i++] = (n >>> 16) & 0xff
      piece[i++] = n >>> 24
    }
    if (i < size) {
      let n = rand.uint32()
      while (i < size) {
        piece[i++] = n & 0xff
        n >>>= 8
      }
    }
    left -= size
    yield piece
  }
}
