/**
 * `npm run bench:fuse`: the same workloads, in the same run, on three
 * targets — a plain directory, the FUSE ceiling (an in-memory file system
 * on the same binding and mount options, `bench/fuse-ceiling.ts`, in its own
 * process) and a Shoal mount (a real daemon, mounted with `shoal mount`):
 *
 * - 1 GiB sequential write, `dd bs=1M` from a random file kept in the page cache
 * - 1 GiB sequential read, `dd bs=1M` to /dev/null, after dropping the page cache
 *   (for Shoal, also through the block store: after a remount, which empties
 *   the mount's content cache — what a file written on another node reads at)
 * - 10,000 × 4 KiB creates (a child process writing files one after another)
 * - `ls -l` of those 10,000 files, after dropping the page, dentry and inode caches
 *
 * Every workload runs in a child process (nothing here touches a mount
 * synchronously). The page cache is dropped (`echo 3 > /proc/sys/vm/drop_caches`,
 * root only) before every read and every `ls -l`, for all three targets: the
 * plain directory then reads from disk, the ceiling from its process's memory,
 * Shoal from its block store. For Shoal, the time until the writes are
 * committed to the namespace (what other nodes can see) is measured too.
 *
 * Options (env): FUSE_BENCH_SIZE_MIB (1024), FUSE_BENCH_FILES (10000),
 * SHOAL_BENCH_DAEMON_NODE_ARGS (node flags for the daemon, e.g. --trace-gc),
 * SHOAL_BENCH_CPU_PROF (a folder for a CPU profile of the daemon),
 * FUSE_BENCH_DAEMON_LOG (keep the daemon's log at this path).
 *
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { cliOk, fmt, log, runCli, spawnDaemon } from './harness.js'
import { benchSetup, dropCaches, idle, poll, startCeiling, timed } from './fuse-harness.js'

const SIZE_MIB = Number(process.env.FUSE_BENCH_SIZE_MIB ?? 1024)
const FILES = Number(process.env.FUSE_BENCH_FILES ?? 10_000)

/** Figures of one target. */
interface Figures { write: number, read: number, creates: number, ls: number, committedWrite?: number, committedCreates?: number, readStore?: number }

/** A child that creates `n` files of 4 KiB in `dir`, one after another. */
function createScript (dir: string, n: number): string {
  const js = `const fs=require('fs');const b=Buffer.alloc(4096,7);for(let i=0;i<${n};i++)fs.writeFileSync(${JSON.stringify(dir)}+'/f'+i,b)`
  return `node -e ${JSON.stringify(js).replace(/\$/g, '\\$')}`
}

/** Run the four workloads on a directory; `committed` waits for Shoal's commits (when given). */
async function workloads (name: string, target: string, source: string, committed?: { bytes: () => Promise<void>, files: () => Promise<void>, idle: () => Promise<void>, remount: () => Promise<void> }): Promise<Figures> {
  const mib = SIZE_MIB
  log(`${name}: write ${mib} MiB`)
  const started = performance.now()
  const writeS = await timed(`dd if=${source} of=${target}/big bs=1M 2>/dev/null`)
  let committedWrite: number | undefined
  if (committed !== undefined) {
    await committed.bytes()
    committedWrite = (performance.now() - started) / 1000
    await committed.idle()
  }
  await dropCaches()
  log(`${name}: read ${mib} MiB`)
  const readS = await timed(`dd if=${target}/big of=/dev/null bs=1M 2>/dev/null`)
  let readStoreS: number | undefined
  if (committed !== undefined) {
    await committed.remount()
    await dropCaches()
    log(`${name}: read ${mib} MiB through the block store`)
    readStoreS = await timed(`dd if=${target}/big of=/dev/null bs=1M 2>/dev/null`)
  }
  await mkdir(join(target, 'c'))
  log(`${name}: ${FILES} creates`)
  const createStart = performance.now()
  const createS = await timed(createScript(join(target, 'c'), FILES))
  let committedCreates: number | undefined
  if (committed !== undefined) {
    await committed.files()
    committedCreates = (performance.now() - createStart) / 1000
  }
  await dropCaches()
  log(`${name}: ls -l of ${FILES}`)
  const lsS = await timed(`ls -l ${target}/c > /dev/null`)
  const mb = mib * 1024 * 1024 / 1e6
  return {
    write: mb / writeS,
    read: mb / readS,
    creates: FILES / createS,
    ls: lsS,
    committedWrite: committedWrite === undefined ? undefined : mb / committedWrite,
    committedCreates: committedCreates === undefined ? undefined : FILES / committedCreates,
    readStore: readStoreS === undefined ? undefined : mb / readStoreS
  }
}

