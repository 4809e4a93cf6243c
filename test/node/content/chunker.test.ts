import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  FASTCDC_DEFAULTS,
  createChunker,
  fastcdc,
  fastcdcParams,
  findCutPoint,
  fixedSize,
  formatChunker,
  parseChunker
} from '../../../node/content/chunker/index.js'
import type { Chunker, FastCDCOptions, FastCDCParams } from '../../../node/content/chunker/index.js'
import { GEAR, gearScanScript } from '../../../node/content/chunker/fastcdc.js'
import { nativeHash, type NativeHash } from '../../../node/blocks/native-hash.js'

const KiB = 1024
const MiB = 1024 * KiB
const SMALL: FastCDCOptions = { minSize: 2 * KiB, avgSize: 8 * KiB, maxSize: 64 * KiB }
const TINY: FastCDCOptions = { minSize: 64, avgSize: 256, maxSize: 1024 }

/** xorshift32 stream: deterministic on every platform. */
function prng (seed: number): () => number {
  let x = seed | 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return x >>> 0
  }
}

function randomBytes (length: number, seed: number): Uint8Array {
  const next = prng(seed)
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i += 4) {
    const v = next()
    out[i] = v
    out[i + 1] = v >>> 8
    out[i + 2] = v >>> 16
    out[i + 3] = v >>> 24
  }
  return out
}

/** Split `data` into pieces whose sizes come from `size()`. */
function split (data: Uint8Array, size: () => number): Uint8Array[] {
  const pieces: Uint8Array[] = []
  for (let o = 0; o < data.length;) {
    const n = Math.min(size(), data.length - o)
    pieces.push(data.subarray(o, o + n))
    o += n
  }
  return pieces
}

function randomPieces (data: Uint8Array, maxPiece: number, seed: number): Uint8Array[] {
  const next = prng(seed)
  return split(data, () => 1 + (next() % maxPiece))
}

async function collect (chunker: Chunker, pieces: Iterable<Uint8Array>): Promise<Uint8Array[]> {
  async function * source (): AsyncGenerator<Uint8Array> { yield * pieces }
  const chunks: Uint8Array[] = []
  for await (const chunk of chunker(source())) chunks.push(chunk)
  return chunks
}

function concat (chunks: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks))
}

function lengths (chunks: Uint8Array[]): number[] {
  return chunks.map(c => c.length)
}

function hashes (chunks: Uint8Array[]): string[] {
  return chunks.map(c => createHash('sha256').update(c).digest('hex'))
}

function assertBounds (chunks: Uint8Array[], opts: FastCDCOptions): void {
  chunks.forEach((c, i) => {
    assert.ok(c.length <= opts.maxSize, `chunk ${i} of ${c.length} B > max ${opts.maxSize}`)
    if (i < chunks.length - 1) assert.ok(c.length >= opts.minSize, `chunk ${i} of ${c.length} B < min ${opts.minSize}`)
    assert.ok(c.length > 0)
  })
}

/** The cut rule of docs/chunking.md written out naively, one byte at a time. */
function referenceCut (buf: Uint8Array, start: number, end: number, p: FastCDCParams, gear: (b: number) => number): number {
  if (end - start <= p.minSize) return end
  const limit = Math.min(end, start + p.maxSize)
  let h = 0
  for (let i = start + p.minSize; i < limit; i++) {
    h = ((h << 1) + gear(buf[i])) | 0
    const mask = i - start < p.avgSize ? p.maskS : p.maskL
    if ((h & mask) === 0) return i + 1
  }
  return limit
}

/** GEAR[i] = first 4 bytes (big-endian) of sha256('shoal-fastcdc-gear-v1:' + i), as int32. */
const REFERENCE_GEAR = Array.from({ length: 256 }, (_, i) =>
  createHash('sha256').update('shoal-fastcdc-gear-v1:' + String(i)).digest().readInt32BE(0))

function referenceGear (b: number): number {
  return REFERENCE_GEAR[b]
}

const DATA_32M = randomBytes(32 * MiB, 0x5eed)
const DATA_4M = DATA_32M.subarray(0, 4 * MiB)

