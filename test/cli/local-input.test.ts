/**
 * The CLI's side of bad local input: a local file that changes while it
 * is uploaded (`add`, `car import`), a directory add that fails midway, a
 * download onto a device or a named pipe (`get -o`, `car export -o`), and
 * arguments the daemon would refuse with a bare HTTP status or that Node
 * would refuse with a raw system error. Each gets one typed line and exit 1,
 * and changes nothing: the namespace keeps no part of a failed add, and a
 * device node or a FIFO is written through, never replaced by a file.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileBody } from '../../cli/local-file.js'
import { randomBytes } from '../helpers/bytes.js'
import { defer, tempDir } from '../helpers/temp.js'
import { lines, runShoal, SHOAL_BIN, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'
import { launchShoal, until } from '../helpers/processes.js'

const TEST = { timeout: 120_000 }

/** Everything `body` yields, or its error. */
async function drain (body: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0
  for await (const chunk of body) n += chunk.length
  return n
}

/** The one `shoal:` line of a failed command, with its exit code checked (1, no stack trace, nothing on stdout). */
function failedWith (r: { code: number | null, stdout: Buffer, stderr: string }, what: string): string {
  assert.equal(r.code, 1, `${what}: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`)
  const said = lines(r.stderr).filter(l => l.startsWith('shoal:'))
  assert.equal(said.length, 1, `${what}: one line: ${r.stderr}`)
  return said[0]
}

