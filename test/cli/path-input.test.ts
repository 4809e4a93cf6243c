/**
 * Namespace paths as a user types them, on one real daemon:
 *
 * - A path that ends in `/` names a directory, as in POSIX: `rm`, `mv`,
 *   `stat`, `ls`, `cat` and `pin` of `file/` fail with NotADirectoryError and
 *   change nothing (the slash used to be dropped, so `rm /a.txt/` removed the
 *   file), a file is never written at `dir/`, and a directory given with its
 *   slash works as before.
 * - A name may hold control characters (POSIX allows them, and a peer may
 *   write them), but the CLI's human output escapes them (`\n`, `\x1b`,
 *   `\u202e`), so a name can neither break a listing's lines nor drive the
 *   terminal; `--json` keeps the exact name.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

/** The one `shoal:` line of a failed command, with its exit code checked. */
function failedWith (r: { code: number | null, stdout: Buffer, stderr: string }, what: string): string {
  assert.equal(r.code, 1, `${what}: ${r.stderr}`)
  assert.equal(r.stdout.length, 0, `${what}: nothing on stdout`)
  const said = lines(r.stderr)
  assert.equal(said.length, 1, `${what}: one line: ${r.stderr}`)
  return said[0]
}

/** Names under `dir`, sorted. */
async function names (d: TestDaemon, dir: string): Promise<string[]> {
  return (await shoalJson<Array<{ name: string }>>(d.repo, ['ls', dir])).map(e => e.name).sort()
}

describe('a path ending in / names a directory', () => {
  const ctx = suiteContext()
  let d: TestDaemon

  before(async () => {
    d = await startDaemon(ctx)
    const dir = await tempDir(ctx)
    await writeFile(join(dir, 'a.txt'), 'alpha\n')
    await writeFile(join(dir, 'b.txt'), 'beta\n')
    await shoalOk(d.repo, ['add', join(dir, 'a.txt'), '--to', '/docs/a.txt'])
    await shoalOk(d.repo, ['add', join(dir, 'b.txt'), '--to', '/docs/b.txt'])
  })

  it('refuses a file given with a trailing slash, in one line, and changes nothing', TEST, async () => {
    const refused: string[][] = [
      ['rm', '/docs/a.txt/'],
      ['stat', '/docs/a.txt/'],
      ['ls', '/docs/a.txt/'],
      ['cat', '/docs/a.txt/'],
      ['mv', '/docs/a.txt/', '/moved.txt'],
      // a file is not moved into a directory that does not exist, nor onto a file named as a directory
      ['mv', '/docs/a.txt', '/newdir/'],
      ['mv', '/docs/a.txt', '/docs/b.txt/'],
      ['pin', 'rm', '/docs/a.txt/'],
      ['pin', 'status', '/docs/a.txt/']
    ]
    for (const args of refused) {
      const r = await runShoal(['--repo', d.repo, ...args])
      assert.match(failedWith(r, args.join(' ')), /not a directory.*\(NotADirectoryError\)$/, args.join(' '))
    }
    assert.deepEqual(await names(d, '/'), ['docs'], 'nothing moved or created at /')
    assert.deepEqual(await names(d, '/docs'), ['a.txt', 'b.txt'], 'nothing removed')
    assert.equal((await shoalOk(d.repo, ['cat', '/docs/a.txt'])).toString(), 'alpha\n')
    assert.equal((await shoalOk(d.repo, ['cat', '/docs/b.txt'])).toString(), 'beta\n')
  })

  it('never writes a file at a path ending in /', TEST, async () => {
    // the CLI reads `--to DIR/` as "into DIR"; the API is asked directly
    const res = await fetch(`${d.url}/api/v0/add?to=${encodeURIComponent('/c.txt/')}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/octet-stream' },
      body: 'gamma\n'
    })
    assert.equal(res.status, 409)
    const body = await res.json() as { error: { name: string, message: string } }
    assert.equal(body.error.name, 'IsADirectoryError', body.error.message)
    assert.equal((await runShoal(['--repo', d.repo, 'stat', '/c.txt'])).code, 1, 'no /c.txt')
  })

  it('takes a directory with its trailing slash as before', TEST, async () => {
    assert.deepEqual((await shoalJson<Array<{ name: string }>>(d.repo, ['ls', '/docs/'])).map(e => e.name).sort(), ['a.txt', 'b.txt'])
    assert.equal((await shoalJson<{ type: string }>(d.repo, ['stat', '/docs/'])).type, 'dir')
    await shoalOk(d.repo, ['mkdir', '/made/'])
    assert.equal((await shoalJson<{ type: string }>(d.repo, ['stat', '/made'])).type, 'dir')
    await shoalOk(d.repo, ['mv', '/made/', '/renamed/'])
    assert.deepEqual(await names(d, '/'), ['docs', 'renamed'])
    await shoalOk(d.repo, ['rm', '/renamed/'])
    assert.deepEqual(await names(d, '/'), ['docs'])
  })
})

describe('names holding control characters', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  /** A newline, an escape sequence that would clear the screen, a tab, and a right-to-left override. */
  const hostile = 'evil\nname\x1b[2J\tx\u202etxt.exe'

  before(async () => {
    d = await startDaemon(ctx)
    const dir = await tempDir(ctx)
    await writeFile(join(dir, 'plain.txt'), 'plain\n')
    await shoalOk(d.repo, ['add', join(dir, 'plain.txt'), '--to', `/in/${hostile}`])
  })

  it('are listed escaped, one line per entry, and exactly under --json', TEST, async () => {
    const out = (await shoalOk(d.repo, ['ls', '/in'])).toString()
    const shown = lines(out)
    assert.equal(shown.length, 1, `one line for one entry: ${JSON.stringify(out)}`)
    assert.ok(shown[0].endsWith(' evil\\nname\\x1b[2J\\tx\\u202etxt.exe'), shown[0])
    assert.doesNotMatch(out, /[\x00-\x09\x0b-\x1f\u202e]/, 'no control character reaches the terminal')
    const exact = await shoalJson<Array<{ name: string }>>(d.repo, ['ls', '/in'])
    assert.deepEqual(exact.map(e => e.name), [hostile])
    assert.equal((await shoalOk(d.repo, ['cat', `/in/${hostile}`])).toString(), 'plain\n', 'the file reads back by its exact name')
  })

  it('are escaped in what add and stat print, the tab too (a column of its own there)', TEST, async () => {
    const dir = await tempDir(ctx)
    await writeFile(join(dir, 'again.txt'), 'again\n')
    for (const out of [
      (await shoalOk(d.repo, ['add', join(dir, 'again.txt'), '--to', `/in2/${hostile}`])).toString(),
      (await shoalOk(d.repo, ['stat', `/in/${hostile}`])).toString()
    ]) {
      assert.match(out, /evil\\nname\\x1b\[2J\\tx\\u202etxt\.exe/, out)
      assert.doesNotMatch(out, /[\x00-\x09\x0b-\x1f\u202e]/, `no control character reaches the terminal: ${JSON.stringify(out)}`)
    }
  })

  it('are escaped in an error line too', TEST, async () => {
    const r = await runShoal(['--repo', d.repo, 'stat', `/in/${hostile}.missing`])
    const said = failedWith(r, 'stat of a missing hostile name')
    assert.match(said, /evil\\nname\\x1b\[2J\\tx\\u202etxt\.exe\.missing.*\(NotFoundError\)$/)
    assert.doesNotMatch(r.stderr, /[\x00-\x09\x0b-\x1f\u202e]/)
  })
})
