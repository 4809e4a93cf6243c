/**
 * A daemon killed (SIGKILL) after `close` acknowledged files written
 * through its mount and before their commit landed: its next start commits
 * them, as their commit would have been (node/fuse/journal.ts,
 * node/fuse/rescue.ts). Before, they were lost: staging is no journal, and
 * each start empties it.
 *
 * Two ways to hold a commit back, both real: a repo disk whose reserve
 * refuses every commit (small files, staged in memory, stay staged), and a
 * kill sent as soon as a large file is closed (its import has only begun).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { runShoal, shoalJson, shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'
import { mountedDaemon } from './fuse-daemon.js'

const TEST = { timeout: 120_000 }
const MiB = 1024 * 1024

/** SIGKILL the daemon's own process (the `shoal daemon` command runs it as a child: test/cli/daemon-signals.test.ts), and wait until it is gone. */
async function crash (repo: string, daemon: TestDaemon): Promise<void> {
  const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
  process.kill(pid, 'SIGKILL')
  for (let i = 0; i < 200 && existsSync(`/proc/${pid}`); i++) await sleep(50)
  assert.equal(existsSync(`/proc/${pid}`), false, 'the daemon is gone')
  await daemon.stop()
  // left by the killed daemon: the next start is ready once it writes its own (what startDaemon waits for)
  await rm(join(repo, 'api'), { force: true })
}

async function catOf (repo: string, path: string): Promise<Buffer | undefined> {
  const r = await runShoal(['--repo', repo, 'cat', path])
  return r.code === 0 ? r.stdout : undefined
}

