/**
 * Namespace state checks (node/namespace/state-check.ts): what a check costs
 * a replica, each figure next to a reference measured in the same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/state-check.js
 *     [--paths 100000] [--dirty 1000] [--lose 100] [--dir DIR] [--json]
 *
 * Two replicas, each in its own LevelDB (as createNamespace builds it):
 * A writes `--paths` files (putFiles of 2,000), B pulls A's history, both
 * snapshot, then A writes `--dirty` more (B pulls them): both are at the
 * same heads, `--dirty` paths changed since their snapshots.
 *
 * 1. **State tree**: A's first `checkedState()` (the dirty paths are the first ones: a few directories) — its snapshot's tree updated
 *    with the dirty paths, nodes held in memory — against a full snapshot
 *    of the same state (`snapshot()`, every node written): what a check
 *    would cost without the incremental tree. Then a second call (cached:
 *    the heads did not move).
 * 2. **Pass over the rows** (`scrubRows()`: every `v!` row against the
 *    snapshot's tree) against a bare iteration of the same `v!` rows in
 *    A's LevelDB: the reading it cannot avoid.
 * 3. **Diff**: B loses the rows of `--lose` paths changed since the
 *    snapshot; the time and node reads of `diffTrees` between A's and B's
 *    state trees, in process (no network), against the nodes of A's whole
 *    tree (what a comparison without shared subtrees would read).
 *
 * See docs/benchmarks.md, "Namespace state checks".
 */
import '../node/polyfills.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { LevelKV, Replica, peerIdVerifier, signerFromKey } from '../node/namespace/index.js'
import { diffTrees, type DiffStats } from '../node/namespace/snapshot-tree.js'
import { versionsKey, visibleKey } from '../node/namespace/tree.js'
import { sha256 } from '../node/blocks/verify.js'
import { fmt, installCleanup, log, tempDirs } from './harness.js'

const silent = pino({ level: 'silent' })

interface Options { paths: number, dirty: number, lose: number, dir: string, json: boolean }

