/**
 * Reads through the CLI of content whose blocks are not all here: a
 * directory holding a file whose only copy is in the cold tier is exported
 * as a CAR as `get` downloads it (each file read through its own pin), not
 * cut midway; so is the gateway's CAR of it. Real daemon, real S3 server
 * (s3rver) on 127.0.0.1.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarReader } from '@ipld/car/reader'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { startS3Server, S3RVER_ENV } from '../node/tiers/s3-server.js'
import { call, gatewayOf, parseVerifiedCar } from '../node/gateway/helpers.js'

const TEST = { timeout: 120_000 }

describe('car export of a directory with a cold-only file', () => {
  it('exports every block, read from the tier, as get and cat read them', TEST, async t => {
    const s3 = await startS3Server(t)
    const d = await startDaemon(t, undefined, { env: S3RVER_ENV })
    const dir = await tempDir(t)
    const data = randomBytes(2 * 1024 * 1024, 31)
    await writeFile(join(dir, 'f.bin'), data)
    await shoalOk(d.repo, ['mkdir', '/d'])
    await shoalOk(d.repo, ['add', join(dir, 'f.bin'), '--to', '/d/f.bin', '--chunker', 'size-262144', '--pin', 'none'])
    await shoalOk(d.repo, ['tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--prefix', 'cold'])
    await shoalOk(d.repo, ['pin', 'add', '/d/f.bin', '--tier', 'cold'])
    const gc = await shoalJson<{ removed: number }>(d.repo, ['gc'])
    assert.ok(gc.removed >= 8, `the hot copy was dropped (${gc.removed} blocks removed)`)

    // the file reads from the tier, by path and as part of its directory
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/d/f.bin']), data)
    await shoalOk(d.repo, ['get', '/d', '-o', join(dir, 'got')])
    assertBytesEqual(await readFile(join(dir, 'got', 'f.bin')), data)

    // and so does the directory's CAR
    const out = join(dir, 'd.car')
    const r = await runShoal(['--repo', d.repo, 'car', 'export', '/d', '-o', out])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(lines(r.stderr).length, 0, r.stderr)
    const car = await CarReader.fromBytes(await readFile(out))
    let blocks = 0
    for await (const _ of car.blocks()) blocks++
    assert.ok(blocks >= 10, `the directory, the file's root and its 8 leaves (${blocks} blocks)`)

    // the gateway's CAR of the directory, by CID, is whole too (a verified CAR: every block checked against its CID)
    const dirCid = (await shoalJson<{ cid: string }>(d.repo, ['stat', '/d'])).cid
    const answer = await call(`${await gatewayOf(d.repo)}/ipfs/${dirCid}?format=car`)
    assert.equal(answer.status, 200, answer.body.subarray(0, 300).toString())
    const gwCar = await parseVerifiedCar(answer.body)
    assert.equal(gwCar.blocks.length, blocks, 'the same blocks as car export')
  })
})
