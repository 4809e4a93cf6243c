/**
 * What the index audit at open costs (node/blocks/index-audit.ts), next to
 * its ceiling in the same run:
 *
 *   npm run build && node dist/bench/index-audit.js [--entries 1000000]
 *
 * A real LevelDB in a temp dir gets `--entries` index entries (sha2-256
 * keys, 1 MiB records, 1,000 a pack) and consistent pack counters. Timed on
 * the reopened database: the audit (one pass over the index's values, live
 * bytes summed per pack, every pack compared with its counters: none
 * disagrees, so no pack is read), and, as the ceiling, a bare pass over the
 * same values in batches of 1,000 that decodes nothing. Both are printed
 * with their ratio. The temp dir is removed at the end and on errors.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { auditIndex } from '../node/blocks/index-audit.js'
import { INDEX_RANGE, encodeLocation, indexKey, type PackMeta } from '../node/blocks/pack-index.js'
import { fmt, installCleanup, log, tempDirs } from './harness.js'

const RECORDS_PER_PACK = 1000
const RECORD_BYTES = 1024 * 1024 + 9 + 34

function parseArgs (argv: string[]): { entries: number } {
  let entries = 1_000_000
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--entries') entries = Number(argv[++i])
    else throw new Error(`unknown option ${argv[i]}`)
  }
  if (!Number.isSafeInteger(entries) || entries < 1) throw new Error('--entries takes a positive integer')
  return { entries }
}

async function main (): Promise<void> {
  installCleanup()
  const { entries } = parseArgs(process.argv.slice(2))
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-audit-'))
  tempDirs.add(dir)
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  let batch = db.batch()
  for (let i = 0; i < entries; i++) {
    const multihash = Uint8Array.of(0x12, 0x20, ...createHash('sha256').update(String(i)).digest())
    batch.put(indexKey(multihash), encodeLocation({ pack: 1 + Math.floor(i / RECORDS_PER_PACK), offset: 8 + (i % RECORDS_PER_PACK) * RECORD_BYTES, length: RECORD_BYTES }))
    if (batch.length >= 10_000) { await batch.write(); batch = db.batch() }
  }
  await batch.write()
  const metas = new Map<number, PackMeta>()
  for (let i = 0; i < entries; i += RECORDS_PER_PACK) {
    const records = Math.min(RECORDS_PER_PACK, entries - i)
    metas.set(1 + i / RECORDS_PER_PACK, { committed: 8 + records * RECORD_BYTES, deadBytes: 0, deadRecords: 0 })
  }
  // reopened: what an open finds, nothing in the memtable
  await db.close()
  await db.open()
  try {
    let t = performance.now()
    const report = await auditIndex(db, join(dir, 'packs'), metas)
    const audit = performance.now() - t
    if (report.disagreeingPacks.length > 0) throw new Error(`the audit found ${report.disagreeingPacks.length} packs disagreeing on a consistent index`)
    t = performance.now()
    const it = db.iterator({ ...INDEX_RANGE, keys: false })
    let seen = 0
    try {
      while (true) {
        const page = await it.nextv(1000)
        if (page.length === 0) break
        seen += page.length
      }
    } finally { await it.close() }
    const bare = performance.now() - t
    if (seen !== entries) throw new Error(`the bare pass saw ${seen} entries of ${entries}`)
    log(`index audit of ${fmt(entries)} entries in ${fmt(metas.size)} packs: ${fmt(audit)} ms; bare pass over the same values: ${fmt(bare)} ms; audit / bare ${fmt(audit / bare, 2)}`)
  } finally {
    await db.close()
  }
}

await main()
