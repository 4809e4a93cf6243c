/**
 * Cold tier benchmark: pushing a file to S3 and reading it back (whole and
 * ranged) through the cold reader, each next to the same S3 server's raw
 * rate on the same bytes in the same run.
 *
 *   npm run build && node dist/bench/tier.js [--size 256MiB] [--runs 3]
 *     [--chunker fastcdc] [--ranges 32] [--range-size 1MiB] [--dir DIR] [--json]
 *
 * The server is s3rver (the tests' S3 server) on 127.0.0.1 in a child
 * process of its own, storing in the working dir. The file (random bytes)
 * is imported once into a LevelDB block store. Per run, timed one after the
 * other:
 * - raw: a streamed PutObject of the file, a multipart upload of it (8 MiB
 *   parts, 4 at once: the push's settings), a GetObject of the whole object,
 *   and `--ranges` ranged GetObjects of `--range-size` at seeded random offsets;
 * - Shoal: `pushCold` (CAR + index upload, then the default sample
 *   verification), `verifyCold` in full mode, a whole `readContent` through a
 *   fresh `ColdReader` (checked byte-identical), and the same ranges through
 *   one `ColdReader` whose index is loaded before the clock starts.
 * Prints medians as a markdown table on stdout; progress on stderr.
 * MB = 10^6 bytes.
 */
import '../node/polyfills.js'
import { spawn, spawnSync } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { createBlockStore } from '../node/blocks/index.js'
import { importContent, parseChunker, readContent } from '../node/content/index.js'
import { ColdReader, createTierClient, pushCold, verifyCold, type TierClient } from '../node/tiers/index.js'
import { fmt, installCleanup, log, median, tempDirs, trackChild, writeRandomFile } from './harness.js'

const MiB = 1024 * 1024
const MB = 1e6
const BUCKET = 'bench'
/** The access key and secret s3rver accepts. */
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

interface Options {
  size: number
  runs: number
  chunker: string
  ranges: number
  rangeSize: number
  dir: string
  json: boolean
}

const USAGE = 'usage: node dist/bench/tier.js [--size 256MiB] [--runs 3] [--chunker fastcdc] [--ranges 32] [--range-size 1MiB] [--dir DIR] [--json]'

/** A positive whole number, optionally with a binary unit: `3`, `4096`, `256MiB`, `1GiB`. */
function amount (flag: string, text: string): number {
  const m = /^(\d+)(KiB|MiB|GiB)?$/.exec(text)
  const n = m === null ? NaN : Number(m[1]) * ({ KiB: 1024, MiB, GiB: 1024 * MiB }[m[2] ?? ''] ?? 1)
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag}: expected a positive number such as 3 or 256MiB, got ${JSON.stringify(text)}\n${USAGE}`)
  return n
}

function parseArgs (argv: string[]): Options {
  const o: Options = { size: 256 * MiB, runs: 3, chunker: 'fastcdc', ranges: 32, rangeSize: MiB, dir: tmpdir(), json: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`)
      return v
    }
    switch (arg) {
      case '--size': o.size = amount(arg, value()); break
      case '--runs': o.runs = amount(arg, value()); break
      case '--chunker': o.chunker = value(); break
      case '--ranges': o.ranges = amount(arg, value()); break
      case '--range-size': o.rangeSize = amount(arg, value()); break
      case '--dir': o.dir = resolve(value()); break
      case '--json': o.json = true; break
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break
      default: throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`)
    }
  }
  if (o.rangeSize > o.size) throw new Error('--range-size is larger than --size')
  return o
}

/** Child mode: run s3rver on a free loopback port, print `{"port":N}`, stop on SIGTERM. */
async function serve (directory: string): Promise<void> {
  const { default: S3rver } = await import('s3rver')
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: BUCKET }] })
  const { port } = await server.run()
  process.stdout.write(JSON.stringify({ port }) + '\n')
  process.once('SIGTERM', () => { void server.close().finally(() => process.exit(0)) })
}

/** Start the server child (at most 30 s): its endpoint, and how to stop it. */
async function startServer (directory: string): Promise<{ endpoint: string, stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve-s3', directory], { stdio: ['ignore', 'pipe', 'inherit'] })
  const stop = trackChild(child, 10_000)
  const lines = createInterface({ input: child.stdout })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  try {
    for await (const line of lines) return { endpoint: `http://127.0.0.1:${Number(JSON.parse(line).port)}`, stop }
    throw new Error('the S3 server exited before it listened')
  } finally {
    clearTimeout(timer)
  }
}

