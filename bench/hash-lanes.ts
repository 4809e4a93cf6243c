/**
 * sha-256 of several blocks side by side (the addon's `sha256Many`,
 * native/hash/sha256-lanes.c) against one block at a time, in the same run:
 *
 *   npm run build && npm run build:hash && node dist/bench/hash-lanes.js [--size 512MiB] [--block 1MiB] [--rounds 3]
 *
 * The ceiling it is held against is node:crypto's one-shot sha-256 on this
 * thread, one block after another (what hashed an import's leaves before).
 * Then, per batch size (1, 2, 4, 8, 16, 32 blocks a call), `sha256Many` as
 * the node calls it (the width the addon picks), and each width this core
 * has forced (1: OpenSSL; 8: AVX2; 16: AVX-512). Printed: MB/s of CPU (the
 * process's CPU-seconds, the pool's thread included), so a figure is what one
 * core hashes, and its ratio to the ceiling. Blocks are of `--block` bytes
 * ± 25 % (as FastCDC cuts them), the digests checked against node:crypto's.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'
import { nativeHash, nativeHashError } from '../node/blocks/native-hash.js'
import { median, parseHashBenchArgs } from './harness.js'

/** MB of `blocks` hashed per CPU-second by `hash`, which hashes `batch` blocks a call. */
async function rate (blocks: Buffer[], batch: number, hash: (list: Buffer[]) => Promise<Uint8Array> | Uint8Array): Promise<number> {
  const cpu0 = process.cpuUsage()
  let bytes = 0
  for (let at = 0; at < blocks.length; at += batch) {
    const list = blocks.slice(at, at + batch)
    const digests = await hash(list)
    if (at === 0) {
      list.forEach((block, i) => {
        if (!Buffer.from(digests.subarray(32 * i, 32 * i + 32)).equals(createHash('sha256').update(block).digest())) throw new Error(`wrong digest of block ${i} (batch of ${batch})`)
      })
    }
    for (const block of list) bytes += block.byteLength
  }
  const cpu = process.cpuUsage(cpu0)
  return bytes / ((cpu.user + cpu.system) / 1e6) / 1e6
}

async function main (): Promise<void> {
  const options = parseHashBenchArgs(process.argv.slice(2), { size: 512 * 1024 * 1024, block: 1024 * 1024, rounds: 3 })
  const native = nativeHash()
  if (native?.sha256Many === undefined || native.sha256Widths === undefined) throw new Error(`the sha-256 addon with sha256Many is not built (npm run build:hash): ${nativeHashError()?.message ?? 'an older build'}`)
  const many = native.sha256Many
  const source = randomBytes(options.block * 2)
  const blocks: Buffer[] = []
  for (let total = 0, i = 0; total < options.size; i++) {
    const size = Math.round(options.block * (0.75 + 0.5 * ((i * 0.618034) % 1)))
    blocks.push(source.subarray(i % 1000, i % 1000 + size))
    total += size
  }
  const oneShot = (list: Buffer[]): Uint8Array => Buffer.concat(list.map(b => createHash('sha256').update(b).digest()))
  const rows: Array<{ what: string, rates: number[] }> = []
  const ceiling: number[] = []
  const batches = [1, 2, 4, 8, 16, 32]
  const ways: Array<{ name: string, width?: 1 | 8 | 16 }> = [{ name: 'as the node calls it' }, ...native.sha256Widths.map(w => ({ name: `width ${w}`, width: w as 1 | 8 | 16 }))]
  for (let round = 0; round < options.rounds; round++) {
    ceiling.push(await rate(blocks, 1, oneShot))
    for (const way of ways) {
      for (const batch of batches) {
        const what = `sha256Many, ${way.name}, ${batch} a call`
        let row = rows.find(r => r.what === what)
        if (row === undefined) rows.push(row = { what, rates: [] })
        row.rates.push(await rate(blocks, batch, async list => await many(list, way.width)))
      }
    }
  }
  const top = median(ceiling)
  console.log(`hash-lanes: ${blocks.length} blocks of ${options.block} bytes ± 25 %, ${options.rounds} round(s); MB/s per CPU-second (MB = 10^6 bytes), medians; widths here: ${native.sha256Widths.join(', ')}`)
  console.log(`| way | MB/s per CPU-s | × node:crypto |`)
  console.log(`|---|--:|--:|`)
  console.log(`| ceiling: node:crypto one-shot, one block at a time | ${top.toFixed(0)} | 1.00 |`)
  for (const { what, rates } of rows) console.log(`| ${what} | ${median(rates).toFixed(0)} | ${(median(rates) / top).toFixed(2)} |`)
}

main().catch((err: unknown) => {
  console.error(`bench/hash-lanes: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
