/**
 * A namespace directory with too many entries for one UnixFS block (no
 * sharded directories yet) on a real LevelDB namespace and block store:
 * it and the directories above it are listed and stat'ed all the same, with
 * no CID and the reason; only what needs its DAG (a `get` or CAR export of
 * it) is refused, with that reason. Before, one such directory made `ls /`
 * and `stat /` fail on every node (a flat folder of 20,000 mails did it).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { filesOnDisk } from './fixtures.js'
import { parseChunker } from '../../../node/content/index.js'

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

describe('a directory too large for one block', () => {
  it('is listed and stat\'ed with no CID, as are the directories above it; its siblings keep theirs', { timeout: 120_000 }, async t => {
    const { files, namespace } = await filesOnDisk(t)
    const small = await files.add('/ok/small.txt', once(new TextEncoder().encode('small')), { chunker: parseChunker('size-65536') })
    // long names: ~4,400 links of ~240 bytes pass the 1 MiB block
    const names = Array.from({ length: 4400 }, (_, i) => `${'m'.repeat(200)}-${String(i).padStart(5, '0')}.eml`)
    for (let i = 0; i < names.length; i += 1000) {
      await namespace.putFiles(names.slice(i, i + 1000).map(name => ({ path: `/mail/${name}`, record: { cid: small.cid, size: small.size, mode: 0o644, mtime: 1_000 } })))
    }
    const root = await files.ls('/')
    const byName = new Map(root.map(e => [e.name, e]))
    assert.equal(byName.get('mail')?.cid, undefined)
    assert.match(byName.get('mail')?.noCid ?? '', /directory \/mail has too many entries \(4400\) for one block/)
    assert.match(byName.get('ok')?.cid ?? '', /^bafy/, 'a sibling keeps its CID')
    const top = await files.stat('/')
    assert.equal(top.cid, undefined)
    assert.match(top.noCid ?? '', /\/mail has too many entries/)
    assert.equal((await files.ls('/mail')).length, 4400)
    assert.equal((await files.stat(`/mail/${names[17]}`)).cid, small.cid)
    // what needs the DAG says why it cannot
    await assert.rejects(files.exportCar('/mail'), (err: Error) => err.name === 'TooLargeError' && /too many entries/.test(err.message))
  })
})
