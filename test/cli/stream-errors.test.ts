/**
 * A read that fails after the daemon has started its answer (the headers
 * and the first bytes are out) names its cause in the CLI: `cat`, `get` and
 * `car export` print the daemon's typed error in one line and exit non-zero,
 * not "the answer ended early"; `get` and `car export` leave no file. The
 * fault is real: one byte of the file's second leaf flipped in its pack on
 * disk while the daemon is stopped, so the first leaf is served and the
 * second fails its check with no peer to fetch it from.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { eventually, exists, initSwarm, lines, runShell, runShoal, shoalJson, shoalOk, sleep, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }
const LEAF = 262_144

/** Flip one byte of `needle`'s first occurrence in the pack files under `repo`; fails when it is in none. */
async function flipInPacks (repo: string, needle: Uint8Array): Promise<void> {
  const dir = join(repo, 'blocks', 'packs')
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    const at = (await readFile(path)).indexOf(needle)
    if (at < 0) continue
    const fh = await open(path, 'r+')
    try {
      const byte = Buffer.alloc(1)
      await fh.read(byte, 0, 1, at + 100)
      byte[0] ^= 0xff
      await fh.write(byte, 0, 1, at + 100)
    } finally {
      await fh.close()
    }
    return
  }
  throw new Error('the bytes are in no pack')
}

describe('errors in the middle of a read', () => {
  it('cat, get and car export name the cause of a read that fails after its first bytes, and leave no file', TEST, async t => {
    const dir = await tempDir(t)
    const first = await startDaemon(t)
    const data = randomBytes(4 * LEAF, 31)
    await writeFile(join(dir, 'f.bin'), data)
    await shoalOk(first.repo, ['add', join(dir, 'f.bin'), '--chunker', `size-${LEAF}`, '--pin', 'none'])
    await first.stop()
    await flipInPacks(first.repo, data.subarray(LEAF, LEAF + 64))
    const d = await startDaemon(t, first.repo)

    const cat = await runShoal(['--repo', d.repo, 'cat', '/f.bin'])
    assert.notEqual(cat.code, 0)
    assert.equal(lines(cat.stderr).length, 1, cat.stderr)
    assert.match(cat.stderr, /failed its check here and no peer could supply it .*\(BlockUnavailableError\)$/m, cat.stderr)
    assert.doesNotMatch(cat.stderr, /ended early/, 'the cause, not the cut')
    assert.ok(cat.stdout.byteLength < data.byteLength, 'the bad leaf is never served')
    assert.ok(cat.stdout.equals(data.subarray(0, cat.stdout.byteLength)), 'what came before it is the file')

    // the same through a real pipe, which the daemon writes itself (node/api/caller-pipe.ts)
    const piped = await runShell('$SHOAL cat /f.bin | cat', d.repo)
    assert.notEqual(piped.code, 0)
    assert.equal(lines(piped.stderr).length, 1, piped.stderr)
    assert.match(piped.stderr, /failed its check here and no peer could supply it .*\(BlockUnavailableError\)$/m, piped.stderr)
    assert.ok(piped.stdout.byteLength < data.byteLength, 'the bad leaf is never served')
    assert.ok(piped.stdout.equals(data.subarray(0, piped.stdout.byteLength)), 'what came before it is the file')

    for (const args of [['get', '/f.bin', '-o', join(dir, 'out.bin')], ['car', 'export', '/f.bin', '-o', join(dir, 'out.car')]]) {
      const r = await runShoal(['--repo', d.repo, ...args])
      assert.notEqual(r.code, 0, args.join(' '))
      assert.equal(lines(r.stderr).length, 1, r.stderr)
      assert.match(r.stderr, /failed its check here .*\(BlockUnavailableError\)$/m, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(await exists(args[args.length - 1]), false, `${args.join(' ')} leaves no file`)
    }
    assert.deepEqual((await readdir(dir)).sort(), ['f.bin'], 'no staging file left either')
  })

  it('get names the cut when the daemon stops in the middle of its answer, and leaves no file', TEST, async t => {
    const dir = await tempDir(t)
    const out = join(await tempDir(t), 'out')
    const [ra, rb] = await initSwarm(dir, ['a', 'b'])
    const [a, b] = await Promise.all([startDaemon(t, ra), startDaemon(t, rb)])
    await shoalOk(b.repo, ['peers', 'connect', String((await shoalJson(a.repo, ['id'])).addresses[0])])
    const data = randomBytes(512 * LEAF, 32)
    await writeFile(join(dir, 'f.bin'), data)
    await shoalOk(a.repo, ['add', join(dir, 'f.bin'), '--to', '/f.bin', '--chunker', `size-${LEAF}`, '--pin', 'none'])
    await eventually('/f.bin on b', async () => (await runShoal(['--repo', b.repo, 'stat', '/f.bin'])).code === 0)
    await mkdir(out)
    // b reads the file from a, the only holder; once b's answer has begun, a stalls and b stops
    const get = runShoal(['--repo', b.repo, 'get', '/f.bin', '-o', join(out, 'f.bin')])
    try {
      await eventually('the first bytes of b\'s answer', async () => {
        for (const name of await readdir(out)) if ((await stat(join(out, name))).size > 0) return true
        return false
      }, 30_000)
      a.child.kill('SIGSTOP')
      await sleep(300)
      await b.stop()
    } finally {
      a.child.kill('SIGCONT')
    }
    const r = await get
    assert.notEqual(r.code, 0, 'the get did not finish')
    assert.equal(lines(r.stderr).length, 1, r.stderr)
    assert.doesNotMatch(r.stderr, /^shoal: aborted$/m, 'not Node\'s bare error')
    // the daemon, gone, cannot say why it cut the answer: the cut is named
    assert.match(r.stderr, /^shoal: the daemon's answer ended early \(in its body: .+\): did the daemon stop\? \(TruncatedResponseError\)$/m, r.stderr)
    assert.deepEqual(await readdir(out), [], 'no file, no staging file left')
  })
})
