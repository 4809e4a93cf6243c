/**
 * A disk that fills up in the middle of an `add`, on a real (small) tmpfs,
 * through the CLI and a real daemon: the add passed its room check at its
 * start, then another program takes the rest of the disk while the add's
 * packs grow. The add fails with one typed line (`DiskFullError`) and
 * nothing of it is bound in the namespace; the files added before read back
 * byte-identical; the daemon stays up and serving; with the other program
 * holding the disk's last byte, `rm` and `gc` work (the ballast is spent
 * for them) and give space back; an add goes through once there is room,
 * without a restart; and the daemon starts again on a disk filled to the
 * last byte, with everything acknowledged before still there.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { eventually, lines, runShoal, shoalOk, sleep, startDaemon, type ShoalResult } from '../helpers/cli.js'
import { daemonOnTmpfs, fillUp, fillUpAtOnce, free, MiB } from './disk-helpers.js'

const TEST = { timeout: 240_000 }

/** The size of every file under `dir`, by path below it (a file that vanishes while it walks counts as 0). */
async function sizesUnder (dir: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  for (const name of await readdir(dir, { recursive: true })) {
    sizes.set(name, await stat(join(dir, name)).then(s => s.isFile() ? s.size : 0, () => 0))
  }
  return sizes
}

/** Bytes of every file under `dir`. */
async function bytesUnder (dir: string): Promise<number> {
  let total = 0
  for (const size of (await sizesUnder(dir)).values()) total += size
  return total
}

/** The files of `after` larger than in `before` (or new), with how much: what a failure message names. */
function grown (before: Map<string, number>, after: Map<string, number>): string {
  return [...after].filter(([name, size]) => size > (before.get(name) ?? 0)).map(([name, size]) => `${name} +${size - (before.get(name) ?? 0)}`).join(', ')
}

/**
 * Await `running` and, once the files under `watched` have grown by `bytes`
 * (polled every 5 ms, for at most `ms`), fill the disk to the last byte
 * with the file `junk`. Resolves with the command's result and whether the
 * fill began while the command still ran. (The command may end during the
 * fill, failing of it, before the fill's own write returns: seen once, an
 * add that failed 610 ms in; the caller checks how it ended.)
 */
async function fillWhenGrown (running: Promise<ShoalResult>, watched: string, junk: string, bytes: number, ms: number): Promise<{ result: ShoalResult, fillBegunMidway: boolean }> {
  let done = false
  const finished = running.finally(() => { done = true })
  const start = await bytesUnder(watched)
  const deadline = Date.now() + ms
  while (!done && Date.now() < deadline && await bytesUnder(watched) - start < bytes) await sleep(5)
  const fillBegunMidway = !done && Date.now() < deadline
  if (fillBegunMidway) await fillUpAtOnce(junk)
  return { result: await finished, fillBegunMidway }
}

