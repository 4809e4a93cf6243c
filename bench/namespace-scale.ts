/**
 * Namespace benchmark: the costs of one local write that must not grow with
 * the number of authors and members, each next to a ceiling measured in the
 * same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/namespace-scale.js
 *     [--authors 10,100,1000] [--writes 200] [--budget 30] [--dir DIR]
 *     [--json] [--keep]
 *
 * For each A in `--authors`, a fresh replica in its own LevelDB (as
 * createNamespace builds it, its KV wrapped to count what each batch writes):
 *
 * 1. It receives one entry from each of A other authors. Each author is a
 *    replica of its own on a MemoryKV with a new Ed25519 key that made one
 *    putFile; its entry is taken from onLocalEntries. The A entries are
 *    concurrent, so the replica then has A heads and a clock of A authors.
 * 2. Every one of the A authors becomes a member: noteMember(author, clock)
 *    with the replica's clock, which names the A authors (M = A).
 * 3. One putFile, the write that merges the A heads ("first"; an entry names
 *    at most MAX_PARENTS of them, so with more heads it takes several), then
 *    putFiles until the replica has one head (the steady state; not timed).
 * 4. The ceiling: `--writes` raw classic-level batches with `sync: true`,
 *    each putting as many bytes as the steady entry, in a LevelDB of its own
 *    in the same dir (what a durable write costs at the least), timed one by
 *    one, while the replica's LevelDB is idle.
 * 5. `--writes` putFiles of one small file each, timed one by one, stopping
 *    early when they take more than `--budget` seconds (at least 3 writes;
 *    the report says so).
 *
 * Reported per A: the encoded size of the first and the steady entry, the
 * gossip (heads) message the write publishes (a push: the entry and its own
 * dot, `pushClock`, as NamespaceSync sends it), the heartbeat a node sends
 * when it has news and no entry to carry (its wire clock and heads, every
 * author here active, none retired), the mean
 * putFile time and its ratio to the raw batch, the time inside the KV's
 * batch calls, and the bytes each commit stores (key + value of every put),
 * with the keys that carry most of them.
 *
 * Only the public API is used (Replica, KV, encodeHeadsMessage, pushClock), so the
 * bench runs the same before and after a change of the entry format or of
 * the store's layout. See docs/benchmarks.md, "Namespace costs vs authors
 * and members".
 */
import '../node/polyfills.js'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { LevelKV, MemoryKV, Replica, peerIdVerifier, signerFromKey, type KV } from '../node/namespace/index.js'
import type { KVOp, KVRange } from '../node/namespace/kv.js'
import { sha256 } from '../node/blocks/verify.js'
import { encodeHeadsMessage } from '../protocol/namespace.js'
import { pushClock } from '../node/namespace/sync.js'
import { fmt, installCleanup, isInterrupted, log, median, tempDirs } from './harness.js'

const silent = pino({ level: 'silent' })
const wall = { now: () => Date.now() }
/** NamespaceSync's default: entries up to this size ride on the gossip message. */
const GOSSIP_BYTES = 256 * 1024
/** The timed writes of one level stop after the budget, but never before this many. */
const MIN_WRITES = 3

interface Options {
  authors: number[]
  writes: number
  budget: number
  dir: string
  json: boolean
  keep: boolean
}

function parseArgs (argv: string[]): Options {
  const o: Options = { authors: [10, 100, 1000], writes: 200, budget: 30, dir: tmpdir(), json: false, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => { const v = argv[++i]; if (v === undefined) throw new Error(`${arg} needs a value`); return v }
    const positive = (text: string): number => {
      const n = Number(text)
      if (!Number.isInteger(n) || n < 1) throw new Error(`${arg} wants whole numbers >= 1, got ${JSON.stringify(text)}`)
      return n
    }
    switch (arg) {
      case '--authors': o.authors = value().split(',').map(positive); break
      case '--writes': o.writes = positive(value()); break
      case '--budget': o.budget = positive(value()); break
      case '--dir': o.dir = value(); break
      case '--json': o.json = true; break
      case '--keep': o.keep = true; break
      case '--help':
        process.stdout.write('node dist/bench/namespace-scale.js [--authors 10,100,1000] [--writes 200] [--budget 30] [--dir DIR] [--json] [--keep]\n')
        process.exit(0)
        break
      default: throw new Error(`unknown option ${arg}`)
    }
  }
  return o
}

function checkInterrupted (): void {
  if (isInterrupted()) throw new Error('interrupted')
}

function fileRecord (i: number): { cid: string, size: number, mode: number, mtime: number } {
  const cid = CID.createV1(0x55, Digest.create(0x12, sha256(new TextEncoder().encode(`namespace-scale ${i}`))))
  return { cid: cid.toString(), size: 1000 + i, mode: 0o644, mtime: Date.now() }
}

