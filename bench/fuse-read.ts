/**
 * `node dist/bench/fuse-read.js`: the FUSE read through the block store
 * alone, repeated, against the FUSE ceiling in the same run. `bench/fuse.ts`
 * measures it once among everything else; this one alternates, round after
 * round, a cold read of the ceiling's file and a cold read of a Shoal mount's
 * file that is not in the mount's content cache (written, committed, then the
 * mount remounted: what a file written on another node reads at), and counts
 * the CPU seconds of the daemon and of the ceiling's process during each.
 * The Shoal file is checked against the source's sha-256 once.
 *
 * Two more figures each round, because a cold read of a Shoal file reads its
 * pack files from the disk while the ceiling's file lives in memory:
 * - **disk**: a cold read of the node's pack files themselves (`cat`, the
 *   same bytes the FUSE read needs, in order), the disk's own speed for them
 *   in the same minute; the cold Shoal read is printed against it too;
 * - **packs cached**: the Shoal file read again with its packs in the page
 *   cache and only the mount's pages of the file dropped (`dd iflag=nocache
 *   count=0`): the FUSE read of a file just fetched from another node.
 *
 * Options (env): FUSE_BENCH_SIZE_MIB (1024), FUSE_READ_ROUNDS (5),
 * SHOAL_BENCH_CPU_PROF (a folder for CPU profiles of the daemon and the ceiling;
 * the read windows are logged on the profiles' clock),
 * FUSE_BENCH_DAEMON_LOG (keep the daemon's log at this path). Root only (it
 * drops the page cache before every read).
 *
 * @module
 */
import { mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { cliOk, fmt, log, median, runCli, spawnDaemon } from './harness.js'
import { benchSetup, dropCaches, idle, poll, startCeiling, timed } from './fuse-harness.js'
import { cpuOf } from './raw-stream.js'

const SIZE_MIB = Number(process.env.FUSE_BENCH_SIZE_MIB ?? 1024)
const ROUNDS = Number(process.env.FUSE_READ_ROUNDS ?? 5)

/** One cold `dd` read of `file`: MB/s and the CPU seconds `pid` spent meanwhile. */
async function coldRead (file: string, pid: number): Promise<{ mbs: number, cpu: number }> {
  await dropCaches()
  const before = cpuOf(pid) ?? 0
  const from = process.hrtime.bigint() / 1000n
  const seconds = await timed(`dd if=${file} of=/dev/null bs=1M 2>/dev/null`)
  // monotonic µs, the clock of a --cpu-prof profile: to pick a read's samples out of it
  if (process.env.SHOAL_BENCH_CPU_PROF !== undefined) log(`read window ${file}: ${String(from)} ${String(process.hrtime.bigint() / 1000n)}`)
  return { mbs: SIZE_MIB * 1024 * 1024 / 1e6 / seconds, cpu: (cpuOf(pid) ?? 0) - before }
}

/** MB/s of a cold read of every pack file in `dir`, in name order: the disk's speed for the bytes a cold Shoal read needs. */
async function diskRead (dir: string): Promise<number> {
  const names = (await readdir(dir)).filter(n => n.endsWith('.pack')).sort()
  let bytes = 0
  for (const n of names) bytes += (await stat(join(dir, n))).size
  await dropCaches()
  const seconds = await timed(`cat ${names.map(n => join(dir, n)).join(' ')} > /dev/null`)
  return bytes / 1e6 / seconds
}

/** MB/s of a read of `file` through the mount with the packs in `dir` in the page cache and the mount's pages of the file dropped. */
async function cachedRead (file: string, dir: string): Promise<number> {
  await timed(`cat ${dir}/*.pack > /dev/null; dd if=${file} iflag=nocache count=0 2>/dev/null`)
  const seconds = await timed(`dd if=${file} of=/dev/null bs=1M 2>/dev/null`)
  return SIZE_MIB * 1024 * 1024 / 1e6 / seconds
}

async function main (): Promise<void> {
  const { root, source, sha } = await benchSetup('fuse-read', SIZE_MIB)

  const ceilingDir = join(root, 'ceiling')
  await mkdir(ceilingDir)
  const ceiling = await startCeiling(ceilingDir, process.env.SHOAL_BENCH_CPU_PROF)
  const repo = join(root, 'repo')
  const shoalDir = join(root, 'shoal')
  await mkdir(shoalDir)
  await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  const daemon = await spawnDaemon(repo, process.env.FUSE_BENCH_DAEMON_LOG ?? join(root, 'daemon.log'), process.env.SHOAL_BENCH_CPU_PROF)
  const rows: string[] = []
  try {
    await cliOk(['--repo', repo, 'mount', shoalDir])
    await timed(`dd if=${source} of=${ceilingDir}/big bs=1M 2>/dev/null`)
    await timed(`dd if=${source} of=${shoalDir}/big bs=1M 2>/dev/null`)
    await poll('the file is committed', async () => {
      const r = await runCli(['--repo', repo, '--json', 'stat', '/big'])
      return r.code === 0 && JSON.parse(r.stdout).size === SIZE_MIB * 1024 * 1024
    })
    log(`waited ${fmt(await idle(daemon.pid), 1)} s for the daemon to go idle`)
    // unmounting empties the mount's content cache: every read below goes through the block store
    await cliOk(['--repo', repo, 'unmount', shoalDir])
    await cliOk(['--repo', repo, 'mount', shoalDir])
    await dropCaches()
    const { stdout } = await promisify(execFile)('sha256sum', [join(shoalDir, 'big')], { maxBuffer: 1 << 20 })
    if (stdout.split(' ')[0] !== sha) throw new Error(`the mount's bytes differ from the source (sha-256 ${stdout.split(' ')[0]}, want ${sha})`)
    log('the mount reads the exact bytes')
    const packs = join(repo, 'blocks', 'packs')
    const ratios: number[] = []
    const diskRatios: number[] = []
    const cachedRatios: number[] = []
    rows.push('| round | ceiling MB/s | its CPU s | Shoal (block store) MB/s | daemon CPU s | Shoal / ceiling | disk (packs, cold) MB/s | Shoal / disk | Shoal, packs cached, MB/s | cached / ceiling |', '|---|---|---|---|---|---|---|---|---|---|')
    for (let round = 1; round <= ROUNDS; round++) {
      const c = await coldRead(join(ceilingDir, 'big'), ceiling.pid)
      const s = await coldRead(join(shoalDir, 'big'), daemon.pid)
      const d = await diskRead(packs)
      const w = await cachedRead(join(shoalDir, 'big'), packs)
      ratios.push(s.mbs / c.mbs)
      diskRatios.push(s.mbs / d)
      cachedRatios.push(w / c.mbs)
      rows.push(`| ${round} | ${fmt(c.mbs)} | ${fmt(c.cpu, 2)} | ${fmt(s.mbs)} | ${fmt(s.cpu, 2)} | ${(s.mbs / c.mbs).toFixed(2)} | ${fmt(d)} | ${(s.mbs / d).toFixed(2)} | ${fmt(w)} | ${(w / c.mbs).toFixed(2)} |`)
      log(rows[rows.length - 1])
    }
    rows.push('', `median Shoal / ceiling: ${median(ratios).toFixed(2)}; Shoal / disk: ${median(diskRatios).toFixed(2)}; packs cached / ceiling: ${median(cachedRatios).toFixed(2)} (${SIZE_MIB} MiB, ${ROUNDS} rounds, MB = 10^6 bytes; page cache dropped before every cold read)`)
    await cliOk(['--repo', repo, 'unmount', shoalDir])
  } finally {
    await daemon.stop()
    await ceiling.stop()
  }
  process.stdout.write(rows.join('\n') + '\n')
}

main().then(() => process.exit(0), err => {
  process.stderr.write(`bench:fuse-read failed: ${String(err?.stack ?? err)}\n`)
  process.exit(1)
})
