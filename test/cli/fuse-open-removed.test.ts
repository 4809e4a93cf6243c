/**
 * A file open in node A's mount keeps its attributes after the path goes:
 * `fstat` of the open file answers (size, mode, mtime of the version
 * opened) when node B removes the file or renames it away, when A removes
 * it itself, and when A renamed it before B removed it; `stat` of the
 * removed path answers ENOENT all the while. Two real daemons, each serving
 * its mount (so this process may touch the mounts), the change reaching A
 * by gossip.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmod, open, readdir, rename, stat, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import { defer, type CleanupContext } from '../helpers/temp.js'
import { sleep, suiteContext } from '../helpers/cli.js'
import { mountedPair } from '../helpers/mounted-pair.js'
import { eventually as within20s } from '../node/fuse/helpers.js'

const TEST = { timeout: 90_000 }
/** Longer than the mounts' attribute and entry timeouts (1 s): the kernel asks the daemon again. */
const PAST_TIMEOUTS_MS = 1300
/** A fixed modification time (ms), set through the mount before the file is opened. */
const MTIME_MS = Date.UTC(2021, 2, 3, 4, 5, 6)

/** Poll `fn` until it returns true, at most 20 s. */
async function eventually (what: string, fn: () => Promise<boolean>): Promise<void> {
  await within20s(fn, 20_000, what)
}

/** The error code of `stat(path)`, or 'ok'. */
async function statCode (path: string): Promise<string> {
  return await stat(path).then(() => 'ok', (err: any) => String(err?.code))
}

/** What a test compares of a file's attributes. */
function attrsOf (s: Stats): { file: boolean, size: number, mode: number, mtimeMs: number } {
  return { file: s.isFile(), size: s.size, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs }
}

