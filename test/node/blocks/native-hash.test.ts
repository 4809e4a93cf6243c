/**
 * The sha-256 addon (native/hash, node/blocks/native-hash.ts): built here
 * (CI builds it, `npm run build:hash`), it gives the digests node:crypto
 * gives, for views into larger buffers too, keeps the bytes alive while it
 * hashes them, and refuses what is not a Uint8Array. matchesCIDOffThread
 * hashes through it (verify.test.ts checks its answers through the addon
 * and through WebCrypto, which nodes without the addon use).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, pbkdf2, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { NATIVE_HASH_FILE, nativeHash, nativeHashError, type NativeHash } from '../../../node/blocks/native-hash.js'

const expected = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()

function addon (): NativeHash {
  const native = nativeHash()
  // fails, never skips: without it the node hashes through WebCrypto, and this file would test nothing
  assert.ok(native !== undefined, `the sha-256 addon does not load from ${NATIVE_HASH_FILE()} (npm run build:hash): ${nativeHashError()?.message ?? ''}`)
  return native
}

test('the addon gives node:crypto\'s sha-256, for whole buffers and for views into larger ones', async () => {
  const native = addon()
  for (const size of [0, 1, 55, 56, 64, 1000, 65_535, 65_536, 262_144, 1024 * 1024 + 3]) {
    const whole = randomBytes(size + 40)
    for (const bytes of [whole.subarray(0, size), whole.subarray(17, 17 + size), new Uint8Array(whole.buffer, whole.byteOffset + 40, size)]) {
      const got = await native.sha256(bytes)
      assert.equal(got.byteLength, 32)
      assert.deepEqual(Buffer.from(got), expected(bytes), `${size} bytes at offset ${bytes.byteOffset}`)
    }
  }
})

test('many blocks hashed at once each get their own digest', async () => {
  const native = addon()
  const blocks = Array.from({ length: 64 }, (_, i) => randomBytes(64 * 1024 + i * 977))
  const digests = await Promise.all(blocks.map(async b => await native.sha256(b)))
  for (let i = 0; i < blocks.length; i++) assert.deepEqual(Buffer.from(digests[i]), expected(blocks[i]), `block ${i}`)
})

test('the bytes stay alive while they are hashed, though the caller drops them (sha256 and sha256Many)', async () => {
  const native = addon()
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // the thread pool kept busy (4 threads, the default; more if UV_THREADPOOL_SIZE says so), so no hash starts before the collection below
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const busy = Array.from({ length: threads }, async () => await new Promise<void>((resolve, reject) => { pbkdf2('x', 'salt', 400_000, 32, 'sha256', err => { if (err !== null) reject(err); else resolve() }) }))
  const wanted: Buffer[] = []
  const pending: Array<Promise<Uint8Array>> = []
  for (let i = 0; i < 32; i++) {
    // each block's only reference is the call's: collected, its memory would be reused before the thread pool got to it
    let block: Uint8Array | undefined = randomBytes(1024 * 1024)
    wanted.push(expected(block))
    // one way or the other: sha256Many holds its blocks as sha256 holds its one
    pending.push(i % 2 === 0 ? native.sha256(block) : native.sha256Many!([block]))
    block = undefined
  }
  gc()
  // fill the freed memory, if any was freed
  const filler = Array.from({ length: 32 }, () => Buffer.alloc(1024 * 1024, 0xa5))
  await Promise.all(busy)
  const digests = await Promise.all(pending)
  for (let i = 0; i < digests.length; i++) assert.deepEqual(Buffer.from(digests[i]), wanted[i], `block ${i}`)
  assert.equal(filler.length, 32)
})

test('what is not a Uint8Array is refused with a TypeError, at the call', () => {
  const native = addon()
  for (const wrong of ['bytes', 42, undefined, null, new ArrayBuffer(8), new Uint16Array(4), new DataView(new ArrayBuffer(8)), [1, 2, 3]]) {
    assert.throws(() => { void native.sha256(wrong as unknown as Uint8Array) }, (err: unknown) => err instanceof TypeError && /expected a Uint8Array/.test(err.message), String(wrong))
  }
})

/** `count` blocks cut from one buffer at odd offsets, of `size(i)` bytes each. */
function blocksOf (count: number, size: (i: number) => number): Uint8Array[] {
  const sizes = Array.from({ length: count }, (_, i) => size(i))
  const whole = randomBytes(sizes.reduce((sum, n) => sum + n + 3, 0))
  let at = 0
  return sizes.map(n => { at += 3; const block = whole.subarray(at, at + n); at += n; return block })
}