describe('a disk that fills up in the middle of an add', () => {
  it('fails the add with one typed line and binds nothing of it; reads, rm, gc, a later add and a restart on the full disk work', TEST, async t => {
    const { dir, disk, repo, daemon } = await daemonOnTmpfs(t, '320m', 16 * MiB)
    let d = daemon

    // files added before: they must come through untouched
    const kept = [
      { path: '/kept/a.bin', data: randomBytes(3_000_000, 1) },
      { path: '/kept/b.bin', data: randomBytes(9_000_000, 2) }
    ]
    for (const [i, f] of kept.entries()) {
      const local = join(dir, `kept${i}.bin`)
      await writeFile(local, f.data)
      await shoalOk(repo, ['add', local, '--to', f.path])
    }

    // a large add under the default policy (ec:4+2, coded later: 1.5 times its size checked): its room check passes at the start
    const bigData = randomBytes(100_000_000, 3)
    const big = join(dir, 'big.bin')
    await writeFile(big, bigData)
    assert.ok(await free(disk) - bigData.byteLength * 1.5 >= 16 * MiB, 'the add passes its room check')

    // another program fills the disk once the add's packs have grown by 4 MiB (at once: long before the first pack, 64 MiB, could roll over).
    // The fill can still come too late, the add's bytes all written (seen on a loaded machine: the fill took the disk
    // with ~100 MB of the add already in its packs, and the add went through). That add must then be whole; it is
    // undone and the fault tried again, at most three times
    const junk = join(disk, 'junk')
    let failed: ShoalResult | undefined
    let blocksBeforeAdd = 0
    let filesBeforeAdd = new Map<string, number>()
    for (let attempt = 1; failed === undefined; attempt++) {
      filesBeforeAdd = await sizesUnder(join(repo, 'blocks'))
      blocksBeforeAdd = [...filesBeforeAdd.values()].reduce((a, b) => a + b, 0)
      const started = Date.now()
      const { result, fillBegunMidway } = await fillWhenGrown(runShoal(['--repo', repo, 'add', big, '--to', '/big.bin']), join(repo, 'blocks'), junk, 4 * MiB, 60_000)
      t.diagnostic(`attempt ${attempt}: the add ended after ${Date.now() - started} ms (exit ${String(result.code)}); the other program took ${(await stat(junk)).size} bytes; ${await free(disk)} bytes free after; ${result.stderr.trim()}`)
      assert.ok(fillBegunMidway, `the disk began to fill while the add ran (add: exit ${String(result.code)}, ${result.stderr})`)
      if (result.code !== 0 || attempt === 3) {
        failed = result
        break
      }
      assertBytesEqual(await shoalOk(repo, ['cat', '/big.bin']), bigData, 'an add that went through before the disk filled is whole')
      await unlink(junk)
      await shoalOk(repo, ['rm', '/big.bin'])
      await shoalOk(repo, ['gc'])
      await eventually('room for the add again', async () => await free(disk) - bigData.byteLength * 1.5 >= 16 * MiB, 30_000)
    }

    // one typed line naming the add and the full disk, a non-zero exit, nothing acknowledged
    assert.equal(failed.code, 1, failed.stderr)
    assert.equal(lines(failed.stderr).length, 1, failed.stderr)
    assert.match(failed.stderr, /^shoal: the repo disk filled up during the add of \/big\.bin, which was not kept \(.*\): free space, or remove files and run `shoal gc` \(DiskFullError\)$/m)
    assert.doesNotMatch(failed.stderr, /InternalError|disk full while writing blocks: disk full/)
    assert.equal(failed.stdout.length, 0, 'nothing acknowledged')
    const filesAfterAdd = await sizesUnder(join(repo, 'blocks'))
    const leftInPacks = [...filesAfterAdd.values()].reduce((a, b) => a + b, 0) - blocksBeforeAdd
    t.diagnostic(`the failed add left ${leftInPacks} bytes in the block store (grown: ${grown(filesBeforeAdd, filesAfterAdd) || 'none'})`)
    assert.ok(leftInPacks < 4 * MiB, `what the failed add wrote is given back at once (${leftInPacks} bytes left in the block store; grown: ${grown(filesBeforeAdd, filesAfterAdd)})`)

    // nothing of it in the namespace; the daemon stays up and serving; what was there before reads back
    assert.equal(d.child.exitCode, null, 'the daemon is still running')
    const statBig = await runShoal(['--repo', repo, 'stat', '/big.bin'])
    assert.equal(statBig.code, 1)
    assert.match(statBig.stderr, /NotFoundError/)
    assert.doesNotMatch((await shoalOk(repo, ['ls', '/'])).toString(), /big\.bin/)
    for (const f of kept) assertBytesEqual(await shoalOk(repo, ['cat', f.path]), f.data, `${f.path} intact`)

    // the other program takes what the failed add gave back: rm and gc work on the disk full to the last byte, and give space back
    await fillUp(join(disk, 'junk1'))
    assert.ok(await free(disk) < MiB, 'the disk is full')
    const blocksBefore = await bytesUnder(join(repo, 'blocks'))
    await shoalOk(repo, ['rm', kept[1].path])
    assert.match(d.output().stderr, /ballast was deleted so that this write can free space/)
    await shoalOk(repo, ['gc'])
    await eventually('gc removed the blocks of the file removed', async () => await bytesUnder(join(repo, 'blocks')) <= blocksBefore - 8 * MiB, 15_000)
    await eventually('space came back', async () => await free(disk) >= 6 * MiB, 15_000)
    assert.ok(((await stat(join(repo, 'ballast')).catch(() => undefined))?.size ?? 0) >= 4 * MiB, 'gc made a ballast again from the room it gave back')
    assert.equal((await runShoal(['--repo', repo, 'stat', kept[1].path])).code, 1, `${kept[1].path} is gone`)
    assertBytesEqual(await shoalOk(repo, ['cat', kept[0].path]), kept[0].data, `${kept[0].path} intact after gc`)

    // room again (the other program's first file is gone): an add goes through without a restart
    await unlink(join(disk, 'junk1'))
    const smallData = randomBytes(2_000_000, 4)
    const small = join(dir, 'small.bin')
    await writeFile(small, smallData)
    await shoalOk(repo, ['add', small, '--to', '/small.bin'])

    // the daemon starts again on that disk, filled to the last byte, with everything acknowledged still there
    await d.stop()
    await fillUp(join(disk, 'junk2'))
    assert.ok(await free(disk) < MiB, 'the disk is full')
    d = await startDaemon(t, repo)
    assert.match(d.output().stderr, /ballast was deleted so the node could start/)
    assertBytesEqual(await shoalOk(repo, ['cat', kept[0].path]), kept[0].data, 'reads work after the restart on the full disk')
    assertBytesEqual(await shoalOk(repo, ['cat', '/small.bin']), smallData, 'the add after the failed one is durable')
    const listed = (await shoalOk(repo, ['ls', '/'])).toString()
    assert.doesNotMatch(listed, /big\.bin/)
    assert.match(listed, /small\.bin/)
    assert.doesNotMatch((await shoalOk(repo, ['ls', '/kept'])).toString(), /b\.bin/)

    // once the other program's files are gone, the same large add goes through and reads back
    await unlink(junk)
    await unlink(join(disk, 'junk2'))
    assert.match((await shoalOk(repo, ['add', big, '--to', '/big.bin'])).toString(), /^added \S+ \/big\.bin$/m)
    assertBytesEqual(await shoalOk(repo, ['cat', '/big.bin']), bigData, '/big.bin reads back')
    await d.stop()
  })
})