describe('fastcdc', () => {
  it('respects min and max and reassembles the input', async () => {
    const sets: Array<[FastCDCOptions, Uint8Array]> = [
      [TINY, DATA_4M.subarray(0, 512 * KiB)],
      [SMALL, DATA_4M],
      [{ minSize: 1000, avgSize: 3000, maxSize: 10000 }, DATA_4M],
      [{ minSize: 4096, avgSize: 4096, maxSize: 4096 }, DATA_4M.subarray(0, 100_000)],
      [FASTCDC_DEFAULTS, DATA_32M]
    ]
    for (const [opts, data] of sets) {
      const chunks = await collect(fastcdc(opts), randomPieces(data, 3 * opts.maxSize, 7))
      assertBounds(chunks, opts)
      assert.deepEqual(concat(chunks), data)
    }
  })

  it('gives the same boundaries however the input is split', async () => {
    const small = DATA_4M.subarray(0, 256 * KiB)
    for (const opts of [TINY, SMALL]) {
      const whole = lengths(await collect(fastcdc(opts), [small]))
      const next = prng(3)
      assert.deepEqual(lengths(await collect(fastcdc(opts), split(small, () => 1 + next() % 7))), whole)
      assert.deepEqual(lengths(await collect(fastcdc(opts), randomPieces(small, 3 * opts.maxSize, 11))), whole)
    }
    const whole = lengths(await collect(fastcdc(), [DATA_32M]))
    assert.deepEqual(lengths(await collect(fastcdc(), randomPieces(DATA_32M, 5 * MiB, 13))), whole)
    assert.deepEqual(lengths(await collect(fastcdc(), randomPieces(DATA_32M, 64 * KiB, 17))), whole)
    assert.deepEqual(lengths(await collect(fastcdc(), split(DATA_32M, () => FASTCDC_DEFAULTS.maxSize))), whole)
  })

  it('yields chunks that do not alias a reused input buffer', async () => {
    const data = DATA_4M.subarray(0, MiB)
    const expected = lengths(await collect(fastcdc(SMALL), [data]))
    const next = prng(19)
    const scratch = new Uint8Array(200 * KiB)
    async function * reusing (): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < data.length;) {
        const n = Math.min(1 + next() % scratch.length, data.length - o)
        scratch.set(data.subarray(o, o + n))
        yield scratch.subarray(0, n)
        scratch.fill(0xaa)
        o += n
      }
    }
    const chunks: Uint8Array[] = []
    for await (const chunk of fastcdc(SMALL)(reusing())) chunks.push(chunk)
    assert.deepEqual(lengths(chunks), expected)
    assert.deepEqual(concat(chunks), data)
  })

  it('resynchronizes after an inserted or deleted byte', async () => {
    const cases: Array<[FastCDCOptions, Uint8Array]> = [[FASTCDC_DEFAULTS, DATA_32M], [SMALL, DATA_4M]]
    for (const [opts, data] of cases) {
      const before = hashes(await collect(fastcdc(opts), [data]))
      const inserted = concat([data.subarray(0, 1000), Uint8Array.of(0x42), data.subarray(1000)])
      const deleted = concat([data.subarray(0, 1000), data.subarray(1001)])
      for (const edited of [inserted, deleted]) {
        const after = hashes(await collect(fastcdc(opts), [edited]))
        const old = new Set(before)
        const changed = after.filter(h => !old.has(h)).length
        assert.ok(changed >= 1 && changed <= 2, `${changed} of ${after.length} chunks changed`)
      }
    }
  })

  it('averages near avgSize on random data', async () => {
    for (const [opts, data] of [[SMALL, DATA_4M], [FASTCDC_DEFAULTS, DATA_32M]] as const) {
      const chunks = await collect(fastcdc(opts), [data])
      const mean = data.length / chunks.length
      assert.ok(mean >= 0.5 * opts.avgSize && mean <= 1.5 * opts.avgSize, `mean ${mean} for avg ${opts.avgSize}`)
    }
  })

  it('yields one empty chunk for empty input and one chunk for input under minSize', async () => {
    assert.deepEqual(await collect(fastcdc(), []), [new Uint8Array(0)])
    assert.deepEqual(await collect(fastcdc(), [new Uint8Array(0), new Uint8Array(0)]), [new Uint8Array(0)])
    const tiny = DATA_4M.subarray(0, 100 * KiB)
    const chunks = await collect(fastcdc(), split(tiny, () => 4096))
    assert.equal(chunks.length, 1)
    assert.deepEqual(chunks[0], tiny)
  })

  it('keeps the documented cut rule and gear table (format guard)', () => {
    const next = prng(23)
    for (const opts of [TINY, SMALL, { minSize: 100, avgSize: 700, maxSize: 5000 }]) {
      const params = fastcdcParams(opts)
      for (let k = 0; k < 3000; k++) {
        const start = next() % 1000
        const end = start + (next() % (opts.maxSize * 2))
        const cut = findCutPoint(DATA_4M, start, end, params)
        assert.equal(cut, referenceCut(DATA_4M, start, end, params, referenceGear))
        assert.ok(cut > start || end === start)
        assert.ok(cut <= Math.min(end, start + opts.maxSize))
        if (end - start > opts.minSize) assert.ok(cut - start >= opts.minSize)
      }
    }
  })

  it('produces the recorded boundaries (changing them changes CIDs)', async () => {
    const small = lengths(await collect(fastcdc(SMALL), [DATA_4M.subarray(0, MiB)]))
    const digest = createHash('sha256').update(small.join(',')).digest('hex')
    assert.deepEqual({ count: small.length, first: small.slice(0, 6), digest }, GOLDEN_SMALL)
    assert.deepEqual(lengths(await collect(fastcdc(), [DATA_32M.subarray(0, 8 * MiB)])), GOLDEN_DEFAULT)
  })

  it('rejects invalid options', () => {
    const bad: Array<Partial<FastCDCOptions>> = [
      { minSize: 32, avgSize: 128, maxSize: 256 },
      { minSize: 2048, avgSize: 1024, maxSize: 4096 },
      { minSize: 1024, avgSize: 4096, maxSize: 2048 },
      { maxSize: 8 * MiB },
      { avgSize: 1.5 * MiB + 0.5 },
      { minSize: Number.NaN }
    ]
    for (const opts of bad) {
      assert.throws(() => fastcdc(opts), (err: Error) => err.name === 'InvalidArgumentError')
    }
  })
})

