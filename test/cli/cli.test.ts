/**
 * End-to-end tests of the `shoal` CLI against real daemons on temp repos.
 * Every CLI call is a separate `node dist/bin/shoal.js` process, so independent
 * calls run in parallel and the file-operation tests share one daemon.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { chmod, mkdir, readdir, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarIndexer } from '@ipld/car/indexer'
import { randomBytes, sha256Hex, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { exists, lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type ShoalResult, type TestDaemon } from '../helpers/cli.js'

const MiB = 1024 * 1024
const TEST = { timeout: 300_000 }

/** Assert a failed command: exit code `code` (default: any non-zero), one line on stderr, nothing on stdout. */
function assertFails (r: ShoalResult, opts: { code?: number, match?: RegExp } = {}): void {
  const where = `stderr: ${JSON.stringify(r.stderr)}`
  if (opts.code !== undefined) assert.equal(r.code, opts.code, where)
  else assert.ok(r.code !== 0 && r.code !== null, `expected a failure, got exit ${String(r.code)}; ${where}`)
  assert.equal(lines(r.stderr).length, 1, `expected exactly one line on stderr; ${where}`)
  assert.ok(r.stderr.endsWith('\n'), where)
  assert.equal(r.stdout.length, 0, `expected nothing on stdout, got ${JSON.stringify(r.stdout.toString('utf8'))}`)
  if (opts.match !== undefined) assert.match(r.stderr, opts.match)
}

/** `shoal --repo REPO ...args` expected to fail. */
async function fails (repo: string, args: string[], opts: { code?: number, match?: RegExp } = {}): Promise<ShoalResult> {
  const r = await runShoal(['--repo', repo, ...args])
  assertFails(r, opts)
  return r
}

