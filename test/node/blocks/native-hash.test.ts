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

test('the bytes stay alive while they are hashed, though the caller drops them', async () => {
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
    pending.push(native.sha256(block))
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
