/**
 * Bundles the suite's test files before `npm test` runs them (test/run.ts):
 * each `dist/test/…/x.test.js` that tsc wrote gets a bundle beside it,
 * `x.test.bundle.js`, and the code the bundles share goes to
 * `dist/test/_chunks/`.
 *
 * Why: every test file runs in a process of its own, and each imported
 * tsc's output, one file per module: ~1,000 modules (ours and the
 * packages') for a file that starts a node. Node 20's ES module loader
 * spends most of a second of CPU resolving, opening and linking them, more
 * than the tests of many files cost; over the suite's 234 files that was
 * about a sixth of its CPU (docs/benchmarks.md, "The test suite's length").
 * The `shoal` command had the same cost and runs as a bundle for it
 * (cli/build-bundle.ts); the tests now do too.
 *
 * How: one esbuild build with every test file as an entry and `splitting`,
 * with the command's settings (kept names, `require` defined, the packages
 * with native parts loaded from node_modules) and the test-only packages that
 * find their own files at run time left out too (playwright-core, s3rver,
 * esbuild, typescript). A bundle sits in its test file's folder, so
 * what the file finds relative to itself (`new URL('./crash-child.js',
 * import.meta.url)`) it finds from its bundle; code shared by several files
 * finds Shoal's files through node/package-files.ts, whichever file it runs
 * from. Not bundled, run from tsc's output as before: the scripts tests
 * start as child processes, the worker threads' modules, the preload
 * (`lean-harness.js`), and a test file run by hand with `node --test`.
 *
 * @module
 */
import { rm } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { build } from 'esbuild'
import { BUNDLE_SETTINGS } from '../cli/bundle-options.js'

/** Packages the tests use that must load from node_modules: they find their own files from `__dirname` or `__filename`. */
const TEST_EXTERNAL_PACKAGES: readonly string[] = ['playwright-core', 's3rver', 'esbuild', 'typescript']

/** Where the bundles' shared code goes, under the tests' folder. */
const CHUNKS = '_chunks'

/** A bundle could not be built: the test files as tsc wrote them do not bundle. */
export class TestBundleError extends Error {
  override name = 'TestBundleError'
}

/**
 * Bundle `files` (test files under `root`, tsc's output). Resolves to the
 * bundle of each, in the order given.
 *
 * @throws {TestBundleError} when esbuild reports an error or leaves a file without its bundle
 */
export async function bundleTests (options: { root: string, files: readonly string[] }): Promise<string[]> {
  const root = resolve(options.root)
  const files = options.files.map(f => resolve(f))
  await rm(join(root, CHUNKS), { recursive: true, force: true })
  const result = await build({
    entryPoints: files,
    outdir: root,
    outbase: root,
    entryNames: '[dir]/[name].bundle',
    chunkNames: `${CHUNKS}/[name]-[hash]`,
    ...BUNDLE_SETTINGS,
    external: [...BUNDLE_SETTINGS.external, ...TEST_EXTERNAL_PACKAGES],
    metafile: true,
    logLevel: 'silent'
  }).catch((err: unknown) => {
    throw new TestBundleError(`the test files do not bundle: ${err instanceof Error ? err.message : String(err)}`)
  })
  const bundleOf = new Map<string, string>()
  for (const [out, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint !== undefined) bundleOf.set(resolve(meta.entryPoint), resolve(out))
  }
  return files.map(file => {
    const bundle = bundleOf.get(file)
    if (bundle === undefined) throw new TestBundleError(`no bundle was written for ${relative(root, file)}`)
    return bundle
  })
}
