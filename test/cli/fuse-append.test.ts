/**
 * `O_APPEND` through the mount appends at the end of the version the open
 * found, even when the kernel still holds an older, shorter size of the file
 * (within its attribute timeout, after another node or this node's CLI wrote
 * a new version): the kernel's offset is then stale, and a write placed at it
 * overwrote the middle of the new version.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { shoalOk } from '../helpers/cli.js'
import { eventually, sh } from '../node/fuse/helpers.js'
import { mountedDaemon } from './fuse-daemon.js'

const TEST = { timeout: 60_000 }

describe('O_APPEND through a FUSE mount', () => {
  it('appends after a version written meanwhile, not at the size the kernel last saw', TEST, async t => {
    // the kernel keeps what it saw of the file for the whole test: no timing decides what it holds
    const { dir, repo, mnt } = await mountedDaemon(t, { config: [['fuse.attrTimeout', '600'], ['fuse.entryTimeout', '600']] })
    const log = join(mnt, 'log')
    await writeFile(log, 'line 1\n')
    await eventually(async () => (await shoalOk(repo, ['cat', '/log'])).toString() === 'line 1\n', 10_000, 'the first version is committed')
    assert.equal((await stat(log)).size, 7, 'the kernel holds the first version\'s size')

    // a new version, longer, written past the mount (as another node's write arrives)
    const local = join(dir, 'log.local')
    await writeFile(local, 'line 1\nline 2 from elsewhere\n')
    await shoalOk(repo, ['add', local, '--to', '/log'])

    // `>>` opens with O_APPEND
    await sh(`printf 'line 3 appended\\n' >> ${log}`).then(r => { assert.equal(r.code, 0, r.stderr) })
    const want = 'line 1\nline 2 from elsewhere\nline 3 appended\n'
    assert.equal(await readFile(log, 'utf8'), want)
    await eventually(async () => (await shoalOk(repo, ['cat', '/log'])).toString() === want, 10_000, 'the appended version is committed')
    await shoalOk(repo, ['unmount', mnt])
  })
})
