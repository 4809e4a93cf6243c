/**
 * What `npm install` runs in the package (package.json `prepare`): builds
 * `dist/` (`npm run build`: tsc, then the bundle), links
 * `node_modules/.bin/shoal` to the bundle and builds the two addons, the
 * libfuse3 binding (`npm run build:fuse3`) and the sha-256 one (`npm run
 * build:hash`), both optional — each build only when what it is made
 * from changed since it was last made. Steps of their own:
 * `node scripts/prepare.mjs stamp dist|fuse3|hash` records that one was just
 * built from the files as they are (the last step of `npm run build` and of
 * the addons' build scripts); `link` only links the bin (`npm run link:bin`);
 * `check` exits 1 when a build is due.
 *
 * Why: npm 11 runs `prepare` again in the package's folder at the first
 * `npx shoal` there: it finds `shoal` among the package's own bins and
 * installs the folder into its npx cache to link it, whatever
 * `node_modules/.bin` holds (libnpmexec). A build that always ran made that
 * first call take 18–35 s, and its `rm -rf dist` pulled the files from under
 * every process running from `dist/` — a daemon, or the tests (30 test files
 * failed at once on a CI machine whose npx cache was empty).
 *
 * How: a stamp is the SHA-256 of every file a build reads — the sources tsc
 * compiles, tsconfig.json, package.json and the installed dependency tree
 * (`node_modules/.package-lock.json`, rewritten by npm when the tree
 * changes) — by content, not by time (a checkout or a `touch` changes
 * times, not what is built). The build's stamp is kept in
 * `dist/.build-stamp`, an addon's in `native/<name>/build/.build-stamp`.
 *
 * Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
/** What tsc compiles (tsconfig.json `include`) and what else a build of dist/ depends on. */
const BUILD_INPUTS = ['node', 'protocol', 'cli', 'test', 'bench', 'simulations', 'scripts', 'tsconfig.json', 'package.json', join('node_modules', '.package-lock.json')]
const BUILD_STAMP = join(ROOT, 'dist', '.build-stamp')
const BUNDLE = join(ROOT, 'dist', 'bin', 'shoal.js')

/** Every file `path` names (itself, or the files of the folder, `build/` and `node_modules/` below it left out), as paths from the package root, sorted. */
function filesOf (path) {
  const full = join(ROOT, path)
  if (!existsSync(full)) return []
  if (!statSync(full).isDirectory()) return [path]
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter(e => e.isFile())
    .map(e => relative(ROOT, join(e.parentPath ?? e.path, e.name)))
    .filter(file => !/(^|\/)(build|node_modules)\//.test(file.slice(path.length)))
    .sort()
}

/** The SHA-256 of the files `inputs` name, by path and content. */
function stampOf (inputs) {
  const hash = createHash('sha256')
  for (const file of inputs.flatMap(filesOf)) hash.update(file).update('\0').update(readFileSync(join(ROOT, file))).update('\0')
  return hash.digest('hex')
}

function readStamp (file) {
  try { return readFileSync(file, 'utf8').trim() } catch { return undefined }
}

function npmRun (script) {
  return spawnSync('npm', ['run', script], { cwd: ROOT, stdio: 'inherit' }).status === 0
}

/**
 * The build of the addon in `native/<name>` (its sources, its stamp, `<name>.node`, `npm run build:<name>`),
 * with what `prepare` says of it: `what` it is, the Debian packages it `needs`, and what runs `without` it.
 */
function addonBuild (name, say) {
  const dir = join(ROOT, 'native', name)
  return {
    stamp: join(dir, 'build', '.build-stamp'),
    inputs: () => readdirSync(dir).filter(f => /\.(c|h|gyp)$/.test(f)).map(f => join('native', name, f)),
    made: () => existsSync(join(dir, 'build', 'Release', `${name}.node`)),
    script: `build:${name}`,
    addon: say
  }
}

/** npm links no package's own bin: `npx shoal` and the tests' CLI find it here. */
function linkBin () {
  const link = join(ROOT, 'node_modules', '.bin', 'shoal')
  mkdirSync(dirname(link), { recursive: true })
  rmSync(link, { force: true })
  symlinkSync(join('..', '..', 'dist', 'bin', 'shoal.js'), link)
}

/** The builds prepare makes: where each keeps its stamp, what it is made from, and the npm script that makes it. */
const BUILDS = {
  dist: { stamp: BUILD_STAMP, inputs: () => BUILD_INPUTS, made: () => existsSync(BUNDLE), script: 'build' },
  fuse3: addonBuild('fuse3', { what: 'the libfuse3 binding', needs: 'libfuse3-dev pkg-config make g++ python3', without: 'mounts then use fuse-native over libfuse2, and SHOAL_FUSE_BINDING=libfuse3 is unavailable' }),
  hash: addonBuild('hash', { what: 'the sha-256 addon', needs: 'make g++ python3', without: 'blocks received from peers are then hashed through WebCrypto, a little slower, and an import\'s leaves one at a time' })
}

/** True when `name` was built from the files as they are now. */
function upToDate (name) {
  const build = BUILDS[name]
  return build.made() && readStamp(build.stamp) === stampOf(build.inputs())
}

const [step, name] = process.argv.slice(2)
if (step === 'stamp' && name in BUILDS) {
  // the last step of the build's own npm script
  writeFileSync(BUILDS[name].stamp, stampOf(BUILDS[name].inputs()) + '\n')
} else if (step === 'link' && name === undefined) {
  linkBin()
} else if (step === 'check' && name === undefined) {
  const due = Object.keys(BUILDS).filter(n => !upToDate(n))
  if (due.length > 0) console.error(`scripts/prepare.mjs: to be built again: ${due.join(', ')}`)
  process.exit(due.length > 0 ? 1 : 0)
} else if (step !== undefined) {
  console.error(`scripts/prepare.mjs: expected no argument, stamp dist|fuse3|hash, link or check; got ${JSON.stringify(process.argv.slice(2).join(' '))}`)
  process.exit(2)
} else {
  if (upToDate('dist')) {
    console.log('shoal: dist/ is built from these sources and dependencies already (npm run build builds it again)')
  } else if (!npmRun('build')) {
    process.exit(1)
  }
  linkBin()
  for (const [name, { script, addon }] of Object.entries(BUILDS)) {
    if (addon === undefined) continue
    if (upToDate(name)) console.log(`shoal: ${addon.what} is built from these sources already (npm run ${script} builds it again)`)
    else if (!npmRun(script)) console.log(`shoal: ${addon.what} was not built (apt-get install ${addon.needs}, then npm run ${script}); ${addon.without}`)
  }
}
