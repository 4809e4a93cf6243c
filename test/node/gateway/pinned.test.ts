/**
 * Pinned content through the gateway: a striped (erasure-coded) file whose
 * writer let go of the leaves, served by a holder's gateway from the shard
 * holders; a file whose only copy is in the cold tier (a real S3 server),
 * found through its pin in the namespace and read from the tier (its root as
 * a raw block too; a leaf of it, as documented, not).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from '../../helpers/bytes.js'
import { tempDir } from '../../helpers/temp.js'
import { initSwarm, shoalJson, shoalOk, startDaemon } from '../../helpers/cli.js'
import { startS3Server, S3RVER_CREDENTIALS } from '../tiers/s3-server.js'
import { call, gatewayOf, parseVerifiedCar, verifyBlock } from './helpers.js'
import * as dagPB from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'

const TEST = { timeout: 180_000 }
const LEAF = 262144
/** The test S3 server's credentials, and none of this machine's AWS files. */
const S3_ENV = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent' }

/** The file at `cid` from the gateway `gw`: whole, one range, and as a CAR, each checked against `data`. */
async function assertServed (gw: string, cid: string, data: Uint8Array): Promise<void> {
  const whole = await call(`${gw}/ipfs/${cid}`)
  assert.equal(whole.status, 200, whole.body.subarray(0, 300).toString())
  assert.deepEqual(whole.body, Buffer.from(data))
  const part = await call(`${gw}/ipfs/${cid}`, { headers: { range: 'bytes=1000000-1500000' } })
  assert.equal(part.status, 206)
  assert.deepEqual(part.body, Buffer.from(data.subarray(1_000_000, 1_500_001)))
  const car = await parseVerifiedCar((await call(`${gw}/ipfs/${cid}?format=car`)).body)
  assert.deepEqual(car.roots, [cid])
  assert.equal(car.blocks.length, 1 + Math.ceil(data.byteLength / LEAF))
}

describe('the gateway and pinned files', { concurrency: true }, () => {
  it('a striped file whose writer dropped its leaves is served from a holder\'s gateway', TEST, async t => {
    const dir = await tempDir(t, 'shoal-gw-striped-')
    const repos = await initSwarm(dir, ['w', 'a', 'b'])
    const [w, a, b] = await Promise.all(repos.map(async r => await startDaemon(t, r)))
    const addrOf = async (repo: string): Promise<string> => (await shoalJson(repo, ['id'])).addresses[0]
    await shoalOk(a.repo, ['peers', 'connect', await addrOf(w.repo)])
    await shoalOk(b.repo, ['peers', 'connect', await addrOf(w.repo)])
    await shoalOk(a.repo, ['peers', 'connect', await addrOf(b.repo)])
    const data = randomBytes(2 * 1024 * 1024, 11)
    await writeFile(join(dir, 's.bin'), data)
    const { cid } = await shoalJson(w.repo, ['add', join(dir, 's.bin'), '--to', '/s.bin', '--pin', 'ec:2+1', '--wait', '--chunker', `size-${LEAF}`])
    const gc = await shoalJson<{ removed: number }>(w.repo, ['gc'])
    assert.ok(gc.removed >= data.byteLength / LEAF / 2, 'the writer let go of the leaves other nodes hold')
    await assertServed(await gatewayOf(a.repo), cid, data)
  })

  it('a file whose only copy is in the cold tier is served from the tier', TEST, async t => {
    const s3 = await startS3Server(t)
    const d = await startDaemon(t, undefined, { env: S3_ENV })
    const dir = await tempDir(t, 'shoal-gw-cold-')
    const data = randomBytes(2 * 1024 * 1024 + 77, 12)
    await writeFile(join(dir, 'c.bin'), data)
    const { cid } = await shoalJson(d.repo, ['add', join(dir, 'c.bin'), '--to', '/c.bin', '--pin', 'none', '--chunker', `size-${LEAF}`])
    await shoalOk(d.repo, ['tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--prefix', 'cold'])
    await shoalOk(d.repo, ['pin', 'add', '/c.bin', '--tier', 'cold'])
    const gc = await shoalJson<{ removed: number }>(d.repo, ['gc'])
    assert.ok(gc.removed > data.byteLength / LEAF, 'the hot copy is gone')
    const gw = await gatewayOf(d.repo)
    await assertServed(gw, cid, data)
    // as raw blocks: the file's root is found through its pin; a leaf below it is not (docs/gateway.md, "Limits")
    const root = await call(`${gw}/ipfs/${cid as string}?format=raw`)
    assert.equal(root.status, 200, root.body.subarray(0, 300).toString())
    verifyBlock(CID.parse(cid), root.body)
    const leaf = dagPB.decode(root.body).Links[0].Hash.toString()
    const leafAnswer = await call(`${gw}/ipfs/${leaf}?format=raw`)
    assert.equal(leafAnswer.status, 404, leafAnswer.body.subarray(0, 300).toString())
    assert.match(leafAnswer.headers.get('content-type') ?? '', /^application\/json/)
  })
})
