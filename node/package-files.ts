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
 * one); paths are joined from there. Found once per process.
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

/** Shoal's version, from its package.json (read once per process). */
export function shoalVersion (): string {
  version ??= (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version
  return version
}
