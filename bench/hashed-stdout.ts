/**
 * Run a CLI command whose stdout is hashed by a reader as cheap as the raw
 * stream's receiver.
 *
 * Why: the transfer bench compares a remote `shoal cat` with a raw stream
 * whose receiver hashes what it gets (sha-256, to check the bytes). The cat's
 * output was hashed through the child's stdout stream: Node hands a pipe over
 * in 64 KiB chunks through a readable stream, and that reader took 0.8–1.0
 * CPU-s per 512 MiB, three times the hash itself, on the two cores the four
 * processes of the cat share (docs/benchmarks.md, "Transfer").
 *
 * How: the CLI writes into a FIFO in a temp dir, and a worker thread of this
 * process reads it with synchronous 1 MiB reads and hashes each read, as the
 * raw stream's receiver does with what it receives. The worker's CPU is this
 * process's CPU (`process.cpuUsage` counts every thread), so the bench still
 * charges the reader to the cat.
 *
 * @module
 */
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { children, SHOAL_BIN, type CliExit } from './harness.js'

/** What {@link cliHashed} read from the command's stdout. */
export interface HashedExit extends CliExit {
  /** Bytes the command wrote to stdout. */
  bytes: number
  /** Their sha-256, hex. */
  sha256: string
}

/** The reader: opens the FIFO (blocking until the CLI holds its write end), reads to EOF. */
const READER = `
const { parentPort, workerData } = require('node:worker_threads')
const { openSync, readSync, closeSync } = require('node:fs')
const { createHash } = require('node:crypto')
const fd = openSync(workerData.fifo, 'r')
const buf = Buffer.allocUnsafe(1024 * 1024)
const hash = createHash('sha256')
let bytes = 0
for (;;) {
  const n = readSync(fd, buf, 0, buf.length, null)
  if (n === 0) break
  hash.update(n === buf.length ? buf : buf.subarray(0, n))
  bytes += n
}
closeSync(fd)
parentPort.postMessage({ bytes, sha256: hash.digest('hex') })
`

/**
 * Run `shoal ...args` to completion, timed from its spawn to its exit, with
 * its stdout hashed by a worker thread of this process.
 */
export async function cliHashed (args: string[]): Promise<HashedExit> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-fifo-'))
  const fifo = join(dir, 'stdout')
  try {
    const made = spawnSync('mkfifo', [fifo])
    if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${made.stderr.toString().trim()}`)
    const worker = new Worker(READER, { eval: true, workerData: { fifo } })
    const read = new Promise<{ bytes: number, sha256: string }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', code => reject(new Error(`stdout reader exited (${code}) before it answered`)))
    })
    // blocks until the worker has opened the read end
    const out = openSync(fifo, 'w')
    const started = performance.now()
    let child
    try {
      child = spawn(process.execPath, [SHOAL_BIN, ...args], { stdio: ['ignore', out, 'pipe'] })
    } finally {
      closeSync(out)
    }
    children.add(child)
    const err: Buffer[] = []
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk))
    const exit = await new Promise<CliExit>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, signal) => {
        children.delete(child)
        resolve({ code, signal, stdout: '', stderr: Buffer.concat(err).toString('utf8'), seconds: (performance.now() - started) / 1000 })
      })
    })
    const got = await read
    await worker.terminate()
    if (exit.code !== 0) throw new Error(`shoal ${args.join(' ')} failed (${exit.signal ?? `exit ${String(exit.code)}`}): ${exit.stderr.trim()}`)
    return { ...exit, ...got }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
