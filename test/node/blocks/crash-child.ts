/**
 * The writer killed by crash.test.ts: puts random blocks into the store at
 * argv[2] and commits in a loop, printing `ack <cid> <seed> <size>` for each
 * block once its commit has returned (acknowledged), until it is killed.
 * Every few rounds it deletes most of what it wrote (printing `deleting <cid>`
 * first: from then on the block may be gone) and compacts, so that kills also
 * land in deletes and in compaction.
 */
import { CID } from 'multiformats/cid'
import { createBlockStore } from '../../../node/blocks/index.js'
import { rawCID } from '../../../node/blocks/verify.js'
import { randomBytes } from '../../helpers/bytes.js'

const [path, roundText] = process.argv.slice(2)
const round = parseInt(roundText, 10)
const store = createBlockStore({}, { path, maxPackBytes: 512 * 1024, flushBytes: 64 * 1024, autoCompact: false, compactBytesPerSecond: 64 * 1024 * 1024 })
await store.open()
process.stdout.write('ready\n')
const mine: string[] = []
for (let n = 0; ; n++) {
  if (n % 12 === 11) {
    // keep one in four; stdout to a pipe is synchronous, so the line is out before the delete
    for (const [i, text] of mine.entries()) {
      if (i % 4 === 0) continue
      process.stdout.write(`deleting ${text}\n`)
      await store.delete(CID.parse(text))
    }
    mine.length = 0
    await store.commit()
    await store.compact()
  }
  const acks: string[] = []
  const count = 1 + (n % 7)
  for (let i = 0; i < count; i++) {
    const seed = round * 1_000_000 + n * 10 + i
    const size = 1 + (seed * 7919) % (160 * 1024)
    const bytes = randomBytes(size, seed)
    const cid = rawCID(bytes)
    await store.put(cid, bytes)
    acks.push(`ack ${cid.toString()} ${seed} ${size}\n`)
    mine.push(cid.toString())
  }
  await store.commit()
  process.stdout.write(acks.join(''))
}
