/**
 * The process pack-removal-crash.test.ts kills with SIGKILL while compaction
 * removes a rewritten pack. Arguments: the store's path, the removal step to
 * stop at (`counters` or `file`, see `faults.beforePackRemoval`).
 *
 * It puts 64 blocks of 20 KiB into 256 KiB packs, commits, prints
 * `ack <cid> <seed>` for each, deletes three blocks of four (printing
 * `deleted <cid>`), commits, and compacts. At the first pack removal it
 * reaches the given step, prints `paused <pack>` and waits there for the kill.
 */
import { createBlockStore } from '../../../node/blocks/index.js'
import { rawCID } from '../../../node/blocks/verify.js'
import { randomBytes } from '../../helpers/bytes.js'
import type { PackRemovalStep } from '../../../node/blocks/api.js'

const KiB = 1024
const [path, stop] = process.argv.slice(2) as [string, PackRemovalStep]

const store = createBlockStore({}, {
  path,
  maxPackBytes: 256 * KiB,
  autoCompact: false,
  compactBytesPerSecond: 1024 * 1024 * KiB,
  faults: {
    beforePackRemoval: async (pack, step) => {
      if (step !== stop) return
      process.stdout.write(`paused ${pack}\n`)
      await new Promise(() => {}) // until the kill
    }
  }
})
await store.open()
const cids = []
for (let i = 0; i < 64; i++) {
  const bytes = randomBytes(20 * KiB, 500 + i)
  const cid = rawCID(bytes)
  await store.put(cid, bytes)
  cids.push(cid)
}
await store.commit()
process.stdout.write(cids.map((cid, i) => `ack ${cid.toString()} ${500 + i}\n`).join(''))
for (const [i, cid] of cids.entries()) {
  if (i % 4 === 0) continue
  await store.delete(cid)
  process.stdout.write(`deleted ${cid.toString()}\n`)
}
await store.commit()
await store.compact()
process.stdout.write('compacted\n')
await store.close()
