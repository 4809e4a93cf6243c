/**
 * Transport ceiling: the rate of ONE raw libp2p stream over 127.0.0.1 for each
 * transport Shoal has or could have, in the same run, on the same random
 * bytes.
 *
 *   node dist/bench/transport.js [--size 512MiB] [--runs 3] [--quiet-wait S]
 *     [--window MiB] [--only tcp,pnet-wasm,pnet-native,quic] [--json]
 *
 * Transports (see bench/transport-peer.ts): tcp + noise + yamux; the same
 * with pnet on the WASM xsalsa20 that `@libp2p/pnet` ships; the same with
 * pnet on libsodium's xsalsa20, as Shoal runs (node/net/host.ts with a swarm
 * key); QUIC from `@chainsafe/libp2p-quic` when it is installed.
 *
 * Each measurement starts a sender in a child process (listening on
 * 127.0.0.1 only) and a receiving host in this process, connects them (not
 * timed), waits for an idle machine, then times one stream: opening it, the
 * whole file in 1 MiB messages under credit-based flow control (at most
 * `--window` MiB, default 8, unacknowledged), and its close. The receiver
 * hashes every byte with sha-256 and the digest is checked against the file.
 * CPU seconds are the sender process's (/proc) and this process's
 * (`process.cpuUsage`) during the timed stream; a measurement during which
 * other processes used the CPU is flagged noisy and left out of the medians.
 * Every run measures every transport once, in the order above.
 *
 * The file lives in a temp dir removed at the end, on error and on SIGINT;
 * child processes are stopped likewise. MB = 10^6 bytes.
 *
 * @module
 */
import '../node/polyfills.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { fmt, installCleanup, isInterrupted, log, median, parseSize, tempDirs, trackChild, writeRandomFile } from './harness.js'
import { cpuAccount, cpuOf, foreignCpu, noisy, settle } from './raw-stream.js'
import { receiveCredited } from './send-file.js'
import { QUIC_PACKAGE, loadQuic, openHost, RAW_PROTOCOL, TRANSPORT_LABELS, TRANSPORTS, type PeerReady, type Transport } from './transport-peer.js'

const MiB = 1024 * 1024
const MB = 1e6
const PEER = join(dirname(fileURLToPath(import.meta.url)), 'transport-peer.js')

interface Options { size: number, runs: number, quietWait: number, window: number, transports: Transport[], json: boolean }

