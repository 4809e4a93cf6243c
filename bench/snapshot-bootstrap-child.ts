/**
 * The measured side of bench/snapshot-bootstrap.ts, run in a child process
 * of its own so that its peak RSS is the loader's (or the ceiling's) alone.
 *
 *   node dist/bench/snapshot-bootstrap-child.js load --source DIR --work DIR --root CID --author ID --paths N
 *   node dist/bench/snapshot-bootstrap-child.js ceiling --source DIR --work DIR
 *   node dist/bench/snapshot-bootstrap-child.js lookups --work DIR --author ID --paths N [--count 10000] [--max-open-files N]
 *
 * `load`: a fresh Replica on a LevelKV in `--work` (trusting `--author`, as
 * an open swarm with that peer listed) runs `loadSnapshot`, served from the
 * source LevelDB as a peer's `blocks` answer is (the longest prefix of the
 * asked CIDs, at most MAX_BLOCKS_WANT, within 4 MiB) by a `serve` process
 * it starts (so the source's LevelDB is not in the loader's RSS, CPU time or
 * allocator, as on a real node); then the replica is checked (its clock,
 * its visible files, sampled paths).
 *
 * `ceiling`: every node of the source hash-checked against its CID
 * (sha-256) and written into a fresh LevelDB in `--work`, 4 MiB unsynced
 * batches, one synced write at the end.
 *
 * `lookups`: a loaded replica kept in `--work` (`--keep`) opened again, as
 * after a restart, and `--count` random paths looked up one after another
 * (`Replica.lookup`, what a FUSE `stat` does), then the same paths again:
 * the microseconds a lookup takes with a cold and a warm table cache, and
 * the peak RSS, with LevelDB's `max_open_files` set by `--max-open-files`
 * (default: LevelKV's). Prints one JSON line (not a {@link ChildResult}).
 *
 * Either sends one {@link ChildResult} to the parent (IPC) and exits.
 *
 * @module
 */
import '../node/polyfills.js'
import { createHash } from 'node:crypto'
import { fork } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { LevelKV, Replica, WriterTrust, peerIdVerifier, signerFromKey } from '../node/namespace/index.js'
import { MAX_OPEN_TABLES } from '../node/namespace/kv.js'
import { MAX_BLOCKS_WANT } from '../protocol/namespace.js'

/** Bytes per MiB. */
export const MiB = 1024 * 1024
/** Most bytes of one `blocks` answer (Snapshots.blocks' default), and of one ceiling batch. */
export const ANSWER_BYTES = 4 * MiB

/** The path of the `i`-th file (ascending in `i` below 10,000,000). */
export function pathOf (i: number): string {
  return `/dir${String(Math.floor(i / 1000)).padStart(4, '0')}/file-${String(i).padStart(8, '0')}`
}

/** The content CID of the `i`-th file (a raw CID with a made-up digest). */
export function fileCid (i: number): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setFloat64(0, i)
  return CID.createV1(0x55, Digest.create(0x12, digest))
}

/** Changed paths come in runs of this many consecutive paths (a directory written to), the runs spread evenly. */
const RUN = 100

/** The `k`-th of `changes` changed paths of a namespace of `paths`: its index (ascending in `k`). */
export function changedIndex (k: number, changes: number, paths: number): number {
  const runs = Math.ceil(changes / RUN)
  const spacing = paths / runs
  // too many changes for runs apart: every (paths / changes)-th path
  if (spacing < RUN) return Math.floor(k * paths / changes)
  return Math.floor(Math.floor(k / RUN) * spacing) + k % RUN
}

/** What the returning load measured: the second snapshot, into the replica that holds the first. */
export interface ReturnResult {
  s: number
  cpuS: number
  served: { requests: number, blocks: number, MiB: number }
  check: { clock: number, files: number, sampled: number, sampledOk: number }
}