/** Highest resident set size of this process while `fn` runs (sampled every 20 ms), in bytes. */
async function peakRss (fn: () => Promise<unknown>): Promise<number> {
  let peak = process.memoryUsage.rss()
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 20)
  try {
    await fn()
  } finally {
    clearInterval(timer)
  }
  return Math.max(peak, process.memoryUsage.rss())
}

/** Flush dirty pages, so that one phase's writeback (s3rver writes to disk) does not land in the next one's time. */
function settle (): void {
  spawnSync('sync', { stdio: 'ignore' })
}

/** Seconds taken by `fn`, after {@link settle}. */
async function timed (fn: () => Promise<unknown>): Promise<number> {
  settle()
  const started = performance.now()
  await fn()
  return (performance.now() - started) / 1000
}

/** Read `source` to its end; its sha-256 in hex. */
async function drain (source: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of source) hash.update(chunk)
  return hash.digest('hex')
}

/** `count` offsets for ranges of `length` in `size` bytes, the same in every run (xorshift). */
function rangeOffsets (size: number, length: number, count: number): number[] {
  let x = 0x9e3779b9
  const out: number[] = []
  for (let i = 0; i < count; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out.push(Math.floor(((x >>> 0) / 2 ** 32) * (size - length)))
  }
  return out
}