function parseArgs (argv: string[]): Options {
  const o: Options = { size: 512 * MiB, runs: 3, quietWait: 120, window: 8, transports: [...TRANSPORTS], json: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => { const v = argv[++i]; if (v === undefined) throw new Error(`${arg} needs a value`); return v }
    switch (arg) {
      case '--size': o.size = parseSize(value()); break
      case '--runs': o.runs = Number(value()); break
      case '--quiet-wait': o.quietWait = Number(value()); break
      case '--window': o.window = Number(value()); break
      case '--only': {
        const names = value().split(',').filter(s => s !== '')
        const unknown = names.filter(n => !TRANSPORTS.includes(n as Transport))
        if (unknown.length > 0) throw new Error(`--only: unknown transport ${unknown.join(', ')} (known: ${TRANSPORTS.join(', ')})`)
        o.transports = TRANSPORTS.filter(t => names.includes(t))
        break
      }
      case '--json': o.json = true; break
      default: throw new Error(`unknown argument ${JSON.stringify(arg)}; see the header of bench/transport.ts`)
    }
  }
  if (!Number.isSafeInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a whole number >= 1')
  if (!(o.size > 0)) throw new Error('--size must be positive')
  if (!Number.isSafeInteger(o.window) || o.window < 1) throw new Error('--window must be a whole number of MiB >= 1')
  if (!(o.quietWait >= 0)) throw new Error('--quiet-wait must be >= 0')
  return o
}

/** The installed `@chainsafe/libp2p-quic` version, or why QUIC cannot run here. */
type QuicStatus = { version: string } | { error: string }

async function quicAvailable (): Promise<QuicStatus> {
  try {
    await loadQuic()
    // the package exports no package.json: read it next to dist/src/index.js
    const pkg = join(dirname(fileURLToPath(import.meta.resolve(QUIC_PACKAGE))), '..', '..', 'package.json')
    return { version: (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version }
  } catch (err) {
    return { error: String((err as Error)?.message ?? err).split('\n')[0] }
  }
}

/** One timed stream. */
interface Measurement {
  transport: Transport
  run: number
  bytes: number
  seconds: number
  mbps: number
  identical: boolean
  /** CPU seconds of the sending child while timed. */
  cpuSender?: number
  /** CPU seconds of this (receiving) process while timed. */
  cpuReceiver: number
  /** CPU seconds other processes used while timed. */
  foreign?: number
  noisy: boolean
}

/** Wait for the child's ready line; reject if it exits first. */
async function readyLine (child: ChildProcess): Promise<PeerReady> {
  if (child.stdout === null) throw new Error('transport-peer: no stdout')
  const lines = createInterface({ input: child.stdout })
  try {
    return await new Promise<PeerReady>((resolve, reject) => {
      lines.once('line', line => {
        try { resolve(JSON.parse(line) as PeerReady) } catch (err) { reject(err) }
      })
      child.once('exit', (code, signal) => reject(new Error(`transport-peer exited before listening (${signal ?? `exit ${String(code)}`})`)))
    })
  } finally {
    lines.close()
  }
}

/** Time one stream of `file` over `transport` from a fresh child to a fresh host here. */
async function measure (opts: Options, run: number, transport: Transport, file: string, fileSha: string, swarmKey: Uint8Array): Promise<Measurement> {
  if (isInterrupted()) throw new Error('interrupted')
  const child = spawn(process.execPath, [PEER, transport, file, Buffer.from(swarmKey).toString('hex'), String(opts.window)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const stopChild = trackChild(child, 5000)
  let host: Libp2p | undefined
  try {
    const ready = await readyLine(child)
    // selects and checks this process's cipher for the pnet transports
    host = await openHost(transport, [], swarmKey)
    const expected = transport === 'pnet-wasm' ? 'wasm' : transport === 'pnet-native' ? 'native' : undefined
    if (ready.cipher !== expected) throw new Error(`${transport}: the sender uses the ${String(ready.cipher)} xsalsa20, not the ${String(expected)} one`)
    const addr = multiaddr(ready.address)
    await host.dial(addr, { signal: AbortSignal.timeout(30_000) }) // connection set-up is not timed
    await settle(opts.quietWait)

    const hash = createHash('sha256')
    const received = { bytes: 0 }
    const acct0 = cpuAccount()
    const sender0 = cpuOf(child.pid)
    const own0 = process.cpuUsage()
    const t0 = performance.now()
    const stream = await host.dialProtocol(addr, RAW_PROTOCOL)
    // a stalled stream fails the run instead of hanging it (10 MB/s is far below any transport here)
    const watchdog = setTimeout(() => stream.abort(new Error(`${transport}: stalled after ${received.bytes} bytes`)), 30_000 + opts.size / 10e6 * 1000)
    try {
      await receiveCredited(stream, hash, received)
    } finally {
      clearTimeout(watchdog)
    }
    const seconds = (performance.now() - t0) / 1000
    const own = process.cpuUsage(own0)
    const sender1 = cpuOf(child.pid)
    const acct1 = cpuAccount()

    const cpuSender = sender0 !== undefined && sender1 !== undefined ? sender1 - sender0 : undefined
    const foreign = foreignCpu(acct0, acct1, [cpuSender])
    return {
      transport,
      run,
      bytes: received.bytes,
      seconds,
      mbps: received.bytes / MB / seconds,
      identical: received.bytes === opts.size && hash.digest('hex') === fileSha,
      cpuSender,
      cpuReceiver: (own.user + own.system) / 1e6,
      foreign,
      noisy: noisy(foreign, seconds)
    }
  } finally {
    await host?.stop()
    await stopChild()
  }
}

function report (opts: Options, ms: Measurement[], quic: QuicStatus | undefined): string {
  const rows = [['transport', 'MB/s (median)', 'per run', 'ratio to tcp', 'CPU s sender / receiver']]
  const medians = new Map<Transport, number>()
  const notes: string[] = []
  for (const t of opts.transports) {
    const all = ms.filter(m => m.transport === t)
    if (all.length === 0) continue
    const quiet = all.filter(m => !m.noisy)
    const used = quiet.length > 0 ? quiet : all
    if (quiet.length === 0) notes.push(`WARNING: every run of ${t} was noisy; its median uses them anyway`)
    else if (quiet.length < all.length) notes.push(`${t}: ${all.length - quiet.length} noisy run(s) left out of the median`)
    medians.set(t, median(used.map(m => m.mbps)))
  }
  const base = medians.get('tcp')
  for (const t of opts.transports) {
    const mbps = medians.get(t)
    if (mbps === undefined) continue
    const all = ms.filter(m => m.transport === t)
    const quiet = all.filter(m => !m.noisy)
    const used = quiet.length > 0 ? quiet : all
    const senders = used.map(m => m.cpuSender).filter((x): x is number => x !== undefined)
    rows.push([
      TRANSPORT_LABELS[t] + (t === 'quic' && quic !== undefined && 'version' in quic ? ` ${quic.version}` : ''),
      fmt(mbps),
      all.map(m => fmt(m.mbps) + (m.noisy ? '*' : '')).join(', '),
      base === undefined ? '-' : fmt(mbps / base, 2),
      `${senders.length === 0 ? '?' : fmt(median(senders), 2)} / ${fmt(median(used.map(m => m.cpuReceiver)), 2)}`
    ])
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  const line = (r: string[]): string => '| ' + r.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join(' | ') + ' |'
  const out = [
    `transport: one stream of a ${fmt(opts.size / MiB)} MiB random file, child -> this process over 127.0.0.1, ${opts.window} MiB credit window, ` +
      `${opts.runs} run${opts.runs === 1 ? '' : 's'}; medians of the quiet runs (* = noisy run); MB/s = 10^6 bytes per second; CPU = medians, seconds for the whole file`,
    line(rows[0]),
    '|' + w.map((k, c) => '-'.repeat(k + 1) + (c === 0 ? '-|' : ':|')).join(''),
    ...rows.slice(1).map(line),
    '',
    ...notes
  ]
  if (quic !== undefined && 'error' in quic) out.push(`quic: not measured, ${QUIC_PACKAGE} did not load (npm install --no-save ${QUIC_PACKAGE} to measure it): ${quic.error}`)
  out.push(ms.every(m => m.identical) ? 'every stream byte-identical (sha-256 match)' : `MISMATCH in ${ms.filter(m => !m.identical).map(m => `${m.transport} run ${m.run}`).join(', ')}`)
  out.push(`CPU seconds used by other processes while timed (0 on a quiet machine): ${opts.transports.filter(t => medians.has(t))
    .map(t => `${t} ${ms.filter(m => m.transport === t).map(m => m.foreign === undefined ? '?' : fmt(m.foreign, 1)).join('/')}`).join(', ')}`)
  return out.join('\n') + '\n'
}

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  installCleanup()
  const quic = opts.transports.includes('quic') ? await quicAvailable() : undefined
  if (quic !== undefined && 'error' in quic) log(`quic: skipped, @chainsafe/libp2p-quic did not load: ${quic.error}`)
  const transports = opts.transports.filter(t => t !== 'quic' || (quic !== undefined && 'version' in quic))
  const work = await mkdtemp(join(tmpdir(), 'shoal-bench-transport-'))
  tempDirs.add(work)
  try {
    const file = join(work, 'random.bin')
    log(`writing ${fmt(opts.size / MiB)} MiB of random bytes to ${file}`)
    const fileSha = await writeRandomFile(file, opts.size)
    const swarmKey = new Uint8Array(randomBytes(32))
    const ms: Measurement[] = []
    for (let run = 1; run <= opts.runs; run++) {
      for (const t of transports) {
        const m = await measure(opts, run, t, file, fileSha, swarmKey)
        log(`run ${run}: ${TRANSPORT_LABELS[t]}: ${fmt(m.mbps)} MB/s, ${fmt(m.seconds, 2)} s, ${m.identical ? 'identical' : 'MISMATCH'}, ` +
          `CPU sender ${m.cpuSender === undefined ? '?' : fmt(m.cpuSender, 2)} s / receiver ${fmt(m.cpuReceiver, 2)} s, ` +
          `other processes ${m.foreign === undefined ? '?' : fmt(m.foreign, 1)} s${m.noisy ? ' (noisy)' : ''}`)
        ms.push(m)
      }
    }
    process.stdout.write(report(opts, ms, quic))
    if (opts.json) process.stdout.write(JSON.stringify({ options: opts, quic, measurements: ms }, null, 2) + '\n')
    return ms.every(m => m.identical) ? 0 : 1
  } finally {
    await rm(work, { recursive: true, force: true })
    tempDirs.delete(work)
  }
}

main().then(code => { process.exitCode = code }, err => {
  process.stderr.write(`bench/transport: ${isInterrupted() ? 'interrupted' : String((err as Error)?.message ?? err)}\n`)
  process.exitCode = isInterrupted() ? 130 : 1
})