/** What the load child measured. */
export interface LoadResult {
  kind: 'load'
  /** Wall time of loadSnapshot. */
  s: number
  /** CPU time of this process (all threads) during loadSnapshot: steadier than wall time on a shared machine. */
  cpuS: number
  /** Opening the fresh replica (not in `s`). */
  openS: number
  /** process.resourceUsage().maxRSS right after the load. */
  maxRssMiB: number
  /** Peaks of heapUsed and arrayBuffers, sampled every {@link SAMPLE_MS} ms. */
  heapPeakMiB: number
  arrayBuffersPeakMiB: number
  /** Peaks of anonymous and file-backed RSS (sampled as the heap; their sum may exceed the peak RSS: they peak apart). */
  rssAnonPeakMiB: number
  rssFilePeakMiB: number
  /** What the source served: fetch calls, blocks, bytes. */
  served: { requests: number, blocks: number, MiB: number }
  /** The replica after the load. */
  check: { s: number, loaded: boolean, clock: number, files: number, sampled: number, sampledOk: number }
  /** With `--then`: the second snapshot loaded into the same replica. */
  returning?: ReturnResult
}

/** What the ceiling child measured. */
export interface CeilingResult {
  kind: 'ceiling'
  s: number
  maxRssMiB: number
  heapPeakMiB: number
  arrayBuffersPeakMiB: number
  rssAnonPeakMiB: number
  rssFilePeakMiB: number
  nodes: number
  MiB: number
}

/** The one message a child sends. */
export type ChildResult = LoadResult | CeilingResult | { kind: 'error', message: string }

/** A child's command line, parsed. */
interface ChildArgs { mode: string, source: string, work: string, root: string, author: string, paths: number, then?: string, changes: number, count: number, maxOpenFiles?: number }

/** How often the memory peaks are sampled (ms). */
const SAMPLE_MS = 100
/** How often progress goes to stderr (ms). */
const PROGRESS_MS = Number(process.env.BENCH_PROGRESS_MS ?? 10_000)

const silent = pino({ level: 'silent' })

function parseChildArgs (argv: string[]): ChildArgs {
  const out: ChildArgs = { mode: argv[0] ?? '', source: '', work: '', root: '', author: '', paths: 0, changes: 0, count: 10_000 }
  for (let i = 1; i < argv.length; i += 2) {
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`${argv[i]} needs a value`)
    switch (argv[i]) {
      case '--source': out.source = value; break
      case '--work': out.work = value; break
      case '--root': out.root = value; break
      case '--author': out.author = value; break
      case '--paths': out.paths = Number(value); break
      case '--then': out.then = value; break
      case '--changes': out.changes = Number(value); break
      case '--count': out.count = Number(value); break
      case '--max-open-files': out.maxOpenFiles = Number(value); break
      default: throw new Error(`unknown option ${argv[i]}`)
    }
  }
  if (out.work === '') throw new Error('--work is required')
  if (out.source === '' && out.mode !== 'lookups') throw new Error('--source is required')
  return out
}

/**
 * This process's resident memory by kind (Linux /proc, MiB): anonymous
 * (heaps, native allocations) and file-backed (pages of mapped files:
 * LevelDB reads its tables through mmap, and what it touched counts in RSS
 * until the table is closed or the kernel reclaims it). Zeros elsewhere.
 */
function rssKinds (): { anon: number, file: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0)
    return { anon: kib('RssAnon') * 1024 / MiB, file: kib('RssFile') * 1024 / MiB }
  } catch {
    return { anon: 0, file: 0 }
  }
}

/** Peaks of heapUsed, arrayBuffers and RSS by kind, sampled on a timer (a long synchronous stretch is sampled at its end). */
class MemoryPeaks {
  heapUsed = 0
  arrayBuffers = 0
  /** MiB. */
  rssAnon = 0
  rssFile = 0
  private readonly timer: NodeJS.Timeout

  constructor () {
    this.sample()
    this.timer = setInterval(() => { this.sample() }, SAMPLE_MS)
  }

  sample (): void {
    const m = process.memoryUsage()
    this.heapUsed = Math.max(this.heapUsed, m.heapUsed)
    this.arrayBuffers = Math.max(this.arrayBuffers, m.arrayBuffers)
    const kinds = rssKinds()
    this.rssAnon = Math.max(this.rssAnon, kinds.anon)
    this.rssFile = Math.max(this.rssFile, kinds.file)
  }

  stop (): void {
    this.sample()
    clearInterval(this.timer)
  }
}

/** CPU seconds (user + system) since `from`. */
function cpuSeconds (from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from)
  return (d.user + d.system) / 1e6
}

/** Peak RSS of this process so far (MiB). */
function maxRssMiB (): number {
  return process.resourceUsage().maxRSS * 1024 / MiB
}

