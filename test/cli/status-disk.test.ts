/**
 * `shoal status` reports what the repo really takes on disk — the pack
 * files with the blocks, their index, the namespace store, the rest — and
 * the free space of its disk, checked against `du` and `df` on a repo
 * holding a few MiB.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { tempDir } from '../helpers/temp.js'
import { shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import type { RepoDiskUsage } from '../../node/repo/disk-usage.js'

const TEST = { timeout: 120_000 }
const MiB = 1024 * 1024

/** `du -sxB1 path`: allocated bytes under `path` on its file system. */
async function du (path: string): Promise<number> {
  const { stdout } = await promisify(execFile)('du', ['-sxB1', path], { timeout: 30_000 })
  return Number(stdout.split('\t')[0])
}

/** `df`'s available bytes of the file system holding `path`. */
async function dfAvail (path: string): Promise<number> {
  const { stdout } = await promisify(execFile)('df', ['-B1', '--output=avail', path], { timeout: 30_000 })
  return Number(stdout.trim().split('\n')[1])
}

describe('status: disk use', () => {
  it('reports the bytes the repo takes (as du counts them), blocks included, and the free space of its disk', TEST, async t => {
    const d = await startDaemon(t)
    const dir = await tempDir(t, 'shoal-status-disk-')
    let added = 0
    for (const [name, size] of [['a.bin', 3 * MiB + 123], ['b.bin', 2 * MiB]] as const) {
      const bytes = randomBytes(size)
      await writeFile(join(dir, name), bytes)
      await shoalOk(d.repo, ['add', join(dir, name), '--to', `/${name}`, '--chunker', 'size-262144'])
      added += size
    }

    // the daemon may still write (its ballast, LevelDB logs): the figure lies between du before and after it
    const blocksBefore = await du(join(d.repo, 'blocks'))
    const repoBefore = await du(d.repo)
    const freeBefore = await dfAvail(d.repo)
    const status = await shoalJson<{ disk: RepoDiskUsage, blockstoreBytes: number }>(d.repo, ['status'])
    const blocksAfter = await du(join(d.repo, 'blocks'))
    const repoAfter = await du(d.repo)
    const freeAfter = await dfAvail(d.repo)
    const { disk } = status

    const between = (what: string, v: number, a: number, b: number): void => {
      assert.ok(v >= Math.min(a, b) && v <= Math.max(a, b), `${what} ${v} is between du's ${a} and ${b}`)
    }
    between('repoBytes', disk.repoBytes, repoBefore, repoAfter)
    between('blocksBytes', disk.blocksBytes, blocksBefore, blocksAfter)
    assert.equal(disk.repoBytes, disk.blocksBytes + disk.namespaceBytes + disk.durabilityBytes + disk.otherBytes, 'the parts add up')
    // the blocks are the files' bytes in pack files, plus a small index
    assert.ok(disk.blocksBytes >= added, `blocks ${disk.blocksBytes} hold the ${added} bytes added`)
    assert.ok(disk.blocksBytes < added + MiB, `blocks ${disk.blocksBytes} are not far above the ${added} bytes added`)
    assert.ok(disk.namespaceBytes > 0, 'the namespace store counts')
    assert.ok(status.blockstoreBytes >= added, `blockstoreBytes ${status.blockstoreBytes}`)

    // the disk is shared with whatever else runs here: df's figure, within what others may write meanwhile
    assert.ok(Math.abs(disk.freeBytes - freeBefore) < 256 * MiB || Math.abs(disk.freeBytes - freeAfter) < 256 * MiB, `free ${disk.freeBytes} is df's ${freeBefore}…${freeAfter}`)
    assert.ok(disk.totalBytes > disk.freeBytes)

    const human = (await shoalOk(d.repo, ['status'])).toString()
    assert.match(human, /^disk: +\d+\.\d MiB used by the repo \(blocks 5\.\d MiB, namespace [\d.]+ KiB, other [\d.]+ (KiB|MiB)\); [\d.]+ [KMGT]iB free of [\d.]+ [KMGT]iB on its disk$/m)
  })
})