describe('files closed through a mount when the daemon is killed', () => {
  it('are committed at its next start: new, edited and renamed ones at their paths (a file renamed over another, a folder renamed), a removed one not', TEST, async t => {
    const { repo, mnt, daemon } = await mountedDaemon(t)
    await writeFile(join(mnt, 'old.txt'), 'first line\n')
    await shoalOk(repo, ['unmount', mnt])
    await daemon.stop()

    // from here every commit finds no room: what is closed stays staged (in memory: small files)
    await shoalOk(repo, ['config', 'set', 'storage.reserve', String(2 ** 50)])
    const full = await startDaemon(t, repo)
    await shoalOk(repo, ['mount', mnt])
    await writeFile(join(mnt, 'new.txt'), 'written, closed, not committed\n')
    await appendFile(join(mnt, 'old.txt'), 'second line\n')
    await writeFile(join(mnt, 'moved-from.txt'), 'renamed before its commit\n')
    await rename(join(mnt, 'moved-from.txt'), join(mnt, 'moved-to.txt'))
    await writeFile(join(mnt, 'gone.txt'), 'removed before its commit\n')
    await rm(join(mnt, 'gone.txt'))
    await writeFile(join(mnt, 'over.txt'), 'renamed over\n')
    await writeFile(join(mnt, 'winner.txt'), 'renamed onto the other\n')
    await rename(join(mnt, 'winner.txt'), join(mnt, 'over.txt'))
    await mkdir(join(mnt, 'folder'))
    await writeFile(join(mnt, 'folder', 'inner.txt'), 'in a folder renamed before its commit\n')
    await rename(join(mnt, 'folder'), join(mnt, 'folder-renamed'))
    assert.equal(await catOf(repo, '/new.txt'), undefined, 'not committed before the kill')
    assert.ok((await readdir(join(repo, 'fuse-journal'))).some(n => n.endsWith('.log')), 'the journal holds them')

    await crash(repo, full)
    await shoalOk(repo, ['config', 'set', 'storage.reserve', String(MiB)])
    const again = await startDaemon(t, repo)

    assert.equal((await catOf(repo, '/new.txt'))?.toString(), 'written, closed, not committed\n')
    assert.equal((await catOf(repo, '/old.txt'))?.toString(), 'first line\nsecond line\n', 'the edit replaced the version it started from')
    assert.equal((await catOf(repo, '/moved-to.txt'))?.toString(), 'renamed before its commit\n')
    assert.equal(await catOf(repo, '/moved-from.txt'), undefined, 'at its new name only')
    assert.equal(await catOf(repo, '/gone.txt'), undefined, 'a removed file does not come back')
    assert.equal((await catOf(repo, '/over.txt'))?.toString(), 'renamed onto the other\n', 'a file renamed over another: the one renamed')
    assert.equal(await catOf(repo, '/winner.txt'), undefined)
    assert.equal((await catOf(repo, '/folder-renamed/inner.txt'))?.toString(), 'in a folder renamed before its commit\n', 'a folder renamed: its files under its new name')
    assert.equal(await catOf(repo, '/folder/inner.txt'), undefined)
    assert.deepEqual(await shoalJson(repo, ['conflicts']), [], 'no conflict: nothing else was written meanwhile')
    // the mount the kill left is back (its record survived), and shows them
    assert.equal(await readFile(join(mnt, 'new.txt'), 'utf8'), 'written, closed, not committed\n')
    assert.match(again.output().stderr + again.output().stdout, /were committed now/, 'the start says so')
    assert.deepEqual((await readdir(join(repo, 'fuse-journal'))).filter(n => n.startsWith('rescued-')), [], 'the rescue folder went once committed')
  })

  it('a large file closed just before the kill is committed at the next start, whole', TEST, async t => {
    const { repo, mnt, daemon } = await mountedDaemon(t)
    const bytes = randomBytes(96 * MiB)
    // staged on disk (past 1 MiB); its commit imports it after close returns
    await writeFile(join(mnt, 'big.bin'), bytes)
    await crash(repo, daemon)
    const again = await startDaemon(t, repo)
    const got = await catOf(repo, '/big.bin')
    assert.ok(got !== undefined, 'committed')
    // the kill came while its import had only begun: the start committed it
    assert.match(again.output().stderr + again.output().stdout, /1 file\(s\) closed through a mount before the daemon died, and not yet committed then, were committed now/)
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(bytes).digest('hex'))
  })

  it('a file whose commit still finds no room at the next start is kept in <repo>/uncommitted with its bytes and mode, and said', TEST, async t => {
    const { repo, mnt, daemon } = await mountedDaemon(t, { config: [['storage.reserve', String(2 ** 50)]] })
    await writeFile(join(mnt, 'notes.txt'), 'closed, not committed\n', { mode: 0o640 })
    await crash(repo, daemon)
    const again = await startDaemon(t, repo)
    const dirs = await readdir(join(repo, 'uncommitted'))
    assert.equal(dirs.length, 1)
    const kept = join(repo, 'uncommitted', dirs[0], 'notes.txt')
    assert.equal(await readFile(kept, 'utf8'), 'closed, not committed\n')
    assert.equal((await stat(kept)).mode & 0o777, 0o640)
    assert.match(again.output().stderr + again.output().stdout, /could not be committed; it is kept in/, 'the log says where')
    const status = (await shoalJson<{ uncommitted: { files: number } }>(repo, ['status'])).uncommitted
    assert.equal(status.files, 1, 'and `shoal status` counts it')
    assert.equal(await catOf(repo, '/notes.txt'), undefined)
  })

  it('a large file opened again with O_TRUNC right after its close: the version that close acknowledged is committed before the truncation, and survives the kill', TEST, async t => {
    const { repo, mnt, daemon } = await mountedDaemon(t)
    const bytes = randomBytes(32 * MiB)
    await writeFile(join(mnt, 'saved.bin'), bytes)
    // an editor's next save, within the commit queue's linger: the staged file the journal names is cut and written again
    const again = await open(join(mnt, 'saved.bin'), 'w')
    try {
      await again.write('the next save, not closed yet')
      await crash(repo, daemon)
    } finally {
      await again.close().catch(() => {})
    }
    await startDaemon(t, repo)
    const got = await catOf(repo, '/saved.bin')
    assert.ok(got !== undefined, 'a version is there')
    assert.equal(got.length, bytes.length, 'the version close acknowledged, not the save cut short')
    assert.ok(got.equals(bytes))
  })
})