function parseArgs (argv: string[]): Options {
  const opts: Options = { paths: 100_000, dirty: 1000, lose: 100, dir: tmpdir(), json: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const int = (): number => {
      const n = Number(argv[++i])
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${a} needs a positive integer`)
      return n
    }
    if (a === '--paths') opts.paths = int()
    else if (a === '--dirty') opts.dirty = int()
    else if (a === '--lose') opts.lose = int()
    else if (a === '--dir') opts.dir = argv[++i]
    else if (a === '--json') opts.json = true
    else throw new Error(`unknown option ${a}`)
  }
  if (opts.lose > opts.dirty) throw new Error('--lose must be at most --dirty')
  return opts
}

function cidOf (text: string): string {
  return CID.createV1(0x55, Digest.create(0x12, sha256(new TextEncoder().encode(text)))).toString()
}

async function open (dir: string): Promise<{ replica: Replica, kv: LevelKV }> {
  const kv = new LevelKV(dir)
  const replica = new Replica({ kv, signer: signerFromKey(await generateKeyPair('Ed25519')), verifier: peerIdVerifier(), clock: { now: () => Date.now() }, logger: silent })
  await replica.open()
  return { replica, kv }
}

/** `count` files from `from`, in putFiles of 2,000 (a path per file, 100 per directory). */
async function write (r: Replica, from: number, count: number, tag: string): Promise<void> {
  for (let i = from; i < from + count; i += 2000) {
    const files = []
    for (let j = i; j < Math.min(from + count, i + 2000); j++) files.push({ path: `/d${Math.floor(j / 100)}/f${j}`, record: { cid: cidOf(`${tag}${j}`), size: j, mode: 0o644, mtime: 1_000 } })
    await r.putFiles(files)
  }
}

async function pull (to: Replica, from: Replica): Promise<void> {
  for (;;) {
    const answer = await from.pull(to.state().clock, 1000)
    if (answer.type !== 'entries') throw new Error('expected entries')
    await to.receive(answer.entries)
    if (!answer.more) return
  }
}

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now()
  const out = await fn()
  return [out, performance.now() - t]
}

async function main (): Promise<void> {
  const opts = parseArgs(process.argv.slice(2))
  installCleanup()
  const work = await mkdtemp(join(opts.dir, 'shoal-bench-state-check-'))
  tempDirs.add(work)
  const figures: Record<string, number> = {}
  try {
    const a = await open(join(work, 'a'))
    const b = await open(join(work, 'b'))
    let t = performance.now()
    await write(a.replica, 0, opts.paths, 'v1-')
    await pull(b.replica, a.replica)
    await a.replica.snapshot()
    await b.replica.snapshot()
    // the dirty paths: rewrites of existing ones, spread over the namespace
    // the dirty paths: rewrites of the first ones (a few directories changed)
    const dirty: string[] = []
    for (let j = 0; j < opts.dirty; j++) dirty.push(`/d${Math.floor(j / 100)}/f${j}`)
    for (let k = 0; k < dirty.length; k += 2000) {
      await a.replica.putFiles(dirty.slice(k, k + 2000).map((path, i) => ({ path, record: { cid: cidOf(`v2-${k + i}`), size: 1, mode: 0o644, mtime: 2_000 } })))
    }
    await pull(b.replica, a.replica)
    log(`${fmt(opts.paths)} paths on two replicas, ${fmt(opts.dirty)} changed since their snapshots, in ${fmt((performance.now() - t) / 1000, 1)} s`)

    // 1. the state tree, against a full snapshot of the same state
    const [first, build] = await timed(async () => await a.replica.checkedState())
    const [, cached] = await timed(async () => await a.replica.checkedState())
    const [, full] = await timed(async () => await b.replica.snapshot())
    figures.treeMs = build
    figures.cachedMs = cached
    figures.fullSnapshotMs = full

    // 2. the pass over the rows, against a bare iteration of them
    t = performance.now()
    let rows = 0
    for await (const entry of a.kv.iterate({ gt: 'v!', lt: 'v"' })) { if (entry !== undefined) rows++ }
    figures.iterateMs = performance.now() - t
    const [scrub, scrubMs] = await timed(async () => await a.replica.scrubRows())
    figures.scrubMs = scrubMs
    if (scrub.marked !== 0) throw new Error(`the pass marked ${scrub.marked} paths of an intact replica`)

    // 3. a diff of --lose paths
    const ops = dirty.slice(0, opts.lose).flatMap(path => [{ type: 'del' as const, key: versionsKey(path) }, { type: 'del' as const, key: visibleKey(path) }])
    await b.kv.batch(ops, true)
    // B's full snapshot above covered the dirty paths: its pass over the rows finds the loss
    const found = await b.replica.scrubRows()
    figures.marked = found.marked
    const mineA = await a.replica.checkedState()
    const mineB = await b.replica.checkedState()
    const stats: DiffStats = { readA: 0, readB: 0 }
    t = performance.now()
    let differing = 0
    for await (const d of diffTrees(mineA.digest.root, mineB.digest.root, mineA.node, mineB.node, stats)) { if (d.path !== '') differing++ }
    figures.diffMs = performance.now() - t
    figures.differing = differing
    figures.nodesRead = stats.readA + stats.readB
    // every node of A's tree: what a walk without shared subtrees reads
    const all: DiffStats = { readA: 0, readB: 0 }
    const empty = await (async () => {
      const c = await open(join(work, 'c'))
      const s = await c.replica.checkedState()
      return { c, s }
    })()
    for await (const d of diffTrees(mineA.digest.root, empty.s.digest.root, mineA.node, empty.s.node, all)) { if (d.path === '') break }
    figures.wholeTreeNodes = all.readA
    await empty.c.replica.close()

    log('')
    log(`state tree of ${fmt(first.digest.count)} paths, ${fmt(opts.dirty)} dirty: ${fmt(build, 1)} ms; a full snapshot of the same state ${fmt(full, 1)} ms = ${fmt(build / full, 3)} x; again with the heads unchanged ${fmt(cached, 2)} ms`)
    log(`pass over ${fmt(rows)} rows against the snapshot: ${fmt(scrubMs, 1)} ms; bare iteration of the rows ${fmt(figures.iterateMs, 1)} ms = ${fmt(scrubMs / figures.iterateMs, 2)} x`)
    log(`B's pass over its rows marked ${fmt(found.marked)} paths`)
    log(`diff of ${fmt(differing)} lost paths: ${fmt(figures.diffMs, 1)} ms, ${fmt(figures.nodesRead)} node reads against ${fmt(figures.wholeTreeNodes)} nodes in the whole tree (${fmt(100 * figures.nodesRead / (2 * figures.wholeTreeNodes), 1)} % of both trees)`)
    await a.replica.close()
    await b.replica.close()
  } finally {
    await rm(work, { recursive: true, force: true })
    tempDirs.delete(work)
  }
  if (opts.json) process.stdout.write(JSON.stringify({ node: process.version, options: opts, figures }) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? String(err)}\n`)
  process.exit(1)
})