function assertDigests (digests: Uint8Array, blocks: Uint8Array[], what: string): void {
  assert.equal(digests.byteLength, 32 * blocks.length, what)
  blocks.forEach((block, i) => { assert.deepEqual(Buffer.from(digests.subarray(32 * i, 32 * i + 32)), expected(block), `${what}: block ${i} of ${block.byteLength} bytes`) })
}

test('sha256Many gives node:crypto\'s digest of every block, at every width this core has, whatever the lengths', async () => {
  const native = addon()
  assert.ok(native.sha256Many !== undefined && native.sha256Widths !== undefined, 'the addon has sha256Many (npm run build:hash)')
  // one at a time is always there; the lanes wherever the core has them (as /proc/cpuinfo says): this machine's kind has both
  assert.ok(native.sha256Widths.includes(1))
  const flags = new Set((readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/))
  assert.equal(native.sha256Widths.includes(8), flags.has('avx2'), 'AVX2 lanes where the core has AVX2')
  assert.equal(native.sha256Widths.includes(16), flags.has('avx512f') && flags.has('avx512bw'), 'AVX-512 lanes where the core has AVX-512 F and BW')
  const paddings = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]
  for (const width of [undefined, ...native.sha256Widths] as Array<1 | 8 | 16 | undefined>) {
    const what = `width ${width ?? 'chosen'}`
    // each length class of the padding (one tail block or two), lanes finishing at different blocks
    const short = blocksOf(paddings.length, i => paddings[i])
    assertDigests(await native.sha256Many(short, width), short, `${what}, short blocks`)
    // more blocks than lanes, of uneven lengths: lanes refilled as they finish, the last ones finished one at a time
    for (const count of [1, 2, 3, 7, 8, 9, 16, 17, 40]) {
      const blocks = blocksOf(count, i => 64 * 1024 + ((i * 7919) % 200_000))
      assertDigests(await native.sha256Many(blocks, width), blocks, `${what}, ${count} blocks`)
    }
    // equal blocks, lanes ending together
    const equal = blocksOf(16, () => 256 * 1024)
    assertDigests(await native.sha256Many(equal, width), equal, `${what}, 16 blocks of 256 KiB`)
    assert.equal((await native.sha256Many([], width)).byteLength, 0)
  }
})

test('sha256Many reads where each block lies only once every block is held: a getter that moves an earlier block away does not make it read freed memory', async () => {
  const native = addon()
  const first = randomBytes(16 * 1024 * 1024)
  const second = randomBytes(1000)
  const list: Uint8Array[] = [first]
  Object.defineProperty(list, 1, {
    enumerable: true,
    get: () => { structuredClone(first.buffer, { transfer: [first.buffer] }); return second }
  })
  // the moved block is hashed as what is left of it (nothing), never as the memory it was in
  const digests = await native.sha256Many!(list, native.sha256Widths!.includes(8) ? 8 : 1)
  assert.equal(first.byteLength, 0)
  assert.deepEqual(Buffer.from(digests.subarray(0, 32)), expected(new Uint8Array(0)))
  assert.deepEqual(Buffer.from(digests.subarray(32, 64)), expected(second))
})

test('sha256Many refuses what it cannot hash, at the call: not an array of Uint8Array, too many, a width this core lacks', () => {
  const native = addon()
  assert.ok(native.sha256Many !== undefined && native.sha256Widths !== undefined)
  const many = native.sha256Many
  const typeError = (pattern: RegExp) => (err: unknown) => err instanceof TypeError && pattern.test(err.message)
  for (const wrong of ['bytes', 42, undefined, null, new Uint8Array(8), [new Uint8Array(8), 'x'], [new Uint16Array(4)], [new ArrayBuffer(8)]]) {
    assert.throws(() => { void many(wrong as unknown as Uint8Array[]) }, typeError(/expected an array of Uint8Array/), String(wrong))
  }
  for (const width of [0, 2, 4, 32, '8', 8.5]) {
    assert.throws(() => { void many([new Uint8Array(8)], width as 8) }, typeError(/width must be 1, 8 or 16/), String(width))
  }
  assert.throws(() => { void many(Array.from({ length: 257 }, () => new Uint8Array(1))) }, (err: unknown) => err instanceof RangeError && /at most 256/.test(err.message))
  for (const width of ([8, 16] as const).filter(w => !native.sha256Widths!.includes(w))) {
    assert.throws(() => { void many([new Uint8Array(8)], width) }, (err: unknown) => err instanceof RangeError && /cannot hash at that width/.test(err.message))
  }
})