/** A key's family for the stored-bytes breakdown: `m!clock` stays whole, `e!bafy…` becomes `e!*`. */
function keyGroup (key: string): string {
  const [head, second] = key.split('!', 3)
  if (second === undefined) return key
  return /^[a-z]{1,12}$/.test(second) ? `${head}!${second}` : `${head}!*`
}

/** A KV that counts what its batches put: bytes (key + value), ops, wall time; and its gets. */
class MeteredKV implements KV {
  readonly location?: string
  readonly use = { batches: 0, putBytes: 0, ops: 0, batchMs: 0, gets: 0 }
  /** Put bytes by key family ({@link keyGroup}). */
  readonly groups = new Map<string, number>()

  constructor (private readonly inner: KV) { this.location = inner.location }

  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }
  async get (key: string): Promise<Uint8Array | undefined> { this.use.gets++; return await this.inner.get(key) }
  async * iterate (range: KVRange): AsyncIterable<[string, Uint8Array]> { yield * this.inner.iterate(range) }

  async batch (ops: KVOp[], sync: boolean): Promise<void> {
    for (const op of ops) {
      if (op.type !== 'put') continue
      const bytes = Buffer.byteLength(op.key) + op.value.byteLength
      this.use.putBytes += bytes
      const g = keyGroup(op.key)
      this.groups.set(g, (this.groups.get(g) ?? 0) + bytes)
    }
    this.use.ops += ops.length
    this.use.batches++
    const t = performance.now()
    try { await this.inner.batch(ops, sync) } finally { this.use.batchMs += performance.now() - t }
  }

  reset (): void {
    this.use.batches = this.use.putBytes = this.use.ops = this.use.batchMs = this.use.gets = 0
    this.groups.clear()
  }
}

/** One author's first entry, made by a replica of its own. */
interface Author { id: string, entry: Uint8Array }

/** `n` authors, each a replica on a MemoryKV with a new key that made one putFile at the root. */
async function makeAuthors (n: number): Promise<Author[]> {
  const out: Author[] = []
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) checkInterrupted()
    const r = new Replica({ kv: new MemoryKV(), signer: signerFromKey(await generateKeyPair('Ed25519')), verifier: peerIdVerifier(), clock: wall, logger: silent })
    await r.open()
    const made: Uint8Array[] = []
    const off = r.onLocalEntries(entries => { made.push(...entries) })
    await r.putFile(`/author-${String(i).padStart(5, '0')}.bin`, fileRecord(-1 - i))
    off()
    await r.close()
    if (made.length !== 1) throw new Error(`author ${i}: one putFile made ${made.length} entries`)
    out.push({ id: r.id, entry: made[0] })
  }
  return out
}

interface Stats { mean: number, p50: number, max: number }
function stats (xs: number[]): Stats {
  return { mean: xs.reduce((s, x) => s + x, 0) / xs.length, p50: median(xs), max: Math.max(...xs) }
}

/** What one level (A authors, M = A members) measured. */
interface Level {
  authors: number
  members: number
  /** Entry of the write that merged the A concurrent heads (bytes). */
  firstEntryBytes: number
  /** Local writes until the replica had one head again (an entry names at most MAX_PARENTS heads). */
  mergeWrites: number
  /** Entry of a later one-file putFile, one parent (bytes; median over the timed writes). */
  entryBytes: number
  /** The heads message that write publishes: a push, the entry and its own dot (bytes). */
  gossipBytes: number
  /** A heartbeat: the wire clock and heads, no entry (bytes). */
  gossipClockBytes: number
  /** Timed writes done, and whether the budget cut them short of `--writes`. */
  writes: number
  budgetHit: boolean
  putFileMs: Stats
  /** Wall time inside the KV's batch calls per putFile. */
  batchMs: Stats
  /** Raw classic-level batch, sync, of `entryBytes` bytes. */
  ceilingMs: Stats
  /** Mean putFile / mean raw batch. */
  ratio: number
  /** Per putFile: bytes put (key + value), ops, gets, batches. */
  commitBytes: number
  commitOps: number
  commitGets: number
  commitBatches: number
  /** Put bytes per putFile by key family, largest first. */
  commitBytesByKey: Array<[string, number]>
  setupSeconds: number
}

