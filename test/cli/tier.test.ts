/**
 * The S3 cold tier through the CLI, against a real S3 server (s3rver) on
 * 127.0.0.1: `tier s3` (refused, with nothing saved, for an unreachable
 * endpoint or a missing bucket), `pin add --tier cold`, garbage collection
 * dropping the hot copy, whole and ranged reads from the tier, an altered
 * object refused (and nothing lost), `tier pull` bringing the file back;
 * a striped file with a cold copy whose stripes lost too many holders to be
 * rebuilt is read from the tier.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { closedPort, startS3Server, S3RVER_CREDENTIALS, S3RVER_ENV } from '../node/tiers/s3-server.js'
import { createTierClient } from '../../node/tiers/index.js'

const TEST = { timeout: 120_000 }

/** The test S3 server's credentials for the daemons, and none of this machine's AWS files. */
const env = S3RVER_ENV

describe('the cold tier through the CLI', () => {
  it('tier s3, pin add --tier cold, gc, reads from the tier, tampering refused, tier pull', TEST, async t => {
    const s3 = await startS3Server(t)
    const d = await startDaemon(t, undefined, { env })
    const dir = await tempDir(t)
    const data = randomBytes(6 * 1024 * 1024, 21)
    await writeFile(join(dir, 'f.bin'), data)
    // no stripes: a coded file's shards are kept for the grace period after its pin changes
    await shoalOk(d.repo, ['add', join(dir, 'f.bin'), '--chunker', 'size-262144', '--pin', 'none'])

    // no tier yet: refused, one line
    const none = await runShoal(['--repo', d.repo, 'pin', 'add', '/f.bin', '--tier', 'cold'])
    assert.notEqual(none.code, 0)
    assert.equal(lines(none.stderr).length, 1)
    assert.match(none.stderr, /no cold tier/)
    const usage = await runShoal(['--repo', d.repo, 'pin', 'add', '/f.bin', '--tier', 'lukewarm'])
    assert.equal(usage.code, 2)

    // an endpoint nobody answers on, and a bucket that does not exist: refused, nothing saved
    for (const args of [['--endpoint', `http://127.0.0.1:${await closedPort()}`, '--bucket', s3.bucket], ['--endpoint', s3.endpoint, '--bucket', 'no-such-bucket']]) {
      const r = await runShoal(['--repo', d.repo, 'tier', 's3', ...args], { timeoutMs: 60_000 })
      assert.notEqual(r.code, 0, args.join(' '))
      assert.equal(lines(r.stderr).length, 1, r.stderr)
      assert.equal((await shoalJson<{ configured: boolean }>(d.repo, ['tier', 'ls'])).configured, false)
    }
    assert.match((await runShoal(['--repo', d.repo, 'tier', 's3', '--endpoint', 'ftp://x', '--bucket', 'b'])).stderr, /endpoint/)
    // a prefix with `..` segments: refused, one line, nothing saved
    const dots = await runShoal(['--repo', d.repo, 'tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--prefix', '../..'])
    assert.equal(dots.code, 1, dots.stderr)
    assert.match(dots.stderr, /must not hold "\." or "\.\." segments/)
    assert.equal(lines(dots.stderr).length, 1, dots.stderr)
    assert.equal((await shoalJson<{ configured: boolean }>(d.repo, ['tier', 'ls'])).configured, false)

    await shoalOk(d.repo, ['tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--prefix', 'cold'])
    const status = await shoalJson<{ configured: boolean, probe: { reachable: boolean } }>(d.repo, ['tier', 'ls'])
    assert.equal(status.configured, true)
    assert.equal(status.probe.reachable, true)
    assert.doesNotMatch(JSON.stringify(status), /S3RVER/, 'no credentials in any output')

    // push: the record names the copy; the hot copy goes at the next gc
    const pin = await shoalJson<{ policy: string, cold: { endpoint: string, bucket: string, key: string } }>(d.repo, ['pin', 'add', '/f.bin', '--tier', 'cold'])
    assert.equal(pin.policy, 'none')
    assert.equal(pin.cold.bucket, s3.bucket)
    assert.ok(pin.cold.key.startsWith('cold/'), pin.cold.key)
    const listed = await shoalJson<Array<{ path: string, cold?: unknown }>>(d.repo, ['pin', 'ls'])
    assert.ok(listed.some(p => p.path === '/f.bin' && p.cold !== undefined))
    const gc = await shoalJson<{ removed: number }>(d.repo, ['gc'])
    assert.ok(gc.removed >= 24, `the leaves were dropped (${gc.removed} blocks removed)`)
    assert.ok(((await shoalJson<{ blockstoreBytes: number }>(d.repo, ['status'])).blockstoreBytes) < data.byteLength, 'local space was freed')

    // reads come from the tier, verified
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/f.bin']), data)
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/f.bin', '--offset', '1000000', '--length', '300000']), data.subarray(1_000_000, 1_300_000))
    const rm = await runShoal(['--repo', d.repo, 'pin', 'rm', '/f.bin'])
    assert.notEqual(rm.code, 0, 'unpinning the only copy is refused')
    assert.match(rm.stderr, /cold tier/)

    // an altered object is refused, never served; restored, it reads again
    const client = createTierClient({ endpoint: s3.endpoint, bucket: s3.bucket }, { credentials: S3RVER_CREDENTIALS })
    t.after(() => { client.destroy() })
    const original = await client.getBytes(pin.cold.key, 64 * 1024 * 1024)
    const altered = Uint8Array.from(original)
    altered[altered.length >> 1] ^= 0xff
    await client.putBytes(pin.cold.key, altered)
    const bad = await runShoal(['--repo', d.repo, 'cat', '/f.bin'])
    assert.notEqual(bad.code, 0)
    assert.equal(lines(bad.stderr).length, 1, bad.stderr)
    await client.putBytes(pin.cold.key, original)
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/f.bin']), data)

    // pull: every block back here, hot pin by size, no cold copy in the record; the tier is no longer needed
    const hot = await shoalJson<{ policy: string, cold?: unknown }>(d.repo, ['tier', 'pull', '/f.bin'])
    assert.equal(hot.policy, 'ec:4+2')
    assert.equal(hot.cold, undefined)
    await client.putBytes(pin.cold.key, altered)
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/f.bin']), data)
  })

  it('a striped file whose holders are gone but one is read from its cold copy', TEST, async t => {
    const s3 = await startS3Server(t)
    const dir = await tempDir(t)
    const [a, b, c] = await Promise.all((await initSwarm(dir, ['a', 'b', 'c'])).map(async r => await startDaemon(t, r, { env })))
    const aAddr = (await shoalJson<{ addresses: string[] }>(a.repo, ['id'])).addresses[0]
    await shoalOk(b.repo, ['peers', 'connect', aAddr])
    await shoalOk(c.repo, ['peers', 'connect', aAddr])
    await eventually('a sees both peers', async () => (await shoalJson<unknown[]>(a.repo, ['peers', 'ls'])).length === 2)
    // 16 leaves, 8 stripes of ec:2+1: one shard of every stripe on each node
    const data = randomBytes(4 * 1024 * 1024, 22)
    await writeFile(join(dir, 'f.bin'), data)
    await shoalOk(a.repo, ['add', join(dir, 'f.bin'), '--chunker', 'size-262144', '--pin', 'ec:2+1', '--wait'])
    await shoalOk(a.repo, ['tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--prefix', 'cold'])
    const pin = await shoalJson<{ policy: string, cold?: { key: string } }>(a.repo, ['pin', 'add', '/f.bin', '--tier', 'cold', '--policy', 'ec:2+1'])
    assert.equal(pin.policy, 'ec:2+1')
    assert.ok(pin.cold !== undefined, 'the record names the cold copy')
    type Status = { stripes: Array<{ shards: Array<{ holders: string[] }> }> }
    const bId = (await shoalJson<{ id: string }>(b.repo, ['id'])).id
    await eventually('b holds a shard of every stripe and knows the cold copy', async () => {
      const entry = await runShoal(['--repo', b.repo, '--json', 'pin', 'ls'])
      if (entry.code !== 0 || !entry.stdout.toString().includes(pin.cold?.key ?? '-')) return false
      const status = await shoalJson<Status>(a.repo, ['pin', 'status', '/f.bin'])
      return status.stripes.length === 8 && status.stripes.every(s => s.shards.filter(sh => sh.holders.includes(bId)).length === 1)
    })

    // a and c stop: every stripe keeps one shard (b's), fewer than the k = 2 a rebuild needs
    await a.stop()
    await c.stop()
    assertBytesEqual(await shoalOk(b.repo, ['cat', '/f.bin']), data)
    assertBytesEqual(await shoalOk(b.repo, ['cat', '/f.bin', '--offset', '1500000', '--length', '1000000']), data.subarray(1_500_000, 2_500_000))
  })
})
