/**
 * Snapshot bootstrap benchmark: a fresh node loads a namespace of N paths
 * from a peer's snapshot (issue 18's target: 1M paths in < 30 s with
 * < 300 MiB peak RSS), next to a ceiling measured in the same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/snapshot-bootstrap.js
 *     [--paths 1000000] [--timeout 900] [--dir DIR] [--cpu-prof DIR] [--json] [--keep] [--max-open-files N]
 *
 * Source, built once in this process: N paths `/dirNNNN/file-NNNNNNNN` of
 * one file version each, all by one author at seqs 1..N, as a snapshot tree
 * (buildTree, node/namespace/snapshot-tree.ts) under a root signed by that
 * author with clock `{ author: N }`, its tip (the author's signed entry
 * at N, which proves the counter) and no heads; its blocks in a LevelDB of
 * their own, keyed by CID.
 *
 * Load, in a child process (bench/snapshot-bootstrap-child.ts) so that its
 * peak RSS is the loader's own: a fresh Replica on LevelDB, trusting the
 * author, runs `loadSnapshot(root, fetch, author)`, `fetch` served from the
 * source LevelDB as a peer's `blocks` answer is (the longest prefix of the
 * asked CIDs within 4 MiB) by a process of its own (the loader's child: the
 * source's LevelDB is not in the loader's RSS or CPU seconds). Timed: loadSnapshot alone. Then the replica is
 * checked: its clock, the number of visible files, sampled paths' CIDs.
 * After `--timeout` seconds the load is killed and reported as unfinished,
 * with its peak RSS so far (VmHWM, read by this process every second).
 *
 * Ceiling, in a child too (so its RSS compares): sha-256 of every node's
 * bytes, checked against its CID as the load must, and the same bytes
 * written into a fresh LevelDB in 4 MiB unsynced batches with one synced
 * write at the end.
 *
 * Returning node (`--changes C`, default 10,000; 0 for none): a second
 * snapshot, the first with C paths rewritten (in runs of 100 consecutive
 * paths, as writes into a few directories, the runs spread evenly), by the same author at seqs N+1..N+C (updateTree). After the
 * first load, the same replica loads the second, as a node that comes back
 * after C writes does; it walks only where the trees differ. Reported
 * beside the first load: seconds, blocks and MiB fetched.
 *
 * Both children run with the daemon's node flags (cli/relaunch.ts) and its
 * malloc settings (cli/malloc-tunables.ts), as a relaunched daemon does. Reported:
 * seconds and peak RSS of load and ceiling, their ratio, paths/s, the
 * sampled heap peak, the snapshot's size, and the target line.
 * `--cpu-prof DIR` writes a CPU profile of the load child into DIR.
 */
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import { daemonChildArgs, daemonNodeFlags } from '../cli/relaunch.js'
import { withMallocTunables } from '../cli/malloc-tunables.js'
import { cborCID } from '../node/blocks/verify.js'
import { signerFromKey } from '../node/namespace/index.js'
import { buildTree, updateTree, type Versions } from '../node/namespace/snapshot-tree.js'
import type { PrivateKey } from '@libp2p/interface'
import { encodeEntry, encodeEntryBody, encodeSnapshotRoot, encodeSnapshotRootBody, type EntryBodyV2, type SnapshotRoot } from '../protocol/namespace.js'
import { ANSWER_BYTES, MiB, changedIndex, fileCid, pathOf, type CeilingResult, type ChildResult, type LoadResult } from './snapshot-bootstrap-child.js'
import { fmt, installCleanup, log, tempDirs, trackChild } from './harness.js'

/** Issue 18's target for 1M paths. */
const TARGET = { s: 30, rssMiB: 300 }
/** pathOf keeps paths ascending below this. */
const MAX_PATHS = 9_999_999
const CHILD = fileURLToPath(new URL('./snapshot-bootstrap-child.js', import.meta.url))
/** The children's environment: the daemon's malloc settings, as a relaunched daemon has them. */
const CHILD_ENV = withMallocTunables(process.env)

