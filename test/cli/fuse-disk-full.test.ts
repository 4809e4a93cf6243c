/**
 * Files written through the mount when the repo's disk has no room for them
 * (less free than `storage.reserve`): `fsync` fails with ENOSPC, as on any
 * full file system; and an unmount does not throw them away: it is refused,
 * naming them, they stay readable in the mount, and `--force` unmounts all
 * the same; what it could not commit then is kept in `<repo>/uncommitted`,
 * as when the daemon stops. `df` of the mount does not count the reserve as available, and
 * a write that would stage a file into it fails with ENOSPC, and leaves the
 * reserve free.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmod, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mountTmpfs, tempDir, type CleanupContext } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'
import { python, q, sh } from '../node/fuse/helpers.js'
import { mountedDaemon } from './fuse-daemon.js'

const TEST = { timeout: 60_000 }
const MiB = 1024 * 1024

/** A daemon whose every commit finds no room, with its namespace mounted. */
async function mountOnFullDisk (t: CleanupContext): Promise<{ repo: string, mnt: string, daemon: TestDaemon }> {
  // a reserve larger than any disk: every write that brings new data is refused, as on a disk filled up to it
  return await mountedDaemon(t, { config: [['storage.reserve', String(2 ** 50)]] })
}

describe('a FUSE mount on a full repo disk', () => {
  it('fsync of a file the disk has no room for fails with ENOSPC, and nothing of it is committed', TEST, async t => {
    const { repo, mnt } = await mountOnFullDisk(t)
    const r = await python(`
import errno, os
fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_CREAT | os.O_WRONLY)
os.write(fd, b'no room for this')
try:
    os.fsync(fd)
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])
os.close(fd)
`)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'ENOSPC')
    assert.notEqual((await runShoal(['--repo', repo, 'cat', '/f'])).code, 0, 'nothing was committed')
    await shoalOk(repo, ['unmount', '--force', mnt])
  })

  it('unmount with files that cannot be committed is refused with one line naming them; they stay readable in the mount; --force unmounts', TEST, async t => {
    const { repo, mnt } = await mountOnFullDisk(t)
    // closed (close returns before the commit): acknowledged as written
    await writeFile(join(mnt, 'notes.txt'), 'closed, not committed\n')

    const r = await runShoal(['--repo', repo, 'unmount', mnt])
    assert.ok(r.code !== 0 && r.code !== null, `refused: ${r.stdout.toString()}`)
    assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
    assert.match(r.stderr, /UncommittedFilesError/)
    assert.match(r.stderr, /\/notes\.txt: no room/, 'names the file, and why')
    assert.match(r.stderr, new RegExp(`unmount --force .*they are then kept in ${join(repo, 'uncommitted')}`), 'and that --force keeps them in the repo (it is not lost)')
    assert.deepEqual((await shoalJson<Array<{ dir: string }>>(repo, ['mounts'])).map(m => m.dir), [mnt], 'still mounted')
    assert.equal(await readFile(join(mnt, 'notes.txt'), 'utf8'), 'closed, not committed\n', 'the file is still there')

    assert.deepEqual(await shoalJson(repo, ['unmount', '--force', mnt]), { unmounted: mnt })
    assert.deepEqual(await shoalJson(repo, ['mounts']), [])
  })

  it('what cannot be committed as the mount goes (--force, the daemon stopping) is kept in <repo>/uncommitted with its bytes, mode and time; the log names it, the next start says so', TEST, async t => {
    const { repo, mnt, daemon } = await mountOnFullDisk(t)
    // files staged in memory (a file staged on disk could not be on a disk this full: parts.test.ts keeps one)
    const small = randomBytes(100_000)
    await writeFile(join(mnt, 'small.bin'), small)
    await writeFile(join(mnt, 'notes.txt'), 'closed, not committed\n')
    await chmod(join(mnt, 'notes.txt'), 0o640)
    const mtime = (await stat(join(mnt, 'notes.txt'))).mtimeMs
    assert.deepEqual(await shoalJson(repo, ['unmount', '--force', mnt]), { unmounted: mnt })

    const keptDirs = async (): Promise<string[]> => (await readdir(join(repo, 'uncommitted'))).sort()
    const [first] = await keptDirs()
    assert.ok(first !== undefined, 'a folder of kept files')
    assert.deepEqual((await readdir(join(repo, 'uncommitted', first))).sort(), ['notes.txt', 'small.bin'])
    assert.deepEqual(await readFile(join(repo, 'uncommitted', first, 'small.bin')), small)
    const notes = join(repo, 'uncommitted', first, 'notes.txt')
    assert.equal(await readFile(notes, 'utf8'), 'closed, not committed\n')
    assert.equal((await stat(notes)).mode & 0o777, 0o640)
    assert.ok(Math.abs((await stat(notes)).mtimeMs - mtime) < 1000, 'the time it was written')
    assert.match(daemon.output().stderr, new RegExp(`kept in ${notes.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), 'the log names where')
    assert.deepEqual((await readdir(join(repo, 'tmp', 'fuse')).catch(() => [])), [], 'nothing left in staging')

    // the daemon stopping unmounts with force: the same
    await shoalOk(repo, ['mount', mnt])
    await writeFile(join(mnt, 'late.txt'), 'written just before the stop\n')
    assert.equal((await daemon.stop()).code, 0)
    const dirs = await keptDirs()
    assert.equal(dirs.length, 2)
    assert.equal(await readFile(join(repo, 'uncommitted', dirs[1], 'late.txt'), 'utf8'), 'written just before the stop\n')

    // and a start says they are there, as does `shoal status`, until they are deleted
    const again = await startDaemon(t, repo)
    assert.match(again.output().stderr, /3 file\(s\) written through a mount could not be committed/)
    const kept = (await shoalJson<{ uncommitted: { dir: string, files: number, bytes: number } }>(repo, ['status'])).uncommitted
    assert.deepEqual(kept, { dir: join(repo, 'uncommitted'), files: 3, bytes: small.length + 'closed, not committed\n'.length + 'written just before the stop\n'.length })
    assert.match((await shoalOk(repo, ['status'])).toString(), /^uncommitted: 3 files \(.+\) written through a mount and never committed, kept in /m)
    await rm(join(repo, 'uncommitted'), { recursive: true })
    assert.equal((await shoalJson<{ uncommitted: { files: number } }>(repo, ['status'])).uncommitted.files, 0)
    assert.doesNotMatch((await shoalOk(repo, ['status'])).toString(), /^uncommitted:/m)
  })

  it('the mount shows the disk\'s free space but the reserve; a write that would stage a file into storage.reserve fails with ENOSPC, and the reserve stays free', TEST, async t => {
    // a small real disk: 200 MiB, of which 100 are the reserve
    const disk = join(await tempDir(t, 'shoal-fuse-small-disk-'), 'disk')
    await mountTmpfs(t, disk, '200m')
    const reserve = 100 * MiB
    const { mnt } = await mountedDaemon(t, { under: disk, config: [['storage.reserve', String(reserve)]] })
    // \`df\` of the mount shows what a write may take: the disk's free space but the reserve
    const [shown, free] = [await statfs(mnt), await statfs(disk)]
    const [shownBytes, freeBytes] = [shown.bavail * shown.bsize, free.bavail * free.bsize]
    assert.ok(shownBytes <= freeBytes - reserve + MiB && shownBytes >= freeBytes - reserve - MiB, `the mount shows ${shownBytes} bytes available, the disk has ${freeBytes} free and a reserve of ${reserve}`)
    const r = await sh(`dd if=/dev/zero of=${q(join(mnt, 'big'))} bs=1M count=150 2>&1`)
    assert.notEqual(r.code, 0, `dd fails: ${r.stdout}`)
    assert.match(r.stdout, /No space left on device/)
    const s = await statfs(disk)
    assert.ok(s.bavail * s.bsize >= reserve, `${s.bavail * s.bsize} bytes free, the reserve is ${reserve}`)
  })
})
