/**
 * Runs the whole suite (`npm test`): every `*.test.js` under `dist/test`, two
 * files at a time, the long ones first.
 *
 * Why the order: `node --test` starts files in the order it is given them and
 * runs each file's tests one after another. Sorted by name, the simulations
 * came last, and the longest of them (the 1,000-replica run, minutes alone)
 * ran while the other slot had nothing left: the suite took that long again.
 * Started first, the long files run beside the many short ones.
 *
 * How: the simulations (`*.sim.test.js`, CPU-bound and long) first, then the
 * CLI's (each starts many processes), then the rest, by name within each
 * group. Arguments are passed to `node --test` (e.g. `--test-name-pattern`);
 * the exit code is its.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Files at a time: the machines the suite runs on have two cores. */
const CONCURRENCY = 2

/** Earlier groups start first: the long simulations, then the CLI's process-heavy tests. */
function group (file: string): number {
  if (file.endsWith('.sim.test.js')) return 0
  if (file.split('/').includes('cli')) return 1
  return 2
}

/** `files` in the order the suite starts them. */
function inRunOrder (files: string[]): string[] {
  return [...files].sort((a, b) => group(a) - group(b) || (a < b ? -1 : a > b ? 1 : 0))
}

async function testFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.filter(f => f.endsWith('.test.js')).map(f => join(dir, f))
}

async function main (): Promise<void> {
  const root = dirname(fileURLToPath(import.meta.url))
  const files = inRunOrder((await testFiles(root)).map(f => relative(process.cwd(), f)))
  const child = spawn(process.execPath, ['--test', `--test-concurrency=${CONCURRENCY}`, ...process.argv.slice(2), ...files], { stdio: 'inherit' })
  const code = await new Promise<number>(resolve => child.once('exit', (c, signal) => resolve(c ?? (signal === null ? 1 : 128))))
  process.exitCode = code
}

await main()
