/**
 * An add during which a commit of the block store failed (another add's, on
 * a full disk) is not kept: a commit covers every writer's blocks, and one
 * that fails can take some of this add's with it. It fails with
 * WriteInterruptedError and binds nothing; added again, it is kept.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { filesOnDisk } from './fixtures.js'
import { parseChunker } from '../../../node/content/index.js'
import { mountTmpfs, tempDir } from '../../helpers/temp.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { until } from '../../helpers/processes.js'
import { fillUp } from '../../cli/disk-helpers.js'

const chunker = parseChunker('size-65536')

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

/** Bytes in pieces of 100 kB, all but the first once `gate` opens. */
async function * gated (bytes: Uint8Array, gate: Promise<void>): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += 100_000) {
    if (i > 0) await gate
    yield bytes.subarray(i, i + 100_000)
  }
}

describe('an add during which a commit failed', () => {
  it('fails with WriteInterruptedError, binds nothing, and is kept when added again', { timeout: 60_000 }, async t => {
    const dir = await tempDir(t)
    const disk = join(dir, 'disk')
    await mountTmpfs(t, disk, '16m')
    const { files, namespace, blockstore } = await filesOnDisk(t, { blockstoreDir: join(disk, 'blocks') })
    const x = randomBytes(1_000_000)
    let openGate!: () => void
    const gate = new Promise<void>(resolve => { openGate = resolve })
    const adding = files.add('/x.bin', gated(x, gate), { chunker })
    adding.catch(() => {})

    // another add fails its commit on the full disk while /x.bin is under way
    const junk = join(disk, 'junk')
    await fillUp(junk)
    const other = files.add('/y.bin', once(randomBytes(4 * 1024 * 1024)), { chunker })
    other.catch(() => {})
    await until('the other add\'s commit failed', () => (blockstore.failedCommits ?? 0) > 0)
    await unlink(junk)
    openGate()

    await assert.rejects(adding, { name: 'WriteInterruptedError' })
    await assert.rejects(other, { name: 'DiskFullError' })
    assert.equal(await namespace.lookup('/x.bin'), undefined, 'the interrupted add bound nothing')
    assert.equal(await namespace.lookup('/y.bin'), undefined)

    const again = await files.add('/x.bin', once(x), { chunker })
    assert.equal(again.size, x.byteLength)
    const chunks: Uint8Array[] = []
    for await (const chunk of files.cat('/x.bin')) chunks.push(chunk)
    assertBytesEqual(Buffer.concat(chunks), x)
  })
})
