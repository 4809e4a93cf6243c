/**
 * Shoal's own files, found from the package root (node/package-files.ts),
 * and the bundle that `shoal` runs (cli/build-bundle.ts): what the code
 * loads by path exists where it looks, and the packages kept out of the
 * bundle are loaded from node_modules, one copy each.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, realpathSync, statSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { packageFile, packageRoot, workerFile, WORKER_MODULES, type WorkerName } from '../../node/package-files.js'
import { EXTERNAL_PACKAGES } from '../../cli/bundle-options.js'
import { SHOAL_BIN } from '../helpers/cli.js'
import { NATIVE_HASH_FILE } from '../../node/blocks/native-hash.js'

describe('package files', () => {
  it('the package root is the folder of Shoal\'s package.json, above dist/', async () => {
    const pkg = JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as { name: string, bin: Record<string, string> }
    assert.equal(pkg.name, 'shoal')
    assert.ok(fileURLToPath(import.meta.url).startsWith(join(packageRoot(), 'dist') + '/'))
    // the command users run is the bundle the tests start
    assert.equal(packageFile(pkg.bin.shoal), SHOAL_BIN)
  })

  it('`npx shoal` in the package\'s folder (the README\'s first command) runs this build, building nothing again, even at its first call', async t => {
    // npm 11 installs the folder into its npx cache at the first `npx shoal` there (the package's own
    // bin), running `prepare` in place: that must find dist/ and both addons built already
    // (scripts/prepare.mjs), or it rebuilds them (~20 s) and `rm -rf dist` runs under every test beside this one
    const check = spawnSync(process.execPath, [packageFile('scripts', 'prepare.mjs'), 'check'], { cwd: packageRoot(), encoding: 'utf8', timeout: 60_000 })
    // not run any further when a build is due: npx would rebuild under the suite
    assert.equal(check.status, 0, `a fresh npm test build is not recognised as built: ${check.stderr}`)
    const bundle = statSync(SHOAL_BIN).mtimeMs
    const binding = statSync(packageFile('native', 'fuse3', 'build', 'Release', 'fuse3.node')).mtimeMs
    const hashAddon = statSync(NATIVE_HASH_FILE()).mtimeMs
    // a first call: an npm cache of its own, empty
    const cache = await mkdtemp(join(tmpdir(), 'shoal-npx-cache-'))
    t.after(async () => { await rm(cache, { recursive: true, force: true }) })
    const env = { ...process.env, npm_config_update_notifier: 'false', npm_config_cache: cache }
    const r = spawnSync('npx', ['shoal', '--json', 'version'], { cwd: packageRoot(), encoding: 'utf8', timeout: 120_000, env })
    assert.equal(r.status, 0, r.stderr)
    const pkg = JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
    assert.equal((JSON.parse(r.stdout) as { version: string }).version, pkg.version)
    assert.equal(statSync(SHOAL_BIN).mtimeMs, bundle, 'the bundle was built again')
    assert.equal(statSync(packageFile('native', 'fuse3', 'build', 'Release', 'fuse3.node')).mtimeMs, binding, 'the libfuse3 binding was built again')
    assert.equal(statSync(NATIVE_HASH_FILE()).mtimeMs, hashAddon, 'the sha-256 addon was built again')
    assert.equal(realpathSync(join(packageRoot(), 'node_modules', '.bin', 'shoal')), SHOAL_BIN)
  })

  it('every file the node loads by path is where it looks for it', () => {
    for (const file of [
      ...Object.keys(WORKER_MODULES).map(name => workerFile(name as WorkerName)),
      packageFile('node', 'api', 'ui', 'index.html'),
      NATIVE_HASH_FILE()
    ]) assert.ok(existsSync(file), file)
    // run from tsc's output (as here), the workers are tsc's
    assert.equal(workerFile('leaf-worker'), packageFile('dist', 'node', 'content', 'leaf-worker.js'))
  })

  it('the bundle starts its own bundled workers, and they run', async () => {
    for (const name of Object.keys(WORKER_MODULES)) assert.ok(existsSync(packageFile('dist', 'bin', `${name}.js`)), name)
    // the bundle's own copy of package-files, asked from a module beside shoal.js: the chunk that holds it
    const chunk = await findChunk(/function workerFile\b/)
    // a chunk exports under short names; the function keeps its own (keepNames)
    const mod = await import(pathToFileURL(chunk).href) as Record<string, unknown>
    const fn = Object.values(mod).find((v): v is (name: WorkerName) => string => typeof v === 'function' && v.name === 'workerFile')
    assert.ok(fn !== undefined, 'workerFile is exported by a chunk of the bundle')
    for (const name of Object.keys(WORKER_MODULES) as WorkerName[]) assert.equal(fn(name), packageFile('dist', 'bin', `${name}.js`))
    // a bundled worker loads: its module evaluates on a worker thread without error
    for (const name of Object.keys(WORKER_MODULES)) {
      const url = pathToFileURL(packageFile('dist', 'bin', `${name}.js`)).href
      const worker = new Worker(`import(${JSON.stringify(url)}).then(() => require('node:worker_threads').parentPort.postMessage('loaded'))`, { eval: true })
      try {
        assert.equal(await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) }), 'loaded', name)
      } finally {
        await worker.terminate()
      }
    }
  })

  it('the bundle imports the packages kept out of it from node_modules', async () => {
    const dir = join(packageRoot(), 'dist', 'bin')
    const text = (await Promise.all((await readdir(dir)).filter(f => f.endsWith('.js')).map(async f => await readFile(join(dir, f), 'utf8')))).join('\n')
    // pnet's cipher: the one module instance node/net/xsalsa20-fix.ts patches
    assert.match(text, /from "xsalsa20"/)
    assert.match(text, /from "classic-level"/)
    assert.match(text, /import\("fuse-native"\)/)
    for (const name of EXTERNAL_PACKAGES) {
      // no file of an external package was folded in, nor a nested copy (esbuild names each file in a comment)
      const pkg = name.replace(/\/\*$/, '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
      assert.doesNotMatch(text, new RegExp(`^// .*node_modules/(?:.*/node_modules/)?${pkg}/`, 'm'), name)
    }
  })

  it('no code in the bundle finds files from __dirname or __filename (ES module output has neither)', async () => {
    const dir = join(packageRoot(), 'dist', 'bin')
    for (const file of (await readdir(dir)).filter(f => f.endsWith('.js'))) {
      const code = (await readFile(join(dir, file), 'utf8')).split('\n').filter(line => !/^\s*(\/\/|\*|\/\*)/.test(line))
      const found = code.filter(line => /\b__(dirname|filename)\b/.test(line))
      assert.deepEqual(found, [], file)
    }
  })
})

/** The file of the bundle (dist/bin) whose code matches `pattern`. */
async function findChunk (pattern: RegExp): Promise<string> {
  const dir = packageFile('dist', 'bin')
  for (const file of (await readdir(dir)).filter(f => f.endsWith('.js'))) {
    if (pattern.test(await readFile(join(dir, file), 'utf8'))) return join(dir, file)
  }
  throw new Error(`no file of ${dir} matches ${pattern}`)
}
