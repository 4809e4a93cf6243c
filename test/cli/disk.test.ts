/**
 * A full disk, on a real (small) tmpfs, through the CLI and a real daemon:
 * adds are refused early with one line, `rm` and `gc` work and give the
 * space back, and a daemon whose disk another program filled to the last
 * byte still starts (its ballast goes first) and serves reads, `rm` and `gc`
 * — also one that started on a disk already inside its reserve; and a
 * namespace write that failed on the full disk costs no write acknowledged
 * after it at the next start.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, open, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { eventually, lines, runShoal, shoalOk, startDaemon } from '../helpers/cli.js'
import { daemonOnTmpfs, fillUp, free, MiB, repoOnTmpfs } from './disk-helpers.js'

const TEST = { timeout: 180_000 }

describe('a full disk', () => {
  it('refuses adds early, lets rm and gc give space back, and starts again when another program filled the disk', TEST, async t => {
    const { dir, disk, repo, daemon } = await daemonOnTmpfs(t, '160m', 40 * MiB)
    let d = daemon

    // add 8 MB files until the reserve is reached: the refusal comes before the disk is full
    const files: Array<{ path: string, data: Uint8Array }> = []
    let refused: Awaited<ReturnType<typeof runShoal>> | undefined
    for (let i = 0; i < 30 && refused === undefined; i++) {
      const data = randomBytes(8_000_000, 100 + i)
      const local = join(dir, `f${i}.bin`)
      await writeFile(local, data)
      const r = await runShoal(['--repo', repo, 'add', local, '--to', `/f${i}.bin`, '--pin', 'none'])
      if (r.code === 0) files.push({ path: `/f${i}.bin`, data })
      else refused = r
    }
    assert.ok(refused !== undefined, 'an add was refused')
    assert.ok(files.length >= 5, `${files.length} adds went through first`)
    assert.equal(refused.code, 1)
    assert.equal(lines(refused.stderr).length, 1, refused.stderr)
    assert.match(refused.stderr, /no room for an add.*storage\.reserve.*DiskFullError/)
    assert.ok(await free(disk) >= 32 * MiB, 'refused with room to spare, not at ENOSPC')
    assert.notEqual((await runShoal(['--repo', repo, 'stat', `/f${files.length}.bin`])).code, 0, 'the refused add left nothing')
    // a folder of small files (sent as one batch) is refused the same way, before its contents are read
    const folder = join(dir, 'small')
    await mkdir(folder)
    for (let i = 0; i < 10; i++) await writeFile(join(folder, `s${i}.bin`), randomBytes(900_000, 200 + i))
    const batch = await runShoal(['--repo', repo, 'add', folder, '--to', '/small', '--pin', 'none'])
    assert.equal(batch.code, 1)
    assert.match(batch.stderr, /no room for 10 new files.*DiskFullError/)
    assert.notEqual((await runShoal(['--repo', repo, 'stat', '/small'])).code, 0, 'the refused folder add was undone')

    // rm and gc work at the reserve, and give the space back
    const before = await free(disk)
    const removed = files.splice(0, Math.ceil(files.length / 2))
    for (const f of removed) await shoalOk(repo, ['rm', f.path])
    await shoalOk(repo, ['gc'])
    // a pack removed under a reader is unlinked at once; its space comes back when the last handle on it closes
    const wanted = before + removed.length * 6 * MiB
    await eventually(`gc gave space back (${before} bytes free before, ${wanted} wanted)`, async () => await free(disk) >= wanted, 15_000)
    for (const f of files) assertBytesEqual(await shoalOk(repo, ['cat', f.path]), f.data, `${f.path} intact`)

    // another program fills the disk to the last byte while the daemon is down: it starts all the same
    await d.stop()
    await fillUp(join(disk, 'junk'))
    assert.ok(await free(disk) < MiB, 'the disk is full')
    d = await startDaemon(t, repo)
    assert.match(d.output().stderr, /ballast was deleted/)
    assertBytesEqual(await shoalOk(repo, ['cat', files[0].path]), files[0].data, 'reads work on the full disk')
    await shoalOk(repo, ['rm', files[0].path])
    await shoalOk(repo, ['gc'])
    const again = await runShoal(['--repo', repo, 'add', join(dir, 'f0.bin'), '--to', '/again.bin'])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /DiskFullError/)
  })

  it('a daemon started on a disk already inside its reserve keeps a smaller ballast, and starts again once the disk is full', TEST, async t => {
    const { disk, repo } = await repoOnTmpfs(t, '100m')
    // another program took 60 MiB: ~40 MiB free, far inside the default 256 MiB reserve
    const junk = await open(join(disk, 'other'), 'w')
    try { for (let i = 0; i < 60; i++) await junk.write(Buffer.alloc(MiB)) } finally { await junk.close() }
    let d = await startDaemon(t, repo)
    const ballast = join(repo, 'ballast')
    let size = 0
    for (let i = 0; i < 300 && size === 0; i++) {
      size = (await stat(ballast).catch(() => undefined))?.size ?? 0
      if (size === 0) await new Promise(resolve => setTimeout(resolve, 100))
    }
    assert.ok(size >= 4 * MiB && size < 32 * MiB, `a smaller ballast: ${size} bytes`)
    assert.ok(await free(disk) >= size, 'it took at most half of what was free')
    await shoalOk(repo, ['mkdir', '/kept'])

    // the disk fills to the last byte while the daemon is down: it starts all the same
    await d.stop()
    await fillUp(join(disk, 'junk'))
    assert.ok(await free(disk) < MiB, 'the disk is full')
    d = await startDaemon(t, repo)
    assert.match(d.output().stderr, /ballast was deleted/)
    assert.match((await shoalOk(repo, ['ls', '/'])).toString(), /kept/)
    await d.stop()
  })

  // LevelDB goes on appending to its log after a write that failed half-way
  // (a torn record): at the next open the writes after it in that log would
  // be dropped ("checksum mismatch"), acknowledged ones included. The
  // namespace's store (node/namespace/kv.ts) opens the database again (a new
  // log) before the next write.
  it('a namespace write that failed on the full disk loses no later acknowledged write at the next start', TEST, async t => {
    const { disk, repo, daemon } = await daemonOnTmpfs(t, '100m', 16 * MiB)
    let d = daemon
    await shoalOk(repo, ['mkdir', '/before'])
    await fillUp(join(disk, 'junk'))
    // the log's last page may still take a few small writes: until one fails
    let failed: Awaited<ReturnType<typeof runShoal>> | undefined
    for (let i = 0; i < 100 && failed === undefined; i++) {
      const r = await runShoal(['--repo', repo, 'mkdir', `/m${i}-${'x'.repeat(200)}`])
      if (r.code !== 0) failed = r
    }
    assert.ok(failed !== undefined, 'a namespace write failed on the full disk')
    assert.match(failed.stderr, /DiskFullError/)
    await unlink(join(disk, 'junk'))
    await shoalOk(repo, ['mkdir', '/after'])
    await d.stop()
    d = await startDaemon(t, repo)
    const listed = (await shoalOk(repo, ['ls', '/'])).toString()
    assert.match(listed, /before/)
    assert.match(listed, /after/, 'the mkdir acknowledged after the failed one is still there')
    await d.stop()
  })
})