/** Every entry under `dir`: relative path → 'dir' or the sha256 of the file. */
async function readTree (dir: string, prefix = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`
    if (e.isDirectory()) {
      out.set(rel, 'dir')
      for (const [k, v] of await readTree(join(dir, e.name), rel)) out.set(k, v)
    } else {
      out.set(rel, sha256Hex(await readFile(join(dir, e.name))))
    }
  }
  return out
}

// the suites below use separate repos and daemons: let them overlap
describe('shoal CLI', { concurrency: true }, () => {
  it('version (and --version) print the version of the package; --json makes it, and any error, one JSON line', TEST, async t => {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
    for (const args of [['version'], ['--version']]) {
      const r = await runShoal(args)
      assert.equal(r.code, 0)
      assert.match(r.stdout.toString('utf8'), new RegExp(`^shoal ${pkg.version.replace(/\./g, '\\.')} \\(node v\\d+`))
    }
    const json = await runShoal(['--json', 'version'])
    assert.equal(json.code, 0)
    assert.deepEqual(Object.keys(JSON.parse(json.stdout.toString('utf8'))), ['version', 'node', 'platform'])
    assert.equal(JSON.parse(json.stdout.toString('utf8')).version, pkg.version)
    // an error under --json: one JSON line on stderr, nothing on stdout, exit 1
    const missing = join(await tempDir(t), 'none')
    const failed = await runShoal(['--json', '--repo', missing, 'cat', '/x'])
    assert.equal(failed.code, 1)
    assert.equal(failed.stdout.byteLength, 0)
    const lines = failed.stderr.trim().split('\n')
    assert.equal(lines.length, 1)
    assert.deepEqual(JSON.parse(lines[0]).error.name, 'RepoNotFoundError')
    // and plain text without it
    assertFails(await runShoal(['--repo', missing, 'cat', '/x']), { code: 1, match: /^shoal: no Shoal repo/ })
    // the command that creates it names the repo asked for, whichever command met its absence (not ~/.shoal)
    for (const args of [['cat', '/x'], ['config', 'get'], ['daemon']]) {
      assertFails(await runShoal(['--repo', missing, ...args]), { code: 1, match: new RegExp(`create one with \`shoal init --repo ${missing}\``) })
    }
    assert.equal(await exists(missing), false, 'the daemon created nothing')
    // a command line that does not parse, under --json: one JSON line too, exit 2
    const usage = await runShoal(['--json', 'no-such-command'])
    assert.equal(usage.code, 2)
    assert.equal(JSON.parse(usage.stderr.trim()).error.name, 'UsageError')
    // --version with --json, in either order
    assert.equal(JSON.parse((await runShoal(['--version', '--json'])).stdout.toString('utf8')).version, pkg.version)
    // `help` of a command that does not exist says so in one line (not the whole help as an error); of one that does, at any depth, is its help
    for (const args of [['help', 'bogus'], ['help', 'pin', 'bogus']]) {
      const bad = await runShoal(args)
      assert.equal(bad.code, 2)
      assert.equal(bad.stderr, `shoal: unknown command 'bogus' (UsageError)\n`)
      assert.equal(bad.stdout.byteLength, 0)
    }
    const nested = await runShoal(['help', 'pin', 'status'])
    assert.equal(nested.code, 0)
    assert.match(nested.stdout.toString('utf8'), /^Usage: shoal pin status \[options\] <target>/)
  })

  it('config get/set changes one setting, validated: a bad key or value is one line and changes nothing', TEST, async t => {
    const repo = join(await tempDir(t), 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0'])
    assert.equal((await shoalOk(repo, ['config', 'get', 'api'])).toString('utf8'), '127.0.0.1:0\n')
    assert.deepEqual(await shoalJson(repo, ['config', 'set', 'api', '127.0.0.1:6123']), { key: 'api', value: '127.0.0.1:6123', restart: false })
    assert.equal(await shoalJson(repo, ['config', 'get', 'api']), '127.0.0.1:6123')
    await shoalOk(repo, ['config', 'set', 'namespace.syncInterval', '2500'])
    assert.equal(await shoalJson(repo, ['config', 'get', 'namespace.syncInterval']), 2500)
    await shoalOk(repo, ['config', 'set', 'durability.zone', 'rack-1'])
    // one address for a list setting is a list of one
    await shoalOk(repo, ['config', 'set', 'listen', '/ip4/127.0.0.1/tcp/4001'])
    assert.deepEqual(await shoalJson(repo, ['config', 'get', 'listen']), ['/ip4/127.0.0.1/tcp/4001'])
    await shoalOk(repo, ['config', 'set', 'listen', '["/ip4/127.0.0.1/tcp/0"]'])
    assert.deepEqual(await shoalJson(repo, ['config', 'get', 'listen']), ['/ip4/127.0.0.1/tcp/0'])
    assert.equal(await shoalJson(repo, ['config', 'get', 'storage.reserve']), null, 'unset')
    const before = await readFile(join(repo, 'config.json'), 'utf8')
    await fails(repo, ['config', 'set', 'api', '10.0.0.1:80'], { code: 1, match: /loopback/ })
    await fails(repo, ['config', 'set', 'namespace.syncInterval', '5'], { code: 1, match: /namespace\.syncInterval/ })
    await fails(repo, ['config', 'set', 'nope', '1'], { code: 1, match: /no setting "nope"/ })
    await fails(repo, ['config', 'set', 'listen', '["not a multiaddr"]'], { code: 1, match: /invalid listen address/ })
    await fails(repo, ['config', 'set', 'listen', 'not-a-multiaddr'], { code: 1, match: /invalid listen address/ })
    // addresses the swarm cannot listen on: saved, they failed every start after
    for (const bad of ['[""]', '/ip4/127.0.0.1/udp/4001/quic-v1', '/dns4/example.com/tcp/4001', '/ip4/127.0.0.1']) {
      await fails(repo, ['config', 'set', 'listen', bad], { code: 1, match: /invalid listen address .*expected \/ip4\/ADDR\/tcp\/PORT/ })
    }
    await fails(repo, ['config', 'get', 'nope'], { code: 1, match: /no setting/ })
    // a tier's settings go together: one alone, before any tier, says how to set one (it named another setting)
    await fails(repo, ['config', 'set', 'tier.endpoint', 'http://127.0.0.1:9000'], { code: 1, match: /^shoal: tier\.endpoint: no cold tier is set yet; set one with `shoal tier s3/m })
    // whether the repo is a private swarm follows its swarm key: not a setting
    await fails(repo, ['config', 'set', 'privateSwarm', 'false'], { code: 1, match: /no setting "privateSwarm"/ })
    // a whole section would reset its other settings: refused
    await fails(repo, ['config', 'set', 'durability', '{"zone":"x"}'], { code: 1, match: /is a section/ })
    // a policy the daemon could not start with
    await fails(repo, ['config', 'set', 'durability.largePolicy', 'ec:0+9'], { code: 1 })
    // periods past what a timer can wait (a daemon then ran its repair pass in a busy loop), and absurd ones
    await fails(repo, ['config', 'set', 'durability.checkInterval', '3000000000'], { code: 1, match: /durability\.checkInterval/ })
    await fails(repo, ['config', 'set', 'durability.grace', '99999999999999'], { code: 1, match: /durability\.grace/ })
    // below a sensible floor: a pass every millisecond, a holder's restart rebuilt, a scrub without end
    await fails(repo, ['config', 'set', 'durability.checkInterval', '1'], { code: 1, match: /durability\.checkInterval.*at least 1000 ms/ })
    await fails(repo, ['config', 'set', 'durability.grace', '1'], { code: 1, match: /durability\.grace.*at least 1000 ms/ })
    await fails(repo, ['config', 'set', 'durability.scrubInterval', '5'], { code: 1, match: /durability\.scrubInterval.*at least 60000 ms/ })
    await fails(repo, ['config', 'set', 'durability.scrubInterval', '99999999999999'], { code: 1, match: /durability\.scrubInterval/ })
    assert.equal(await readFile(join(repo, 'config.json'), 'utf8'), before, 'config unchanged by the refused sets')
    const config = JSON.parse(before) as { api: string, durability: { zone: string } }
    assert.equal(config.durability.zone, 'rack-1')
    // a config written before the floors, under them: read raised to them (refused, neither the daemon nor any
    // `config set` could use it), and mended by a set
    const old = JSON.parse(before)
    await writeFile(join(repo, 'config.json'), JSON.stringify({ ...old, durability: { ...old.durability, grace: 500, checkInterval: 5, scrubInterval: 0 } }))
    assert.equal((await shoalOk(repo, ['config', 'get', 'durability.grace'])).toString().trim(), '1000')
    assert.equal((await shoalOk(repo, ['config', 'get', 'durability.checkInterval'])).toString().trim(), '1000')
    assert.equal((await shoalOk(repo, ['config', 'get', 'durability.scrubInterval'])).toString().trim(), '0')
    await shoalOk(repo, ['config', 'set', 'durability.grace', '600000'])
    assert.equal(JSON.parse(await readFile(join(repo, 'config.json'), 'utf8')).durability.grace, 600000)
  })

  describe('shoal init', { concurrency: true }, () => {
    it('creates a repo once; a second init on it fails with one line', TEST, async t => {
      const repo = join(await tempDir(t), 'repo')
      const out = await shoalOk(repo, ['init', '--api', '127.0.0.1:0'])
      assert.match(out.toString('utf8'), /12D3Koo/)
      assert.ok(await exists(join(repo, 'config.json')))
      assert.ok(await exists(join(repo, 'api.token')))
      const config = await readFile(join(repo, 'config.json'), 'utf8')
      await fails(repo, ['init', '--api', '127.0.0.1:0'], { code: 1, match: /already exists/ })
      assert.equal(await readFile(join(repo, 'config.json'), 'utf8'), config, 'config unchanged')
    })

    it('says, once, that a listen address with port 0 takes a new port at each start; the default does not', TEST, async t => {
      const dir = await tempDir(t)
      const zero = await runShoal(['--repo', join(dir, 'zero'), 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
      assert.equal(zero.code, 0, zero.stderr)
      assert.deepEqual(lines(zero.stderr).filter(l => l.includes('port 0')).length, 1, zero.stderr)
      const fixed = await runShoal(['--repo', join(dir, 'fixed'), 'init', '--api', '127.0.0.1:0'])
      assert.equal(fixed.code, 0, fixed.stderr)
      assert.doesNotMatch(fixed.stderr, /port 0/)
    })

    it('--json prints one JSON document', TEST, async t => {
      const repo = join(await tempDir(t), 'repo')
      const doc = await shoalJson(repo, ['init', '--api', '127.0.0.1:0'])
      assert.match(doc.id, /^12D3Koo/)
      assert.equal(doc.api, '127.0.0.1:0')
    })

    it('refuses a non-loopback API address and creates nothing', TEST, async t => {
      const repo = join(await tempDir(t), 'repo')
      await fails(repo, ['init', '--api', '0.0.0.0:1'], { code: 1, match: /loopback/ })
      assert.equal(await exists(join(repo, 'config.json')), false)
    })

    it('refuses a listen address the swarm cannot listen on (an empty one too) and creates nothing', TEST, async t => {
      const repo = join(await tempDir(t), 'repo')
      for (const bad of ['', '/ip4/0.0.0.0/udp/4747/quic-v1']) {
        await fails(repo, ['init', '--api', '127.0.0.1:0', '--listen', bad], { code: 1, match: /invalid listen address/ })
        assert.equal(await exists(repo), false)
      }
    })

    it('a daemon whose config binds the API elsewhere refuses to start, with one line', TEST, async t => {
      const repo = join(await tempDir(t), 'repo')
      await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
      const file = join(repo, 'config.json')
      const config = JSON.parse(await readFile(file, 'utf8'))
      await writeFile(file, JSON.stringify({ ...config, api: '0.0.0.0:0' }))
      await fails(repo, ['daemon'], { code: 1, match: /loopback.*SSH tunnel/ })
      assert.equal(await exists(join(repo, 'api')), false, 'no API address written')
    })

    it('a new repo is a private swarm with a fresh key; --open makes an open one', TEST, async t => {
      const dir = await tempDir(t)
      const [a, b, open] = await Promise.all(['a', 'b', 'open'].map(async n => await shoalJson(join(dir, n), ['init', '--api', '127.0.0.1:0', ...(n === 'open' ? ['--open'] : [])])))
      assert.equal(a.swarm, 'private')
      assert.equal(open.swarm, 'open')
      const keyA = await readFile(join(dir, 'a', 'swarm.key'), 'utf8')
      assert.notEqual(keyA, await readFile(join(dir, 'b', 'swarm.key'), 'utf8'), 'every repo gets its own key')
      assert.equal(await exists(join(dir, 'open', 'swarm.key')), false)
      assert.equal(b.swarm, 'private')
      assert.match((await shoalOk(join(dir, 'c'), ['init', '--api', '127.0.0.1:0'])).toString(), /new private swarm.*shoal invite/)
    })

    it('refuses a bad or missing swarm key file and creates nothing', TEST, async t => {
      const dir = await tempDir(t)
      const bad = join(dir, 'bad.key')
      await writeFile(bad, 'this is not a swarm key\n')
      const [a, b] = await Promise.all([
        runShoal(['--repo', join(dir, 'a'), 'init', '--api', '127.0.0.1:0', '--swarm-key', bad]),
        runShoal(['--repo', join(dir, 'b'), 'init', '--api', '127.0.0.1:0', '--swarm-key', join(dir, 'missing.key')])
      ])
      assertFails(a, { code: 1 })
      assertFails(b, { code: 1, match: /missing\.key/ })
      assert.equal(await exists(join(dir, 'a', 'config.json')), false)
      assert.equal(await exists(join(dir, 'b', 'config.json')), false)
    })
  })

  describe('shoal file commands', { concurrency: true }, () => {
    const ctx = suiteContext()
    let d: TestDaemon
    let local: string
    before(async () => {
      d = await startDaemon(ctx)
      local = await tempDir(ctx, 'shoal-cli-local-')
    })

    it('add FILE binds /<basename>; --json is exactly {cid,path,size}', TEST, async () => {
      const file = join(local, 'alpha.txt')
      await writeFile(file, 'alpha contents\n')
      const out = await shoalOk(d.repo, ['--json', 'add', file])
      const text = out.toString('utf8')
      assert.equal(lines(text).length, 1, text)
      const doc = JSON.parse(text)
      assert.deepEqual(Object.keys(doc).sort(), ['cid', 'path', 'size'])
      assert.equal(doc.path, '/alpha.txt')
      assert.equal(doc.size, 15)
      assert.equal(typeof doc.cid, 'string')
      assert.equal((await shoalOk(d.repo, ['cat', '/alpha.txt'])).toString(), 'alpha contents\n')
    })

    it('add --to /x/y creates the parents', TEST, async () => {
      const file = join(local, 'beta.txt')
      await writeFile(file, 'beta')
      const doc = await shoalJson(d.repo, ['add', file, '--to', '/tto/x/y'])
      assert.equal(doc.path, '/tto/x/y')
      const [parent, bytes] = await Promise.all([shoalJson(d.repo, ['stat', '/tto/x']), shoalOk(d.repo, ['cat', '/tto/x/y'])])
      assert.equal(parent.type, 'dir')
      assert.equal(bytes.toString(), 'beta')
    })

    it('add --to an existing directory (with or without a trailing /) puts the file inside', TEST, async () => {
      await shoalOk(d.repo, ['mkdir', '/tdir'])
      const g1 = join(local, 'gamma1.txt')
      const g2 = join(local, 'gamma2.txt')
      await writeFile(g1, 'g1')
      await writeFile(g2, 'g2')
      const [a, b] = await Promise.all([
        shoalJson(d.repo, ['add', g1, '--to', '/tdir/']),
        shoalJson(d.repo, ['add', g2, '--to', '/tdir'])
      ])
      assert.equal(a.path, '/tdir/gamma1.txt')
      assert.equal(b.path, '/tdir/gamma2.txt')
      const listing = await shoalJson<Array<{ name: string, type: string }>>(d.repo, ['ls', '/tdir'])
      assert.deepEqual(listing.map(e => `${e.type}:${e.name}`).sort(), ['file:gamma1.txt', 'file:gamma2.txt'])
    })

    it('add --chunker size-262144 gives the Kubo CID of "hello world"', TEST, async () => {
      const file = join(local, 'hw.txt')
      await writeFile(file, 'hello world')
      const doc = await shoalJson(d.repo, ['add', file, '--chunker', 'size-262144', '--to', '/tchunk/hw.txt'])
      assert.equal(doc.cid, 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')
      assert.equal(doc.size, 11)
    })

    it('an empty file round-trips through add, cat and get', TEST, async () => {
      const file = join(local, 'empty')
      await writeFile(file, '')
      const doc = await shoalJson(d.repo, ['add', file, '--to', '/tempty/empty'])
      assert.equal(doc.size, 0)
      const out = join(local, 'empty.out')
      const [bytes] = await Promise.all([shoalOk(d.repo, ['cat', '/tempty/empty']), shoalOk(d.repo, ['get', '/tempty/empty', '-o', out])])
      assert.equal(bytes.length, 0)
      assert.equal((await stat(out)).size, 0)
    })

    it('add DIR recursively; ls, stat and get reproduce the tree', TEST, async () => {
      const src = join(local, 'tree')
      await mkdir(join(src, 'a', 'b'), { recursive: true })
      await mkdir(join(src, 'a', 'empty'), { recursive: true })
      await mkdir(join(src, 'z'), { recursive: true })
      await writeFile(join(src, 'top.txt'), 'top\n')
      await writeFile(join(src, 'a', 'two.bin'), randomBytes(100_000, 11))
      // above the batch's file size (cli/add-batch.ts): sent alone, between batches of the small ones
      await writeFile(join(src, 'a', 'big.bin'), randomBytes(1_500_000, 12))
      await writeFile(join(src, 'a', 'b', 'c.txt'), 'deep file')
      await writeFile(join(src, 'a', 'b', 'zero'), '')
      await writeFile(join(src, 'z', 'name with spaces.txt'), 'spaces')
      // modes and times a get of the path gives back: an executable, a private file, old dates
      await chmod(join(src, 'top.txt'), 0o755)
      await chmod(join(src, 'a', 'b', 'c.txt'), 0o600)
      await chmod(join(src, 'z'), 0o750)
      const old = new Date('2020-02-02T02:02:02.000Z')
      await utimes(join(src, 'a', 'two.bin'), old, old)
      await utimes(join(src, 'a', 'b', 'c.txt'), old, old)
      const doc = await shoalJson(d.repo, ['add', src, '--to', '/ttree/'])
      assert.equal(doc.path, '/ttree/tree')
      assert.equal(doc.size, 4 + 100_000 + 1_500_000 + 9 + 0 + 6)

      const [top, sub, info] = await Promise.all([
        shoalJson<Array<{ name: string, type: string }>>(d.repo, ['ls', '/ttree/tree']),
        shoalJson<Array<{ name: string, type: string, size: number }>>(d.repo, ['ls', '/ttree/tree/a']),
        shoalJson(d.repo, ['stat', '/ttree/tree'])
      ])
      assert.deepEqual(top.map(e => `${e.type}:${e.name}`).sort(), ['dir:a', 'dir:z', 'file:top.txt'])
      assert.deepEqual(sub.map(e => `${e.type}:${e.name}`).sort(), ['dir:b', 'dir:empty', 'file:big.bin', 'file:two.bin'])
      assert.equal(sub.find(e => e.name === 'two.bin')?.size, 100_000)
      assert.equal(info.type, 'dir')
      assert.equal(typeof info.cid, 'string')
      assert.ok(info.cid.length > 0, 'a directory has a cid')
      assert.equal(info.cid, doc.cid)

      const byPath = join(local, 'tree.out')
      const byCid = join(local, 'tree.cid.out')
      await Promise.all([
        shoalOk(d.repo, ['get', '/ttree/tree', '-o', byPath]),
        shoalOk(d.repo, ['get', info.cid, '-o', byCid])
      ])
      const want = await readTree(src)
      assert.deepEqual(await readTree(byPath), want)
      assert.deepEqual(await readTree(byCid), want)
      // by path: the modes and times the namespace records; by CID there are none to give
      for (const f of ['top.txt', join('a', 'b', 'c.txt'), join('a', 'two.bin'), join('a', 'big.bin')]) {
        const [s0, s1] = [await stat(join(src, f)), await stat(join(byPath, f))]
        assert.equal((s1.mode & 0o777).toString(8), (s0.mode & 0o777).toString(8), `mode of ${f}`)
        assert.equal(Math.round(s1.mtimeMs), Math.floor(s0.mtimeMs), `mtime of ${f}`)
      }
      assert.equal((await stat(join(byPath, 'a', 'two.bin'))).mtime.toISOString(), old.toISOString())
      assert.equal((await stat(join(byPath, 'z'))).mode & 0o777, 0o750, 'a folder\'s mode, recorded by the add')
      assert.notEqual((await stat(join(byCid, 'top.txt'))).mode & 0o111, 0o111, 'a get by CID gives no recorded mode')
      // into a folder that is there: it keeps its own mode (a private folder stays private)
      const mine = join(local, 'mine')
      await mkdir(mine, { mode: 0o700 })
      await chmod(mine, 0o700)
      await shoalOk(d.repo, ['get', '/ttree/tree', '-o', mine])
      assert.equal((await stat(mine)).mode & 0o777, 0o700)
      assert.equal((await stat(join(mine, 'top.txt'))).mode & 0o777, 0o755, 'what it wrote gets the recorded mode')
      const one = join(local, 'top.out')
      await shoalOk(d.repo, ['get', '/ttree/tree/a/b/c.txt', '-o', one])
      assert.equal((await stat(one)).mode & 0o777, 0o600)
      assert.equal((await stat(one)).mtime.toISOString(), old.toISOString())
    })

    it('cat PATH, cat CID, ranges and get of a 3 MiB file are byte-identical', TEST, async () => {
      const size = 3 * MiB + 12_345
      const data = randomBytes(size, 7)
      const file = join(local, 'big.bin')
      await writeFile(file, data)
      const doc = await shoalJson(d.repo, ['add', file, '--to', '/tbig/big.bin'])
      assert.equal(doc.size, size)
      const out = join(local, 'big.out')
      const [byPath, byCid, mid, tail, none] = await Promise.all([
        shoalOk(d.repo, ['cat', '/tbig/big.bin']),
        shoalOk(d.repo, ['cat', doc.cid]),
        shoalOk(d.repo, ['cat', '/tbig/big.bin', '--offset', '1000000', '--length', '777777']),
        shoalOk(d.repo, ['cat', '/tbig/big.bin', '--offset', String(size - 100)]),
        shoalOk(d.repo, ['cat', '/tbig/big.bin', '--offset', '5', '--length', '0']),
        shoalOk(d.repo, ['get', '/tbig/big.bin', '-o', out])
      ])
      assertBytesEqual(byPath, data, 'cat PATH')
      assertBytesEqual(byCid, data, 'cat CID')
      assertBytesEqual(mid, data.subarray(1_000_000, 1_777_777), 'cat --offset --length')
      assertBytesEqual(tail, data.subarray(size - 100), 'cat --offset')
      assert.equal(none.length, 0, 'cat --length 0')
      assertBytesEqual(await readFile(out), data, 'get FILE')
    })

    it('mkdir: missing parent fails without -p, works with -p; existing fails without -p', TEST, async () => {
      await fails(d.repo, ['mkdir', '/tmk/a/b'], { code: 1 })
      await fails(d.repo, ['stat', '/tmk'], { code: 1, match: /NotFound/ })
      await shoalOk(d.repo, ['mkdir', '-p', '/tmk/a/b'])
      const info = await shoalJson(d.repo, ['stat', '/tmk/a/b'])
      assert.equal(info.type, 'dir')
      await fails(d.repo, ['mkdir', '/tmk/a/b'], { code: 1, match: /exists/ })
      const again = await shoalJson(d.repo, ['mkdir', '-p', '/tmk/a/b'])
      assert.deepEqual(again, info, 'mkdir -p of an existing directory is a no-op and answers like stat')
      assert.match(again.cid, /^bafy/, 'a directory has the CID of its UnixFS node')
    })

    it('mv: rename; onto a directory moves inside it; onto an existing file or into itself fails', TEST, async () => {
      const f1 = join(local, 'mv1.txt')
      const f2 = join(local, 'mv2.txt')
      await writeFile(f1, 'one')
      await writeFile(f2, 'two')
      await Promise.all([
        shoalOk(d.repo, ['mkdir', '-p', '/tmv/d/sub']),
        shoalOk(d.repo, ['add', f1, '--to', '/tmv/f1']),
        shoalOk(d.repo, ['add', f2, '--to', '/tmv/f2'])
      ])
      await shoalOk(d.repo, ['mv', '/tmv/f1', '/tmv/renamed'])
      await fails(d.repo, ['stat', '/tmv/f1'], { code: 1, match: /NotFound/ })
      const moved = await shoalJson(d.repo, ['mv', '/tmv/renamed', '/tmv/d'])
      assert.equal(moved.path, '/tmv/d/renamed')
      assert.equal((await shoalOk(d.repo, ['cat', '/tmv/d/renamed'])).toString(), 'one')
      await Promise.all([
        fails(d.repo, ['mv', '/tmv/f2', '/tmv/d/renamed'], { code: 1, match: /exists/ }),
        fails(d.repo, ['mv', '/tmv/d', '/tmv/d/sub'], { code: 1, match: /itself/ }),
        fails(d.repo, ['mv', '/tmv/nope', '/tmv/other'], { code: 1, match: /NotFound/ })
      ])
      const [f2bytes, listing] = await Promise.all([
        shoalOk(d.repo, ['cat', '/tmv/f2']),
        shoalJson<Array<{ name: string }>>(d.repo, ['ls', '/tmv/d'])
      ])
      assert.equal(f2bytes.toString(), 'two')
      assert.deepEqual(listing.map(e => e.name).sort(), ['renamed', 'sub'])
    })

    it('rm: a file; a non-empty directory needs -r; / is refused', TEST, async () => {
      const f = join(local, 'rm.txt')
      await writeFile(f, 'rm me')
      await Promise.all([
        shoalOk(d.repo, ['add', f, '--to', '/trm/f']),
        shoalOk(d.repo, ['add', f, '--to', '/trm/d/e/g'])
      ])
      await shoalOk(d.repo, ['rm', '/trm/f'])
      await fails(d.repo, ['cat', '/trm/f'], { code: 1, match: /NotFound/ })
      await fails(d.repo, ['rm', '/trm/d'], { code: 1, match: /not empty/ })
      assert.equal((await shoalOk(d.repo, ['cat', '/trm/d/e/g'])).toString(), 'rm me')
      await shoalOk(d.repo, ['rm', '-r', '/trm/d'])
      await Promise.all([
        fails(d.repo, ['stat', '/trm/d'], { code: 1, match: /NotFound/ }),
        fails(d.repo, ['rm', '/'], { code: 1 }),
        fails(d.repo, ['rm', '-r', '/'], { code: 1 })
      ])
      assert.deepEqual(await shoalJson(d.repo, ['ls', '/trm']), [])
    })

    it('id prints the peer id; --json has id', TEST, async () => {
      const [text, doc] = await Promise.all([shoalOk(d.repo, ['id']), shoalJson(d.repo, ['id'])])
      assert.match(doc.id, /^12D3Koo[1-9A-HJ-NP-Za-km-z]+$/)
      assert.ok(text.toString('utf8').includes(doc.id))
    })
  })

  describe('shoal car', () => {
    const ctx = suiteContext()
    let a: TestDaemon
    let b: TestDaemon
    let local: string
    before(async () => {
      ;[a, b] = await Promise.all([startDaemon(ctx), startDaemon(ctx)])
      local = await tempDir(ctx, 'shoal-cli-car-')
    })

    it('export from one repo, import into another: cat there is byte-identical', TEST, async () => {
      const data = randomBytes(2 * MiB + 3, 21)
      const file = join(local, 'good.bin')
      await writeFile(file, data)
      const added = await shoalJson(a.repo, ['add', file, '--to', '/car/good.bin'])
      const car = join(local, 'good.car')
      const exported = await shoalJson(a.repo, ['car', 'export', '/car/good.bin', '-o', car])
      assert.equal(exported.root, added.cid)
      assert.equal(exported.size, (await stat(car)).size)
      // `-o -` is stdout, the CAR alone (it wrote a file named `-`)
      assertBytesEqual(await shoalOk(a.repo, ['car', 'export', '/car/good.bin', '-o', '-'], { cwd: local }), await readFile(car), 'the CAR on stdout')
      assert.equal(await exists(join(local, '-')), false, 'no file named -')
      const imported = await shoalJson(b.repo, ['car', 'import', car])
      assert.deepEqual(imported.roots, [added.cid])
      assertBytesEqual(await shoalOk(b.repo, ['cat', added.cid]), data, 'cat CID in the second repo')
      // its root is bound into the namespace: gc keeps it
      assert.deepEqual(imported.paths, [`/imported/${added.cid}`])
      const info = await shoalJson(b.repo, ['stat', `/imported/${added.cid}`])
      assert.equal(info.cid, added.cid)
      assert.equal(info.size, data.byteLength)
      await shoalOk(b.repo, ['gc'])
      assertBytesEqual(await shoalOk(b.repo, ['cat', `/imported/${added.cid}`]), data, 'still whole after gc')
    })

    it('a directory CAR goes into the namespace as a tree at --to; with --pin-roots false nothing is bound and gc drops it', TEST, async () => {
      const dir = join(local, 'tree')
      await mkdir(join(dir, 'sub'), { recursive: true })
      const one = randomBytes(300 * 1024, 31)
      const two = randomBytes(5000, 32)
      await writeFile(join(dir, 'one.bin'), one)
      await writeFile(join(dir, 'sub', 'two.bin'), two)
      await shoalOk(a.repo, ['add', dir, '--to', '/car/tree'])
      const car = join(local, 'tree.car')
      const exported = await shoalJson(a.repo, ['car', 'export', '/car/tree', '-o', car])
      const imported = await shoalJson(b.repo, ['car', 'import', car, '--to', '/from-a/tree'])
      assert.deepEqual(imported.roots, [exported.root])
      assert.deepEqual(imported.paths, ['/from-a/tree'])
      await shoalOk(b.repo, ['gc'])
      assertBytesEqual(await shoalOk(b.repo, ['cat', '/from-a/tree/one.bin']), one)
      assertBytesEqual(await shoalOk(b.repo, ['cat', '/from-a/tree/sub/two.bin']), two)
      // the same path again is refused, in one line, and changes nothing
      await fails(b.repo, ['car', 'import', car, '--to', '/from-a/tree'], { code: 1, match: /exists/ })
      // at its default path, the same CAR again is fine (a script re-run), as the same file is; once the tree there
      // differs (an entry added), it is refused
      const first = await shoalJson(b.repo, ['car', 'import', car])
      assert.deepEqual(first.paths, [`/imported/${exported.root}`])
      const second = await shoalJson(b.repo, ['car', 'import', car])
      assert.deepEqual(second.paths, first.paths)
      assert.deepEqual((await shoalJson(b.repo, ['ls', `/imported/${exported.root}`])).map((e: { name: string }) => e.name).sort(), ['one.bin', 'sub'])
      await shoalOk(b.repo, ['mkdir', `/imported/${exported.root}/sub/extra`])
      await fails(b.repo, ['car', 'import', car], { code: 1, match: /exists and holds another tree/ })
      // a value that is not one of the option's is a command line that does not parse
      await fails(b.repo, ['car', 'import', car, '--pin-roots', 'maybe'], { code: 2, match: /^shoal: option '--pin-roots <bool>' argument 'maybe' is invalid\. Allowed choices are true, false\. \(UsageError\)$/m })

      // opting out: imported and readable, not bound, so the next gc drops it
      const other = join(local, 'loose.bin')
      const loose = randomBytes(200 * 1024, 33)
      await writeFile(other, loose)
      const added = await shoalJson(a.repo, ['add', other, '--to', '/car/loose.bin'])
      const looseCar = join(local, 'loose.car')
      await shoalOk(a.repo, ['car', 'export', added.cid, '-o', looseCar])
      const unbound = await shoalJson(b.repo, ['car', 'import', looseCar, '--pin-roots', 'false'])
      assert.deepEqual(unbound.paths, [])
      assertBytesEqual(await shoalOk(b.repo, ['cat', added.cid]), loose)
      await shoalOk(b.repo, ['gc'])
      await fails(b.repo, ['cat', added.cid], { code: 1, match: /NotFound|not found/ })
    })

    it('a truncated or tampered CAR is refused and nothing is imported', TEST, async () => {
      const data = randomBytes(MiB, 22)
      const file = join(local, 'bad.bin')
      await writeFile(file, data)
      const added = await shoalJson(a.repo, ['add', file, '--chunker', 'size-262144', '--to', '/car/bad.bin'])
      const car = join(local, 'bad.car')
      await shoalOk(a.repo, ['car', 'export', added.cid, '-o', car])
      const bytes = await readFile(car)
      const blocks = []
      for await (const block of await CarIndexer.fromIterable(createReadStream(car))) blocks.push(block)
      assert.equal(blocks.length, 5, 'a root and four 256 KiB leaves')
      assert.equal(blocks[0].cid.toString(), added.cid)
      const leaf = blocks[1].cid.toString()

      const truncated = join(local, 'truncated.car')
      await writeFile(truncated, bytes)
      await truncate(truncated, bytes.length - 1000)
      const tampered = join(local, 'tampered.car')
      const flipped = Buffer.from(bytes)
      const victim = blocks[3]
      flipped[victim.blockOffset + Math.floor(victim.blockLength / 2)] ^= 0x01
      await writeFile(tampered, flipped)

      const [t1, t2] = await Promise.all([runShoal(['--repo', b.repo, 'car', 'import', truncated]), runShoal(['--repo', b.repo, 'car', 'import', tampered])])
      assertFails(t1, { code: 1 })
      assertFails(t2, { code: 1 })
      await Promise.all([
        fails(b.repo, ['cat', added.cid], { code: 1, match: /NotFound|not found/ }),
        fails(b.repo, ['ls', added.cid], { code: 1, match: /NotFound|not found/ }),
        fails(b.repo, ['cat', leaf], { code: 1, match: /NotFound|not found/ })
      ])
    })
  })

  describe('shoal with bad input', () => {
    const ctx = suiteContext()
    let d: TestDaemon
    let local: string
    let before_: Buffer
    before(async () => {
      d = await startDaemon(ctx)
      local = await tempDir(ctx, 'shoal-cli-bad-')
      await writeFile(join(local, 'keep.txt'), 'keep')
      await Promise.all([shoalOk(d.repo, ['add', join(local, 'keep.txt')]), shoalOk(d.repo, ['mkdir', '/d'])])
      before_ = await shoalOk(d.repo, ['--json', 'ls', '/'])
    })

    it('each bad command fails with one line on stderr and changes nothing', TEST, async () => {
      const missing = join(local, 'does-not-exist')
      await Promise.all([
        fails(d.repo, ['add', missing], { code: 1, match: /does-not-exist/ }),
        // a value of no accepted shape does not parse (exit 2); one of the shape with sizes out of range is refused (exit 1)
        fails(d.repo, ['add', join(local, 'keep.txt'), '--to', '/other.txt', '--chunker', 'bogus'], { code: 2, match: /^shoal: option '--chunker <spec>' argument 'bogus' is invalid\. expected "fastcdc", "fastcdc-MIN-AVG-MAX" or "size-BYTES" \(UsageError\)$/m }),
        fails(d.repo, ['add', join(local, 'keep.txt'), '--to', '/other.txt', '--chunker', 'size-0'], { code: 1, match: /invalid chunker "size-0"/ }),
        fails(d.repo, ['add', join(local, 'keep.txt'), '--to', '/other.txt', '--pin', 'raid5'], { code: 2, match: /^shoal: option '--pin <policy>' argument 'raid5' is invalid\. expected "none", "ec:K\+M" or "replicas:N" \(UsageError\)$/m }),
        fails(d.repo, ['add', join(local, 'keep.txt'), '--to', '/other.txt', '--pin', 'ec:0+1'], { code: 1, match: /InvalidPolicy/ }),
        fails(d.repo, ['cat', 'bafyNOTACID'], { code: 1, match: /InvalidCID/ }),
        fails(d.repo, ['cat', 'Qm123'], { code: 1, match: /InvalidCID/ }),
        fails(d.repo, ['ls', '/no/such/dir'], { code: 1, match: /NotFound/ }),
        fails(d.repo, ['cat', '/nope'], { code: 1, match: /NotFound/ }),
        fails(d.repo, ['cat', '/d'], { code: 1 }),
        fails(d.repo, ['ls', 'foo/bar'], { code: 1, match: /InvalidCID/ }),
        fails(d.repo, ['mkdir', 'relative'], { code: 1, match: /InvalidPath/ }),
        fails(d.repo, ['mkdir', '/d/../e'], { code: 1, match: /InvalidPath/ }),
        // an option's value that is no count of bytes is a command line that does not parse; a count past the end is the read's to refuse
        fails(d.repo, ['cat', '/keep.txt', '--offset', 'abc'], { code: 2, match: /^shoal: option '--offset <bytes>' argument 'abc' is invalid\. must be a non-negative integer \(UsageError\)$/m }),
        fails(d.repo, ['cat', '/keep.txt', '--length', '1.5'], { code: 2, match: /argument '1\.5' is invalid\. must be a non-negative integer/ }),
        fails(d.repo, ['cat', '/keep.txt', '--offset', '99999999999999999999'], { code: 2, match: /is invalid\. must be at most 9007199254740991 \(UsageError\)$/m }),
        fails(d.repo, ['cat', '/keep.txt', '--offset', '1000000000000000'], { code: 1, match: /^shoal: offset 1000000000000000 outside the file \(size \d+\) \(InvalidArgumentError\)$/m }),
        // an empty argument is named as the user knows it ("arg: is required" before)
        fails(d.repo, ['cat', ''], { code: 1, match: /^shoal: the path or CID is required \(InvalidArgumentError\)$/m }),
        fails(d.repo, ['peers', 'connect', ''], { code: 1, match: /^shoal: the peer address is required \(InvalidArgumentError\)$/m }),
        fails(d.repo, ['frobnicate'], { code: 2 }),
        fails(d.repo, ['ls', '--bogus'], { code: 2 }),
        fails(d.repo, ['get', '/keep.txt'], { code: 2 })
      ])
      assert.deepEqual(JSON.parse((await shoalOk(d.repo, ['--json', 'ls', '/'])).toString()), JSON.parse(before_.toString()))
      assert.deepEqual(await shoalJson(d.repo, ['ls', '/d']), [])
    })
  })

  describe('shoal daemon lifecycle', { concurrency: false }, () => {
    const ctx = suiteContext()
    let repo: string
    let file: string
    const content = randomBytes(300_000, 31)

    before(async () => {
      const dir = await tempDir(ctx, 'shoal-cli-life-')
      repo = join(dir, 'repo')
      file = join(dir, 'durable.bin')
      await writeFile(file, content)
      await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    })

    it('without a daemon, a command says how to start one', TEST, async () => {
      await fails(repo, ['ls', '/'], { code: 1, match: /shoal daemon/ })
    })

    it('refuses a second daemon; SIGTERM stops cleanly; data survives a restart; SIGINT stops cleanly', TEST, async () => {
      const first = await startDaemon(ctx, repo)
      await shoalOk(repo, ['add', file, '--to', '/keep/durable.bin'])

      const second = await runShoal(['--repo', repo, 'daemon'], { env: { SHOAL_LOG_LEVEL: 'warn' } })
      assertFails(second, { code: 1, match: /another daemon.*pid/ })
      assert.equal((await readFile(join(repo, 'api'), 'utf8')).trim(), first.api, 'the api file still names the first daemon')
      // the lock names the node process, which the CLI process `shoal daemon` relaunched (cli/relaunch.ts)
      const lockPid = (await readFile(join(repo, 'daemon.lock'), 'utf8')).trim()
      const parentOfLock = (await readFile(`/proc/${lockPid}/stat`, 'utf8')).replace(/^.*\) /s, '').split(' ')[1]
      assert.equal(parentOfLock, String(first.child.pid), 'the lock is held by the first daemon\'s node process')
      assertBytesEqual(await shoalOk(repo, ['cat', '/keep/durable.bin']), content, 'the first daemon keeps serving')

      assert.deepEqual(await first.stop('SIGTERM'), { code: 0, signal: null }, first.output().stderr)
      assert.equal(await exists(join(repo, 'api')), false, 'api file removed')
      assert.equal(await exists(join(repo, 'daemon.lock')), false, 'lock removed')
      await fails(repo, ['cat', '/keep/durable.bin'], { code: 1, match: /shoal daemon/ })

      const again = await startDaemon(ctx, repo)
      assertBytesEqual(await shoalOk(repo, ['cat', '/keep/durable.bin']), content, 'durable across a restart')
      assert.deepEqual(await again.stop('SIGINT'), { code: 0, signal: null }, again.output().stderr)
      assert.equal(await exists(join(repo, 'api')), false, 'api file removed')
      assert.equal(await exists(join(repo, 'daemon.lock')), false, 'lock removed')
    })
  })
})
