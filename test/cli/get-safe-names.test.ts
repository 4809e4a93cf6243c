/**
 * `shoal get CID -o DIR` on hostile directory DAGs (made by hand with
 * @ipld/dag-pb: no honest tool writes them, and `car import --pin-roots
 * false` stores them without binding): every name is checked before
 * anything is written, a refusal is one line naming the bad entry with a
 * non-zero exit, and the target is untouched — absent when it was absent,
 * unchanged when it was there. A good tree is still written whole. `-o`
 * with a trailing `/`, Ctrl-C mid-download, a staging name already taken
 * and a rename into place that fails leave nothing half-written and never
 * lose a complete download.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { directory, rawBlock, writeCarFile, type Block } from '../helpers/dags.js'
import { planTree, type ListedEntry } from '../../cli/output-path.js'
import { defer, tempDir } from '../helpers/temp.js'
import { exists, lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, within, type TestDaemon } from '../helpers/cli.js'
import { launchShoal, until } from '../helpers/processes.js'
import { moveIntoPlace, openStagingFile, stagingPath } from '../../cli/staging.js'
import { packageFile } from '../../node/package-files.js'

const TEST = { timeout: 120_000 }

/**
 * A tree whose good entries come first (a writer that checks as it goes
 * would already have written them) and whose bad name sits one level down:
 * top/{a.txt, good/{b.txt}, sub/{c.txt, <bad>}}.
 */
async function hostileTree (bad: Array<{ name: string, text: string }>): Promise<{ root: Block, blocks: Block[] }> {
  const a = await rawBlock('alpha')
  const b = await rawBlock('beta')
  const c = await rawBlock('gamma')
  const bads = await Promise.all(bad.map(async e => ({ name: e.name, block: await rawBlock(e.text) })))
  const good = await directory([{ name: 'b.txt', block: b }])
  const sub = await directory([{ name: 'c.txt', block: c }, ...bads])
  const root = await directory([{ name: 'a.txt', block: a }, { name: 'good', block: good }, { name: 'sub', block: sub }])
  return { root, blocks: [root, a, good, b, sub, c, ...bads.map(e => e.block)] }
}

