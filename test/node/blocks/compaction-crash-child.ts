/**
 * The process compaction-crash.test.ts kills with SIGKILL in the middle of a
 * pack rewrite. Arguments: the store's path, the round number, how many
 * blocks to put.
 *
 * It opens the pack store at argv[2] with small packs (512 KiB), records
 * written to the pack file as soon as they are appended (every block is
 * larger than the 4 KiB segments), no background compaction, and compaction
 * paced at 128 KiB/s (about 8 copies a second), so that a rewrite is slow
 * enough for the parent to watch it on disk and kill the process inside it.
 * Then, printing on stdout (a pipe: each write is out before the next step):
 *
 * 1. puts `count` random blocks (seeds derived from the round), commits every
 *    16, and prints `ack <cid> <seed> <size>` for each once its commit has
 *    returned;
 * 2. deletes three blocks of four, printing `deleting <cid>` before each
 *    delete, commits, so the packs fall to about a quarter live;
 * 3. prints `filled` and waits for a line on stdin (the parent scans the
 *    packs meanwhile; nothing is written);
 * 4. prints `compacting`, runs `store.compact()`, and prints `compacted` if it
 *    ever finishes (the parent counts that as a failure: the kill was meant
 *    to land before).
 */
import { createInterface } from 'node:readline'
import type { CID } from 'multiformats/cid'
import { createBlockStore } from '../../../node/blocks/index.js'
import { rawCID } from '../../../node/blocks/verify.js'
import { randomBytes } from '../../helpers/bytes.js'

const KiB = 1024
/** compaction-crash.test.ts reopens the store with the same pack size. */
const PACK_BYTES = 512 * KiB

const [path, roundText, countText] = process.argv.slice(2)
const round = parseInt(roundText, 10)
const count = parseInt(countText, 10)

const store = createBlockStore({}, {
  path,
  maxPackBytes: PACK_BYTES,
  flushBytes: 4 * KiB,
  autoCompact: false,
  compactBytesPerSecond: 128 * KiB
})
await store.open()

const cids: CID[] = []
let acks: string[] = []
for (let i = 0; i < count; i++) {
  const seed = round * 1_000_000 + i
  const size = 12 * KiB + (i * 977) % (8 * KiB)
  const bytes = randomBytes(size, seed)
  const cid = rawCID(bytes)
  await store.put(cid, bytes)
  cids.push(cid)
  acks.push(`ack ${cid.toString()} ${seed} ${size}\n`)
  if (acks.length === 16 || i === count - 1) {
    await store.commit()
    process.stdout.write(acks.join(''))
    acks = []
  }
}

for (const [i, cid] of cids.entries()) {
  if (i % 4 === 0) continue
  process.stdout.write(`deleting ${cid.toString()}\n`)
  await store.delete(cid)
}
await store.commit()

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
process.stdout.write('filled\n')
await lines.next()
process.stdout.write('compacting\n')
await store.compact()
process.stdout.write('compacted\n')
await store.close()
process.exit(0)