async function main (): Promise<void> {
  const { root, source } = await benchSetup('fuse', SIZE_MIB)

  // plain directory
  const plainDir = join(root, 'plain')
  await mkdir(plainDir)
  await timed(`cat ${source} > /dev/null`)
  const plain = await workloads('plain', plainDir, source)
  await timed(`rm -rf ${plainDir}/*`)

  // the FUSE ceiling, in its own process
  const ceilingDir = join(root, 'ceiling')
  await mkdir(ceilingDir)
  const { stop: stopCeiling } = await startCeiling(ceilingDir)
  await timed(`cat ${source} > /dev/null`)
  let ceiling: Figures
  try {
    ceiling = await workloads('ceiling', ceilingDir, source)
  } finally {
    await stopCeiling()
  }

  // a Shoal mount through a real daemon
  const repo = join(root, 'repo')
  const shoalDir = join(root, 'shoal')
  await mkdir(shoalDir)
  await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  const daemon = await spawnDaemon(repo, process.env.FUSE_BENCH_DAEMON_LOG ?? join(root, 'daemon.log'), process.env.SHOAL_BENCH_CPU_PROF)
  let shoal: Figures
  try {
    await cliOk(['--repo', repo, 'mount', shoalDir])
    await timed(`cat ${source} > /dev/null`)
    const committed = {
      bytes: async () => await poll('the big file is committed', async () => {
        const r = await runCli(['--repo', repo, '--json', 'stat', '/big'])
        return r.code === 0 && JSON.parse(r.stdout).size === SIZE_MIB * 1024 * 1024
      }),
      files: async () => await poll('the created files are committed', async () => {
        const r = await runCli(['--repo', repo, '--json', 'ls', '/c'])
        return r.code === 0 && JSON.parse(r.stdout).length === FILES
      }),
      idle: async () => { log(`shoal: waited ${fmt(await idle(daemon.pid), 1)} s for the daemon to go idle`) },
      // unmounting empties the mount's content cache: the next read goes through the block store
      remount: async () => {
        await cliOk(['--repo', repo, 'unmount', shoalDir])
        await cliOk(['--repo', repo, 'mount', shoalDir])
      }
    }
    shoal = await workloads('shoal', shoalDir, source, committed)
    await cliOk(['--repo', repo, 'unmount', shoalDir])
  } finally {
    await daemon.stop()
  }

  const ratio = (a: number, b: number): string => (a / b).toFixed(2)
  const rows = [
    `| | write MB/s | read MB/s (cold) | 4 KiB creates/s | \`ls -l\` of ${fmt(FILES)}, s |`,
    '|---|---|---|---|---|',
    `| plain directory | ${fmt(plain.write)} | ${fmt(plain.read)} | ${fmt(plain.creates)} | ${fmt(plain.ls, 2)} |`,
    `| FUSE ceiling (in-memory) | ${fmt(ceiling.write)} | ${fmt(ceiling.read)} | ${fmt(ceiling.creates)} | ${fmt(ceiling.ls, 2)} |`,
    `| Shoal mount | ${fmt(shoal.write)} | ${fmt(shoal.read)} | ${fmt(shoal.creates)} | ${fmt(shoal.ls, 2)} |`,
    `| Shoal / ceiling | ${ratio(shoal.write, ceiling.write)} | ${ratio(shoal.read, ceiling.read)} | ${ratio(shoal.creates, ceiling.creates)} | ${ratio(shoal.ls, ceiling.ls)} (time) |`,
    '',
    `Shoal, until committed to the namespace: write ${fmt(shoal.committedWrite ?? 0)} MB/s, creates ${fmt(shoal.committedCreates ?? 0)} files/s`,
    `Shoal, read through the block store (after a remount, as a file written on another node): ${fmt(shoal.readStore ?? 0)} MB/s = ${ratio(shoal.readStore ?? 0, ceiling.read)} x the ceiling`,
    `(${SIZE_MIB} MiB, ${FILES} files, MB = 10^6 bytes; page cache dropped before every read and ls -l)`
  ]
  process.stdout.write(rows.join('\n') + '\n')
  await writeFile(join(root, 'report.md'), rows.join('\n') + '\n')
}

main().then(() => process.exit(0), err => {
  process.stderr.write(`bench:fuse failed: ${String(err?.stack ?? err)}\n`)
  process.exit(1)
})
