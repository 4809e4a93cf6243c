/**
 * The ceiling of network benchmarks: the raw libp2p stream rate (tcp, noise,
 * yamux, and pnet when given a key) between this process and a bare host in
 * a child process (bench/transfer-peer.ts) sending a file, plus the CPU
 * accounting that tells a quiet run from a noisy one. Used by
 * bench/transfer.ts and bench/durability.ts.
 *
 * @module
 */
import '../node/polyfills.js'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost } from '../node/net/host.js'
import { children, fmt, isInterrupted, log } from './harness.js'
import { receiveCredited } from './send-file.js'

/** Must match bench/transfer-peer.ts. */
export const RAW_PROTOCOL = '/bench/raw/1.0.0'
const PEER = join(dirname(fileURLToPath(import.meta.url)), 'transfer-peer.js')

export function machineCpu (): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100
  } catch { return undefined }
}

/** Flush dirty pages, then wait (up to quietWait s) until the machine is idle for 2 s. */
export async function settle (quietWait: number): Promise<void> {
  if (isInterrupted()) throw new Error('interrupted')
  spawnSync('sync', { stdio: 'ignore' })
  const deadline = Date.now() + quietWait * 1000
  for (;;) {
    const a = machineCpu()
    await new Promise(resolve => setTimeout(resolve, 2000))
    const b = machineCpu()
    if (a === undefined || b === undefined) return
    if (b - a < 0.2) return
    if (Date.now() > deadline) { log(`machine still busy (${fmt((b - a) * 50)}% of one core), measuring anyway`); return }
  }
}

/** Field of /proc/PID/status in bytes (VmHWM, RssAnon, ...). */
export function procStatus (pid: number | undefined, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch { return undefined }
}

/**
 * CPU seconds used machine-wide (/proc/stat) and by this process plus its
 * reaped children (the CLI), from /proc/self/stat; undefined off Linux.
 */
export function cpuAccount (): { machine: number, ours: number } | undefined {
  try {
    const machine = machineCpu()
    const { own, reaped } = selfCpu()
    return machine === undefined ? undefined : { machine, ours: own + reaped }
  } catch { return undefined }
}

/** CPU seconds of this process (`own`: utime + stime) and of its reaped children (`reaped`: cutime + cstime), from /proc/self/stat. */
export function selfCpu (): { own: number, reaped: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { own: (Number(f[11]) + Number(f[12])) / 100, reaped: (Number(f[13]) + Number(f[14])) / 100 }
}

/** CPU seconds processes outside the benchmark used between two readings (`live`: our live children's share). */
export function foreignCpu (a: ReturnType<typeof cpuAccount>, b: ReturnType<typeof cpuAccount>, live: Array<number | undefined>): number | undefined {
  if (a === undefined || b === undefined || live.some(x => x === undefined)) return undefined
  return Math.max(0, (b.machine - a.machine) - (b.ours - a.ours) - live.reduce((x: number, y) => x + (y as number), 0))
}

/** More than 5% of the machine's CPU (at least 0.5 s) went to other processes while timed. */
export function noisy (foreign: number | undefined, seconds: number): boolean {
  return foreign !== undefined && foreign > Math.max(0.5, 0.05 * cpus().length * seconds)
}

/** utime + stime of a `/proc/.../stat` file, in seconds. */
function statCpu (path: string): number | undefined {
  try {
    const s = readFileSync(path, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch { return undefined }
}

export function cpuOf (pid: number | undefined): number | undefined {
  return statCpu(`/proc/${String(pid)}/stat`)
}

/** Minor page faults of process `pid` so far, all its threads (first touches of fresh pages), or undefined when it is gone. */
export function minorFaultsOf (pid: number | undefined): number | undefined {
  try {
    const s = readFileSync(`/proc/${String(pid)}/stat`, 'utf8')
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7])
  } catch { return undefined }
}

/** Read and write calls a thread made, and their bytes (Linux `/proc/PID/task/TID/io`). */
export interface ThreadIo { reads: number, readBytes: number, writes: number, writeBytes: number }

/**
 * The main thread's read and write calls of process `pid` so far (sockets,
 * pipes and libuv's eventfd wakeups; disk I/O runs on libuv's pool, other
 * threads), or undefined when it is gone. Bytes per read tell how finely a
 * stream arrives: each read is one wakeup of the event loop.
 */
export function mainThreadIoOf (pid: number | undefined): ThreadIo | undefined {
  try {
    const f = new Map(readFileSync(`/proc/${String(pid)}/task/${String(pid)}/io`, 'utf8').trim().split('\n').map(line => line.split(': ') as [string, string]))
    return { reads: Number(f.get('syscr')), readBytes: Number(f.get('rchar')), writes: Number(f.get('syscw')), writeBytes: Number(f.get('wchar')) }
  } catch { return undefined }
}

