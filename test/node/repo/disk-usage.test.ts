/**
 * The repo's disk use is counted as `du -x` counts it: allocated blocks,
 * each part on its own, a hard-linked file once, a symbolic link not
 * followed, a file system mounted inside the repo not entered.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { link, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mountTmpfs, tempDir } from '../../helpers/temp.js'
import { repoDiskUsage, REUSE_MS } from '../../../node/repo/disk-usage.js'
import { repoLayout } from '../../../node/repo/layout.js'

const MiB = 1024 * 1024

async function du (path: string): Promise<number> {
  const { stdout } = await promisify(execFile)('du', ['-sxB1', path], { timeout: 30_000 })
  return Number(stdout.split('\t')[0])
}

describe('repo disk use', () => {
  it('counts each part, hard links once, no symlink target, nothing on another file system — as du -sx does', async t => {
    const root = join(await tempDir(t, 'shoal-du-'), 'repo')
    const layout = repoLayout(root)
    for (const dir of [join(layout.blocks, 'packs'), layout.namespace, layout.durability, layout.tmp]) await mkdir(dir, { recursive: true })
    await writeFile(join(layout.blocks, 'packs', '00000001.pack'), Buffer.alloc(3 * MiB, 1))
    await writeFile(join(layout.namespace, '000005.ldb'), Buffer.alloc(MiB, 2))
    await writeFile(join(root, 'ballast'), Buffer.alloc(2 * MiB, 3))
    // the same pack linked elsewhere in the repo: counted once, in blocks
    await link(join(layout.blocks, 'packs', '00000001.pack'), join(layout.tmp, 'pack-link'))
    // a symbolic link to something big outside: not followed
    const outside = join(await tempDir(t, 'shoal-du-outside-'), 'big')
    await writeFile(outside, Buffer.alloc(4 * MiB, 4))
    await symlink(outside, join(root, 'outside'))
    // another file system mounted inside: not entered
    await mountTmpfs(t, join(layout.tmp, 'mnt'), '16m')
    await writeFile(join(layout.tmp, 'mnt', 'elsewhere'), Buffer.alloc(5 * MiB, 5))

    const usage = await repoDiskUsage(layout)
    assert.equal(usage.repoBytes, await du(root))
    assert.equal(usage.blocksBytes, await du(layout.blocks))
    assert.equal(usage.namespaceBytes, await du(layout.namespace))
    assert.equal(usage.durabilityBytes, await du(layout.durability))
    assert.equal(usage.repoBytes, usage.blocksBytes + usage.namespaceBytes + usage.durabilityBytes + usage.otherBytes)
    assert.ok(usage.blocksBytes >= 3 * MiB && usage.blocksBytes < 3 * MiB + 64 * 1024)
    assert.ok(usage.otherBytes >= 2 * MiB && usage.otherBytes < 3 * MiB, `other ${usage.otherBytes}: the ballast, not the linked pack, the symlink's target or the tmpfs`)
    assert.ok(usage.totalBytes > usage.freeBytes && usage.freeBytes > 0)
  })

  it('a missing repo is an error with its code, and is measured again next time', async t => {
    const root = join(await tempDir(t, 'shoal-du-'), 'none')
    await assert.rejects(repoDiskUsage(repoLayout(root)), { code: 'ENOENT' })
    await mkdir(root)
    assert.ok((await repoDiskUsage(repoLayout(root))).repoBytes > 0, `measured again (not the failure reused within ${REUSE_MS} ms)`)
  })
})
