/**
 * The cost of pushing a file's blocks to one holder, next to one raw stream
 * carrying the same bytes:
 *
 *   npm run build && node dist/bench/push-one.js [--size 128MiB] [--runs 3] [--busy N]
 *
 * Two daemons on 127.0.0.1 (private swarm, as nodes run). `shoal add --pin
 * replicas:2 --wait` on daemon A pushes every block of the file to daemon B
 * (the streamed placement of an add: reserve, then the block exchange's
 * `put`s); the holder's CPU seconds by thread are printed next to the CPU of
 * the receiving side of a raw libp2p stream (tcp+pnet+noise+yamux, sha-256
 * of every byte) of the same file, in the same run. It isolates the holder's
 * receive path of a striped `add --wait` (bench/durability.ts), where seven
 * holders share two cores with the writer. `--busy N` runs N processes that
 * only spin during each add (the cores shared as eight daemons share them,
 * without their traffic): what sharing alone does to the holder's cost.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { children, cliOk, fmt, installCleanup, log, median, parseSize, spawnDaemon, tempDirs, writeRandomFile } from './harness.js'
import { cpuOf, describeIo, ioSince, mainAndRestCpu, mainThreadIoOf, minorFaultsOf, rawStream, settle, threadCpuOf } from './raw-stream.js'
import { formatSwarmKey, parseSwarmKey } from '../protocol/swarm-key.js'

interface Options { size: number, runs: number, busy: number }

function parseArgs (argv: string[]): Options {
  const o: Options = { size: 128 * 1024 * 1024, runs: 3, busy: 0 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--size') o.size = parseSize(argv[++i] ?? '')
    else if (a === '--runs') o.runs = Number(argv[++i])
    else if (a === '--busy') o.busy = Number(argv[++i])
    else throw new Error(`unknown option ${a}`)
  }
  if (!Number.isSafeInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a positive integer')
  if (!Number.isSafeInteger(o.busy) || o.busy < 0) throw new Error('--busy must be a whole number')
  return o
}

/** `n` processes that spin until stopped (tracked for the bench's cleanup). */
function startSpinners (n: number): ChildProcess[] {
  return Array.from({ length: n }, () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
    children.add(child)
    child.once('exit', () => children.delete(child))
    return child
  })
}

function stopSpinners (spinners: ChildProcess[]): void {
  for (const child of spinners) child.kill('SIGKILL')
}

async function main (): Promise<void> {
  installCleanup()
  const opts = parseArgs(process.argv.slice(2))
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-push-'))
  tempDirs.add(dir)
  const keyFile = join(dir, 'swarm.key')
  await writeFile(keyFile, formatSwarmKey(randomBytes(32)))
  const repos: string[] = []
  for (const name of ['a', 'b']) {
    const repo = join(dir, name)
    await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--swarm-key', keyFile])
    repos.push(repo)
  }
  const [a, b] = [await spawnDaemon(repos[0], `${repos[0]}.log`), await spawnDaemon(repos[1], `${repos[1]}.log`)]
  const id = JSON.parse((await cliOk(['--json', '--repo', repos[1], 'id'])).stdout) as { addresses: string[] }
  await cliOk(['--repo', repos[0], 'peers', 'connect', id.addresses[0]])
  const rows: Array<{ push: number, holder: number, holderMain: number, writer: number, raw: number, rawRecv: number }> = []
  for (let r = 0; r < opts.runs; r++) {
    const file = join(dir, `f${r}.bin`)
    const sha = await writeRandomFile(file, opts.size)
    await settle(20)
    const raw = await rawStream(file, parseSwarmKey(await readFile(keyFile, 'utf8')), 8)
    if (raw.sha !== sha) throw new Error('the raw stream did not deliver the file byte-identical')
    // the receiving side's CPU during the transfer only (not its host's start or the dial)
    const rawRecv = raw.receiverCpu
    await settle(20)
    const hb = threadCpuOf(b.pid)
    const faults0 = minorFaultsOf(b.pid) ?? 0
    const io0 = mainThreadIoOf(b.pid)
    const a0 = cpuOf(a.pid) ?? 0
    const spinners = startSpinners(opts.busy)
    const t = await cliOk(['--repo', repos[0], 'add', file, '--to', `/f${r}.bin`, '--pin', 'replicas:2', '--wait']).finally(() => { stopSpinners(spinners) })
    const holder = mainAndRestCpu(b.pid, hb)
    const faults = (minorFaultsOf(b.pid) ?? 0) - faults0
    const io = ioSince(io0, mainThreadIoOf(b.pid))
    const writer = (cpuOf(a.pid) ?? 0) - a0
    const row = { push: opts.size / t.seconds / 1e6, holder: holder.main + holder.rest, holderMain: holder.main, writer, raw: raw.bytes / raw.seconds / 1e6, rawRecv }
    rows.push(row)
    log(`run ${r + 1}${opts.busy > 0 ? ` (${opts.busy} spinning)` : ''}: add --pin replicas:2 --wait ${fmt(row.push)} MB/s, holder CPU s ${fmt(row.holder, 2)} (main ${fmt(row.holderMain, 2)}, ${faults} minor page faults), writer ${fmt(row.writer, 2)}; raw stream ${fmt(row.raw)} MB/s, its receiver ${fmt(rawRecv, 2)} CPU s; holder / raw receiver ${fmt(row.holder / rawRecv, 2)} x`)
    log(`  main thread I/O calls: holder ${describeIo(io)}; raw receiver ${describeIo(raw.receiverIo)}`)
  }
  log(`median: holder / raw receiver CPU ${fmt(median(rows.map(x => x.holder / x.rawRecv)), 2)} x; add --wait / raw stream ${fmt(median(rows.map(x => x.push / x.raw)), 2)} x`)
  await Promise.all([a.stop(), b.stop()])
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