/** `after` minus `before`, counter by counter (zeros when either is missing). */
export function ioSince (before: ThreadIo | undefined, after: ThreadIo | undefined): ThreadIo {
  if (before === undefined || after === undefined) return { reads: 0, readBytes: 0, writes: 0, writeBytes: 0 }
  return { reads: after.reads - before.reads, readBytes: after.readBytes - before.readBytes, writes: after.writes - before.writes, writeBytes: after.writeBytes - before.writeBytes }
}

/** `a` plus `b`, counter by counter (several processes' calls together). */
export function addIo (a: ThreadIo, b: ThreadIo): ThreadIo {
  return { reads: a.reads + b.reads, readBytes: a.readBytes + b.readBytes, writes: a.writes + b.writes, writeBytes: a.writeBytes + b.writeBytes }
}

/** One line for {@link ThreadIo}: calls and KiB per call. */
export function describeIo (io: ThreadIo): string {
  const per = (bytes: number, calls: number): string => calls === 0 ? '-' : (bytes / calls / 1024).toFixed(1)
  return `${io.reads} reads (${per(io.readBytes, io.reads)} KiB each), ${io.writes} writes (${per(io.writeBytes, io.writes)} KiB each)`
}

/**
 * CPU seconds of each thread of process `pid` so far, by thread id (the main
 * thread's id is the pid; worker threads, libuv's pool and V8's helpers are
 * the others); empty when the process is gone.
 */
export function threadCpuOf (pid: number): Map<number, number> {
  const threads = new Map<number, number>()
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const seconds = statCpu(`/proc/${pid}/task/${tid}/stat`)
      if (seconds !== undefined) threads.set(Number(tid), seconds)
    }
  } catch {}
  return threads
}

/** CPU seconds `pid` used since `before` (a {@link threadCpuOf} reading): its main thread's, and all its other threads' together. */
export function mainAndRestCpu (pid: number, before: Map<number, number>): { main: number, rest: number } {
  let main = 0
  let rest = 0
  for (const [tid, s] of threadCpuOf(pid)) {
    const used = s - (before.get(tid) ?? 0)
    if (tid === pid) main += used
    else rest += used
  }
  return { main, rest }
}

/** What one raw stream measured: its time, bytes, their sha-256, and the CPU of each side. */
export interface RawStreamRun {
  seconds: number
  bytes: number
  sha: string
  /** CPU seconds of processes outside the benchmark meanwhile (noise), when known. */
  foreign?: number
  /** CPU seconds of the sending process (the child) during the transfer, when known. */
  senderCpu?: number
  /** CPU seconds of the receiving process (this one: the transport and a sha-256 of every byte) during the transfer. */
  receiverCpu: number
  /** The receiving process's main-thread read and write calls during the transfer. */
  receiverIo: ThreadIo
}

/** Raw stream: the child sends the file over /bench/raw/1.0.0, we hash what arrives. */
export async function rawStream (file: string, swarmKey: Uint8Array | undefined, windowMiB: number): Promise<RawStreamRun> {
  const child = spawn(process.execPath, [PEER, file, swarmKey === undefined ? '-' : Buffer.from(swarmKey).toString('hex'), String(windowMiB)], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [], swarmKey })
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve)
      child.once('exit', code => reject(new Error(`transfer-peer exited (${String(code)})`)))
    })
    const addr = multiaddr((JSON.parse(line) as { address: string }).address)
    await host.dial(addr) // connection set-up (noise handshake, identify) is not timed
    await settle(0)
    const hash = createHash('sha256')
    const acct0 = cpuAccount()
    const child0 = cpuOf(child.pid)
    const self0 = process.cpuUsage()
    const io0 = mainThreadIoOf(process.pid)
    const t0 = performance.now()
    const bytes = await receiveCredited(await host.dialProtocol(addr, RAW_PROTOCOL), hash)
    const seconds = (performance.now() - t0) / 1000
    const self1 = process.cpuUsage(self0)
    const receiverIo = ioSince(io0, mainThreadIoOf(process.pid))
    const child1 = cpuOf(child.pid)
    const senderCpu = child0 === undefined || child1 === undefined ? undefined : child1 - child0
    const foreign = foreignCpu(acct0, cpuAccount(), [senderCpu])
    return { seconds, bytes, sha: hash.digest('hex'), foreign, senderCpu, receiverCpu: (self1.user + self1.system) / 1e6, receiverIo }
  } finally {
    await host.stop()
    child.kill('SIGTERM')
  }
}