async function measure (opts: Options, authors: Author[], a: number, work: string): Promise<Level> {
  const t0 = performance.now()
  const kv = new MeteredKV(new LevelKV(join(work, `replica-${a}`)))
  const replica = new Replica({ kv, signer: signerFromKey(await generateKeyPair('Ed25519')), verifier: peerIdVerifier(), clock: wall, logger: silent })
  const raw = new ClassicLevel<string, Uint8Array>(join(work, `raw-${a}`), { keyEncoding: 'utf8', valueEncoding: 'view' })
  await replica.open()
  await raw.open()
  try {
    const mine = authors.slice(0, a)
    const got = await replica.receive(mine.map(x => x.entry))
    if (got.applied !== a) throw new Error(`A=${a}: receive applied ${got.applied} of ${a} entries (${JSON.stringify(got)})`)
    const clock = replica.state().clock
    for (const x of mine) replica.noteMember(x.id, clock)
    let last: Uint8Array[] = []
    replica.onLocalEntries(entries => { last = entries })
    const entryOf = (what: string): Uint8Array => {
      if (last.length !== 1) throw new Error(`A=${a}: ${what} made ${last.length} entries, expected one`)
      return last[0]
    }
    await replica.putFile('/first.bin', fileRecord(0))
    const firstEntryBytes = entryOf('the first putFile').byteLength
    // an entry names at most MAX_PARENTS heads: write until one is left
    let mergeWrites = 1
    for (; replica.state().heads.length > 1; mergeWrites++) {
      if (mergeWrites >= 100) throw new Error(`A=${a}: still ${replica.state().heads.length} heads after ${mergeWrites} local writes`)
      await replica.putFile(`/merge-${mergeWrites}.bin`, fileRecord(-mergeWrites))
    }
    await replica.putFile('/steady.bin', fileRecord(1))
    const steady = entryOf('a putFile on one head')
    const setupSeconds = (performance.now() - t0) / 1000
    log(`A=${a}: set up in ${fmt(setupSeconds, 1)} s; first entry ${fmt(firstEntryBytes)} bytes, one head after ${mergeWrites} writes, then an entry of ${fmt(steady.byteLength)} bytes`)

    const value = randomBytes(steady.byteLength)
    const ceilingMs: number[] = []
    for (let i = 0; i < opts.writes; i++) {
      const t = performance.now()
      await raw.batch([{ type: 'put', key: `c!${String(i).padStart(8, '0')}`, value }], { sync: true })
      ceilingMs.push(performance.now() - t)
    }
    const putFileMs: number[] = []
    const batchMs: number[] = []
    const entrySizes: number[] = []
    kv.reset()
    const start = performance.now()
    let budgetHit = false
    for (let i = 0; i < opts.writes; i++) {
      checkInterrupted()
      if (i >= MIN_WRITES && performance.now() - start > opts.budget * 1000) { budgetHit = true; break }
      const before = kv.use.batchMs
      const t = performance.now()
      await replica.putFile(`/w${String(i).padStart(6, '0')}.bin`, fileRecord(2 + i))
      putFileMs.push(performance.now() - t)
      batchMs.push(kv.use.batchMs - before)
      entrySizes.push(entryOf(`putFile ${i}`).byteLength)
    }
    const n = putFileMs.length
    const { clock: nowClock, heads } = replica.state()
    const entry = entryOf('the last putFile')
    // what NamespaceSync.publish sends: a push of the entry with its dot; a heartbeat with the wire clock
    const push = entry.byteLength <= GOSSIP_BYTES ? pushClock([entry]) : undefined
    const heartbeat = { v: 1 as const, type: 'heads' as const, clock: replica.wireClock(nowClock), heads, entries: [] }
    const gossipBytes = encodeHeadsMessage(push !== undefined ? { v: 1, type: 'heads', clock: push, heads: [], entries: [entry] } : heartbeat).byteLength
    const gossipClockBytes = encodeHeadsMessage(heartbeat).byteLength
    const put = stats(putFileMs)
    const ceil = stats(ceilingMs)
    const level: Level = {
      authors: a,
      members: a,
      firstEntryBytes,
      mergeWrites,
      entryBytes: median(entrySizes),
      gossipBytes,
      gossipClockBytes,
      writes: n,
      budgetHit,
      putFileMs: put,
      batchMs: stats(batchMs),
      ceilingMs: ceil,
      ratio: put.mean / ceil.mean,
      commitBytes: kv.use.putBytes / n,
      commitOps: kv.use.ops / n,
      commitGets: kv.use.gets / n,
      commitBatches: kv.use.batches / n,
      commitBytesByKey: [...kv.groups].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, v / n]),
      setupSeconds
    }
    log(`A=${a}: ${n} putFiles${budgetHit ? ` (budget of ${opts.budget} s reached)` : ''}, mean ${fmt(put.mean, 2)} ms vs raw batch ${fmt(ceil.mean, 2)} ms; ${fmt(level.commitBytes)} bytes stored per commit`)
    return level
  } finally {
    await replica.close()
    await raw.close()
  }
}

// ------------------------------------------------------------------ report

function table (rows: string[][]): string[] {
  const w = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  const cells = (r: string[]): string => '| ' + r.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join(' | ') + ' |'
  return [cells(rows[0]), '|' + w.map((k, c) => '-'.repeat(k + 1) + (c === 0 ? '-|' : ':|')).join(''), ...rows.slice(1).map(cells)]
}