/** A progress line every {@link PROGRESS_MS} ms while `what` runs; returns how to stop it. */
function progress (what: string, detail: () => string): () => void {
  const started = performance.now()
  const timer = setInterval(() => {
    const m = process.memoryUsage()
    const kinds = rssKinds()
    process.stderr.write(`  ${what}: ${((performance.now() - started) / 1000).toFixed(0)} s, rss ${(m.rss / MiB).toFixed(0)} MiB (anon ${kinds.anon.toFixed(0)}, file ${kinds.file.toFixed(0)}), heap ${(m.heapUsed / MiB).toFixed(0)} MiB (of ${(m.heapTotal / MiB).toFixed(0)} committed), external ${(m.external / MiB).toFixed(0)} MiB, ${detail()}\n`)
  }, PROGRESS_MS)
  return () => { clearInterval(timer) }
}

function openSource (dir: string): ClassicLevel<string, Uint8Array> {
  return new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view', createIfMissing: false })
}

/** A request to the serving process, and its answer. */
interface ServeRequest { id: number, keys: string[] }
interface ServeAnswer { id: number, blocks: Uint8Array[] }

/**
 * `serve`: a peer holding the source snapshot, in a process of its own (a
 * real node fetches the blocks from another machine: the source's LevelDB,
 * its caches and its reads are not the loader's). It answers each request
 * (IPC, advanced serialization: the blocks arrive as bytes) as a peer's
 * `blocks` answer: the longest prefix it holds of the asked CIDs, at most
 * MAX_BLOCKS_WANT, within 4 MiB (at least one block). Exits when the loader
 * disconnects.
 */
async function serve (args: ChildArgs): Promise<void> {
  const source = openSource(args.source)
  await source.open()
  // the second snapshot's new blocks are in a store of their own (`<source>-then`), so that the ceiling reads the first tree only
  const later = args.then === undefined ? undefined : openSource(`${args.source}-then`)
  await later?.open()
  const answer = async (keys: string[]): Promise<Uint8Array[]> => {
    const values = await source.getMany(keys)
    if (later !== undefined) {
      const more = await later.getMany(keys)
      for (const [i, v] of more.entries()) values[i] ??= v
    }
    const out: Uint8Array[] = []
    let total = 0
    for (const bytes of values) {
      if (bytes === undefined) break
      if (out.length > 0 && total + bytes.byteLength > ANSWER_BYTES) break
      out.push(bytes)
      total += bytes.byteLength
    }
    return out
  }
  process.on('message', (m: ServeRequest) => {
    answer(m.keys.slice(0, MAX_BLOCKS_WANT)).then(
      blocks => { process.send?.({ id: m.id, blocks } satisfies ServeAnswer) },
      (err: any) => { process.stderr.write(`serve: ${String(err?.message ?? err)}\n`); process.exit(1) }
    )
  })
  await new Promise<void>(resolve => process.once('disconnect', resolve))
  await source.close()
  await later?.close()
}

/** The serving process, started by the loader: `fetch` asks it, `close` ends it. */
interface Server {
  fetch: (cids: CID[]) => Promise<Uint8Array[]>
  close: () => Promise<void>
}

/** Start {@link serve} in a child process of this one. */
async function startServer (args: ChildArgs): Promise<Server> {
  const then = args.then === undefined ? [] : ['--then', args.then]
  const child = fork(fileURLToPath(import.meta.url), ['serve', '--source', args.source, '--work', args.work, ...then], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting = new Map<number, { resolve: (blocks: Uint8Array[]) => void, reject: (err: Error) => void }>()
  let next = 0
  const exited = new Promise<void>(resolve => child.once('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`the serving process ended (${signal ?? `exit ${String(code)}`})`))
    waiting.clear()
    resolve()
  }))
  child.on('message', (m: ServeAnswer) => {
    const w = waiting.get(m.id)
    waiting.delete(m.id)
    w?.resolve(m.blocks.map(b => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)))
  })
  await new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject) })
  return {
    fetch: async cids => await new Promise<Uint8Array[]>((resolve, reject) => {
      const id = next++
      waiting.set(id, { resolve, reject })
      child.send({ id, keys: cids.map(c => c.toString()) } satisfies ServeRequest)
    }),
    close: async () => {
      if (child.connected) child.disconnect()
      await exited
    }
  }
}

