/**
 * Runs the whole suite (`npm test`): every `*.test.js` under `dist/test`,
 * three files at a time, the long ones first, each as its bundle
 * (test/bundle-tests.ts: a file's process no longer loads ~1,000 modules).
 *
 * Why the order: each file's tests run one after another, and `node --test`
 * sorts the files it is given by name. The simulations came last, and the
 * longest of them (the 1,000-replica run, minutes alone) ran while the other
 * slot had nothing left: the suite took that long again. Started first, the
 * long files run beside the many short ones.
 *
 * How: `run()` of `node:test`, which starts files in the order given (the
 * command line's sort is not there), with the TAP reporter `node --test`
 * uses when its output is not a terminal. Order: the simulations
 * (`*.sim.test.js`, CPU-bound and long), then the CLI's (each starts many
 * processes), then the rest, by name within each group. Arguments
 * `--test-name-pattern=P` select tests as they do for `node --test`;
 * `--no-bundle` runs tsc's output as it is (to tell a bundling fault from
 * a test's); the exit code is 1 when a test failed. Each file's process preloads
 * `lean-harness.js` (node:test's async hook kept off promises, a third of
 * the CPU of the promise-heavy files; see there).
 *
 * @module
 */
import { readdir } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { run } from 'node:test'
import { tap } from 'node:test/reporters'
import { bundleTests } from './bundle-tests.js'

/**
 * Files at a time, on machines of two cores. Two left the cores idle 15 % of
 * a run: many files wait more than they compute (daemons started and
 * stopped, multi-node tests waiting on their peers' timers), and a third
 * file fills those waits: 976 s at two, 883 s at three, the cores 85 % and
 * 94 % busy, every test passing (docs/benchmarks.md, "The test suite's
 * length"). Three were tried before, when a daemon's start cost twice the
 * CPU and each stop idled a second: no shorter, and the multi-node tests'
 * bounded waits ran out.
 */
const CONCURRENCY = 3

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
  const args = process.argv.slice(2)
  const patterns = args.flatMap(arg => arg.startsWith('--test-name-pattern=') ? [arg.slice('--test-name-pattern='.length)] : [])
  const unbundled = args.includes('--no-bundle')
  const unknown = args.filter(arg => !arg.startsWith('--test-name-pattern=') && arg !== '--no-bundle')
  if (unknown.length > 0) throw new Error(`unknown arguments: ${unknown.join(' ')} (only --test-name-pattern=P and --no-bundle)`)
  const sources = inRunOrder(await testFiles(root))
  const files = (unbundled ? sources : await bundleTests({ root, files: sources })).map(f => relative(process.cwd(), f))
  // each test file's process loads lean-harness.js first (node:test's async hook kept off promises: see there)
  const lean = `--import=${pathToFileURL(join(root, 'lean-harness.js')).href}`
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, lean].filter(o => o !== undefined && o !== '').join(' ')
  const stream = run({ files, concurrency: CONCURRENCY, testNamePatterns: patterns.length > 0 ? patterns : undefined })
  const failures: Failure[] = []
  stream.on('test:fail', data => {
    process.exitCode = 1
    if (data.details.type !== 'suite') failures.push({ file: data.file, name: data.name, error: data.details.error })
  })
  const out = stream.compose(tap)
  out.pipe(process.stdout, { end: false })
  out.once('end', () => { process.stdout.write(failureSummary(failures)) })
}

/** One failed test, as the runner's `test:fail` event gives it. */
interface Failure {
  file: string | undefined
  name: string
  error: Error
}

/** At most this many lines of each failure's error in the summary. */
const SUMMARY_ERROR_LINES = 12

/**
 * The failed tests again, after the TAP stream's totals, as TAP comments:
 * which file, which test, and the head of its error. A failure is printed
 * where its test ended, among hundreds of others; whoever reads only the
 * tail of a long run's output (a CI page) sees it here.
 */
function failureSummary (failures: readonly Failure[]): string {
  if (failures.length === 0) return ''
  const lines = [`# ${failures.length} failed:`]
  for (const failure of failures) {
    lines.push(`# - ${failure.file ?? '(no file)'}: ${failure.name}`)
    const cause = (failure.error as Error & { cause?: unknown }).cause ?? failure.error
    const text = cause instanceof Error ? (cause.stack ?? `${cause.name}: ${cause.message}`) : String(cause)
    for (const line of text.split('\n').filter(l => l.trim() !== '').slice(0, SUMMARY_ERROR_LINES)) lines.push(`#     ${line}`)
  }
  return lines.join('\n') + '\n'
}

await main()
