/**
 * Snapshot tree benchmark: build, incremental update of 1 % of the paths,
 * full walk and diff of a tree of N paths (node/namespace/snapshot-tree.ts),
 * blocks in an in-memory map, next to a ceiling measured in the same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/snapshot-tree.js [--paths 1000000] [--json]
 *
 * Ceiling: dag-cbor encode of every `[path, versions]` item and sha-256 over
 * those bytes, as one flat pass (no tree, no decoding): the least any
 * snapshot of this state costs to write. Each phase is reported in seconds
 * and as a ratio to the ceiling, with the peak heap growth (heapUsed,
 * sampled every 10,000 paths after a full GC; node bytes are Uint8Arrays
 * outside the JS heap and are reported apart).
 *
 * See docs/benchmarks.md, "Snapshot tree".
 */
import { createHash } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { SnapshotVersion } from '../protocol/namespace.js'
import { buildTree, diffTrees, updateTree, walkTree, type Versions } from '../node/namespace/snapshot-tree.js'

const args = process.argv.slice(2)
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
if (args.includes('--help')) {
  console.log('node dist/bench/snapshot-tree.js [--paths 1000000] [--json]')
  process.exit(0)
}
const N = Number(option('paths', '1000000'))
const json = args.includes('--json')

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

function fileCid (n: number): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setFloat64(0, n)
  return CID.createV1(0x55, Digest.create(0x12, digest))
}
function pathOf (i: number): string {
  return `/dir${String(Math.floor(i / 1000)).padStart(4, '0')}/file-${String(i).padStart(8, '0')}`
}
/** A typical file version: author, seq, times, UnixFS CID, size, mode. */
function versionsOf (i: number, g = 0): SnapshotVersion[] {
  return [{ author: `12D3KooWAuthor${i % 7}`, seq: i + 1 + g, time: 1_700_000_000_000 + i, type: 'file', cid: fileCid(i * 31 + g), size: i, mode: 0o644, mtime: 1_700_000_000 }]
}

/** Peak heapUsed growth, sampled after a full GC each `every` calls of `tick`. */
function heapMeter (every = 10_000): { tick: () => void, peak: () => number } {
  gc()
  const base = process.memoryUsage().heapUsed
  let peak = 0
  let n = 0
  return {
    tick: () => {
      if (n++ % every !== 0) return
      gc()
      peak = Math.max(peak, process.memoryUsage().heapUsed - base)
    },
    peak: () => peak
  }
}

function * entries (meter: { tick: () => void }): Generator<[string, Versions]> {
  for (let i = 0; i < N; i++) {
    meter.tick()
    yield [pathOf(i), versionsOf(i)]
  }
}

const blocks = new Map<string, Uint8Array>()
const put = async (cid: CID, bytes: Uint8Array): Promise<void> => { blocks.set(cid.toString(), bytes) }
const get = async (cid: CID): Promise<Uint8Array | undefined> => blocks.get(cid.toString())
const fetch = async (cids: CID[]): Promise<Array<Uint8Array | undefined>> => cids.map(c => blocks.get(c.toString()))
const MiB = 1024 * 1024
const seconds = (from: number): number => (performance.now() - from) / 1000

// ceiling: one flat pass of dag-cbor encode + sha-256 over the same items
let t = performance.now()
const hash = createHash('sha256')
let flatBytes = 0
for (let i = 0; i < N; i++) {
  const bytes = dagCbor.encode([pathOf(i), versionsOf(i)])
  flatBytes += bytes.byteLength
  hash.update(bytes)
}
hash.digest()
const ceiling = seconds(t)

// build
let meter = heapMeter()
t = performance.now()
const built = await buildTree(entries(meter), put)
const build = { s: seconds(t), heapMiB: meter.peak() / MiB, nodes: blocks.size, nodeMiB: [...blocks.values()].reduce((s, b) => s + b.byteLength, 0) / MiB }

// update 1 %: every 100th path gets a new version
const changes = function * (): Generator<[string, Versions]> {
  for (let i = 0; i < N; i += 100) yield [pathOf(i), versionsOf(i, 1)]
}
meter = heapMeter(1)
t = performance.now()
const updated = await updateTree(built.root, changes(), get, put)
const update = { s: seconds(t), changes: Math.ceil(N / 100), written: updated.written, read: updated.read }

// walk
meter = heapMeter()
t = performance.now()
let walked = 0
for await (const _ of walkTree(updated.root, fetch, { concurrency: 4, batch: 16 })) {
  meter.tick()
  walked++
}
const walk = { s: seconds(t), heapMiB: meter.peak() / MiB, paths: walked }

// diff of the two trees (1 % of the paths differ)
const stats = { readA: 0, readB: 0 }
t = performance.now()
let differences = 0
for await (const _ of diffTrees(built.root, updated.root, get, get, stats)) differences++
const diff = { s: seconds(t), differences, reads: stats.readA + stats.readB }

const result = {
  paths: N,
  ceiling: { s: ceiling, MiB: flatBytes / MiB },
  build: { ...build, ratio: build.s / ceiling },
  update: { ...update, ratio: update.s / ceiling },
  walk: { ...walk, ratio: walk.s / ceiling },
  diff: { ...diff, ratio: diff.s / ceiling }
}
const f = (x: number, d = 2): string => x.toFixed(d)
console.log(`snapshot tree, ${N.toLocaleString('en')} paths (${f(flatBytes / MiB, 1)} MiB of items)`)
console.log(`ceiling  dag-cbor encode + sha-256, one flat pass   ${f(ceiling)} s`)
console.log(`build    ${f(build.s)} s  ${f(result.build.ratio)} x ceiling  ${build.nodes} nodes (${f(build.nodeMiB, 1)} MiB)  heap peak +${f(build.heapMiB, 1)} MiB`)
console.log(`update   ${f(update.s)} s  ${f(result.update.ratio)} x ceiling  ${update.changes} changes: ${update.written} nodes written, ${update.read} read`)
console.log(`walk     ${f(walk.s)} s  ${f(result.walk.ratio)} x ceiling  ${walk.paths} paths  heap peak +${f(walk.heapMiB, 1)} MiB`)
console.log(`diff     ${f(diff.s)} s  ${f(result.diff.ratio)} x ceiling  ${diff.differences} differences, ${diff.reads} nodes read`)
if (json) console.log(JSON.stringify(result, null, 2))
