/**
 * Builds the `shoal` command that users run (package.json `bin`): the
 * command line and the node in a few files of `dist/bin/`, from tsc's output
 * (`dist/cli/bin.js` and what it imports). `npm run build` runs it after tsc.
 *
 * Why: a daemon loaded ~1,000 modules at start (ours and the packages'),
 * and Node's ES module loader spent most of a second of CPU resolving,
 * opening and linking them, more than the code's own parsing: measured
 * 1.0–1.2 CPU-s to import `node/daemon.js` against 0.3 for the same code
 * bundled (docs/benchmarks.md, "The test suite's length"). Every `shoal`
 * command paid its share, and the test suite starts hundreds of daemons.
 *
 * How: esbuild bundles the ES modules into `dist/bin/shoal.js` and shared
 * chunks beside it (`splitting`: a client command still loads only what it
 * uses, as the lazy `import()`s in cli/main.ts intend). Names are kept
 * (`keepNames`): errors are told apart by their class's name, and some
 * packages set `name` from it. `require` is defined for the CommonJS
 * packages folded into the ES module output.
 *
 * Left out of the bundle, loaded from node_modules as before:
 * - packages with native or WebAssembly parts found on disk at run time
 *   (LevelDB, libsodium, crc32c, the Reed–Solomon wasm), and fuse-native,
 *   an optional dependency that may be missing;
 * - `xsalsa20`: node/net/xsalsa20-fix.ts patches the very module instance
 *   @libp2p/pnet uses, so both must load it from one place;
 * - piscina, which starts its workers from its own package folder, and
 *   pino, whose transports do (`__dirname`, which ES module output lacks);
 * - the AWS SDK, imported only at a cold tier's first request.
 *
 * The worker threads' modules (leaf-worker, parity-worker) are entries of
 * the same build, `dist/bin/<name>.js`, sharing its chunks: the bundle starts
 * those (node/package-files.ts, `workerFile`). Tests import tsc's output,
 * which starts tsc's workers, and start the bundle as `shoal`
 * (test/helpers/cli.ts).
 *
 * @module
 */
import { rm } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { packageFile, WORKER_MODULES } from '../node/package-files.js'
import { BUNDLE_SETTINGS } from './bundle-options.js'

/** Where the bundle goes: `dist/bin/shoal.js` and its chunks. */
export const BUNDLE_DIR = packageFile('dist', 'bin')

async function main (): Promise<void> {
  await rm(BUNDLE_DIR, { recursive: true, force: true })
  const result = await build({
    entryPoints: {
      shoal: packageFile('dist', 'cli', 'bin.js'),
      ...Object.fromEntries(Object.entries(WORKER_MODULES).map(([name, path]) => [name, packageFile('dist', ...path)]))
    },
    outdir: BUNDLE_DIR,
    ...BUNDLE_SETTINGS,
    logLevel: 'warning'
  })
  if (result.errors.length > 0) process.exitCode = 1
}

// run as a script (`node dist/cli/build-bundle.js`); what other code shares with this build is in
// bundle-options.ts (this module bundled into a test would take the test's path for its own: test/bundle-tests.ts)
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
