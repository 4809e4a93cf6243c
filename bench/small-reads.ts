/**
 * Small files read from another node: `shoal get` of a directory of many
 * small files that only another node holds, next to the same `get` on the
 * node that holds them.
 *
 *   npm run build && node dist/bench/small-reads.js [--files 1000] [--size 1KiB] [--rounds 3] [--keep]
 *
 * Two daemons of one private swarm on 127.0.0.1, connected. Per round, A
 * adds a new folder of `--files` files of `--size` random bytes
 * (`--pin none`: nothing is placed, so B finds the blocks on A alone), and
 * once B's namespace lists the folder:
 *
 * - **figure**: `shoal --repo B get /dir -o OUT`, the whole CLI process:
 *   the plan (a listing of the directory's DAG, each child's root block
 *   fetched from A) and every file's download;
 * - **ceiling**: `shoal --repo A get /dir -o OUT2`: the same tree where its
 *   blocks are, no network.
 *
 * Both outputs are compared with the source folder. It prints files/s of
 * each and the ratio of their times, per round and the median. Each round
 * uses a fresh folder (B keeps what it fetched).
 *
 * @module
 */
import '../node/polyfills.js'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliOk, fmt, installCleanup, log, median, parseSize, spawnDaemon, tempDirs, writeRandomFiles, type BenchDaemon } from './harness.js'

interface Options { files: number, size: number, rounds: number, keep: boolean }

function options (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { files: { type: 'string', default: '1000' }, size: { type: 'string', default: '1KiB' }, rounds: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } },
    strict: true
  })
  const opts: Options = { files: Number(values.files), size: parseSize(values.size), rounds: Number(values.rounds), keep: values.keep }
  for (const [name, v] of [['--files', opts.files], ['--rounds', opts.rounds]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be an integer ≥ 1`)
  }
  return opts
}

/** Throws unless `out` holds the files of `src`, byte for byte. */
async function sameTree (src: string, out: string): Promise<void> {
  const names = (await readdir(src)).sort()
  const got = (await readdir(out)).sort()
  if (names.join('\n') !== got.join('\n')) throw new Error(`${out} holds ${got.length} files, ${src} ${names.length}`)
  for (const name of names) {
    if (Buffer.compare(await readFile(join(src, name)), await readFile(join(out, name))) !== 0) throw new Error(`${out}/${name} differs from its source`)
  }
}

/** Wait (bounded) until `repo`'s namespace lists `count` entries at `path`. */
async function untilListed (repo: string, path: string, count: number): Promise<void> {
  const deadline = performance.now() + 120_000
  for (;;) {
    const listed = await cliOk(['--repo', repo, '--json', 'ls', path]).then(r => (JSON.parse(r.stdout) as unknown[]).length, () => 0)
    if (listed === count) return
    if (performance.now() > deadline) throw new Error(`${repo} did not list ${count} entries at ${path} within 2 min`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

async function main (): Promise<void> {
  installCleanup()
  const opts = options(process.argv.slice(2))
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-reads-'))
  if (!opts.keep) tempDirs.add(dir)
  log(`${opts.files} files of ${opts.size} B, 2 nodes, ${opts.rounds} round(s); temp ${dir}`)
  const keyFile = join(dir, 'swarm.key')
  await writeFile(keyFile, (await cliOk(['swarm', 'key', 'new'])).stdout)
  const [a, b] = ['a', 'b'].map(n => join(dir, n))
  for (const repo of [a, b]) await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--swarm-key', keyFile])
  const daemons: BenchDaemon[] = []
  try {
    for (const repo of [a, b]) daemons.push(await spawnDaemon(repo, `${repo}.log`))
    const id = JSON.parse((await cliOk(['--repo', a, '--json', 'id'])).stdout) as { addresses: string[] }
    await cliOk(['--repo', b, 'peers', 'connect', id.addresses[0]])
    const rows: Array<{ remote: number, local: number }> = []
    // round 0 is untimed: a daemon's first reads pay for its code's compilation
    for (let round = 0; round <= opts.rounds; round++) {
      const src = join(dir, `src-${round}`)
      const files = round === 0 ? Math.min(50, opts.files) : opts.files
      await writeRandomFiles(src, files, opts.size)
      await cliOk(['--repo', a, 'add', src, '--to', `/r${round}`, '--pin', 'none'])
      await untilListed(b, `/r${round}`, files)
      // A's announcements of the new files settle first (a DHT provide per file)
      await new Promise(resolve => setTimeout(resolve, 5000))
      const remote = (await cliOk(['--repo', b, 'get', `/r${round}`, '-o', join(dir, `out-b-${round}`)])).seconds
      const local = (await cliOk(['--repo', a, 'get', `/r${round}`, '-o', join(dir, `out-a-${round}`)])).seconds
      await sameTree(src, join(dir, `out-b-${round}`))
      await sameTree(src, join(dir, `out-a-${round}`))
      if (round === 0) continue
      rows.push({ remote, local })
      log(`round ${round}: get from another node ${fmt(remote, 2)} s (${fmt(files / remote)} files/s); on the holder ${fmt(local, 2)} s (${fmt(files / local)} files/s); ${fmt(remote / local, 2)} × the time`)
    }
    log(`median: from another node ${fmt(median(rows.map(r => opts.files / r.remote)))} files/s, ${fmt(median(rows.map(r => r.remote / r.local)), 2)} × the time of the get on the holder`)
  } finally {
    await Promise.all(daemons.map(async d => await d.stop()))
    if (!opts.keep) await rm(dir, { recursive: true, force: true })
  }
}

main().catch(err => {
  log(`small-reads: ${String(err?.stack ?? err)}`)
  process.exitCode = 1
})
