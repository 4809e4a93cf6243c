/**
 * The cold tier when it fails, through real daemons and a real S3 server
 * (s3rver) on 127.0.0.1:
 *
 * - a file kept cold (`--policy none`) whose tier is down is read from a
 *   peer that still holds it hot, instead of failing on the tier's error;
 * - `pin add --tier cold` of a file whose recorded cold copy was altered
 *   reads the copy back, finds the damage and pushes it again from the hot
 *   copy (before, the damaged copy was reused as it was, and the next `gc`
 *   dropped the only good copy); with no hot copy left it fails, one line,
 *   and the record is unchanged;
 * - `pin status` says where the cold copy is and whether it is there and
 *   intact (`--verify` reads it back whole), down, or gone; when that copy
 *   was the file's only one, it exits 1 (the file does not read now), and a
 *   read that failed on an altered copy is named by `shoal status`.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { startS3Server, S3RVER_CREDENTIALS, S3RVER_ENV } from '../node/tiers/s3-server.js'
import { createTierClient } from '../../node/tiers/index.js'

const TEST = { timeout: 120_000 }

/** The test S3 server's credentials for the daemons, and none of this machine's AWS files. */
const env = S3RVER_ENV

interface Pinned { policy: string, cold?: { endpoint: string, bucket: string, key: string } }
interface Status { state: string, cold?: { key: string, state: string, verified?: boolean, error?: { name: string, message: string } }, blocks?: { missing: number, heldByNone?: number } }

/**
 * `pin status PATH --json` of a file that does not read now: its report on stdout, then exit 1 with one line
 * (DataUnavailableError).
 */
async function unreadable (repo: string, path: string, extra: string[] = []): Promise<Status> {
  const r = await runShoal(['--repo', repo, '--json', 'pin', 'status', path, ...extra])
  assert.equal(r.code, 1, r.stderr)
  assert.equal(lines(r.stderr).length, 1, r.stderr)
  assert.match(r.stderr, /DataUnavailableError/)
  return JSON.parse(r.stdout.toString()) as Status
}

