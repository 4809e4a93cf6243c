/**
 * `shoal pin add CID` on one real daemon, for CIDs that are not a UnixFS file
 * or directory (a dag-cbor node, a dag-pb node without UnixFS data, a UnixFS
 * symlink: each imported by `car import`, which leaves such roots unbound) and
 * for a CID whose root block is nowhere: refused in one line with a typed
 * error, non-zero exit, and nothing changed — no `/pins/<cid>`, no pin, and
 * `ls /` and `get /` still work. A directory is still refused as one; a raw
 * leaf pinned by CID is still bound.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { directory, rawBlock, writeCarFile, type Block } from '../helpers/dags.js'

const TEST = { timeout: 120_000 }

/** A block of `codec` holding `bytes`. */
async function blockOf (codec: number, bytes: Uint8Array): Promise<Block> {
  return { cid: CID.createV1(codec, await sha256.digest(bytes)), bytes }
}

describe('pin add of a CID that is not a UnixFS file', () => {
  it('is refused with a typed error in one line and binds nothing; ls / and get / still work', TEST, async t => {
    const d = await startDaemon(t)
    const dir = await tempDir(t)
    await writeFile(join(dir, 'hello.txt'), 'hello\n')
    await shoalOk(d.repo, ['add', join(dir, 'hello.txt'), '--to', '/hello.txt'])

    const notFiles: Array<[string, Block]> = [
      ['dag-cbor', await blockOf(dagCbor.code, dagCbor.encode({ hello: 'world' }))],
      ['dag-pb without UnixFS data', await blockOf(dagPb.code, dagPb.encode(dagPb.prepare({ Links: [] })))],
      ['a UnixFS symlink', await blockOf(dagPb.code, dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data: new TextEncoder().encode('/etc/passwd') }).marshal() })))]
    ]
    for (const [what, block] of notFiles) {
      const car = join(dir, `${block.cid.toString()}.car`)
      await writeCarFile(car, block, [block])
      const imported = await shoalJson<{ paths: Array<string | null>, unbound: unknown[] }>(d.repo, ['car', 'import', car])
      assert.deepEqual(imported.paths, [null], `car import leaves ${what} unbound`)

      const r = await runShoal(['--repo', d.repo, 'pin', 'add', block.cid.toString()])
      assert.equal(r.code, 1, `pin add of ${what} fails: ${r.stderr}`)
      assert.equal(r.stdout.length, 0)
      assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
      assert.match(r.stderr, /not a UnixFS file.*\(NotUnixFSFileError\)$/m, what)
      const json = await runShoal(['--repo', d.repo, '--json', 'pin', 'add', block.cid.toString()])
      assert.equal(JSON.parse(json.stderr).error.name, 'NotUnixFSFileError', `--json names the error of ${what}`)
      assert.equal((await runShoal(['--repo', d.repo, 'stat', `/pins/${block.cid.toString()}`])).code, 1, `no /pins entry for ${what}`)
    }

    // a CID whose root block no node has: fails (bounded), binds nothing
    const nowhere = await blockOf(raw.code, new TextEncoder().encode('held by nobody'))
    const started = Date.now()
    const missing = await runShoal(['--repo', d.repo, 'pin', 'add', nowhere.cid.toString()])
    assert.equal(missing.code, 1, missing.stderr)
    assert.equal(lines(missing.stderr).length, 1, `one line: ${missing.stderr}`)
    assert.match(missing.stderr, /\((NotFoundError|BlockUnavailableError)\)$/m)
    assert.ok(Date.now() - started < 60_000, 'bounded in time')
    assert.equal((await runShoal(['--repo', d.repo, 'stat', `/pins/${nowhere.cid.toString()}`])).code, 1, 'no /pins entry for a missing root')

    // nothing was bound, nothing pinned: the tree is what it was, and reads of it work
    const root = await shoalJson<Array<{ name: string }>>(d.repo, ['ls', '/'])
    assert.deepEqual(root.map(e => e.name).sort(), ['hello.txt'], 'no /pins folder')
    const pins = await shoalJson<Array<{ path: string }>>(d.repo, ['pin', 'ls'])
    assert.ok(pins.every(p => !p.path.startsWith('/pins/')), JSON.stringify(pins))
    const out = join(dir, 'out')
    await shoalOk(d.repo, ['get', '/', '-o', out])
    assert.equal(await readFile(join(out, 'hello.txt'), 'utf8'), 'hello\n')

    // a directory is refused as before (IsADirectoryError), whatever is under it
    const inside = await rawBlock('inside')
    const dirBlock = await directory([{ name: 'in.txt', block: inside }])
    const dirCar = join(dir, 'dir.car')
    await writeCarFile(dirCar, dirBlock, [dirBlock, inside])
    await shoalOk(d.repo, ['car', 'import', dirCar, '--pin-roots', 'false'])
    const dirPin = await runShoal(['--repo', d.repo, 'pin', 'add', dirBlock.cid.toString()])
    assert.equal(dirPin.code, 1, dirPin.stderr)
    assert.match(dirPin.stderr, /is a directory \(IsADirectoryError\)$/m)
    assert.equal((await runShoal(['--repo', d.repo, 'stat', `/pins/${dirBlock.cid.toString()}`])).code, 1)

    // a raw leaf is a file: pinned by CID, it is bound at /pins/<cid> and readable
    const leaf = await rawBlock('a raw leaf')
    const leafCar = join(dir, 'leaf.car')
    await writeCarFile(leafCar, leaf, [leaf])
    await shoalOk(d.repo, ['car', 'import', leafCar])
    const pinned = await runShoal(['--repo', d.repo, 'pin', 'add', leaf.cid.toString()])
    assert.equal(pinned.code, 0, pinned.stderr)
    assert.match(pinned.stdout.toString(), new RegExp(`^pinned /pins/${leaf.cid.toString()} `))
    assert.equal((await shoalOk(d.repo, ['cat', `/pins/${leaf.cid.toString()}`])).toString(), 'a raw leaf')
    await shoalOk(d.repo, ['get', '/', '-o', join(dir, 'out2')])
    assert.equal(await readFile(join(dir, 'out2', 'pins', leaf.cid.toString()), 'utf8'), 'a raw leaf')
  })
})