describe('a file open in a mount keeps its attributes after its path goes', () => {
  const ctx = suiteContext()
  let mntA = ''
  let mntB = ''

  // two daemons in one swarm, connected, each with its mount
  before(async () => {
    const { a, b } = await mountedPair(ctx, 'shoal-fuse-open-')
    mntA = a.mnt
    mntB = b.mnt
    // the libfuse3 binding (built by .ci/run) tells the kernel's getattr of an inode from a lookup; libfuse2 cannot
    for (const node of [a, b]) assert.equal(node.binding, 'libfuse3', 'the mount is served by the libfuse3 binding')
  })

  /** Write `name` through A's mount with `bytes`, mode 0640 and a fixed mtime; wait until B's mount shows it. */
  async function fileSeenByBoth (name: string, bytes: Buffer): Promise<void> {
    await writeFile(join(mntA, name), bytes)
    await chmod(join(mntA, name), 0o640)
    await utimes(join(mntA, name), MTIME_MS / 1000, MTIME_MS / 1000)
    await eventually(`B's mount shows ${name} as A wrote it`, async () => {
      const s = await stat(join(mntB, name)).catch(() => undefined)
      return s?.size === bytes.length && (s.mode & 0o7777) === 0o640 && s.mtimeMs === MTIME_MS
    })
  }

  /** Open `path` read-only; closed when the test `t` ends if it has not closed it. */
  async function opened (t: CleanupContext, path: string): Promise<FileHandle> {
    const fh = await open(path, 'r')
    defer(t, async () => { await fh.close().catch(() => {}) })
    return fh
  }

  /** Bytes of an open file, read through its descriptor from the start. */
  async function readAll (fh: FileHandle, size: number): Promise<Buffer> {
    const buf = Buffer.alloc(size + 1)
    let at = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, at, buf.length - at, at)
      if (bytesRead === 0) return buf.subarray(0, at)
      at += bytesRead
    }
  }

  const expected = (size: number): ReturnType<typeof attrsOf> => ({ file: true, size, mode: 0o640, mtimeMs: MTIME_MS })

  it('fstat answers after another node removes the file or renames it away; stat of the path answers ENOENT', TEST, async t => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17)
    await fileSeenByBoth('removed.bin', bytes)
    await fileSeenByBoth('moved.txt', Buffer.from('moved away\n'))
    const removed = await opened(t, join(mntA, 'removed.bin'))
    const moved = await opened(t, join(mntA, 'moved.txt'))
    assert.deepEqual(attrsOf(await removed.stat()), expected(bytes.length))

    await unlink(join(mntB, 'removed.bin'))
    await rename(join(mntB, 'moved.txt'), join(mntB, 'elsewhere.txt'))
    await eventually('A\'s mount no longer shows either path, and shows the new name', async () =>
      await statCode(join(mntA, 'removed.bin')) === 'ENOENT' && await statCode(join(mntA, 'moved.txt')) === 'ENOENT' && await statCode(join(mntA, 'elsewhere.txt')) === 'ok')

    // twice, each past the timeouts: the kernel asks the daemon, not its cache
    for (let round = 0; round < 2; round++) {
      await sleep(PAST_TIMEOUTS_MS)
      assert.deepEqual(attrsOf(await removed.stat()), expected(bytes.length), `fstat of the removed file, round ${round}`)
      assert.deepEqual(attrsOf(await moved.stat()), expected('moved away\n'.length), `fstat of the file renamed away, round ${round}`)
      assert.equal(await statCode(join(mntA, 'removed.bin')), 'ENOENT', 'stat of the removed path')
      assert.equal(await statCode(join(mntA, 'moved.txt')), 'ENOENT', 'stat of the old name')
    }
    assert.ok((await readAll(removed, bytes.length)).equals(bytes), 'reads through the descriptor go on')
    assert.equal((await readAll(moved, 100)).toString(), 'moved away\n')
    assert.deepEqual((await readdir(mntA)).filter(n => n === 'removed.bin' || n === 'moved.txt'), [])
    await removed.close()
    await moved.close()
    assert.equal(await statCode(join(mntA, 'removed.bin')), 'ENOENT')
  })

  it('fstat answers after a removal on this node, and after a rename here then a removal on another node', TEST, async t => {
    await fileSeenByBoth('local-rm.txt', Buffer.from('removed here\n'))
    await fileSeenByBoth('renamed-here.txt', Buffer.from('renamed here\n'))
    const local = await opened(t, join(mntA, 'local-rm.txt'))
    const renamed = await opened(t, join(mntA, 'renamed-here.txt'))

    await unlink(join(mntA, 'local-rm.txt'))
    await rename(join(mntA, 'renamed-here.txt'), join(mntA, 'then-removed.txt'))
    await eventually('B\'s mount shows the rename', async () => await statCode(join(mntB, 'then-removed.txt')) === 'ok')
    await unlink(join(mntB, 'then-removed.txt'))
    await eventually('A\'s mount no longer shows the renamed file', async () => await statCode(join(mntA, 'then-removed.txt')) === 'ENOENT')

    for (let round = 0; round < 2; round++) {
      await sleep(PAST_TIMEOUTS_MS)
      assert.deepEqual(attrsOf(await local.stat()), expected('removed here\n'.length), `fstat of the file removed here, round ${round}`)
      assert.deepEqual(attrsOf(await renamed.stat()), expected('renamed here\n'.length), `fstat of the file renamed here and removed there, round ${round}`)
      assert.equal(await statCode(join(mntA, 'local-rm.txt')), 'ENOENT')
      assert.equal(await statCode(join(mntA, 'renamed-here.txt')), 'ENOENT')
      assert.equal(await statCode(join(mntA, 'then-removed.txt')), 'ENOENT')
    }
    assert.equal((await readAll(local, 100)).toString(), 'removed here\n')
    assert.equal((await readAll(renamed, 100)).toString(), 'renamed here\n')
    await local.close()
    await renamed.close()
    // the name the removal here kept while the file was open goes with its close, on both nodes
    const leftovers = async (mnt: string): Promise<string[]> => (await readdir(mnt)).filter(n => n.startsWith('.fuse_hidden') || n === 'local-rm.txt')
    await eventually('nothing of the removed file is left in either mount', async () => (await leftovers(mntA)).length === 0 && (await leftovers(mntB)).length === 0)
  })
})