describe('the cold tier when it fails', () => {
  it('a cold file whose tier is down is read from a peer that holds it hot', TEST, async t => {
    const s3 = await startS3Server(t)
    const dir = await tempDir(t)
    const [a, b] = await Promise.all((await initSwarm(dir, ['a', 'b'])).map(async r => await startDaemon(t, r, { env })))
    await shoalOk(b.repo, ['peers', 'connect', (await shoalJson<{ addresses: string[] }>(a.repo, ['id'])).addresses[0]])
    const data = randomBytes(2 * 1024 * 1024 + 1000, 31)
    await writeFile(join(dir, 'f.bin'), data)
    await shoalOk(a.repo, ['add', join(dir, 'f.bin'), '--chunker', 'size-262144', '--pin', 'none'])
    await shoalOk(a.repo, ['tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket])
    const pin = await shoalJson<Pinned>(a.repo, ['pin', 'add', '/f.bin', '--tier', 'cold'])
    assert.ok(pin.cold !== undefined)
    await eventually('b knows the cold copy', async () => {
      const r = await runShoal(['--repo', b.repo, '--json', 'pin', 'ls'])
      return r.code === 0 && r.stdout.toString().includes(pin.cold?.key ?? '-')
    })
    // a keeps its hot copy (no gc); the tier goes down
    await s3.stop()
    assertBytesEqual(await shoalOk(b.repo, ['cat', '/f.bin']), data)
    assertBytesEqual(await shoalOk(b.repo, ['cat', '/f.bin', '--offset', '300000', '--length', '700000']), data.subarray(300_000, 1_000_000))
  })

  it('pin add --tier cold pushes a damaged cold copy again from the hot copy; pin status tells', TEST, async t => {
    const s3 = await startS3Server(t)
    const d = await startDaemon(t, undefined, { env })
    const dir = await tempDir(t)
    const data = randomBytes(1536 * 1024 + 7, 32)
    await writeFile(join(dir, 'f.bin'), data)
    await writeFile(join(dir, 'g.bin'), randomBytes(1024 * 1024 + 3, 33))
    await shoalOk(d.repo, ['add', join(dir, 'f.bin'), '--chunker', 'size-262144', '--pin', 'none'])
    await shoalOk(d.repo, ['add', join(dir, 'g.bin'), '--chunker', 'size-262144', '--pin', 'none'])
    await shoalOk(d.repo, ['tier', 's3', '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--prefix', 'cold'])
    const pin = await shoalJson<Pinned>(d.repo, ['pin', 'add', '/f.bin', '--tier', 'cold'])
    const key = pin.cold?.key ?? assert.fail('no cold copy recorded')
    const gPin = await shoalJson<Pinned>(d.repo, ['pin', 'add', '/g.bin', '--tier', 'cold'])
    const gKey = gPin.cold?.key ?? assert.fail('no cold copy recorded')

    const ok = await shoalJson<Status>(d.repo, ['pin', 'status', '/f.bin'])
    assert.equal(ok.cold?.key, key)
    assert.equal(ok.cold?.state, 'ok')
    assert.match((await shoalOk(d.repo, ['pin', 'status', '/f.bin'])).toString(), /cold copy: .*: ok/)

    // one byte of the CAR altered in the bucket: the sizes still match, a read back whole tells
    const client = createTierClient({ endpoint: s3.endpoint, bucket: s3.bucket }, { credentials: S3RVER_CREDENTIALS })
    t.after(() => { client.destroy() })
    const original = await client.getBytes(key, 64 * 1024 * 1024)
    const altered = Uint8Array.from(original)
    altered[altered.length >> 1] ^= 0xff
    await client.putBytes(key, altered)
    const verified = await shoalJson<Status>(d.repo, ['pin', 'status', '/f.bin', '--verify'])
    assert.equal(verified.cold?.state, 'damaged')
    assert.equal(verified.cold?.error?.name, 'TierCorruptObjectError')

    // pinning it cold again mends the copy from the hot blocks still here
    const again = await shoalJson<Pinned>(d.repo, ['pin', 'add', '/f.bin', '--tier', 'cold'])
    assert.equal(again.cold?.key, key)
    assertBytesEqual(await client.getBytes(key, 64 * 1024 * 1024), original)
    assert.equal((await shoalJson<Status>(d.repo, ['pin', 'status', '/f.bin', '--verify'])).cold?.verified, true)
    await shoalOk(d.repo, ['gc'])
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/f.bin']), data)

    // g: its hot copy gone (gc above), then its CAR altered: refused, one line, the record unchanged
    const gOriginal = await client.getBytes(gKey, 64 * 1024 * 1024)
    const gAltered = Uint8Array.from(gOriginal)
    gAltered[gAltered.length >> 1] ^= 0xff
    await client.putBytes(gKey, gAltered)
    const refused = await runShoal(['--repo', d.repo, 'pin', 'add', '/g.bin', '--tier', 'cold'])
    assert.notEqual(refused.code, 0)
    assert.equal(lines(refused.stderr).length, 1, refused.stderr)
    assert.match(refused.stderr, /TierCorruptObjectError/)
    const gStatus = await shoalJson<Status>(d.repo, ['pin', 'status', '/g.bin'])
    assert.equal(gStatus.cold?.key, gKey, 'the record still names the copy')
    // a read of it fails on the altered copy, and `shoal status` names the file (it said "none known")
    const gCat = await runShoal(['--repo', d.repo, 'cat', '/g.bin'])
    assert.notEqual(gCat.code, 0)
    assert.match(gCat.stderr, /TierCorruptObjectError/)
    const damage = lines((await shoalOk(d.repo, ['status'])).toString()).find(l => l.startsWith('damage:')) ?? ''
    assert.match(damage, /\/g\.bin \(a read failed/)
    // read back whole, the copy is found damaged: it was the file's only copy, so the check exits 1 (unreadable now)
    const gVerified = await unreadable(d.repo, '/g.bin', ['--verify'])
    assert.equal(gVerified.cold?.state, 'damaged')
    assert.ok((gVerified.blocks?.heldByNone ?? 0) > 0, 'its blocks are nowhere else')

    // an object gone, then the tier down: pin status says so, still answers, and exits 1 (no other copy)
    await client.delete(gKey)
    assert.equal((await unreadable(d.repo, '/g.bin')).cold?.state, 'missing')
    await s3.stop()
    const down = await unreadable(d.repo, '/f.bin')
    assert.equal(down.cold?.state, 'unreachable')
    const text = await runShoal(['--repo', d.repo, 'pin', 'status', '/f.bin'])
    assert.equal(text.code, 1)
    assert.match(text.stdout.toString(), /cold copy: .*UNREACHABLE/)
    // out of reach for now is not damage: the note of f is not there
    assert.doesNotMatch(lines((await shoalOk(d.repo, ['status'])).toString()).find(l => l.startsWith('damage:')) ?? '', /\/f\.bin/)
  })
})