interface Options {
  paths: number
  timeout: number
  dir: string
  cpuProf?: string
  json: boolean
  keep: boolean
  /** Paths the second snapshot changes (0: no returning load). */
  changes: number
  /** LevelDB's `max_open_files` for the loader's store (default: LevelKV's). */
  maxOpenFiles?: number
}

const USAGE = 'node dist/bench/snapshot-bootstrap.js [--paths 1000000] [--changes 10000] [--timeout 900] [--dir DIR] [--cpu-prof DIR] [--json] [--keep] [--max-open-files N]\n'

function parseArgs (argv: string[]): Options {
  const o: Options = { paths: 1_000_000, timeout: 900, dir: tmpdir(), json: false, keep: false, changes: 10_000 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => { const v = argv[++i]; if (v === undefined) throw new Error(`${arg} needs a value`); return v }
    const whole = (text: string, most: number, least = 1): number => {
      const n = Number(text)
      if (!Number.isInteger(n) || n < least || n > most) throw new Error(`${arg} wants a whole number from ${least} to ${fmt(most)}, got ${JSON.stringify(text)}`)
      return n
    }
    switch (arg) {
      case '--paths': o.paths = whole(value(), MAX_PATHS); break
      case '--timeout': o.timeout = whole(value(), 86_400); break
      case '--changes': o.changes = whole(value(), MAX_PATHS, 0); break
      case '--dir': o.dir = value(); break
      case '--cpu-prof': o.cpuProf = value(); break
      case '--json': o.json = true; break
      case '--keep': o.keep = true; break
      case '--max-open-files': o.maxOpenFiles = whole(value(), 1_000_000, 10); break
      case '--help': process.stdout.write(USAGE); process.exit(0); break
      default: throw new Error(`unknown option ${arg}`)
    }
  }
  if (o.changes > o.paths) throw new Error(`--changes ${o.changes} is more than --paths ${o.paths}`)
  return o
}

/** The source snapshot: its root, its author, its blocks' count and bytes (root included); the second snapshot's root and new blocks. */
interface Source { root: CID, author: string, nodes: number, MiB: number, buildS: number, then?: { root: CID, nodes: number, MiB: number } }

/**
 * Sign a snapshot root over `tree` at the author's counter `seq`, and hand
 * its blocks to `put`: the root and its tip, the author's signed entry at
 * `seq` (a put of one file; a snapshot's counter is adopted only with it).
 */