async function load (args: ChildArgs): Promise<LoadResult> {
  const server = await startServer(args)
  const served = { requests: 0, blocks: 0, bytes: 0 }
  const fetch = async (cids: CID[]): Promise<Uint8Array[]> => {
    served.requests++
    const out = await server.fetch(cids)
    served.blocks += out.length
    for (const bytes of out) served.bytes += bytes.byteLength
    return out
  }
  const replica = await replicaIn(args)
  try {
    let t = performance.now()
    await replica.open()
    const openS = (performance.now() - t) / 1000
    const peaks = new MemoryPeaks()
    const stopProgress = progress('load', () => `${served.requests} requests, ${served.blocks} blocks served`)
    t = performance.now()
    const cpu = process.cpuUsage()
    let loaded: boolean
    try {
      loaded = await replica.loadSnapshot(CID.parse(args.root), fetch, args.author)
    } finally {
      stopProgress()
      peaks.stop()
    }
    const s = (performance.now() - t) / 1000
    const cpuS = cpuSeconds(cpu)
    const rss = maxRssMiB()
    // the checks run after the peak RSS was read
    t = performance.now()
    let files = 0
    for await (const _ of replica.files()) files++
    const samples = [...new Set([0, 1, Math.floor(args.paths / 3), Math.floor(args.paths / 2), args.paths - 1])].filter(i => i >= 0 && i < args.paths)
    let sampledOk = 0
    for (const i of samples) {
      const entry = await replica.lookup(pathOf(i))
      if (entry?.type === 'file' && entry.cid === fileCid(i).toString()) sampledOk++
    }
    const check = { s: (performance.now() - t) / 1000, loaded, clock: replica.state().clock[args.author] ?? 0, files, sampled: samples.length, sampledOk }
    const first = { requests: served.requests, blocks: served.blocks, MiB: served.bytes / MiB }
    const returning = args.then === undefined ? undefined : await loadAgain(replica, args, fetch, served)
    return {
      kind: 'load',
      s,
      cpuS,
      openS,
      maxRssMiB: rss,
      heapPeakMiB: peaks.heapUsed / MiB,
      arrayBuffersPeakMiB: peaks.arrayBuffers / MiB,
      rssAnonPeakMiB: peaks.rssAnon,
      rssFilePeakMiB: peaks.rssFile,
      served: first,
      check,
      returning
    }
  } finally {
    await replica.close()
    await server.close()
  }
}

/**
 * The returning node: the replica that loaded the first snapshot loads the
 * second (`--then`, the first with `--changes` paths rewritten). Timed:
 * loadSnapshot alone; then the changed paths are checked.
 */
async function loadAgain (replica: Replica, args: ChildArgs, fetch: (cids: CID[]) => Promise<Uint8Array[]>, served: { requests: number, blocks: number, bytes: number }): Promise<ReturnResult> {
  const before = { ...served }
  const stopProgress = progress('returning load', () => `${served.requests - before.requests} requests`)
  const t = performance.now()
  const cpu = process.cpuUsage()
  try {
    if (!await replica.loadSnapshot(CID.parse(args.then as string), fetch, args.author)) throw new Error('the second snapshot brought nothing')
  } finally {
    stopProgress()
  }
  const s = (performance.now() - t) / 1000
  const cpuS = cpuSeconds(cpu)
  let files = 0
  for await (const _ of replica.files()) files++
  const samples = [...new Set([0, 1, Math.floor(args.changes / 2), args.changes - 1])].filter(k => k >= 0 && k < args.changes)
  let sampledOk = 0
  for (const k of samples) {
    const entry = await replica.lookup(pathOf(changedIndex(k, args.changes, args.paths)))
    if (entry?.type === 'file' && entry.cid === fileCid(args.paths + k).toString()) sampledOk++
  }
  return {
    s,
    cpuS,
    served: { requests: served.requests - before.requests, blocks: served.blocks - before.blocks, MiB: (served.bytes - before.bytes) / MiB },
    check: { clock: replica.state().clock[args.author] ?? 0, files, sampled: samples.length, sampledOk }
  }
}

