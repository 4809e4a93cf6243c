/**
 * Small files through a swarm: how long until a directory of many small
 * files meets its policy, next to the add of the same files alone.
 *
 *   npm run build && node dist/bench/small-files.js [--files 2000] [--size 4KiB] [--nodes 3]
 *     [--rounds 1] [--keep]
 *
 * Per round, on daemon 0 of N (real processes on 127.0.0.1, one private
 * swarm, all connected):
 *
 * - **ceiling**: `shoal add DIR --pin none` of `--files` files of `--size`
 *   random bytes: the import and the namespace write, nothing placed;
 * - **figure**: `shoal add DIR` of as many other files under the default
 *   policy (`replicas:3` for small files), timed until the add returns, and
 *   until every file's pin names its manifest and the writer's
 *   `shoal_durability_shards_placed_total` has stopped moving (the last
 *   shard pushed): the time for the directory to meet its policy.
 *
 * An untimed add of 50 files each way comes first (a daemon's first adds
 * pay for compiling its code). It prints files/s of each, the time to meet the policy as a ratio to the
 * ceiling's add, and the add's own time as a ratio (what background
 * placement costs the writes a user waits for).
 *
 * @module
 */
import '../node/polyfills.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiClient } from '../cli/client.js'
import { cliOk, fmt, installCleanup, log, median, parseSize, spawnDaemon, tempDirs, writeRandomFiles, type BenchDaemon } from './harness.js'

interface Options { files: number, size: number, nodes: number, rounds: number, keep: boolean }

function parseArgs (argv: string[]): Options {
  const opts: Options = { files: 2000, size: 4096, nodes: 3, rounds: 1, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--files') opts.files = Number(next())
    else if (a === '--size') opts.size = parseSize(next())
    else if (a === '--nodes') opts.nodes = Number(next())
    else if (a === '--rounds') opts.rounds = Number(next())
    else if (a === '--keep') opts.keep = true
    else throw new Error(`unknown argument ${a}`)
  }
  for (const [name, v, min] of [['--files', opts.files, 1], ['--nodes', opts.nodes, 2], ['--rounds', opts.rounds, 1]] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name} must be an integer ≥ ${min}`)
  }
  return opts
}

/** The writer's count of shards pushed to peers (its Prometheus text). */
async function shardsPlaced (client: ApiClient): Promise<number> {
  const res = await client.send('GET', '/metrics')
  let text = ''
  for await (const chunk of res) text += String(chunk)
  const line = text.split('\n').find(l => l.startsWith('shoal_durability_shards_placed_total'))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

/** Files under `dir` whose pin names a manifest. */
async function bound (client: ApiClient, dir: string): Promise<number> {
  const pins = await client.json<Array<{ path: string, manifest?: string }>>('GET', '/api/v0/pin/ls')
  return pins.filter(p => p.path.startsWith(dir + '/') && p.manifest !== undefined).length
}

/**
 * Seconds from `started` until every one of `files` files under `dir` is
 * bound to its manifest and no shard was pushed for `quietMs` (bounded).
 */
async function untilPlaced (client: ApiClient, dir: string, files: number, started: number, quietMs = 3000): Promise<number> {
  let last = await shardsPlaced(client)
  let lastMoved = performance.now()
  const deadline = performance.now() + 30 * 60_000
  for (;;) {
    if (performance.now() > deadline) throw new Error(`${dir}: its files did not meet their policy within 30 min`)
    await new Promise(resolve => setTimeout(resolve, 250))
    const now = await shardsPlaced(client)
    if (now !== last) { last = now; lastMoved = performance.now() }
    if (performance.now() - lastMoved >= quietMs && await bound(client, dir) >= files) return (lastMoved - started) / 1000
  }
}

async function main (): Promise<void> {
  installCleanup()
  const opts = parseArgs(process.argv.slice(2))
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-small-'))
  if (!opts.keep) tempDirs.add(dir)
  log(`${opts.files} files of ${opts.size} B, ${opts.nodes} nodes, ${opts.rounds} round(s); temp ${dir}`)
  const keyFile = join(dir, 'swarm.key')
  await writeFile(keyFile, (await cliOk(['swarm', 'key', 'new'])).stdout)
  const repos: string[] = []
  for (let i = 0; i < opts.nodes; i++) {
    const repo = join(dir, `node${i}`)
    await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--swarm-key', keyFile])
    repos.push(repo)
  }
  const daemons: BenchDaemon[] = []
  try {
    for (const repo of repos) daemons.push(await spawnDaemon(repo, `${repo}.log`))
    const ids = await Promise.all(repos.map(async repo => JSON.parse((await cliOk(['--repo', repo, '--json', 'id'])).stdout) as { addresses: string[] }))
    for (let i = 0; i < repos.length; i++) {
      for (let j = i + 1; j < repos.length; j++) await cliOk(['--repo', repos[i], 'peers', 'connect', ids[j].addresses[0]])
    }
    const writer = repos[0]
    const client = await ApiClient.connect(writer)
    // untimed: a daemon's first adds pay for its code's compilation and its first pages
    const warm = join(dir, 'warm')
    await writeRandomFiles(warm, 50, opts.size)
    await cliOk(['--repo', writer, 'add', warm, '--to', '/warm-none', '--pin', 'none'])
    await cliOk(['--repo', writer, 'add', warm, '--to', '/warm'])
    await untilPlaced(client, '/warm', 50, performance.now())
    const rows: Array<{ plain: number, add: number, placed: number }> = []
    for (let round = 1; round <= opts.rounds; round++) {
      const plainDir = join(dir, `plain-${round}`)
      const placedDir = join(dir, `placed-${round}`)
      await writeRandomFiles(plainDir, opts.files, opts.size)
      await writeRandomFiles(placedDir, opts.files, opts.size)
      const plain = (await cliOk(['--repo', writer, 'add', plainDir, '--to', `/plain-${round}`, '--pin', 'none'])).seconds
      const started = performance.now()
      const add = (await cliOk(['--repo', writer, 'add', placedDir, '--to', `/placed-${round}`])).seconds
      const placed = await untilPlaced(client, `/placed-${round}`, opts.files, started)
      rows.push({ plain, add, placed })
      log(`round ${round}: add --pin none ${fmt(plain, 2)} s (${fmt(opts.files / plain)} files/s); add ${fmt(add, 2)} s (${fmt(opts.files / add)} files/s, ${fmt(add / plain, 2)} × the time); policy met after ${fmt(placed, 2)} s (${fmt(opts.files / placed)} files/s, ${fmt(placed / plain, 2)} × the add --pin none)`)
    }
    const med = (f: (r: typeof rows[number]) => number): number => median(rows.map(f))
    log(`median: add ${fmt(med(r => r.add / r.plain), 2)} × the time of add --pin none; policy met after ${fmt(med(r => r.placed / r.plain), 2)} × (${fmt(med(r => opts.files / r.placed))} files/s)`)
  } finally {
    await Promise.all(daemons.map(async d => await d.stop()))
    if (!opts.keep) await rm(dir, { recursive: true, force: true })
  }
}

main().catch(err => {
  log(`small-files: ${String(err?.stack ?? err)}`)
  process.exitCode = 1
})
