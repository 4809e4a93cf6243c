/**
 * rename(x, x) through the file system a mount shows is a success that
 * changes nothing, as POSIX rename(2) requires — while `shoal mv x x` is
 * refused (`SameFileError`, as POSIX `mv`). Real block store, real replica,
 * no kernel in between; a committed file and one still staged.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Files } from '../../../node/files/index.js'
import { parseChunker } from '../../../node/content/index.js'
import { MemoryKV, Replica, peerIdVerifier, signerFromKey } from '../../../node/namespace/index.js'
import { ShoalFilesystem } from '../../../node/fuse/filesystem.js'
import { StagingArea } from '../../../node/fuse/staging.js'
import { defer, openBlockStore, tempDir } from '../../helpers/temp.js'
import { silent } from './helpers.js'

describe('rename onto itself in the mount', () => {
  it('rename(x, x) succeeds and changes nothing; the namespace move of x to x is refused', { timeout: 30_000 }, async t => {
    const root = await tempDir(t, 'shoal-fuse-same-')
    const blockstore = await openBlockStore(t, join(root, 'blocks'))
    const replica = new Replica({ kv: new MemoryKV(), signer: signerFromKey(await generateKeyPair('Ed25519')), verifier: peerIdVerifier(), clock: { now: () => Date.now() }, logger: silent })
    await replica.open()
    defer(t, async () => { await replica.close() })
    const files = new Files({ blockstore, namespace: replica, logger: silent })
    const fs = new ShoalFilesystem({ files, namespace: replica, chunker: parseChunker('fastcdc'), logger: silent }, { staging: new StagingArea(join(root, 'staging')), attrCacheMs: 0 })
    defer(t, async () => { await fs.close() })

    const write = async (path: string, text: string): Promise<void> => {
      const fh = await fs.create(path, 0o644)
      await fs.write(fh, Buffer.from(text), text.length, 0)
      await fs.flush(fh)
      await fs.release(fh)
    }
    await write('/committed.txt', 'committed\n')
    await fs.fsync(undefined, '/committed.txt')
    const before = await replica.lookup('/committed.txt')
    await fs.rename('/committed.txt', '/committed.txt')
    assert.deepEqual(await replica.lookup('/committed.txt'), before, 'the committed file is unchanged')

    const fh = await fs.create('/staged.txt', 0o644)
    await fs.write(fh, Buffer.from('staged\n'), 7, 0)
    await fs.rename('/staged.txt', '/staged.txt')
    await fs.flush(fh)
    await fs.release(fh)
    await fs.fsync(undefined, '/staged.txt')
    assert.equal((await fs.getattr('/staged.txt')).size, 7, 'the staged file is still there, whole')

    await assert.rejects(replica.move('/committed.txt', '/committed.txt'), { name: 'SameFileError' })
  })
})