describe('the gear scan in C (native/hash/gear.c)', () => {
  /** The addon's scan: CI builds the addon (npm run build:hash); without it this fails, never skips. */
  function nativeScan (): NonNullable<NativeHash['gearScan']> {
    const scan = nativeHash()?.gearScan
    assert.ok(scan !== undefined, 'the sha-256 addon with gearScan is built (npm run build:hash)')
    return scan
  }

  it('finds the cut points the JavaScript scan finds, for every mask the chunker uses and any range', () => {
    const scan = nativeScan()
    const next = prng(77)
    const buf = new Uint8Array(2 * MiB)
    for (let i = 0; i < buf.length; i++) buf[i] = next() & 0xff
    const masks = [SMALL, TINY, {}].flatMap(options => { const p = fastcdcParams(options); return [p.maskS, p.maskL] })
    let hits = 0
    for (const mask of [...masks, 0, -1]) {
      for (let round = 0; round < 60; round++) {
        const warm = next() % buf.length
        const from = warm + (next() % Math.min(64, buf.length - warm + 1))
        const to = from + (next() % (buf.length - from + 1))
        const expected = gearScanScript(buf, warm, from, to, mask)
        assert.equal(scan(buf, GEAR, warm, from, to, mask), expected, `mask ${mask}, warm ${warm}, from ${from}, to ${to}`)
        if (expected >= 0) hits++
      }
      // the whole buffer, a range of no bytes, a view at an offset
      assert.equal(scan(buf, GEAR, 0, 0, buf.length, mask), gearScanScript(buf, 0, 0, buf.length, mask))
      assert.equal(scan(buf, GEAR, 5, 9, 9, mask), -1)
      const view = buf.subarray(1234, 1234 + 100_000)
      assert.equal(scan(view, GEAR, 0, 32, view.length, mask), gearScanScript(view, 0, 32, view.length, mask))
    }
    assert.ok(hits > 100, `scans that found a cut: ${hits}`)
    // a hit on the last byte of the range
    const cut = gearScanScript(buf, 0, 0, buf.length, masks[0])
    assert.ok(cut > 0)
    assert.equal(scan(buf, GEAR, 0, 0, cut, masks[0]), cut)
    assert.equal(scan(buf, GEAR, 0, 0, cut - 1, masks[0]), gearScanScript(buf, 0, 0, cut - 1, masks[0]))
  })

  it('refuses arguments that would read outside the buffer, with a TypeError or RangeError, at the call', () => {
    const scan = nativeScan()
    const buf = new Uint8Array(100)
    const bad: Array<[unknown[], ErrorConstructor, RegExp]> = [
      [[new Uint16Array(4), GEAR, 0, 0, 4, -1], TypeError, /buf must be a Uint8Array/],
      [[buf, new Uint32Array(256), 0, 0, 4, -1], TypeError, /gear must be an Int32Array/],
      [[buf, new Int32Array(255), 0, 0, 4, -1], RangeError, /256 entries/],
      [[buf, GEAR, 0, 0, 101, -1], RangeError, /within buf/],
      [[buf, GEAR, -1, 0, 4, -1], RangeError, /within buf/],
      [[buf, GEAR, 0, 0.5, 4, -1], RangeError, /within buf/],
      [[buf, GEAR, 0, Number.NaN, 4, -1], RangeError, /within buf/],
      [[buf, GEAR, 0, '1', 4, -1], RangeError, /within buf/],
      [[buf, GEAR, 5, 4, 10, -1], RangeError, /warm <= from <= to/],
      [[buf, GEAR, 0, 10, 4, -1], RangeError, /warm <= from <= to/],
      [[buf, GEAR, 0, 0, 4], TypeError, /expected \(buf, gear, warm, from, to, mask\)/]
    ]
    for (const [args, type, message] of bad) {
      assert.throws(() => (scan as (...a: unknown[]) => number)(...args), (err: unknown) => err instanceof type && message.test((err as Error).message), String(args.slice(2)))
    }
  })
})