describe('get -o checks every name first', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  let dir: string

  before(async () => {
    d = await startDaemon(ctx)
    dir = await tempDir(ctx, 'shoal-get-names-')
  })

  /** Import a hostile tree without binding it; its root CID. */
  async function imported (label: string, bad: Array<{ name: string, text: string }>): Promise<string> {
    const { root, blocks } = await hostileTree(bad)
    const car = join(dir, `${label}.car`)
    await writeCarFile(car, root, blocks)
    const result = await shoalJson<{ roots: string[] }>(d.repo, ['car', 'import', car, '--pin-roots', 'false'])
    assert.deepEqual(result.roots, [root.cid.toString()])
    return root.cid.toString()
  }

  const cases: Array<{ label: string, bad: Array<{ name: string, text: string }>, shown: string }> = [
    { label: 'dotdot', bad: [{ name: '..', text: 'escape' }], shown: '".."' },
    { label: 'dot', bad: [{ name: '.', text: 'self' }], shown: '"."' },
    { label: 'slash', bad: [{ name: 'x/../../evil', text: 'path' }], shown: '"x/../../evil"' },
    { label: 'absolute', bad: [{ name: '/etc/evil', text: 'abs' }], shown: '"/etc/evil"' },
    { label: 'nul', bad: [{ name: 'nul\0name', text: 'nul' }], shown: '"nul\\u0000name"' },
    { label: 'empty', bad: [{ name: '', text: 'empty' }], shown: '""' },
    { label: 'long', bad: [{ name: 'n'.repeat(256), text: 'long' }], shown: `"${'n'.repeat(256)}"` },
    { label: 'twice', bad: [{ name: 'dup.txt', text: 'one' }, { name: 'dup.txt', text: 'two' }], shown: '"dup.txt"' }
  ]

  for (const c of cases) {
    it(`refuses a tree with an entry named ${c.shown.length > 20 ? `${c.shown.slice(0, 12)}…` : c.shown}: one line, exit 1, nothing written`, TEST, async () => {
      const cid = await imported(c.label, c.bad)
      const work = join(dir, `work-${c.label}`)
      await mkdir(work)

      // a new target: not created, no staging left beside it
      const out = join(work, 'out')
      const r = await runShoal(['--repo', d.repo, 'get', cid, '-o', out])
      assert.equal(r.code, 1, r.stderr)
      assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
      assert.match(r.stderr, /^shoal: refusing to write /)
      assert.ok(r.stderr.includes(c.shown), `names the entry ${c.shown}: ${r.stderr}`)
      assert.ok(r.stderr.includes(JSON.stringify(join(out, 'sub'))), `and the directory it is in: ${r.stderr}`)
      assert.match(r.stderr, /nothing was written \(UnsafeNameError\)\n$/)
      assert.equal(r.stdout.length, 0)
      assert.deepEqual(await readdir(work), [], 'no target, no partial tree, no staging directory')

      // an existing target: exactly as it was
      await mkdir(out)
      await writeFile(join(out, 'mine.txt'), 'keep me')
      const again = await runShoal(['--repo', d.repo, '--json', 'get', cid, '-o', out])
      assert.equal(again.code, 1)
      assert.deepEqual(JSON.parse(again.stderr).error.name, 'UnsafeNameError')
      assert.deepEqual(await readdir(out), ['mine.txt'])
      assert.equal(await readFile(join(out, 'mine.txt'), 'utf8'), 'keep me')
    })
  }

  it('writes a good tree whole, and refuses one that would go through a symbolic link already there', TEST, async () => {
    const cid = await imported('good', [{ name: 'd.txt', text: 'delta' }])
    const out = join(dir, 'good-out')
    const got = await shoalJson<{ files: number, size: number }>(d.repo, ['get', cid, '-o', out])
    assert.deepEqual([got.files, got.size], [4, 'alpha'.length + 'beta'.length + 'gamma'.length + 'delta'.length])
    assert.equal(await readFile(join(out, 'sub', 'd.txt'), 'utf8'), 'delta')
    assert.equal(await readFile(join(out, 'good', 'b.txt'), 'utf8'), 'beta')

    // `sub` in the existing target leads elsewhere: refused, nothing written there or here
    const merged = join(dir, 'merged')
    const elsewhere = join(dir, 'elsewhere')
    await mkdir(merged)
    await mkdir(elsewhere)
    await symlink(elsewhere, join(merged, 'sub'))
    const r = await runShoal(['--repo', d.repo, 'get', cid, '-o', merged])
    assert.equal(r.code, 1)
    assert.equal(lines(r.stderr).length, 1, r.stderr)
    assert.match(r.stderr, /a symbolic link is there; nothing was written \(NotADirectoryError\)/)
    assert.deepEqual(await readdir(elsewhere), [])
    assert.deepEqual(await readdir(merged), ['sub'])
    assert.equal(await exists(join(merged, 'a.txt')), false)
  })

  it('-o with a trailing /: a new directory is that directory; a file goes into a directory under its name, as cp does; a CAR output ending in / is refused', TEST, async () => {
    const cid = await imported('slash-good', [{ name: 'd.txt', text: 'delta' }])
    const work = join(dir, 'work-trailing')
    await mkdir(work)
    const got = await shoalJson<{ files: number, path: string }>(d.repo, ['get', cid, '-o', join(work, 'newdir') + '/'])
    assert.equal(got.files, 4)
    assert.equal(await readFile(join(work, 'newdir', 'sub', 'd.txt'), 'utf8'), 'delta')
    assert.deepEqual(await readdir(work), ['newdir'], 'no staging left beside it')

    await writeFile(join(dir, 'one.txt'), 'one file')
    const file = await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'one.txt'), '--to', '/one.txt'])
    const car = await runShoal(['--repo', d.repo, 'car', 'export', file.cid, '-o', join(work, 'x.car') + '/'])
    assert.equal(car.code, 1, car.stderr)
    assert.equal(lines(car.stderr).length, 1, car.stderr)
    assert.match(car.stderr, /^shoal: cannot write a file to \S+\/: a path ending in \/ names a directory; .*\(InvalidPathError\)$/m)
    // into a directory that is not there: refused, in one line
    const missing = await runShoal(['--repo', d.repo, 'get', file.cid, '-o', join(work, 'file.txt') + '/'])
    assert.equal(missing.code, 1, missing.stderr)
    assert.deepEqual(lines(missing.stderr), [`shoal: cannot write ${join(work, 'file.txt', file.cid)}: no such directory ${join(work, 'file.txt')} (NotFoundError)`])
    assert.deepEqual(await readdir(work), ['newdir'], 'nothing written')
    // without the slash, the file is written at that name
    await shoalOk(d.repo, ['get', file.cid, '-o', join(work, 'file.txt')])
    assert.equal(await readFile(join(work, 'file.txt'), 'utf8'), 'one file')
    // into a directory that is there, with or without its slash: under the file's name (its CID for a CID)
    const into = join(work, 'newdir')
    const byPath = await shoalJson<{ path: string }>(d.repo, ['get', '/one.txt', '-o', into])
    assert.equal(byPath.path, join(into, 'one.txt'))
    await shoalOk(d.repo, ['get', file.cid, '-o', into + '/'])
    assert.equal(await readFile(join(into, 'one.txt'), 'utf8'), 'one file')
    assert.equal(await readFile(join(into, file.cid), 'utf8'), 'one file')
  })

  it('Ctrl-C during a download removes its staging file and exits 130', TEST, async t => {
    // big enough that the transfer is under way when the daemon is paused
    const big = join(dir, 'big.bin')
    await writeFile(big, Buffer.alloc(64 * 1024 * 1024, 7))
    const file = await shoalJson<{ cid: string }>(d.repo, ['add', big, '--to', '/big.bin', '--pin', 'none'])
    const work = join(dir, 'work-sigint')
    await mkdir(work)
    const out = join(work, 'big.bin')
    const get = launchShoal(t, ['--repo', d.repo, 'get', file.cid, '-o', out])
    const staging = `${out}.shoal-partial-${String(get.process.pid)}`
    await until('the staging file', async () => await exists(staging))
    // pause the daemon: the download stays unfinished, whatever the speed of this machine
    const daemonPid = Number((await readFile(join(d.repo, 'daemon.lock'), 'utf8')).trim())
    process.kill(daemonPid, 'SIGSTOP')
    defer(t, async () => { try { process.kill(daemonPid, 'SIGCONT') } catch {} })
    try {
      get.process.kill('SIGINT')
      assert.deepEqual(await within(get.exited, 30_000), { code: 130, signal: null }, get.stderr())
    } finally {
      process.kill(daemonPid, 'SIGCONT')
    }
    assert.deepEqual(await readdir(work), [], 'no staging file, no partial output')
  })

  it('a Ctrl-C that comes as the staging file is being created removes it and exits 130 (not killed with the file left)', TEST, async t => {
    const work = await tempDir(t, 'shoal-staging-signal-')
    const staging = join(work, 'out.shoal-partial-1')
    // the creation has made the file, and the signal arrives before the code that awaited it runs (no staging path held before)
    const script = join(work, 'interrupted.mjs')
    await writeFile(script, `
import { createHeld } from ${JSON.stringify(pathToFileURL(packageFile('dist', 'cli', 'staging.js')).href)}
import { writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
await createHeld(${JSON.stringify(staging)}, async () => {
  await writeFile(${JSON.stringify(staging)}, 'partial', { flag: 'wx' })
  process.kill(process.pid, 'SIGINT')
  await sleep(300)
})
await sleep(5000)
process.exit(0)
`)
    const child = spawn(process.execPath, [script], { stdio: 'ignore' })
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
    defer(t, async () => { child.kill('SIGKILL') })
    assert.deepEqual(await within(exited, 30_000), { code: 130, signal: null })
    assert.deepEqual(await readdir(work), ['interrupted.mjs'], 'the staging file removed')
  })

  it('a staging name already taken (a planted link) is refused and not followed; a download that cannot be renamed into place is kept', TEST, async () => {
    const work = join(dir, 'work-staging')
    await mkdir(work)
    const target = join(work, 'elsewhere.txt')
    await writeFile(target, 'not yours')
    const planted = stagingPath(join(work, 'out'))
    await symlink(target, planted)
    await assert.rejects(openStagingFile(planted, join(work, 'out')), (err: any) => err.name === 'AlreadyExistsError' && err.message.includes(planted))
    assert.equal(await readFile(target, 'utf8'), 'not yours', 'the link was not followed')

    const staged = join(work, 'tree.shoal-partial-1')
    await mkdir(staged)
    await writeFile(join(staged, 'complete.txt'), 'all of it')
    const there = join(work, 'tree')
    await mkdir(there)
    await writeFile(join(there, 'other.txt'), 'appeared meanwhile')
    await assert.rejects(moveIntoPlace(staged, there), (err: any) => err.name === 'DownloadKeptError' && err.message.includes(`kept at ${staged}`))
    assert.equal(await readFile(join(staged, 'complete.txt'), 'utf8'), 'all of it', 'the download is kept')
    assert.deepEqual(await readdir(there), ['other.txt'])
  })
})

describe('planning a tree', () => {
  it('lists each directory once and refuses a DAG that repeats a directory under itself past the bound', TEST, async () => {
    // d0 links d1 twice, d1 links d2 twice, …: 2^21 entries from 20 directories
    const listed: string[] = []
    const list = async (cid: string): Promise<ListedEntry[]> => {
      listed.push(cid)
      const depth = Number(cid.slice(1))
      if (depth === 20) return [{ name: 'leaf.txt', type: 'file', cid: 'f', size: 1 }]
      return ['a', 'b'].map(name => ({ name, type: 'dir' as const, cid: `d${depth + 1}`, size: 0 }))
    }
    await assert.rejects(planTree('d0', { list, shownAs: 'out', maxEntries: 10_000 }), (err: any) => err.name === 'TooLargeError' && /more than 10000 entries/.test(err.message))
    assert.equal(new Set(listed).size, listed.length, 'no directory listed twice')
    const small = await planTree('d17', { list, shownAs: 'out' })
    assert.deepEqual([small.dirs.length, small.files.length, small.bytes], [2 + 4 + 8, 8, 8])
    assert.equal(small.files[0].path, join('a', 'a', 'a', 'leaf.txt'))
  })
})