describe('an upload\'s body reads exactly the size it declared', () => {
  const ctx = suiteContext()

  it('fails with FileChangedError, before its last chunk, for a file longer, shorter or rewritten since its stat', TEST, async () => {
    const dir = await tempDir(ctx, 'shoal-local-body-')
    const file = join(dir, 'f.bin')
    await writeFile(file, randomBytes(3 * 1024 * 1024 + 5, 7))
    const st = await stat(file)
    // unchanged: every byte
    assert.equal(await drain(fileBody(file, { size: st.size, mtimeMs: st.mtimeMs })), st.size)

    // the file grew past the declared size
    let passed = 0
    await assert.rejects(drain(fileBody(file, { size: st.size - 10, onBytes: n => { passed += n } })), { name: 'FileChangedError', message: /holds more than/ })
    assert.ok(passed < st.size - 10, `the last chunk is held back (${passed} bytes passed)`)

    // shorter than declared (truncated meanwhile): an error, not a body that ends early
    passed = 0
    await assert.rejects(drain(fileBody(file, { size: st.size + 1024 * 1024, onBytes: n => { passed += n } })), { name: 'FileChangedError', message: /now ends at/ })

    // same size, rewritten
    await assert.rejects(drain(fileBody(file, { size: st.size, mtimeMs: st.mtimeMs - 1000 })), { name: 'FileChangedError', message: /rewritten/ })

    // an empty declared size, a file that is not empty (as /proc's files are)
    await assert.rejects(drain(fileBody(file, { size: 0 })), { name: 'FileChangedError' })
  })

  it('a daemon that drops the connection mid-upload is named, not the file: BrokenStreamError, not LocalFileError', TEST, async () => {
    const dir = await tempDir(ctx, 'shoal-local-cut-')
    const file = join(dir, 'big.bin')
    await writeFile(file, randomBytes(32 * 1024 * 1024, 9))
    // a "daemon" that takes 1 MiB of the upload and then goes away, as one killed mid-add does
    const server = createServer((req, res) => {
      let got = 0
      req.on('data', (chunk: Buffer) => { got += chunk.byteLength; if (got > 1024 * 1024) req.socket.destroy() })
      req.on('end', () => { res.end('{}') })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    defer(ctx, async () => { await new Promise(resolve => server.close(resolve)) })
    const repo = join(dir, 'repo')
    await mkdir(repo)
    await writeFile(join(repo, 'api'), `/ip4/127.0.0.1/tcp/${(server.address() as AddressInfo).port}`)
    await writeFile(join(repo, 'api.token'), 'token')
    const r = await runShoal(['--repo', repo, 'add', file, '--to', '/big.bin'])
    assert.equal(r.code, 1)
    assert.match(lines(r.stderr).at(-1) ?? '', /^shoal: the daemon closed the connection while the upload went on \((ECONNRESET|EPIPE)\): did the daemon stop\? \(BrokenStreamError\)$/)
  })
})

describe('bad local input through the CLI', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  let dir: string

  before(async () => {
    d = await startDaemon(ctx)
    dir = await tempDir(ctx, 'shoal-local-input-')
    await writeFile(join(dir, 'small.txt'), 'small file\n')
    await shoalOk(d.repo, ['add', join(dir, 'small.txt'), '--to', '/small.txt'])
  })

  /**
   * A local folder `name` of 80 files just over the batch size: they go one
   * request each, many requests, and a signal lands between two.
   */
  async function manyFiles (name: string, seed: number): Promise<string> {
    const local = join(dir, name)
    await mkdir(local)
    const bytes = randomBytes(1024 * 1024 + 1, seed)
    for (let i = 0; i < 80; i++) { bytes[0] = i; await writeFile(join(local, `f${String(i).padStart(2, '0')}.bin`), bytes) }
    return local
  }

  async function names (path: string): Promise<string[]> {
    return (await shoalJson<Array<{ name: string }>>(d.repo, ['ls', path])).map(e => e.name).sort()
  }

  it('add of a file whose size is not what stat said (a file of /proc) fails with FileChangedError and adds nothing', TEST, async () => {
    const line = failedWith(await runShoal(['--repo', d.repo, 'add', '/proc/self/status', '--to', '/status']), 'add /proc/self/status')
    assert.match(line, /it changed while it was uploaded .*\(FileChangedError\)$/)
    assert.deepEqual(await names('/'), ['small.txt'])
  })

  it('a directory add that fails midway is undone: the entries it made are removed, what was there stays', TEST, async () => {
    // the namespace already has /tree with keep.txt and a directory where the local tree has the file b.txt
    await shoalOk(d.repo, ['mkdir', '/tree/b.txt', '--parents'])
    await shoalOk(d.repo, ['add', join(dir, 'small.txt'), '--to', '/tree/keep.txt'])
    const local = join(dir, 'tree')
    await mkdir(join(local, 'sub'), { recursive: true })
    await writeFile(join(local, 'a.txt'), 'a\n')
    await writeFile(join(local, 'b.txt'), 'b\n')
    await writeFile(join(local, 'c.txt'), 'c\n')
    await writeFile(join(local, 'sub', 'd.txt'), 'd\n')
    const line = failedWith(await runShoal(['--repo', d.repo, 'add', local, '--to', '/']), 'add tree')
    assert.match(line, /is a directory.*the add was undone \(1 new entry under \/tree removed\)/)
    assert.deepEqual(await names('/tree'), ['b.txt', 'keep.txt'], 'sub (made before the failure) removed; the batch of a.txt, b.txt, c.txt and sub/d.txt refused whole')

    // into a new target, the target goes as a whole: here a file of the tree is one of /proc
    // (bound over a file of the tree: its stat says 0 bytes, it holds more), met after a.txt and sub/
    const proc = join(local, 'sub', 'z-status')
    await writeFile(proc, '')
    execFileSync('mount', ['--bind', '/proc/version', proc])
    defer(ctx, async () => { execFileSync('umount', ['-l', proc]) })
    const fresh = failedWith(await runShoal(['--repo', d.repo, 'add', local, '--to', '/fresh']), 'add into a new target')
    assert.match(fresh, /changed while it was uploaded.*the add was undone \(\/fresh removed\) \(FileChangedError\)$/)
    assert.deepEqual(await names('/'), ['small.txt', 'tree'], 'no /fresh')
  })

  it('a signal during a directory add (delivered twice at once) undoes it once the request under way ends, and exits as a shell reports the signal', TEST, async () => {
    const local = await manyFiles('signalled', 11)
    const run = launchShoal(ctx, ['--repo', d.repo, 'add', local, '--to', '/signalled'])
    await until('two files added', () => run.stdout().split('\n').filter(line => line.startsWith('added ')).length >= 2)
    // delivered twice at once, as a launcher forwarding a signal the terminal also sends: one request, not a second
    run.process.kill('SIGTERM')
    run.process.kill('SIGTERM')
    const exit = await run.exited
    assert.equal(exit.code, 143, run.stderr())
    assert.match(run.stderr(), /^shoal: the add was interrupted by SIGTERM; the add was undone \(\/signalled removed\) \(AddInterruptedError\)$/m)
    assert.ok(run.stdout().split('\n').filter(line => line.startsWith('added ')).length < 80, 'it stopped before the end')
    assert.deepEqual(await names('/'), ['small.txt', 'tree'], 'no /signalled, not even the files added before the signal')

    // under --json, stderr holds JSON lines only: the note, then the error
    const json = launchShoal(ctx, ['--repo', d.repo, '--json', 'add', local, '--to', '/signalled'])
    await until('two files added (a progress-free JSON add prints nothing until its end: wait for the tree)', async () => {
      const r = await runShoal(['--repo', d.repo, '--json', 'ls', '/signalled'])
      return r.code === 0 && (JSON.parse(r.stdout.toString()) as unknown[]).length >= 2
    })
    json.process.kill('SIGINT')
    assert.equal((await json.exited).code, 130, json.stderr())
    const said = lines(json.stderr()).map(line => JSON.parse(line) as Record<string, any>)
    assert.equal(said.length, 2, json.stderr())
    assert.equal(said[0].note?.signal, 'SIGINT')
    assert.equal(said[1].error?.name, 'AddInterruptedError')
    assert.deepEqual(await names('/'), ['small.txt', 'tree'])
  })

  it('the undo of a directory add removes only what it made: a file another write put in the new folder meanwhile stays, with the folder', TEST, async () => {
    const local = await manyFiles('shared', 12)
    const run = launchShoal(ctx, ['--repo', d.repo, 'add', local, '--to', '/shared'])
    await until('two files added', () => run.stdout().split('\n').filter(line => line.startsWith('added ')).length >= 2)
    // another write into the folder this add made (as another node's add of a folder of the same name merges with it)
    const theirs = join(dir, 'theirs.txt')
    await writeFile(theirs, 'not this add\'s')
    await shoalOk(d.repo, ['add', theirs, '--to', '/shared/theirs.txt'])
    run.process.kill('SIGTERM')
    assert.equal((await run.exited).code, 143, run.stderr())
    assert.match(run.stderr(), /the add was undone \(\d+ new entries under \/shared removed; kept \/shared: it holds what another write put there\) \(AddInterruptedError\)$/m)
    assert.deepEqual(await names('/shared'), ['theirs.txt'], 'every file of the add removed, the other write kept')
    // the root as the tests after this one expect it
    await shoalOk(d.repo, ['rm', '-r', '/shared'])
  })

  it('a directory add meeting a name that is not valid UTF-8 says so (it said the file was removed during the add), and is undone', TEST, async () => {
    const local = join(dir, 'latin1')
    await mkdir(local)
    await writeFile(join(local, 'ok.txt'), 'ok\n')
    // "café.txt" in Latin-1: the é is one byte, 0xE9, no UTF-8
    await writeFile(Buffer.concat([Buffer.from(join(local, 'caf')), Buffer.from([0xe9]), Buffer.from('.txt')]), 'bytes\n')
    const line = failedWith(await runShoal(['--repo', d.repo, 'add', local, '--to', '/latin1']), 'add latin1')
    assert.match(line, /^shoal: cannot read .*caf\uFFFD\.txt: its name is not valid UTF-8 .*rename it.*the add was undone \(\/latin1 removed\) \(LocalReadError\)$/)
    assert.equal((await names('/')).includes('latin1'), false, 'nothing added')
    // to a target whose parents are not there: the undo removes the folders the add made above it too
    const deep = failedWith(await runShoal(['--repo', d.repo, 'add', local, '--to', '/made/above/latin1']), 'add latin1 deep')
    assert.match(deep, /the add was undone \(\/made\/above\/latin1 removed, and \/made, \/made\/above above it\) \(LocalReadError\)$/)
    assert.equal((await names('/')).includes('made'), false, 'no folder left above it')
    // the file itself named on the command line (its bytes given by the shell): Node reads the argument with U+FFFD
    const byName = spawnSync('bash', ['-c', `exec "${process.execPath}" "${SHOAL_BIN}" --repo "${d.repo}" add "${join(local, 'caf')}"$'\\xe9'.txt --to /cafe.txt`], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(byName.status, 1)
    assert.match(byName.stderr, /^shoal: cannot add .*caf\uFFFD\.txt: no such file or directory \(a name in it is not valid UTF-8, .*rename it\) \(NotFoundError\)\n$/)
    assert.equal((await names('/')).includes('cafe.txt'), false, 'nothing added')
  })

  it('get -o and car export -o write through a FIFO and a device node in place; a full device is a LocalWriteError', TEST, async () => {
    const fifo = join(dir, 'pipe')
    execFileSync('mkfifo', [fifo])
    const nullDev = join(dir, 'null')
    const fullDev = join(dir, 'full')
    // device nodes of our own, in the test's folder (CI runs as root): /dev itself is never touched
    execFileSync('mknod', ['-m', '666', nullDev, 'c', '1', '3'])
    execFileSync('mknod', ['-m', '666', fullDev, 'c', '1', '7'])

    // a reader on the FIFO gets the bytes; the FIFO stays a FIFO
    const reading = readFile(fifo)
    await shoalOk(d.repo, ['get', '/small.txt', '-o', fifo])
    assert.equal((await reading).toString(), 'small file\n')
    assert.ok((await lstat(fifo)).isFIFO(), 'still a FIFO')

    for (const args of [['get', '/small.txt', '-o', nullDev], ['car', 'export', '/small.txt', '-o', nullDev]]) {
      await shoalOk(d.repo, args)
      assert.ok((await lstat(nullDev)).isCharacterDevice(), `${args.join(' ')}: still a device node`)
    }
    const line = failedWith(await runShoal(['--repo', d.repo, 'get', '/small.txt', '-o', fullDev]), 'get -o full')
    assert.equal(line, `shoal: cannot write ${fullDev}: no space left on the device; nothing was kept (LocalWriteError)`)
    assert.ok((await lstat(fullDev)).isCharacterDevice(), 'still a device node')
  })

  it('car import of a FIFO is refused at once (it has no size to declare; with no writer it would wait forever)', TEST, async () => {
    const fifo = join(dir, 'car-pipe')
    execFileSync('mkfifo', [fifo])
    const line = failedWith(await runShoal(['--repo', d.repo, 'car', 'import', fifo], { timeoutMs: 30_000 }), 'car import fifo')
    assert.equal(line, `shoal: cannot read ${fifo}: not a regular file (a CAR is uploaded with its size; save it to a file first) (LocalReadError)`)
  })

  it('get of a tree into a folder whose file system makes no folders (/proc) fails in one line instead of hanging', TEST, async () => {
    await shoalOk(d.repo, ['mkdir', '/gettree/sub', '--parents'])
    const line = failedWith(await runShoal(['--repo', d.repo, 'get', '/gettree', '-o', '/proc'], { timeoutMs: 30_000 }), 'get -o /proc')
    assert.match(line, /\/proc\/sub.*\(LocalFileError\)$/)
    await shoalOk(d.repo, ['rm', '/gettree', '--recursive'])
  })

  it('arguments refused before a request: a relative --to, a path too long, an empty --repo, a repo under a file', TEST, async () => {
    const file = join(dir, 'small.txt')
    assert.equal(failedWith(await runShoal(['--repo', d.repo, 'add', file, '--to', 'rel/x']), '--to rel/x'),
      'shoal: --to takes an absolute path in the namespace (starting with /), not "rel/x" (InvalidPathError)')
    assert.match(failedWith(await runShoal(['--repo', d.repo, 'cat', `/${'a'.repeat(20_000)}`]), 'long path'),
      /^shoal: a path or argument is too long: .* \(TooLargeError\)$/)
    assert.equal(failedWith(await runShoal(['--repo', '', 'id']), 'empty --repo'), 'shoal: --repo is empty: give the repo folder (InvalidArgumentError)')
    assert.equal(failedWith(await runShoal(['--repo', join(file, 'repo'), 'init']), 'repo under a file'),
      `shoal: cannot create folder ${join(file, 'repo')}: ${file} is not a folder (ENOTDIR) (RepoFolderError)`)
    assert.deepEqual(await names('/'), ['small.txt', 'tree'])
  })

})

describe('a daemon stopped during a directory add', () => {
  const ctx = suiteContext()

  it('the CLI names what it could not undo in one bounded line, the file under way included: every file there after the restart is named or counted', TEST, async () => {
    const d = await startDaemon(ctx)
    const local = join(await tempDir(ctx, 'shoal-add-stopped-'), 'many')
    await mkdir(local)
    // files over the batch size: one request each, and the stop lands during one of them
    const bytes = randomBytes(1024 * 1024 + 1, 23)
    for (let i = 0; i < 60; i++) { bytes[0] = i; await writeFile(join(local, `f${String(i).padStart(2, '0')}.bin`), bytes) }
    const run = launchShoal(ctx, ['--repo', d.repo, 'add', local, '--to', '/many'])
    await until('eight files added', () => run.stdout().split('\n').filter(line => line.startsWith('added ')).length >= 8)
    await d.stop()
    const exit = await run.exited
    assert.equal(exit.code, 1, run.stderr())
    assert.equal(lines(run.stderr()).length, 1, run.stderr())
    const line = lines(run.stderr())[0]
    assert.ok(line.length < 800, `one bounded line, not every path: ${line.length} characters`)
    // what the line names or counts: the entries whose removal failed (the daemon is gone), and those under way
    const count = (list: string | undefined): number => list === undefined ? 0 : list.replace(/ and \d+ more$/, '').split(', ').length + Number(/ and (\d+) more$/.exec(list)?.[1] ?? 0)
    const failed = /undoing the add failed for ((?:\/many[^;]*?))(?:;|\s\(\w+Error\)$)/.exec(line)?.[1]
    assert.ok(failed !== undefined, line)
    const perhaps = /; ((?:\/many[^;]*?)) (?:was|were) being added as the connection broke and may be there/.exec(line)?.[1]
    const again = await startDaemon(ctx, d.repo)
    const there = await shoalJson<Array<{ name: string }>>(again.repo, ['ls', '/many'])
    // the folder itself is among the entries the undo could not remove
    assert.ok(there.length + 1 <= count(failed) + count(perhaps), `${there.length} files in /many, the line names or counts ${count(failed)} + ${count(perhaps)}: ${line}`)
  })
})