function bytes (n: number): string {
  if (n >= 1e6) return `${fmt(n / 1e6, 1)} MB`
  if (n >= 1e4) return `${fmt(n / 1e3, 1)} kB`
  return fmt(n)
}

function msText (s: Stats): string { return `${fmt(s.mean, s.mean < 10 ? 2 : 1)} (${fmt(s.p50, s.p50 < 10 ? 2 : 1)})` }

function report (levels: Level[], opts: Options): string[] {
  const first = levels[0]
  const lastLevel = levels[levels.length - 1]
  const growth = (f: (l: Level) => number): string => `x${fmt(f(lastLevel) / f(first), 1)}`
  const short = levels.filter(l => l.budgetHit)
  return [
    `Node ${process.version}; one process, each level a fresh replica in LevelDB (${opts.dir}) with A authors' entries applied and M = A members noted, each member's clock naming the A authors`,
    '',
    'sizes (bytes; MB = 10^6): the entry of a one-file putFile, the gossip (heads) message that write publishes (a push: the entry and its dot), and a heartbeat (wire clock and heads, when a node has news and no entry)',
    ...table([
      ['authors A', 'first entry (merges A heads)', 'writes to one head', 'entry (one parent)', 'gossip message of the write', 'heartbeat'],
      ...levels.map(l => [fmt(l.authors), bytes(l.firstEntryBytes), fmt(l.mergeWrites), bytes(l.entryBytes), bytes(l.gossipBytes), bytes(l.gossipClockBytes)])
    ]),
    '',
    `cost of one putFile (one small file; ms, mean (p50)) against a raw classic-level batch, sync: true, of the entry's bytes, in the same run (just before, the replica idle); stored = key + value bytes the commit puts`,
    ...table([
      ['members M = A', 'writes', 'putFile ms', 'in KV batch ms', 'raw batch ms', 'ratio', 'stored per commit', 'ops', 'gets'],
      ...levels.map(l => [fmt(l.members), `${l.writes}${l.budgetHit ? '*' : ''}`, msText(l.putFileMs), msText(l.batchMs), msText(l.ceilingMs), fmt(l.ratio, 1), bytes(l.commitBytes), fmt(l.commitOps, 1), fmt(l.commitGets, 1)])
    ]),
    ...(short.length === 0 ? [] : [`* fewer than --writes ${opts.writes}: the timed writes stop after --budget ${opts.budget} s (at M = ${short.map(l => fmt(l.members)).join(', ')})`]),
    '',
    'stored per commit, by key (bytes, largest first):',
    ...levels.map(l => `  M = A = ${fmt(l.authors)}: ${l.commitBytesByKey.slice(0, 5).map(([k, v]) => `${k} ${bytes(v)}`).join(', ')}`),
    '',
    `from A = ${fmt(first.authors)} to ${fmt(lastLevel.authors)}: entry ${growth(l => l.entryBytes)}, gossip message ${growth(l => l.gossipBytes)}, ` +
      `putFile ${growth(l => l.putFileMs.mean)}, stored per commit ${growth(l => l.commitBytes)}; raw batch ${growth(l => l.ceilingMs.mean)}`,
    `setup per level (authors' entries received, members noted, writes to one head): ${levels.map(l => `A = ${fmt(l.authors)} ${fmt(l.setupSeconds, 1)} s`).join(', ')}`
  ]
}

// ------------------------------------------------------------------- main

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  installCleanup()
  const work = await mkdtemp(join(opts.dir, 'shoal-bench-namespace-scale-'))
  if (!opts.keep) tempDirs.add(work)
  log(`working dir ${work}`)
  const levels: Level[] = []
  const started = performance.now()
  try {
    const most = Math.max(...opts.authors)
    const t = performance.now()
    const authors = await makeAuthors(most)
    log(`${fmt(most)} authors made their entries in ${fmt((performance.now() - t) / 1000, 1)} s`)
    for (const a of opts.authors) levels.push(await measure(opts, authors, a, work))
  } finally {
    if (opts.keep) log(`kept ${work}`)
    else { await rm(work, { recursive: true, force: true }); tempDirs.delete(work) }
  }
  process.stdout.write(report(levels, opts).join('\n') + '\n')
  log(`done in ${fmt((performance.now() - started) / 1000, 1)} s`)
  if (opts.json) process.stdout.write(JSON.stringify({ node: process.version, options: opts, levels }) + '\n')
  return 0
}

main().then(code => { process.exit(code) }, (err: any) => {
  process.stderr.write(`bench/namespace-scale: ${String(err?.stack ?? err?.message ?? err)}\n`)
  process.exit(isInterrupted() ? 130 : 1)
})