async function signedRoot (key: PrivateKey, author: string, tree: { root: CID, count: number }, seq: number, put: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<CID> {
  const entry: EntryBodyV2 = { v: 2, author, seq, time: Date.now(), parents: [], deps: [], ops: [{ op: 'put', path: pathOf(seq - 1), cid: fileCid(seq - 1), size: seq - 1, mode: 0o644, mtime: 1_700_000_000, replaces: [] }] }
  const tip = encodeEntry({ ...entry, sig: await key.sign(encodeEntryBody(entry)) })
  await put(cborCID(tip), tip)
  const body: Omit<SnapshotRoot, 'sig'> = { v: 1, author, time: Date.now(), clock: { [author]: seq }, heads: [], headDots: [], count: tree.count, tree: tree.root, tips: [[author, cborCID(tip)]] }
  const rootBytes = encodeSnapshotRoot({ ...body, sig: await key.sign(encodeSnapshotRootBody(body)) })
  const root = cborCID(rootBytes)
  await put(root, rootBytes)
  return root
}

/** The versions of the `i`-th path as written at `seq` with content `content`. */
function versionsOf (author: string, seq: number, content: number): Versions {
  return [{ author, seq, time: 1_700_000_000_000 + seq, type: 'file', cid: fileCid(content), size: content, mode: 0o644, mtime: 1_700_000_000 }]
}

/** Build the snapshot of N paths (and, with `changes`, a second one) into a LevelDB at `dir` (blocks keyed by CID string). */
async function buildSource (dir: string, paths: number, changes: number): Promise<Source> {
  const t = performance.now()
  const key = await generateKeyPair('Ed25519')
  const author = signerFromKey(key).id
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await db.open()
  try {
    let ops: Array<{ type: 'put', key: string, value: Uint8Array }> = []
    let pending = 0
    let nodes = 0
    let bytes = 0
    const put = async (cid: CID, value: Uint8Array): Promise<void> => {
      ops.push({ type: 'put', key: cid.toString(), value })
      pending += value.byteLength
      nodes++
      bytes += value.byteLength
      if (pending < ANSWER_BYTES) return
      await db.batch(ops)
      ops = []
      pending = 0
    }
    const entries = function * (): Generator<[string, Versions]> {
      for (let i = 0; i < paths; i++) yield [pathOf(i), versionsOf(author, i + 1, i)]
    }
    const tree = await buildTree(entries(), put)
    if (tree.count !== paths) throw new Error(`buildTree counted ${tree.count} paths of ${paths}`)
    const root = await signedRoot(key, author, tree, paths, put)
    await db.batch(ops, { sync: true })
    const then = changes > 0 ? await buildSecond({ dir: `${dir}-then`, first: db, key, author, tree: tree.root, paths, changes }) : undefined
    return { root, author, nodes, MiB: bytes / MiB, buildS: (performance.now() - t) / 1000, then }
  } finally {
    await db.close()
  }
}

/** What {@link buildSecond} is given. */
interface SecondInput {
  /** Where its new blocks go (a LevelDB of their own). */
  dir: string
  /** The first snapshot's blocks. */
  first: ClassicLevel<string, Uint8Array>
  key: PrivateKey
  author: string
  tree: CID
  paths: number
  changes: number
}

/** The second snapshot: the first with `changes` paths rewritten by the same author at seqs N+1..N+C (`changedIndex`). */
async function buildSecond (input: SecondInput): Promise<NonNullable<Source['then']>> {
  const { key, author, paths, changes } = input
  const db = new ClassicLevel<string, Uint8Array>(input.dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await db.open()
  try {
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = []
    let bytes = 0
    const put = async (cid: CID, value: Uint8Array): Promise<void> => {
      ops.push({ type: 'put', key: cid.toString(), value })
      bytes += value.byteLength
    }
    const changed = function * (): Generator<[string, Versions]> {
      for (let k = 0; k < changes; k++) yield [pathOf(changedIndex(k, changes, paths)), versionsOf(author, paths + k + 1, paths + k)]
    }
    const get = async (cid: CID): Promise<Uint8Array | undefined> => await input.first.get(cid.toString())
    const second = await updateTree(input.tree, changed(), get, put)
    const root = await signedRoot(key, author, second, paths + changes, put)
    await db.batch(ops, { sync: true })
    return { root, nodes: ops.length, MiB: bytes / MiB }
  } finally {
    await db.close()
  }
}

/** How a child ended: its result, or why not, and its peak RSS as /proc saw it. */
interface ChildRun<T> { result?: T, failure?: string, timedOut: boolean, hwmMiB?: number, s: number }

/** Peak RSS of process `pid` so far (VmHWM), undefined when /proc cannot say. */
function vmHwmMiB (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024 / MiB
  } catch {
    return undefined
  }
}

/** Run the child with `args`, killing it after `timeoutS` seconds. */
async function runChild<T extends ChildResult> (args: string[], timeoutS: number, nodeArgs: string[] = []): Promise<ChildRun<T>> {
  const started = performance.now()
  const child = fork(CHILD, args, { execArgv: daemonChildArgs({ execArgv: nodeArgs, argv: [], env: CHILD_ENV }), env: CHILD_ENV, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const stop = trackChild(child, 5_000)
  let result: ChildResult | undefined
  let hwm: number | undefined
  child.on('message', (m: ChildResult) => { result = m })
  const watch = setInterval(() => { hwm = vmHwmMiB(child.pid) ?? hwm }, 1_000)
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; void stop() }, timeoutS * 1000)
  const exit = await new Promise<string>(resolve => child.once('exit', (code, signal) => resolve(signal ?? `exit ${String(code)}`)))
  clearTimeout(timer)
  clearInterval(watch)
  const s = (performance.now() - started) / 1000
  if (result !== undefined && result.kind === 'error') return { failure: result.message, timedOut, hwmMiB: hwm, s }
  if (result === undefined) return { failure: timedOut ? `killed after ${timeoutS} s` : `ended without a result (${exit})`, timedOut, hwmMiB: hwm, s }
  return { result: result as T, timedOut, hwmMiB: hwm, s }
}

const f = (x: number, d = 2): string => fmt(x, d)

function report (opts: Options, source: Source, load: ChildRun<LoadResult>, ceil: ChildRun<CeilingResult>): { lines: string[], ok: boolean } {
  const lines: string[] = [
    `snapshot bootstrap, ${fmt(opts.paths)} paths: ${fmt(source.nodes)} blocks (tree nodes + root, ${f(source.MiB, 1)} MiB); source built in ${f(source.buildS, 1)} s; Node ${process.version}, children with ${daemonNodeFlags().join(' ')} and GLIBC_TUNABLES=${CHILD_ENV.GLIBC_TUNABLES ?? '(unset)'}`
  ]
  const c = ceil.result
  if (c !== undefined) lines.push(`ceiling  ${f(c.s)} s  peak RSS ${f(c.maxRssMiB, 0)} MiB (anon ${f(c.rssAnonPeakMiB, 0)}, file ${f(c.rssFilePeakMiB, 0)})  heap peak ${f(c.heapPeakMiB, 1)} MiB  (sha-256 of ${fmt(c.nodes)} nodes, ${f(c.MiB, 1)} MiB, into a fresh LevelDB: 4 MiB unsynced batches, one synced write)`)
  else lines.push(`ceiling  failed: ${ceil.failure ?? '?'}`)
  const l = load.result
  let ok = false
  if (l !== undefined) {
    const k = l.check
    ok = k.loaded && k.clock === opts.paths && k.files === opts.paths && k.sampledOk === k.sampled
    lines.push(`load     ${f(l.s)} s (${f(l.cpuS)} CPU-s)  peak RSS ${f(l.maxRssMiB, 0)} MiB (anon ${f(l.rssAnonPeakMiB, 0)}, file ${f(l.rssFilePeakMiB, 0)})  heap peak ${f(l.heapPeakMiB, 1)} MiB (arrayBuffers ${f(l.arrayBuffersPeakMiB, 1)} MiB; sampled every 100 ms)  ${fmt(opts.paths / l.s)} paths/s`)
    lines.push(`         served ${fmt(l.served.requests)} requests, ${fmt(l.served.blocks)} blocks, ${f(l.served.MiB, 1)} MiB; replica opened in ${f(l.openS, 3)} s (not timed)`)
    lines.push(`check    ${ok ? 'ok' : 'WRONG'}: loaded ${String(k.loaded)}, clock ${fmt(k.clock)}, ${fmt(k.files)} files visible, ${k.sampledOk} of ${k.sampled} sampled paths right (${f(k.s, 1)} s)`)
    if (c !== undefined) lines.push(`ratio    load / ceiling: time ${f(l.s / c.s)} x, peak RSS ${f(l.maxRssMiB / c.maxRssMiB)} x`)
    const pass = ok && l.s < TARGET.s && l.maxRssMiB < TARGET.rssMiB
    lines.push(`target   < ${TARGET.s} s, < ${TARGET.rssMiB} MiB: ${pass ? 'pass' : 'FAIL'}${opts.paths !== 1_000_000 ? ` (the target is for 1,000,000 paths; this run has ${fmt(opts.paths)})` : ''}`)
    const r = l.returning
    if (r !== undefined && source.then !== undefined) {
      const rok = r.check.clock === opts.paths + opts.changes && r.check.files === opts.paths && r.check.sampledOk === r.check.sampled
      ok = ok && rok
      lines.push(`return   ${f(r.s)} s (${f(r.cpuS)} CPU-s) for ${fmt(opts.changes)} changed paths (${f(r.s / l.s * 100, 1)} % of the first load): fetched ${fmt(r.served.blocks)} blocks, ${f(r.served.MiB, 1)} MiB, in ${fmt(r.served.requests)} requests (the second tree has ${fmt(source.then.nodes)} new blocks, ${f(source.then.MiB, 1)} MiB)`)
      lines.push(`check    ${rok ? 'ok' : 'WRONG'}: clock ${fmt(r.check.clock)}, ${fmt(r.check.files)} files visible, ${r.check.sampledOk} of ${r.check.sampled} sampled changed paths right`)
    }
  } else {
    const hwm = load.hwmMiB === undefined ? '' : `, peak RSS by then ${f(load.hwmMiB, 0)} MiB`
    lines.push(`load     did not finish (${f(load.s, 0)} s${hwm}): ${load.failure ?? '?'}`)
    lines.push(`target   < ${TARGET.s} s, < ${TARGET.rssMiB} MiB: FAIL`)
  }
  return { lines, ok: (ok || load.timedOut) && c !== undefined }
}

/** Run `fn` in a fresh temp dir under `--dir`, removed afterwards and on a signal (unless `--keep`). */
async function inWorkDir<T> (opts: Options, fn: (work: string) => Promise<T>): Promise<T> {
  const work = await mkdtemp(join(opts.dir, 'shoal-bench-snapshot-bootstrap-'))
  if (!opts.keep) tempDirs.add(work)
  log(`working dir ${work}`)
  try {
    return await fn(work)
  } finally {
    if (opts.keep) log(`kept ${work}`)
    else { await rm(work, { recursive: true, force: true }); tempDirs.delete(work) }
  }
}

/** Source, ceiling, load; the report. Returns the exit code. */
async function run (opts: Options, work: string): Promise<number> {
  const sourceDir = join(work, 'source')
  log(`building the source snapshot of ${fmt(opts.paths)} paths`)
  const source = await buildSource(sourceDir, opts.paths, opts.changes)
  log(`source: ${fmt(source.nodes)} blocks, ${f(source.MiB, 1)} MiB in ${f(source.buildS, 1)} s; root ${source.root.toString()}`)
  log('ceiling: hash + LevelDB write of the node bytes')
  const ceil = await runChild<CeilingResult>(['ceiling', '--source', sourceDir, '--work', join(work, 'ceiling')], opts.timeout)
  await rm(join(work, 'ceiling'), { recursive: true, force: true })
  const profile: string[] = []
  if (opts.cpuProf !== undefined) {
    await mkdir(opts.cpuProf, { recursive: true })
    profile.push('--cpu-prof', '--cpu-prof-dir', opts.cpuProf)
  }
  log(`load: loadSnapshot into a fresh replica (killed after ${opts.timeout} s)`)
  const then = source.then === undefined ? [] : ['--then', source.then.root.toString(), '--changes', String(opts.changes)]
  const load = await runChild<LoadResult>(['load', '--source', sourceDir, '--work', join(work, 'replica'), '--root', source.root.toString(), '--author', source.author, '--paths', String(opts.paths), ...then, ...(opts.maxOpenFiles === undefined ? [] : ['--max-open-files', String(opts.maxOpenFiles)])], opts.timeout, profile)
  const { lines, ok } = report(opts, source, load, ceil)
  process.stdout.write(lines.join('\n') + '\n')
  if (opts.json) process.stdout.write(JSON.stringify({ node: process.version, nodeFlags: daemonNodeFlags(), options: opts, source: { ...source, root: source.root.toString() }, ceiling: ceil, load }) + '\n')
  return ok ? 0 : 1
}

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  installCleanup()
  return await inWorkDir(opts, async work => await run(opts, work))
}

main().then(code => { process.exit(code) }, (err: any) => {
  process.stderr.write(`bench/snapshot-bootstrap: ${String(err?.stack ?? err?.message ?? err)}\n`)
  process.exit(1)
})