describe('fixedSize', () => {
  it('cuts exactly every N bytes', async () => {
    const data = DATA_4M.subarray(0, 10_500)
    const chunks = await collect(fixedSize(1000), randomPieces(data, 3000, 29))
    assert.deepEqual(lengths(chunks), [...Array(10).fill(1000), 500])
    assert.deepEqual(concat(chunks), data)
    const big = await collect(createChunker(parseChunker('size-262144')), randomPieces(DATA_4M, MiB, 31))
    assert.deepEqual(lengths(big), Array(16).fill(256 * KiB))
  })

  it('rejects sizes outside 1..4 MiB', () => {
    for (const size of [0, -1, 1.5, 4 * MiB + 1, Number.NaN]) {
      assert.throws(() => fixedSize(size), (err: Error) => err.name === 'InvalidArgumentError')
    }
  })
})

describe('parseChunker', () => {
  it('accepts the Kubo-like forms', () => {
    assert.deepEqual(parseChunker('fastcdc'), { type: 'fastcdc', ...FASTCDC_DEFAULTS })
    assert.deepEqual(parseChunker('fastcdc-1024-4096-16384'), { type: 'fastcdc', minSize: 1024, avgSize: 4096, maxSize: 16384 })
    assert.deepEqual(parseChunker('size-262144'), { type: 'fixed', size: 262144 })
  })

  it('rejects anything else', () => {
    for (const spec of ['size-0', 'size-abc', 'rabin', 'fastcdc-10-5-1', 'size-999999999', '', 'fastcdc-1024-4096', 'size-', ' size-1024']) {
      assert.throws(() => parseChunker(spec), (err: Error) => {
        assert.equal(err.name, 'InvalidArgumentError')
        assert.match(err.message, /fastcdc-<min>-<avg>-<max>/)
        return true
      }, spec)
    }
  })

  it('formats specs back to strings that parse to the same spec', () => {
    for (const spec of ['fastcdc', 'fastcdc-1024-4096-16384', 'size-262144']) {
      const parsed = parseChunker(spec)
      assert.deepEqual(parseChunker(formatChunker(parsed)), parsed)
    }
    assert.equal(formatChunker(parseChunker('fastcdc-1024-4096-16384')), 'fastcdc-1024-4096-16384')
    assert.equal(formatChunker({ type: 'fixed', size: 1000 }), 'size-1000')
  })

  it('creates working chunkers', async () => {
    const data = DATA_4M.subarray(0, 300 * KiB)
    const chunks = await collect(createChunker(parseChunker('fastcdc-1024-4096-16384')), [data])
    assertBounds(chunks, { minSize: 1024, avgSize: 4096, maxSize: 16384 })
    assert.deepEqual(concat(chunks), data)
  })
})

/** Boundaries of SMALL on the first MiB of DATA_32M (seed 0x5eed). */
const GOLDEN_SMALL = {
  count: 109,
  first: [8713, 8224, 10047, 10828, 10016, 10265],
  digest: '2f7593b43dbea3bc333ad26390e7c70675e0b150efd539eb505d149d0c045155'
}
/** Boundaries of the defaults on the first 8 MiB of DATA_32M. */
const GOLDEN_DEFAULT = [1358785, 1703705, 434205, 2097152, 1327143, 729361, 738257]
