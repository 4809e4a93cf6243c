/**
 * `shoal gc` gives the space of what it removed back before it returns, on a
 * real daemon, and says how much.
 *
 * Found on holders of an `ec:2+1` file: after `pin rm` and the grace period,
 * gc removed the parity shards (a third of what each holder kept) but
 * answered `freedBytes: 0`, and the disk got nothing back. The compaction it
 * ran rewrote only packs less than half live, and the removals had left
 * every pack more than half live. Here two files share one pack and the
 * smaller one (3 of 8 MiB) is removed: the pack stays 62 % live. A pack
 * left over four fifths live is not rewritten (the copy would be over four
 * times what it gives back): its dead bytes are `pendingBytes`.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'

const MiB = 1024 * 1024

/** Bytes of the repo's pack files. */
async function packBytes (repo: string): Promise<number> {
  const dir = join(repo, 'blocks', 'packs')
  let total = 0
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size
  return total
}

describe('gc gives space back', () => {
  it('removing blocks that leave their pack mostly live: the space comes back before gc returns, and freedBytes says so', { timeout: 120_000 }, async t => {
    const d = await startDaemon(t)
    const dir = await tempDir(t)
    const removed = randomBytes(3 * MiB, 31)
    const kept = randomBytes(5 * MiB, 32)
    await writeFile(join(dir, 'a.bin'), removed)
    await writeFile(join(dir, 'b.bin'), kept)
    await shoalOk(d.repo, ['add', join(dir, 'a.bin'), '--to', '/a.bin', '--pin', 'none'])
    await shoalOk(d.repo, ['add', join(dir, 'b.bin'), '--to', '/b.bin', '--pin', 'none'])
    await shoalOk(d.repo, ['rm', '/a.bin'])

    const before = await packBytes(d.repo)
    // a status just before: its measurement of the disk is reused by the next few (a page polling it)
    const statusBefore = await shoalJson<{ disk: { blocksBytes: number } }>(d.repo, ['status'])
    const r = await shoalJson<{ removed: number, freedBytes: number, pendingBytes: number }>(d.repo, ['gc'])
    const after = await packBytes(d.repo)
    // but not after a gc: the status right after it shows what it gave back
    const statusAfter = await shoalJson<{ disk: { blocksBytes: number } }>(d.repo, ['status'])
    assert.ok(statusBefore.disk.blocksBytes - statusAfter.disk.blocksBytes >= removed.byteLength, `status after gc: blocks ${statusBefore.disk.blocksBytes} → ${statusAfter.disk.blocksBytes} bytes`)
    assert.ok(r.removed >= 3, `the removed file's blocks went (${r.removed})`)
    assert.ok(before - after >= removed.byteLength, `the packs shrank by the removed file (${before} → ${after} bytes)`)
    assert.ok(r.freedBytes >= removed.byteLength, `freedBytes tells it (${r.freedBytes})`)
    assert.equal(r.pendingBytes, 0, 'nothing left for later')
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/b.bin']), kept, 'the other file reads back whole')

    // nothing more to remove: a second gc says it freed nothing, in words too
    const again = await runShoal(['--repo', d.repo, 'gc'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout.toString(), /^removed 0 blocks \(.* given back\), kept /)
    assert.equal(await packBytes(d.repo), after)

    // a removal that leaves its pack over four fifths live is left for later, and said so
    const small = randomBytes(MiB, 33)
    await writeFile(join(dir, 'c.bin'), small)
    await writeFile(join(dir, 'd.bin'), randomBytes(9 * MiB, 34))
    await shoalOk(d.repo, ['add', join(dir, 'c.bin'), '--to', '/c.bin', '--pin', 'none'])
    await shoalOk(d.repo, ['add', join(dir, 'd.bin'), '--to', '/d.bin', '--pin', 'none'])
    await shoalOk(d.repo, ['rm', '/c.bin'])
    const later = await runShoal(['--repo', d.repo, 'gc'])
    assert.equal(later.code, 0, later.stderr)
    assert.match(later.stdout.toString(), /still on disk, in packs mostly live/)
    const pending = await shoalJson<{ removed: number, pendingBytes: number }>(d.repo, ['gc'])
    assert.ok(pending.pendingBytes >= small.byteLength, `pendingBytes tells what is left (${pending.pendingBytes})`)
  })
})
