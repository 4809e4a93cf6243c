/**
 * kill -9 inside the last step of a pack rewrite: compaction has committed
 * the copies and is removing the old pack, which nothing points into any
 * more (node/blocks/pack-blockstore.ts `remove`). The child stops at the step
 * asked (`faults.beforePackRemoval`: before the pack's counters are deleted,
 * or after that and before its file is unlinked) and is SIGKILLed there; the
 * test knows the kill landed inside the removal because the child said so and
 * can do nothing after it. Then, on reopen: every acknowledged block that was
 * not deleted reads back byte for byte; a deleted block may come back only as
 * a record salvaged from a pack the index no longer knows (the `file` step:
 * docs/blockstore.md, "Open: recovery"), reported as such; the index audit
 * finds nothing to restore; a later compaction (after deleting what came
 * back, as gc would) leaves only live records.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { assertBytesEqual, randomBytes } from '../../helpers/bytes.js'
import { defer, openBlockStore, tempDir } from '../../helpers/temp.js'
import { packFiles } from './fixtures.js'
import type { PackRemovalStep } from '../../../node/blocks/api.js'

/** Bytes of the store's pack files. */
async function packBytes (path: string): Promise<number> {
  let total = 0
  for (const file of await packFiles(path)) total += (await stat(file)).size
  return total
}

const CHILD = fileURLToPath(new URL('./pack-removal-child.js', import.meta.url))
const KiB = 1024
const OPTIONS = { maxPackBytes: 256 * KiB, autoCompact: false, compactBytesPerSecond: 1024 * 1024 * KiB }

/** Run the child until it pauses at `step`, SIGKILL it, and return what it printed. */
async function killAt (t: Parameters<typeof tempDir>[0], path: string, step: PackRemovalStep): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD, path, step], { stdio: ['ignore', 'pipe', 'inherit'] })
  defer(t, async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  const exited = new Promise<NodeJS.Signals | null>(resolve => child.once('exit', (_code, signal) => { resolve(signal) }))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the child did not pause at ${step} within 30 s: ${out}`)) }, 30_000)
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s
      if (/^paused \d+$/m.test(out)) { clearTimeout(timer); child.kill('SIGKILL'); resolve() }
    })
    void exited.then(() => { clearTimeout(timer); reject(new Error(`the child exited before pausing: ${out}`)) })
  })
  assert.equal(await exited, 'SIGKILL')
  const lines = out.trim().split('\n')
  assert.ok(!lines.includes('compacted'), 'the kill landed inside the compaction')
  return lines
}

describe('kill -9 while compaction removes a rewritten pack', () => {
  for (const step of ['counters', 'file'] as const) {
    it(`at the ${step} step: nothing acknowledged lost, nothing corrupt, space given back after`, { timeout: 60_000 }, async t => {
      const path = await tempDir(t)
      const lines = await killAt(t, path, step)
      const acked = lines.filter(l => l.startsWith('ack ')).map(l => { const [, cid, seed] = l.split(' '); return { cid: CID.parse(cid), seed: Number(seed) } })
      const deleted = new Set(lines.filter(l => l.startsWith('deleted ')).map(l => l.split(' ')[1]))
      assert.equal(acked.length, 64)
      assert.equal(deleted.size, 48)

      const store = await openBlockStore(t, path, OPTIONS)
      for (const { cid, seed } of acked) {
        if (deleted.has(cid.toString())) continue
        assertBytesEqual(await store.getBytes(cid), randomBytes(20 * KiB, seed))
      }
      const back = acked.filter(a => deleted.has(a.cid.toString()))
      const resurrected: CID[] = []
      for (const { cid } of back) if (await store.has(cid)) resurrected.push(cid)
      const report = store.recovery
      assert.ok(report !== undefined)
      if (step === 'counters') {
        assert.deepEqual(resurrected, [], 'the pack is still known: its records stay dead')
        assert.equal(report.salvagedRecords, 0)
      } else {
        assert.equal(report.unknownPacks.length, 1, 'the pack whose counters were deleted is found again')
        assert.equal(report.salvagedRecords, resurrected.length, 'a deleted block comes back only as a salvaged record')
      }
      assert.deepEqual(store.audit, { disagreeingPacks: [], restoredEntries: 0, corruptRanges: 0, markedUnreadable: 0 })
      // gc would remove what came back; then compaction gives the dead space back
      for (const cid of resurrected) await store.delete(cid)
      const before = await packBytes(path)
      await store.compact()
      assert.ok(await packBytes(path) < before, `the packs shrink (${before} bytes before)`)
      for (const { cid, seed } of acked) {
        if (deleted.has(cid.toString())) assert.equal(await store.has(cid), false)
        else assertBytesEqual(await store.getBytes(cid), randomBytes(20 * KiB, seed))
      }
    })
  }
})
