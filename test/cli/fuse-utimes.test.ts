/**
 * Setting only a file's access time through the mount (`touch -a`, a mail
 * reader marking a folder read) leaves its modification time as it was: the
 * mount keeps no access times, and the call changes nothing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { shoalJson } from '../helpers/cli.js'
import { q, shOk } from '../node/fuse/helpers.js'
import { mountedDaemon } from './fuse-daemon.js'

const TEST = { timeout: 60_000 }

describe('times through a FUSE mount', () => {
  it('touch -a leaves the modification time as it was; touch -m and touch -d set it', TEST, async t => {
    const { repo, mnt } = await mountedDaemon(t)
    const f = join(mnt, 'f')
    await writeFile(f, 'x')
    await shOk(`touch -d @1000000000 ${q(f)}`)
    assert.equal((await stat(f)).mtimeMs, 1_000_000_000_000)
    await shOk(`touch -a ${q(f)}`)
    assert.equal((await stat(f)).mtimeMs, 1_000_000_000_000, 'touch -a left the modification time')
    await shOk(`touch -m -d @1500000000 ${q(f)}`)
    assert.equal((await stat(f)).mtimeMs, 1_500_000_000_000)
    await shoalJson(repo, ['unmount', mnt])
  })
})