async function ceiling (args: ChildArgs): Promise<CeilingResult> {
  const source = openSource(args.source)
  const target = new ClassicLevel<string, Uint8Array>(args.work, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await source.open()
  await target.open()
  try {
    const peaks = new MemoryPeaks()
    let nodes = 0
    let bytes = 0
    const t = performance.now()
    let ops: Array<{ type: 'put', key: string, value: Uint8Array }> = []
    let pending = 0
    for await (const [key, value] of source.iterator()) {
      const cid = CID.parse(key)
      const digest = createHash('sha256').update(value).digest()
      if (!Buffer.from(cid.multihash.digest).equals(digest)) throw new Error(`source block ${key} does not hash to its CID`)
      ops.push({ type: 'put', key: `b!${key}`, value })
      pending += value.byteLength
      nodes++
      bytes += value.byteLength
      if (pending >= ANSWER_BYTES) {
        await target.batch(ops, { sync: false })
        ops = []
        pending = 0
      }
    }
    await target.batch([...ops, { type: 'put', key: 'm!done', value: new Uint8Array(1) }], { sync: true })
    const s = (performance.now() - t) / 1000
    peaks.stop()
    return { kind: 'ceiling', s, maxRssMiB: maxRssMiB(), heapPeakMiB: peaks.heapUsed / MiB, arrayBuffersPeakMiB: peaks.arrayBuffers / MiB, rssAnonPeakMiB: peaks.rssAnon, rssFilePeakMiB: peaks.rssFile, nodes, MiB: bytes / MiB }
  } finally {
    await target.close()
    await source.close()
  }
}

/** A replica on a LevelKV in `--work`, trusting `--author` (as an open swarm with that peer listed). */
async function replicaIn (args: ChildArgs): Promise<Replica> {
  const signer = signerFromKey(await generateKeyPair('Ed25519'))
  return new Replica({
    kv: new LevelKV(args.work, { maxOpenFiles: args.maxOpenFiles }),
    signer,
    verifier: peerIdVerifier(),
    clock: { now: () => Date.now() },
    logger: silent,
    trust: new WriterTrust({ self: signer.id, privateSwarm: false, writers: 'listed', trusted: [args.author] })
  })
}

/** What the `lookups` mode measured. */
export interface LookupsResult {
  kind: 'lookups'
  count: number
  /** LevelDB's `max_open_files` the store was opened with. */
  maxOpenFiles: number
  /** Microseconds per lookup: first pass (cold table cache), second pass (the same paths). */
  coldUs: number
  warmUs: number
  /** Lookups that found the expected file (both passes). */
  found: number
  maxRssMiB: number
}

/** `count` random paths looked up twice in a replica opened again (see the module comment). */
async function lookups (args: ChildArgs): Promise<LookupsResult> {
  if (!existsSync(args.work)) throw new Error(`no replica in ${args.work} (keep one with the bench's --keep)`)
  const replica = await replicaIn(args)
  await replica.open()
  try {
    if (Object.keys(replica.state().clock).length === 0) throw new Error(`the replica in ${args.work} holds nothing`)
    let seed = 0x9e3779b9
    const random = (): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32 }
    const picks = Array.from({ length: args.count }, () => Math.floor(random() * args.paths))
    let found = 0
    const pass = async (): Promise<number> => {
      const t = performance.now()
      for (const i of picks) {
        const entry = await replica.lookup(pathOf(i))
        if (entry?.type === 'file' && entry.cid === fileCid(i).toString()) found++
      }
      return (performance.now() - t) * 1000 / picks.length
    }
    const coldUs = await pass()
    const warmUs = await pass()
    return { kind: 'lookups', count: args.count, maxOpenFiles: args.maxOpenFiles ?? MAX_OPEN_TABLES, coldUs, warmUs, found, maxRssMiB: maxRssMiB() }
  } finally {
    await replica.close()
  }
}

async function main (): Promise<ChildResult> {
  const args = parseChildArgs(process.argv.slice(2))
  if (args.mode === 'load') return await load(args)
  if (args.mode === 'serve') {
    await serve(args)
    process.exit(0)
  }
  if (args.mode === 'ceiling') return await ceiling(args)
  if (args.mode === 'lookups') {
    process.stdout.write(JSON.stringify(await lookups(args)) + '\n')
    process.exit(0)
  }
  throw new Error(`unknown mode ${JSON.stringify(args.mode)} (load, serve, ceiling or lookups)`)
}

function send (result: ChildResult): Promise<void> {
  return new Promise(resolve => {
    if (process.send === undefined) { process.stdout.write(JSON.stringify(result) + '\n'); resolve(); return }
    process.send(result, () => { resolve() })
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    async result => { await send(result); process.exit(0) },
    async (err: any) => { await send({ kind: 'error', message: String(err?.stack ?? err?.message ?? err) }); process.exit(1) }
  )
}
