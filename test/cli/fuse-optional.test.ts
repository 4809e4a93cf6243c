/**
 * fuse-native is an optional dependency: with it absent (hidden from the
 * daemon's process by a resolve hook, which is what Node sees when it is
 * not installed), the daemon starts, adds and reads; `shoal mount` fails
 * with one line naming what to install and changes nothing; a mount
 * recorded by an earlier daemon is kept, not forgotten, and comes back at
 * a start where FUSE loads.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defer, tempDir } from '../helpers/temp.js'
import { eventually, lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { HIDE_MODULES_ENV } from '../helpers/hide-module.js'
import { FUSE_BINDING_ENV } from '../../node/fuse/adapter.js'
import { requireFuse, sh } from '../node/fuse/helpers.js'

const TEST = { timeout: 120_000 }

/** Environment of a process (and its children) in which fuse-native is not installed, and that does not use the libfuse3 binding. */
const WITHOUT_FUSE = {
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${fileURLToPath(new URL('../helpers/hide-module.js', import.meta.url))}`.trim(),
  [HIDE_MODULES_ENV]: 'fuse-native',
  // the libfuse3 binding, the default where it is built, is a native addon the hook cannot hide: this node asks for the other
  [FUSE_BINDING_ENV]: 'libfuse2'
}

/** True when `dir` is a mountpoint of this machine. */
async function mounted (dir: string): Promise<boolean> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some(l => l.split(' ')[4] === dir)
}

/** Leave no mount behind, whatever happened. */
async function forceUnmount (dir: string): Promise<void> {
  if (await mounted(dir)) await sh(`fusermount -uz '${dir}'`, { timeoutMs: 10_000 }).catch(() => {})
}

describe('FUSE is optional', () => {
  it('without fuse-native the daemon adds and reads; `shoal mount` says what to install, in one line, and changes nothing', TEST, async t => {
    const d = await startDaemon(t, undefined, { env: WITHOUT_FUSE })
    const dir = await tempDir(t, 'shoal-nofuse-')
    const file = join(dir, 'data.bin')
    const bytes = randomBytes(300_000)
    await writeFile(file, bytes)
    const added = await shoalJson<{ cid: string, path: string }>(d.repo, ['add', file, '--to', '/data.bin'], { env: WITHOUT_FUSE })
    assert.deepEqual(await shoalOk(d.repo, ['cat', '/data.bin'], { env: WITHOUT_FUSE }), bytes)
    assert.deepEqual(await shoalOk(d.repo, ['cat', added.cid]), bytes)

    const mnt = join(dir, 'mnt')
    await mkdir(mnt)
    defer(t, async () => { await forceUnmount(mnt) })
    const r = await runShoal(['--repo', d.repo, 'mount', mnt])
    assert.equal(r.code, 1)
    const err = lines(r.stderr)
    assert.equal(err.length, 1, `one line: ${r.stderr}`)
    assert.match(err[0], /\(FuseUnavailableError\)$/)
    assert.match(err[0], /fuse-native is missing/)
    assert.match(err[0], /apt-get install fuse libfuse2/)
    assert.match(err[0], /npm install fuse-native/)

    const j = await runShoal(['--repo', d.repo, '--json', 'mount', mnt])
    assert.equal(j.code, 1)
    assert.equal(JSON.parse(j.stderr).error.name, 'FuseUnavailableError')

    // nothing changed: not mounted, still empty, no mount recorded
    assert.equal(await mounted(mnt), false)
    assert.deepEqual(await readdir(mnt), [])
    assert.deepEqual(await shoalJson(d.repo, ['mounts']), [])
    const records = JSON.parse(await readFile(join(d.repo, 'mounts.json'), 'utf8')) as { mounts: unknown[] }
    assert.deepEqual(records.mounts, [])
    // and the daemon still serves
    assert.deepEqual(await shoalOk(d.repo, ['cat', '/data.bin']), bytes)
  })

  it('a recorded mount is kept while fuse-native is absent, and restored at a start where it loads', TEST, async t => {
    await requireFuse()
    const dir = await tempDir(t, 'shoal-nofuse-restore-')
    const repo = join(dir, 'repo')
    const mnt = join(dir, 'mnt')
    await mkdir(mnt)
    defer(t, async () => { await forceUnmount(mnt) })
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    // as a daemon that was killed while it served a mount leaves it
    const record = JSON.stringify({ version: 1, mounts: [{ dir: mnt, since: 1 }] })
    await writeFile(join(repo, 'mounts.json'), record)

    const without = await startDaemon(t, repo, { env: WITHOUT_FUSE })
    type Line = { msg: string, name?: string, err?: string, dir?: string }
    // complete lines only: the last one may still be arriving
    const find = (): Line | undefined => without.output().stderr.split('\n').slice(0, -1).filter(l => l.startsWith('{'))
      .map(l => JSON.parse(l) as Line).find(l => l.dir === mnt)
    // the log is written asynchronously: it may follow <repo>/api by a moment
    await eventually('a warning naming the mount', async () => find() !== undefined)
    const warning = find()
    assert.ok(warning !== undefined)
    assert.equal(warning.name, 'FuseUnavailableError')
    assert.match(warning.err ?? '', /npm install fuse-native/)
    assert.deepEqual(await shoalJson(repo, ['mounts']), [])
    assert.equal(await mounted(mnt), false)
    assert.deepEqual(await without.stop(), { code: 0, signal: null })
    const kept = JSON.parse(await readFile(join(repo, 'mounts.json'), 'utf8')) as { mounts: Array<{ dir: string }> }
    assert.deepEqual(kept.mounts.map(m => m.dir), [mnt], 'the record is still there')

    const withFuse = await startDaemon(t, repo)
    assert.deepEqual((await shoalJson<Array<{ dir: string }>>(repo, ['mounts'])).map(m => m.dir), [mnt])
    assert.equal(await mounted(mnt), true)
    assert.deepEqual(await withFuse.stop(), { code: 0, signal: null })
    assert.equal(await mounted(mnt), false, 'a clean stop unmounts')
  })
})
