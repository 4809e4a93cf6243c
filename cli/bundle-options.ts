/**
 * What every bundle of Shoal's code is built with: the command's
 * (cli/build-bundle.ts) and the tests' (test/bundle-tests.ts). A module of
 * constants only: importing it runs nothing.
 *
 * @module
 */
import type { BuildOptions } from 'esbuild'

/** Packages loaded from node_modules at run time, not folded into the bundle (see the module comment of cli/build-bundle.ts). */
export const EXTERNAL_PACKAGES: readonly string[] = [
  'classic-level',
  'sodium-native',
  '@node-rs/crc32',
  '@digitaldefiance/reed-solomon-erasure.wasm',
  'fuse-native',
  'xsalsa20',
  'piscina',
  'pino',
  '@aws-sdk/*'
]

/**
 * The first lines of every file of a bundle: `require`, for the CommonJS
 * packages folded into the ES module output (esbuild calls it for them).
 */
const REQUIRE_BANNER = "import { createRequire as __shoalCreateRequire } from 'node:module'; const require = __shoalCreateRequire(import.meta.url);"

/**
 * The esbuild settings every bundle shares: ES modules for Node 20, split
 * into shared chunks, class names kept (errors are told apart by their
 * class's name, and some packages set `name` from it), the packages above
 * left out, `require` defined.
 */
export const BUNDLE_SETTINGS = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  keepNames: true,
  external: [...EXTERNAL_PACKAGES],
  banner: { js: REQUIRE_BANNER }
} as const satisfies BuildOptions
