/**
 * What handing a received block's sha-256 to the thread pool costs the
 * event loop: the sha-256 addon (native/hash) next to WebCrypto's `digest`,
 * which copies the bytes on the calling thread first, in the same run:
 *
 *   npm run build && npm run build:hash && node dist/bench/hash-handoff.js [--size 512MiB] [--block 256KiB] [--rounds 3]
 *
 * Blocks hashed 16 at a time, as a remote read keeps its fetches in flight
 * (node/exchange). Printed per round: wall time, the process's CPU and the
 * main thread's CPU (`/proc/self/task/PID/stat`), and the ratio of the
 * addon's main-thread CPU to WebCrypto's. The digests are checked against
 * node:crypto's.
 *
 * @module
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto'
import { nativeHash, nativeHashError } from '../node/blocks/native-hash.js'
import { median, parseHashBenchArgs } from './harness.js'
import { threadCpuOf } from './raw-stream.js'

/** CPU-ms of this process's main thread so far (`/proc`, in clock ticks of 10 ms). */
function mainThreadMs (): number {
  return Math.round((threadCpuOf(process.pid).get(process.pid) ?? 0) * 1000)
}

interface Round { wallMs: number, cpuMs: number, mainMs: number }

async function hashAll (blocks: Buffer[], count: number, hash: (b: Buffer) => Promise<Uint8Array>): Promise<Round> {
  const main0 = mainThreadMs()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < count) {
      const block = blocks[next++ % blocks.length]
      await hash(block)
    }
  }
  await Promise.all(Array.from({ length: 16 }, lane))
  const cpu = process.cpuUsage(cpu0)
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, mainMs: mainThreadMs() - main0 }
}

async function main (): Promise<void> {
  const o = parseHashBenchArgs(process.argv.slice(2), { size: 512 * 1024 * 1024, block: 256 * 1024, rounds: 3 })
  const native = nativeHash()
  if (native === undefined) throw new Error(`the sha-256 addon does not load (npm run build:hash): ${nativeHashError()?.message ?? ''}`)
  const blocks = Array.from({ length: 64 }, () => randomBytes(o.block))
  for (const b of blocks.slice(0, 8)) {
    const want = createHash('sha256').update(b).digest()
    if (!Buffer.from(await native.sha256(b)).equals(want) || !Buffer.from(await webcrypto.subtle.digest('SHA-256', b)).equals(want)) throw new Error('a digest differs from node:crypto\'s')
  }
  const count = Math.floor(o.size / o.block)
  const ways = {
    webcrypto: async (b: Buffer) => new Uint8Array(await webcrypto.subtle.digest('SHA-256', b)),
    addon: async (b: Buffer) => await native.sha256(b)
  }
  console.log(`${count} blocks of ${o.block} bytes (${(count * o.block / 2 ** 20).toFixed(0)} MiB), 16 in flight, ${o.rounds} rounds alternated`)
  console.log('| round | way | wall ms | process CPU-ms | main thread CPU-ms |')
  console.log('|---|---|--:|--:|--:|')
  const ratios: number[] = []
  for (let r = 1; r <= o.rounds; r++) {
    const got: Record<string, Round> = {}
    for (const [name, fn] of Object.entries(ways)) {
      got[name] = await hashAll(blocks, count, fn)
      console.log(`| ${r} | ${name} | ${got[name].wallMs.toFixed(0)} | ${got[name].cpuMs.toFixed(0)} | ${got[name].mainMs} |`)
    }
    if (got.webcrypto.mainMs > 0) ratios.push(got.addon.mainMs / got.webcrypto.mainMs)
  }
  console.log(`\nmain thread CPU, addon / WebCrypto: median ${ratios.length > 0 ? median(ratios).toFixed(2) : 'n/a'} (per round ${ratios.map(x => x.toFixed(2)).join(', ')})`)
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