interface Run {
  rawPut: number
  rawMultipart: number
  rawGet: number
  rawRanged: number
  push: number
  pushUpload: number
  verifyFull: number
  coldRead: number
  coldRanged: number
  coldReadRequests: number
  rangedFetched: number
  rangedRequests: number
  carSize: number
  /** RSS of the bench process before the push, and its peak during the push and the whole cold read. */
  baseRss: number
  pushRss: number
  coldReadRss: number
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv[0] === '--serve-s3') return await serve(argv[1])
  const o = parseArgs(argv)
  // the SDK's multi-line notice that its 2027 releases need Node 22
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  installCleanup()
  const work = await mkdtemp(join(o.dir, 'shoal-bench-tier-'))
  tempDirs.add(work)
  await mkdir(join(work, 's3'))
  const { endpoint, stop } = await startServer(join(work, 's3'))
  log(`s3rver at ${endpoint}; writing ${fmt(o.size / MiB)} MiB of random bytes`)
  const file = join(work, 'file.bin')
  const digest = await writeRandomFile(file, o.size)
  const store = createBlockStore({}, { path: join(work, 'blocks') })
  await store.open()
  const root = (await importContent(store, createReadStream(file, { highWaterMark: 4 * MiB }), { chunker: parseChunker(o.chunker) })).cid
  const tier: TierClient = createTierClient({ endpoint, bucket: BUCKET, prefix: 'cold' }, { credentials: CREDENTIALS })
  const offsets = rangeOffsets(o.size, o.rangeSize, o.ranges)
  const requested = o.ranges * o.rangeSize
  const runs: Run[] = []
  // the SDK is imported at the client's first request: not inside a timed one
  await tier.sdkClient()
  try {
    for (let r = 1; r <= o.runs; r++) {
      log(`run ${r}/${o.runs}`)
      const run = {} as Run
      run.rawPut = await timed(async () => await (await tier.sdkClient()).send(new PutObjectCommand({
        Bucket: BUCKET, Key: 'raw/put', Body: createReadStream(file, { highWaterMark: MiB }), ContentLength: o.size
      })))
      run.rawMultipart = await timed(async () => { await tier.upload('raw/multipart', createReadStream(file, { highWaterMark: MiB })) })
      run.rawGet = await timed(async () => { await drain((await tier.getObject('raw/put')).body) })
      run.rawRanged = await timed(async () => {
        for (const offset of offsets) await drain((await tier.getRange('raw/put', offset, offset + o.rangeSize)).body)
      })
      let uploadedAt = 0
      let pushed: Awaited<ReturnType<typeof pushCold>> | undefined
      settle()
      run.baseRss = process.memoryUsage.rss()
      const started = performance.now()
      run.pushRss = await peakRss(async () => {
        pushed = await pushCold(tier, store, root, {
          sizeHint: o.size,
          onProgress: e => { if (e.type === 'shoal:tier:push:uploaded') uploadedAt = performance.now() }
        })
      })
      run.push = (performance.now() - started) / 1000
      const { location } = pushed as Awaited<ReturnType<typeof pushCold>>
      run.pushUpload = (uploadedAt - started) / 1000
      run.carSize = location.carSize
      run.verifyFull = await timed(async () => await verifyCold(tier, location, { mode: 'full' }))
      const whole = new ColdReader(tier, location)
      let got = ''
      settle()
      const readStarted = performance.now()
      run.coldReadRss = await peakRss(async () => { got = await drain(readContent(whole, root)) })
      run.coldRead = (performance.now() - readStarted) / 1000
      if (got !== digest) throw new Error('the cold read is not byte-identical to the file')
      run.coldReadRequests = whole.stats.requests
      whole.close()
      const ranged = new ColdReader(tier, location)
      await ranged.load()
      run.coldRanged = await timed(async () => {
        for (const offset of offsets) await drain(readContent(ranged, root, { offset, length: o.rangeSize }))
      })
      // read-ahead may still be running: it counts
      for (let i = 0; i < 1000 && ranged.fetchesInFlight > 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
      run.rangedFetched = ranged.stats.bytesFetched
      run.rangedRequests = ranged.stats.requests
      ranged.close()
      runs.push(run)
    }
  } finally {
    tier.destroy()
    await store.close()
    await stop()
  }
  const m = (pick: (run: Run) => number): number => median(runs.map(pick))
  const rate = (bytes: number, seconds: number): number => bytes / MB / seconds
  const size = o.size
  const rows: Array<[string, number, string, number]> = [
    ['push (upload + sample verify)', rate(size, m(x => x.push)), 'PutObject, streamed', rate(size, m(x => x.rawPut))],
    ['push (upload + sample verify)', rate(size, m(x => x.push)), 'multipart upload, 8 MiB parts', rate(size, m(x => x.rawMultipart))],
    ['push, upload only (CAR + index)', rate(size, m(x => x.pushUpload)), 'multipart upload, 8 MiB parts', rate(size, m(x => x.rawMultipart))],
    ['whole cold read (readContent)', rate(size, m(x => x.coldRead)), 'GetObject, whole', rate(size, m(x => x.rawGet))],
    [`ranged cold reads (${o.ranges} × ${fmt(o.rangeSize / 1024)} KiB)`, rate(requested, m(x => x.coldRanged)), 'ranged GetObject, same ranges', rate(requested, m(x => x.rawRanged))],
    ['full verify (CAR read back, sha-256)', rate(size, m(x => x.verifyFull)), 'GetObject, whole', rate(size, m(x => x.rawGet))]
  ]
  const out = [
    `Cold tier against s3rver on 127.0.0.1, ${fmt(size / MiB)} MiB file, chunker ${o.chunker}, median of ${o.runs} run(s), MB = 10^6 bytes`,
    '',
    '| Shoal | MB/s | raw S3, same bytes | MB/s | ratio |',
    '|---|---:|---|---:|---:|',
    ...rows.map(([what, ours, raw, theirs]) => `| ${what} | ${fmt(ours, 1)} | ${raw} | ${fmt(theirs, 1)} | ${fmt(ours / theirs, 2)} |`),
    '',
    `CAR ${fmt(m(x => x.carSize))} bytes for a ${fmt(size)}-byte file; whole read in ${fmt(m(x => x.coldReadRequests))} ranged GETs;`,
    `ranged reads fetched ${fmt(m(x => x.rangedFetched) / requested, 2)} × the bytes asked for, in ${fmt(m(x => x.rangedRequests))} GETs for ${o.ranges} ranges;`,
    `RSS of the bench process (block store open): ${fmt(m(x => x.baseRss) / MiB)} MiB before the push, peak ${fmt(m(x => x.pushRss) / MiB)} MiB during it, ${fmt(m(x => x.coldReadRss) / MiB)} MiB during the whole cold read.`
  ]
  process.stdout.write(out.join('\n') + '\n')
  if (o.json) process.stdout.write(JSON.stringify({ options: o, runs }, null, 2) + '\n')
  await rm(work, { recursive: true, force: true })
  tempDirs.delete(work)
}

main().catch(err => {
  process.stderr.write(`${String(err?.stack ?? err)}\n`)
  process.exit(1)
})
