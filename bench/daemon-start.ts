/**
 * How long a daemon takes to start, and what a command costs to start: the
 * bundle users run (`dist/bin/shoal.js`, cli/build-bundle.ts) against the
 * same code as tsc wrote it (`dist/cli/bin.js`, one file per module), beside
 * the floor of a bare `node` that does nothing.
 *
 * ```sh
 * npm run build && node dist/bench/daemon-start.js [--runs 5]
 * ```
 *
 * Each run, for each entry in turn: a fresh repo (`init`, loopback
 * addresses, not timed), then `node --initial-old-space-size=128 ENTRY
 * daemon` (the daemon in place, one process: what the systemd unit runs)
 * timed from spawn until it has written `<repo>/api`, with the CPU its
 * process used until then (/proc/PID/stat, 10 ms ticks); then `shoal id`
 * against it (a client command, whole process, wall and CPU); then SIGTERM,
 * timed until the process has exited (it must exit 0: a clean stop). Medians
 * are printed, and the ratios bundle / tsc output.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanupSync, fmt, installCleanup, log, median, SHOAL_BIN, tempDirs, trackChild } from './harness.js'
import { cpuOf, selfCpu } from './raw-stream.js'

/** The same code, one file per module as tsc wrote it. */
const TSC_BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url))

/** Run `node args` to its end: wall seconds and its CPU seconds (one child at a time is running). */
async function timed (args: string[]): Promise<{ wall: number, cpu: number }> {
  const cpuBefore = selfCpu().reaped
  const started = performance.now()
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  if (code !== 0) throw new Error(`node ${args.join(' ')} failed (exit ${String(code)}): ${stderr.trim()}`)
  return { wall: (performance.now() - started) / 1000, cpu: selfCpu().reaped - cpuBefore }
}

/** One start of a daemon from `bin`: seconds to its API, its CPU by then, a client command's cost against it, and seconds from SIGTERM to its exit. */
async function startOnce (bin: string): Promise<{ wall: number, cpu: number, client: { wall: number, cpu: number }, stop: number }> {
  const repo = await mkdtemp(join(tmpdir(), 'shoal-bench-start-'))
  tempDirs.add(repo)
  await timed([bin, '--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  const started = performance.now()
  const child = spawn(process.execPath, ['--initial-old-space-size=128', bin, '--repo', repo, 'daemon'], {
    stdio: 'ignore',
    env: { ...process.env, SHOAL_NO_RELAUNCH: '1', SHOAL_LOG_LEVEL: 'warn' }
  })
  const stop = trackChild(child, 10_000)
  try {
    const deadline = Date.now() + 30_000
    while (!existsSync(join(repo, 'api'))) {
      if (child.exitCode !== null) throw new Error(`the daemon from ${bin} exited (${String(child.exitCode)}) before its API was up`)
      if (Date.now() > deadline) throw new Error(`the daemon from ${bin} had no API after 30 s`)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    const wall = (performance.now() - started) / 1000
    const cpu = cpuOf(child.pid) ?? NaN
    const client = await timed([bin, '--repo', repo, 'id'])
    const stopping = performance.now()
    await stop()
    if (child.exitCode !== 0) throw new Error(`the daemon from ${bin} did not stop cleanly (exit ${String(child.exitCode ?? child.signalCode)})`)
    return { wall, cpu, client, stop: (performance.now() - stopping) / 1000 }
  } finally {
    await stop()
  }
}

async function main (): Promise<void> {
  installCleanup()
  const i = process.argv.indexOf('--runs')
  const runs = i < 0 ? 5 : Number(process.argv[i + 1])
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number ≥ 1')
  const entries = [{ name: 'bundle (dist/bin/shoal.js)', bin: SHOAL_BIN }, { name: 'tsc output (dist/cli/bin.js)', bin: TSC_BIN }]
  const results = new Map(entries.map(e => [e.name, [] as Array<Awaited<ReturnType<typeof startOnce>>>]))
  const floor: Array<{ wall: number, cpu: number }> = []
  for (let run = 1; run <= runs; run++) {
    floor.push(await timed(['-e', '0']))
    // alternate which goes first
    for (const e of run % 2 === 1 ? entries : [...entries].reverse()) {
      const r = await startOnce(e.bin)
      results.get(e.name)?.push(r)
      log(`run ${run}, ${e.name}: API up in ${fmt(r.wall, 2)} s, ${fmt(r.cpu, 2)} CPU-s; \`shoal id\` ${fmt(r.client.wall, 2)} s, ${fmt(r.client.cpu, 2)} CPU-s; stop ${fmt(r.stop, 2)} s`)
    }
  }
  const m = (name: string, pick: (r: Awaited<ReturnType<typeof startOnce>>) => number): number => median((results.get(name) ?? []).map(pick))
  const [b, t] = entries.map(e => e.name)
  log(`\nmedians of ${runs} runs:`)
  log(`bare node (node -e 0): ${fmt(median(floor.map(f => f.wall)), 2)} s, ${fmt(median(floor.map(f => f.cpu)), 2)} CPU-s`)
  for (const name of [b, t]) {
    log(`${name}: daemon API up in ${fmt(m(name, r => r.wall), 2)} s, ${fmt(m(name, r => r.cpu), 2)} CPU-s; \`shoal id\` ${fmt(m(name, r => r.client.wall), 2)} s, ${fmt(m(name, r => r.client.cpu), 2)} CPU-s; SIGTERM to exit ${fmt(m(name, r => r.stop), 2)} s`)
  }
  log(`bundle / tsc output: daemon start ${fmt(m(b, r => r.wall) / m(t, r => r.wall), 2)} × the time, ${fmt(m(b, r => r.cpu) / m(t, r => r.cpu), 2)} × the CPU; \`shoal id\` ${fmt(m(b, r => r.client.wall) / m(t, r => r.client.wall), 2)} × the time`)
  cleanupSync()
}

await main()
