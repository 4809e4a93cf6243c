/**
 * `shoal unmount` names its mountpoint as the user typed it: with a trailing
 * slash (what a shell's completion of a directory adds), or with `.` and
 * `..` in it, it is the directory `shoal mount` mounted.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { defer, tempDir } from '../helpers/temp.js'
import { shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { forceUnmount, requireFuse } from '../node/fuse/helpers.js'

const TEST = { timeout: 60_000 }

describe('shoal unmount of a path written another way', () => {
  it('unmounts DIR/ and DIR/sub/.. as DIR, commits what was written, and frees the directory', TEST, async t => {
    await requireFuse()
    const dir = await tempDir(t, 'shoal-fuse-unmount-')
    const d = await startDaemon(t)
    for (const [i, spelling] of [(m: string) => `${m}/`, (m: string) => `${m}/sub/..`, (m: string) => `${m}/.`].entries()) {
      const mnt = join(dir, `mnt-${i}`)
      await mkdir(mnt)
      // runs after the daemon stopped (cleanups run last in, first out)
      defer(t, async () => { await forceUnmount(mnt) })
      assert.equal((await shoalJson<{ dir: string }>(d.repo, ['mount', `${mnt}/`])).dir, mnt)
      await mkdir(join(mnt, 'sub'), { recursive: true })
      await writeFile(join(mnt, 'sub', `f${i}`), `written before unmount ${i}\n`)
      assert.deepEqual(await shoalJson(d.repo, ['unmount', spelling(mnt)]), { unmounted: mnt })
      assert.deepEqual(await shoalJson(d.repo, ['mounts']), [], `${spelling(mnt)} is unmounted`)
      assert.deepEqual(await readdir(mnt), [], 'the mountpoint is an empty directory again')
      assert.equal((await shoalOk(d.repo, ['cat', `/sub/f${i}`])).toString(), `written before unmount ${i}\n`)
    }
  })
})
