/**
 * makeFolder (node/repo/make-folder.ts): a folder and its missing parents,
 * made one level at a time; a path that cannot be made is a RepoFolderError
 * naming it, never an endless loop (Node's recursive mkdir under /proc).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeFolder } from '../../../node/repo/make-folder.js'
import { RepoFolderError } from '../../../node/errors.js'
import { tempDir } from '../../helpers/temp.js'
import { within } from '../../helpers/cli.js'

const TEST = { timeout: 30_000 }
const LINUX = { ...TEST, skip: process.platform !== 'linux' ? 'needs /proc' : undefined }

/** `makeFolder(path)` within 5 s (a loop would never settle); resolves with its error, undefined on success. */
async function attempt (path: string, mode?: number): Promise<unknown> {
  const settled = await within(makeFolder(path, { mode }).then(() => ({ err: undefined }), (err: unknown) => ({ err })), 5_000)
  assert.ok(settled !== undefined, `makeFolder(${path}) did not settle within 5 s`)
  return settled.err
}

/** Assert a RepoFolderError whose message matches `match`. */
function assertFolderError (err: unknown, match: RegExp): void {
  assert.ok(err instanceof RepoFolderError, `expected a RepoFolderError, got ${String(err)}`)
  assert.equal(err.name, 'RepoFolderError')
  assert.match(err.message, match)
}

describe('makeFolder', () => {
  it('makes a nested folder and its parents with the mode given; a folder already there is fine', TEST, async t => {
    const dir = await tempDir(t)
    const target = join(dir, 'a', 'b', 'c')
    assert.equal(await attempt(target, 0o700), undefined)
    for (const p of [join(dir, 'a'), join(dir, 'a', 'b'), target]) {
      const st = await stat(p)
      assert.ok(st.isDirectory(), p)
      assert.equal(st.mode & 0o077, 0, `${p} is private`)
    }
    assert.equal(await attempt(target), undefined, 'again: already there')
    assert.equal(await attempt(dir), undefined, 'an existing parent')
  })

  it('a file on the way → RepoFolderError naming it, nothing made', TEST, async t => {
    const dir = await tempDir(t)
    const file = join(dir, 'file')
    await writeFile(file, 'x')
    assertFolderError(await attempt(join(file, 'x', 'y')), new RegExp(`^cannot create folder ${file}/x/y: ${file} is not a folder \\(ENOTDIR\\)$`))
    assertFolderError(await attempt(file), /is not a folder/)
    assert.deepEqual(await readdir(dir), ['file'])
  })

  it('under /proc → RepoFolderError within seconds, not an endless loop', LINUX, async () => {
    assertFolderError(await attempt('/proc/shoal-test/x/y'), /^cannot create folder \/proc\/shoal-test \(for \/proc\/shoal-test\/x\/y\): \/proc takes no new folders \(ENOENT\)$/)
    assertFolderError(await attempt('/proc/shoal-test'), /^cannot create folder \/proc\/shoal-test: \/proc takes no new folders \(ENOENT\)$/)
    assertFolderError(await attempt('/proc/self/shoal-test'), /\/proc\/self takes no new folders \(ENOENT\)/)
  })

  it('through a link to /proc → RepoFolderError naming the folder, nothing made', LINUX, async t => {
    const dir = await tempDir(t)
    await symlink('/proc', join(dir, 'proc'))
    assertFolderError(await attempt(join(dir, 'proc', 'x', 'y')), new RegExp(`^cannot create folder ${dir}/proc/x \\(for ${dir}/proc/x/y\\): ${dir}/proc takes no new folders \\(ENOENT\\)$`))
    assert.deepEqual(await readdir(dir), ['proc'])
  })
})
