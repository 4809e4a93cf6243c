/**
 * Where Shoal's own files are on disk (package.json, the status page's
 * files, the libfuse3 addon, the worker threads' modules), whichever file
 * the code that asks runs from.
 *
 * Why: the same code runs from two places. tsc's output keeps one file per
 * module (dist/node/api/status-routes.js), while the `shoal` command runs
 * the bundle (dist/bin/, built by cli/build-bundle.ts), where the code of
 * every module sits in a few files of one folder. A path written relative to
 * the module that reads it (`new URL('../../../package.json',
 * import.meta.url)`) is right in one of them only.
 *
 * How: the package root is the first folder, going up from this module's
 * file, that holds a package.json (neither dist/ nor its sub-folders have
 * one); paths are joined from there. Found once per process. The worker
 * threads' modules are bundled too ({@link workerFile}): code that runs
 * from the bundle starts the bundled ones, code that runs from tsc's output
 * (the tests) tsc's.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let root: string | undefined
let version: string | undefined

/** The folder holding Shoal's package.json. */
export function packageRoot (): string {
  if (root !== undefined) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}: Shoal's files are not where they were installed`)
    dir = up
  }
  root = dir
  return root
}

/** The absolute path of a file of the package, from its root: `packageFile('dist', 'node', 'content', 'leaf-worker.js')`. */
export function packageFile (...segments: string[]): string {
  return join(packageRoot(), ...segments)
}

/**
 * The modules run on worker threads, by name, as paths under tsc's output
 * (`dist/`); cli/build-bundle.ts bundles each as `dist/bin/<name>.js`.
 */
export const WORKER_MODULES = {
  'leaf-worker': ['node', 'content', 'leaf-worker.js'],
  'parity-worker': ['node', 'durability', 'parity-worker.js']
} as const satisfies Record<string, readonly string[]>

/** The name of a module run on a worker thread. */
export type WorkerName = keyof typeof WORKER_MODULES

/**
 * The file a worker thread runs: from the bundle when this code runs from
 * it (a worker loaded there starts in ~15 ms against ~40–80 ms for tsc's
 * dozens of files: measured on the leaf worker), else from tsc's output, so
 * a worker runs the same build as the code that starts it.
 */
export function workerFile (name: WorkerName): string {
  const bundle = packageFile('dist', 'bin')
  return dirname(fileURLToPath(import.meta.url)) === bundle ? join(bundle, `${name}.js`) : packageFile('dist', ...WORKER_MODULES[name])
}

/** Shoal's version, from its package.json (read once per process). */
export function shoalVersion (): string {
  version ??= (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version
  return version
}
