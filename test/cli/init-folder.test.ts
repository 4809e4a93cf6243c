/**
 * `shoal init` makes the repo folder one level at a time: a `--repo` where
 * no folder can be made (under /proc, where Node's recursive mkdir looped
 * forever) fails at once with one line; a nested new path still works.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { exists, lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 60_000 }
const LINUX = { ...TEST, skip: process.platform !== 'linux' ? 'needs /proc' : undefined }

/** A failing init ends within this bound (the hang it replaces never ended). */
const FAIL_WITHIN_MS = 10_000

describe('shoal init: the repo folder', { concurrency: true }, () => {
  it('a --repo under /proc fails within seconds with one line naming the folder (RepoFolderError)', LINUX, async () => {
    for (const [repo, match] of [
      ['/proc/shoal-test/x', /^shoal: cannot create folder \/proc\/shoal-test \(for \/proc\/shoal-test\/x\): \/proc takes no new folders \(ENOENT\) \(RepoFolderError\)$/],
      // the root is there: the folders inside it cannot be made
      ['/proc', /^shoal: cannot create folder \/proc\/blocks: \/proc takes no new folders \(ENOENT\) \(RepoFolderError\)$/]
    ] as const) {
      const r = await runShoal(['--repo', repo, 'init', '--api', '127.0.0.1:0'], { timeoutMs: FAIL_WITHIN_MS })
      assert.equal(r.code, 1, r.stderr)
      assert.deepEqual(lines(r.stderr).length, 1, r.stderr)
      assert.match(r.stderr.trim(), match)
      assert.equal(r.stdout.length, 0)
    }
    // --json: one JSON line
    const r = await runShoal(['--json', '--repo', '/proc/shoal-test/x', 'init'], { timeoutMs: FAIL_WITHIN_MS })
    assert.equal(r.code, 1, r.stderr)
    assert.equal(JSON.parse(r.stderr).error.name, 'RepoFolderError')
  })

  it('a --repo under a file fails with one line and makes nothing', TEST, async t => {
    const dir = await tempDir(t)
    await writeFile(join(dir, 'file'), 'x')
    const r = await runShoal(['--repo', join(dir, 'file', 'repo'), 'init', '--api', '127.0.0.1:0'], { timeoutMs: FAIL_WITHIN_MS })
    assert.equal(r.code, 1, r.stderr)
    assert.equal(lines(r.stderr).length, 1, r.stderr)
    assert.match(r.stderr, /^shoal: cannot create folder .*\/file\/repo: .*\/file is not a folder \(ENOTDIR\) \(RepoFolderError\)\n$/)
    assert.deepEqual(await readdir(dir), ['file'])
  })

  it('a nested new --repo (a/b/c) is made, its root private', TEST, async t => {
    const dir = await tempDir(t)
    const repo = join(dir, 'a', 'b', 'c')
    const doc = await shoalJson(repo, ['init', '--api', '127.0.0.1:0'])
    assert.equal(doc.repo, repo)
    assert.ok(await exists(join(repo, 'config.json')))
    for (const sub of ['blocks', 'namespace', 'tmp']) assert.ok((await stat(join(repo, sub))).isDirectory(), sub)
    assert.equal((await stat(repo)).mode & 0o077, 0, 'the repo folder is private')
    assert.deepEqual(await readdir(dir), ['a'])
  })

  it('a --repo folder that was there before (0755, holding a mount\'s lost+found) is closed to other users', TEST, async t => {
    const dir = await tempDir(t)
    const repo = join(dir, 'data')
    await mkdir(join(repo, 'lost+found'), { recursive: true })
    await chmod(repo, 0o755)
    await shoalJson(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    // others cannot enter it, so the stores inside (made with the umask) are out of their reach
    assert.equal((await stat(repo)).mode & 0o7777, 0o700)
    assert.ok(await exists(join(repo, 'lost+found')))
  })

  it('a daemon on a repo folder others can enter warns, naming the folder and the fix; a closed one does not', TEST, async t => {
    const repo = join(await tempDir(t), 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const closed = await startDaemon(t, repo)
    assert.doesNotMatch(closed.output().stderr, /repo folder is open/)
    await closed.stop()
    // a repo made before init closed its folder
    await chmod(repo, 0o755)
    const open = await startDaemon(t, repo)
    const warning = lines(open.output().stderr).filter(l => l.includes('repo folder is open'))
    assert.equal(warning.length, 1, open.output().stderr)
    assert.match(warning[0], /mode 0755/)
    assert.ok(warning[0].includes(`chmod go-rwx ${repo}`), warning[0])
  })
})
