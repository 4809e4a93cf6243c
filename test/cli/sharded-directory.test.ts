/**
 * A folder too large for one directory block, through the CLI and a real
 * daemon: `add` of the folder, then `ls`, `stat`, `get` and `car export` of
 * it all work, its DAG HAMT-sharded as IPFS shards one. Before, such a
 * directory had no CID, and `get` and `car export` of it (and of `/`) were
 * refused.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { CarReader } from '@ipld/car'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { tempDir } from '../helpers/temp.js'
import { lines, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'

/** Names of 255 characters (the longest a file system takes): 3,600 links of ~300 bytes pass the 1 MiB block. */
const FILES = 3600
const nameOf = (i: number): string => `${'n'.repeat(245)}-${String(i).padStart(5, '0')}.txt`

describe('a folder too large for one directory block', () => {
  it('is added, listed, fetched with get and exported as a CAR of its HAMT shards', { timeout: 240_000 }, async t => {
    const d = await startDaemon(t)
    const dir = await tempDir(t, 'shoal-sharded-')
    const src = join(dir, 'mail')
    await mkdir(src)
    for (let i = 0; i < FILES; i++) await writeFile(join(src, nameOf(i)), `message ${i}\n`)
    await shoalOk(d.repo, ['add', src, '--to', '/mail', '--pin', 'none'])

    const top = await shoalJson<Array<{ name: string, cid: string }>>(d.repo, ['ls', '/'])
    const mail = top.find(e => e.name === 'mail')
    assert.match(mail?.cid ?? '', /^bafy/)
    const stat = (await shoalOk(d.repo, ['stat', '/'])).toString()
    assert.match(stat, /cid: {3}bafy/)
    assert.equal(lines((await shoalOk(d.repo, ['ls', '/mail'])).toString()).length, FILES)

    const out = join(dir, 'out')
    await shoalOk(d.repo, ['get', '/mail', '-o', out])
    const got = await readdir(out)
    assert.equal(got.length, FILES)
    for (const i of [0, 1234, FILES - 1]) assert.equal(await readFile(join(out, nameOf(i)), 'utf8'), `message ${i}\n`)

    const carFile = join(dir, 'mail.car')
    await shoalOk(d.repo, ['car', 'export', '/mail', '-o', carFile])
    const reader = await CarReader.fromBytes(await readFile(carFile))
    const roots = await reader.getRoots()
    assert.equal(roots[0].toString(), mail?.cid)
    const root = dagPb.decode((await reader.get(roots[0]))?.bytes as Uint8Array)
    assert.equal(UnixFS.unmarshal(root.Data as Uint8Array).type, 'hamt-sharded-directory')
    // every file's block is in the CAR
    const sample = await shoalJson<{ cid: string }>(d.repo, ['stat', `/mail/${nameOf(77)}`])
    assert.ok(await reader.has(CID.parse(sample.cid)))
  })
})
