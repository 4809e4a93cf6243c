/**
 * `shoal mount` / `shoal unmount` on real daemons (each daemon serves its
 * mount, so this process may touch the mounts): a file written in node A's
 * mount is byte-identical in node B's, renames and deletes propagate, bad
 * input is one line and a non-zero exit, and a daemon restarted after a
 * SIGKILL frees the stale mount it left and mounts it again.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { defer, tempDir } from '../helpers/temp.js'
import { initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, within, type TestDaemon } from '../helpers/cli.js'
import { eventually as within20s, forceUnmount, requireFuse } from '../node/fuse/helpers.js'

/** Poll `fn` until it returns true, at most 20 s. */
async function eventually (what: string, fn: () => Promise<boolean>): Promise<void> {
  await within20s(fn, 20_000, what)
}

const TEST = { timeout: 60_000 }

describe('FUSE mounts through the CLI', () => {
  const ctx = suiteContext()
  let a: TestDaemon, b: TestDaemon
  let dir: string
  let mntA: string, mntB: string

  before(async () => {
    await requireFuse()
    dir = await tempDir(ctx, 'shoal-fuse-cli-')
    mntA = join(dir, 'mnt-a')
    mntB = join(dir, 'mnt-b')
    await mkdir(mntA)
    await mkdir(mntB)
    // runs after the daemons stopped (cleanups run last in, first out), before the temp dir goes
    defer(ctx, async () => { await forceUnmount(mntA); await forceUnmount(mntB) })
    const repos = await initSwarm(dir, ['a', 'b'])
    ;[a, b] = await Promise.all(repos.map(async r => await startDaemon(ctx, r)))
    const aAddr = (await shoalJson(a.repo, ['id'])).addresses[0]
    await shoalOk(b.repo, ['peers', 'connect', aAddr])
  })
  after(async () => {})

  it('mount prints one JSON document; `mounts` lists it; a write in A\'s mount is byte-identical in B\'s', TEST, async () => {
    const mounted = await shoalJson<{ dir: string, since: number, binding: string, maxRequest: number, readAheadKb?: number }>(a.repo, ['mount', mntA])
    assert.equal(mounted.dir, mntA)
    assert.equal(typeof mounted.since, 'number')
    // the default where the libfuse3 binding is built (.ci/run builds it): 1 MiB requests
    assert.deepEqual([mounted.binding, mounted.maxRequest], ['libfuse3', 1024 * 1024])
    assert.ok(typeof mounted.readAheadKb === 'number' && mounted.readAheadKb >= 128, `the mount's read-ahead window is said: ${mounted.readAheadKb}`)
    assert.match((await shoalOk(b.repo, ['mount', mntB])).toString(), /mounted the namespace at .* \(libfuse3, requests up to 1024 KiB, read-ahead \d+ KiB\)/)
    assert.deepEqual((await shoalJson<Array<{ dir: string }>>(a.repo, ['mounts'])).map(m => m.dir), [mntA])

    const bytes = randomBytes(3 * 1024 * 1024 + 5)
    await mkdir(join(mntA, 'shared'))
    await writeFile(join(mntA, 'shared', 'data.bin'), bytes)
    await writeFile(join(mntA, 'shared', 'note.txt'), 'from a\n')
    await eventually('B\'s mount shows A\'s file, byte-identical', async () => {
      const got = await readFile(join(mntB, 'shared', 'data.bin')).catch(() => undefined)
      return got !== undefined && got.equals(bytes)
    })
    assert.equal(await readFile(join(mntB, 'shared', 'note.txt'), 'utf8'), 'from a\n')
  })

  it('renames and deletes in A\'s mount propagate to B\'s', TEST, async () => {
    await rename(join(mntA, 'shared', 'note.txt'), join(mntA, 'shared', 'renamed.txt'))
    await unlink(join(mntA, 'shared', 'data.bin'))
    await eventually('B sees the rename and the delete', async () => {
      const names = (await readdir(join(mntB, 'shared')).catch(() => [])).sort()
      return names.join(',') === 'renamed.txt'
    })
    assert.equal(await readFile(join(mntB, 'shared', 'renamed.txt'), 'utf8'), 'from a\n')
    // and back: B writes, A reads
    await writeFile(join(mntB, 'shared', 'reply.txt'), 'from b\n')
    await eventually('A sees B\'s file', async () => await readFile(join(mntA, 'shared', 'reply.txt'), 'utf8').catch(() => '') === 'from b\n')
  })

  it('bad mountpoints: one line on stderr, non-zero exit, nothing mounted', TEST, async () => {
    const full = join(dir, 'full')
    await mkdir(full)
    await writeFile(join(full, 'x'), 'x')
    // an empty folder inside A's own mount, and a symlink outside leading to it: mounting there hung the daemon for good
    const inside = join(mntA, 'empty-inside')
    await mkdir(inside)
    await symlink(inside, join(dir, 'to-inside'))
    for (const [args, match] of [
      [['mount', inside], /^shoal: .*is inside .*a mount of this node.*\(MountpointInsideMountError\)$/m],
      [['mount', join(dir, 'to-inside')], /is inside .*\(MountpointInsideMountError\)/],
      [['mount', 'relative/dir'], /absolute path/],
      [['mount', join(dir, 'missing')], /NotFoundError/],
      [['mount', full], /MountpointBusyError/],
      [['mount', mntA], /MountpointBusyError/],
      [['unmount', full], /NotMountedError/]
    ] as Array<[string[], RegExp]>) {
      const r = await runShoal(['--repo', a.repo, ...args])
      assert.ok(r.code !== 0 && r.code !== null, `${args.join(' ')} fails`)
      assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
      assert.match(r.stderr, match)
      assert.equal(r.stdout.length, 0)
    }
    assert.deepEqual((await shoalJson<Array<{ dir: string }>>(a.repo, ['mounts'])).map(m => m.dir), [mntA])
  })

  it('unmount is refused while a file is open there (one line, nothing committed half-written); --force unmounts all the same, a file cut off kept beside the version it replaced', TEST, async () => {
    const mnt = join(dir, 'mnt-d')
    await mkdir(mnt)
    defer(ctx, async () => { await forceUnmount(mnt) })
    const whole = join(dir, 'whole.txt')
    await writeFile(whole, 'the whole version\n')
    await shoalOk(b.repo, ['add', whole, '--to', '/over.txt'])
    await shoalOk(b.repo, ['add', whole, '--to', '/log.txt'])
    await shoalOk(b.repo, ['mount', mnt])
    // writers in the middle of their files, one new, one over a file (truncated at its open), one appending to a
    // file: the descriptors stay open
    const writer = spawn('bash', ['-c', 'exec 3>"$0"; printf partial >&3; exec 4>"$1"; printf cut >&4; exec 5>>"$2"; printf more >&5; echo ready; exec sleep 60', join(mnt, 'held.txt'), join(mnt, 'over.txt'), join(mnt, 'log.txt')], { stdio: ['ignore', 'pipe', 'ignore'] })
    const exited = new Promise<void>(resolve => writer.once('exit', () => resolve()))
    defer(ctx, async () => { writer.kill('SIGKILL'); await exited })
    await within(new Promise<void>((resolve, reject) => {
      writer.stdout.once('data', () => resolve())
      writer.once('exit', code => reject(new Error(`the writer exited with ${String(code)}`)))
    }), 15_000)
    const mounted = async (): Promise<string[]> => (await shoalJson<Array<{ dir: string }>>(b.repo, ['mounts'])).map(m => m.dir)

    const r = await runShoal(['--repo', b.repo, 'unmount', mnt])
    assert.ok(r.code !== 0 && r.code !== null, 'refused')
    assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
    assert.match(r.stderr, /MountpointBusyError/)
    assert.match(r.stderr, /held\.txt/, 'names the file open for writing')
    assert.ok((await mounted()).includes(mnt), 'still mounted')
    assert.notEqual((await runShoal(['--repo', b.repo, 'cat', '/held.txt'])).code, 0, 'nothing half-written was committed')

    assert.deepEqual(await shoalJson(b.repo, ['unmount', '--force', mnt]), { unmounted: mnt })
    assert.ok(!(await mounted()).includes(mnt), 'unmounted with the file open')
    writer.kill('SIGKILL')
    await exited
    // what the writers wrote is committed: the new file as it is, the one over a file beside the version it started
    // from, a conflict, so that the whole version is not replaced by the part written before the cut
    await eventually('held.txt is committed', async () => {
      const cat = await runShoal(['--repo', b.repo, 'cat', '/held.txt'])
      return cat.code === 0 && cat.stdout.toString() === 'partial'
    })
    await eventually('over.txt is committed beside the version it started from', async () => (await shoalJson<Array<{ path: string }>>(b.repo, ['conflicts'])).some(c => c.path === '/over.txt'))
    const copy = (await shoalJson<Array<{ path: string, copy: string }>>(b.repo, ['conflicts'])).find(c => c.path === '/over.txt')?.copy as string
    const versions = [(await shoalOk(b.repo, ['cat', '/over.txt'])).toString(), (await shoalOk(b.repo, ['cat', copy])).toString()].sort()
    assert.deepEqual(versions, ['cut', 'the whole version\n'], 'both versions kept')
    assert.equal((await shoalJson<Array<{ path: string }>>(b.repo, ['conflicts'])).filter(c => c.path === '/held.txt').length, 0, 'a new file cut off is no conflict')
    // an append cut off loses nothing of the version it grew: it replaces it, no conflict
    await eventually('log.txt is committed with its append', async () => {
      const cat = await runShoal(['--repo', b.repo, 'cat', '/log.txt'])
      return cat.code === 0 && cat.stdout.toString() === 'the whole version\nmore'
    })
    assert.equal((await shoalJson<Array<{ path: string }>>(b.repo, ['conflicts'])).filter(c => c.path === '/log.txt').length, 0, 'an append cut off is no conflict')
  })

  it('unmount commits and frees the directory', TEST, async () => {
    await writeFile(join(mntB, 'last.txt'), 'written just before unmount\n')
    assert.deepEqual(await shoalJson(b.repo, ['unmount', mntB]), { unmounted: mntB })
    assert.deepEqual(await readdir(mntB), [], 'the mountpoint is an empty directory again')
    assert.equal((await shoalOk(b.repo, ['cat', '/last.txt'])).toString(), 'written just before unmount\n')
    assert.deepEqual(await shoalJson(b.repo, ['mounts']), [])
  })

  it('a daemon restarted after a SIGKILL frees the stale mount it left and mounts it again', TEST, async () => {
    const repo = join(dir, 'c')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const mnt = join(dir, 'mnt-c')
    await mkdir(mnt)
    defer(ctx, async () => { await forceUnmount(mnt) })
    const c = await startDaemon(ctx, repo)
    await shoalOk(repo, ['mount', mnt])
    await writeFile(join(mnt, 'kept.txt'), 'before the kill\n')
    await eventually('the file is committed', async () => (await runShoal(['--repo', repo, 'cat', '/kept.txt'])).code === 0)

    // kill the node process itself (daemon.lock holds its pid), not the CLI parent
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    process.kill(pid, 'SIGKILL')
    await within(new Promise<void>(resolve => { if (c.child.exitCode !== null || c.child.signalCode !== null) resolve(); else c.child.once('exit', () => resolve()) }), 15_000)
    await assert.rejects(stat(mnt), (err: any) => err.code === 'ENOTCONN', 'the mount is stale')

    // the killed daemon left its API address behind: wait for the new one's
    await unlink(join(repo, 'api'))
    await startDaemon(ctx, repo)
    assert.deepEqual((await shoalJson<Array<{ dir: string }>>(repo, ['mounts'])).map(m => m.dir), [mnt])
    assert.equal(await readFile(join(mnt, 'kept.txt'), 'utf8'), 'before the kill\n')
    await writeFile(join(mnt, 'after.txt'), 'after the restart\n')
    assert.equal(await readFile(join(mnt, 'after.txt'), 'utf8'), 'after the restart\n')
    await shoalOk(repo, ['unmount', mnt])
  })
})
