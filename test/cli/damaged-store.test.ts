/**
 * A daemon whose LevelDB stores were damaged on disk while it was stopped
 * (flipped bytes in a MANIFEST or a table, made for real in a repo of a real
 * daemon on 127.0.0.1). The block index is rebuilt from the packs at start
 * and every file reads back; a damaged namespace store stops the start with
 * one line naming the store, what LevelDB found and the command that fixes
 * it, and the daemon starts after that command. Before, both gave the bare
 * "shoal: Database failed to open" (or LevelDB's "Corruption: …") and the
 * daemon could not start at all.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from '../helpers/bytes.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { tempDir, type CleanupContext } from '../helpers/temp.js'

const TEST = { timeout: 120_000 }

/** Flip every 7th byte from byte 10 on of each file of `dir` whose name passes `pick`. */
async function rot (dir: string, pick: (name: string) => boolean): Promise<number> {
  let files = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isFile() || !pick(e.name)) continue
    const bytes = await readFile(join(dir, e.name))
    for (let i = 10; i < bytes.length; i += 7) bytes[i] ^= 0xff
    await writeFile(join(dir, e.name), bytes)
    files++
  }
  return files
}

/** A repo whose daemon added `/f.bin` (not coded: this node alone) and was stopped; the file's bytes and CID. */
async function repoWithFile (t: CleanupContext): Promise<{ repo: string, data: Uint8Array, cid: string }> {
  const dir = await tempDir(t, 'shoal-damaged-')
  const repo = join(dir, 'repo')
  await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  const data = randomBytes(3 * 1024 * 1024, 42)
  await writeFile(join(dir, 'f.bin'), data)
  const daemon = await startDaemon(t, repo)
  const { cid } = await shoalJson<{ cid: string }>(repo, ['add', join(dir, 'f.bin'), '--to', '/f.bin', '--pin', 'none'])
  assert.equal((await daemon.stop()).code, 0)
  // one more start and stop: LevelDB moves its logs into tables
  const again = await startDaemon(t, repo)
  assert.equal((await again.stop()).code, 0)
  return { repo, data, cid }
}

describe('damaged LevelDB stores at daemon start', () => {
  it('a damaged block index is rebuilt from the packs: the daemon starts and the file reads back', TEST, async (t) => {
    const { repo, data } = await repoWithFile(t)
    const rotten = await rot(join(repo, 'blocks'), n => n.startsWith('MANIFEST-') || n.endsWith('.ldb'))
    assert.ok(rotten > 0)
    const daemon = await startDaemon(t, repo)
    const out = await shoalOk(repo, ['cat', '/f.bin'])
    assert.ok(Buffer.compare(out, Buffer.from(data)) === 0, 'the file reads back whole')
    const { stdout, stderr } = daemon.output()
    assert.match(stdout + stderr, /the index was damaged .* rebuilt from the packs/)
    assert.ok((await readdir(join(repo, 'blocks'))).some(n => n.startsWith('damaged-index-')), 'the damaged index is kept aside')
    assert.equal((await daemon.stop()).code, 0)
  })

  it('a damaged namespace store stops the start with one line and the command that fixes it', TEST, async (t) => {
    const { repo, data, cid } = await repoWithFile(t)
    const ns = join(repo, 'namespace')
    assert.ok(await rot(ns, n => n.startsWith('MANIFEST-')) > 0)
    const r = await runShoal(['--repo', repo, 'daemon'], { env: { SHOAL_LOG_LEVEL: 'warn' }, timeoutMs: 60_000 })
    assert.notEqual(r.code, 0)
    const said = lines(r.stderr).filter(l => l.startsWith('shoal: '))
    assert.equal(said.length, 1, r.stderr)
    assert.match(said[0], /^shoal: the namespace store .*namespace is damaged \(Corruption: .*\): move it aside with `mv .*namespace .*namespace\.damaged` and start the daemon again: .* \(StoreDamagedError\)$/)
    // the command it gives: the node starts (a lone node: it writes at once when told so) and the blocks are all here
    await rename(ns, `${ns}.damaged`)
    const daemon = await startDaemon(t, repo, { env: { SHOAL_NAMESPACE_RECOVERY: 'skip' } })
    await shoalOk(repo, ['mkdir', '/after'])
    assert.ok(Buffer.compare(await shoalOk(repo, ['cat', cid]), Buffer.from(data)) === 0, 'the file reads back by its CID')
    assert.equal((await daemon.stop()).code, 0)
  })
})
