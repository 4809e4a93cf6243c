/**
 * One scale run (scale-sim.ts {@link runScale}) in a `node` process of its
 * own, for the test suite.
 *
 * Why: node:test watches every asynchronous resource a test creates — its
 * harness installs an async hook whose `init` and `destroy` run for every
 * promise (node:internal/test_runner/harness), and each promise gets a
 * destroy hook that the garbage collector must process. A swarm of real
 * replicas creates millions of promises: a 500-node run took 32.8–34.7 s
 * under node:test against 19.2–20.8 s in a plain process (CPU profile under
 * the runner: `registerDestroyHook` 9.7 %, the harness's `init` 7.1 % and
 * `destroy` 2.2 %, garbage collection 22 % against 13 %).
 *
 * The mechanism: {@link runScaleInChild} forks this module with the options
 * as JSON (callbacks cannot cross, so they are not accepted), without the
 * parent's node flags (a test runner's flags would make the child a test
 * runner too) but with a larger young generation ({@link SIM_SEMI_SPACE_MIB});
 * the child runs `runScale` and sends its {@link ScaleResult}
 * back over IPC. The child is killed when the run outlasts its time limit,
 * and exits by itself when the parent goes (the IPC channel closes).
 *
 * When it applies: the suite's large simulations. `npm run sim` runs in its
 * own process already and calls `runScale` directly.
 *
 * @module
 */
import { fork } from 'node:child_process'
import { packageFile } from '../node/package-files.js'
import { runScale, type ScaleOptions, type ScaleResult } from './scale-sim.js'

/** Options of a scale run that can cross to another process (no callbacks). */
export type PlainScaleOptions = Omit<ScaleOptions, 'onConverged' | 'progress'>

/** A scale run in a child process failed, or outlasted its time limit. */
export class ScaleChildError extends Error {
  override name = 'ScaleChildError'
}

/**
 * The file the child runs: this module as tsc wrote it, found from the
 * package's root rather than from `import.meta.url`, which names a whole
 * chunk of modules when this code runs from a test bundle
 * (test/bundle-tests.ts): a chunk run as a script would run the script
 * guard of every module in it, and a test bundle's own path would pass this
 * one's.
 */
const HERE = packageFile('dist', 'simulations', 'scale-child.js')

/**
 * The child's young generation, in MiB per semi-space (V8's default is 16).
 * A swarm of a thousand replicas keeps gigabytes alive while every message
 * makes short-lived copies: with more room, fewer of them survive a
 * scavenge into the old generation. 1,000 nodes × 200 writers: 132 s
 * against 149 s with the default, 129 s with 128 (docs/benchmarks.md,
 * "Simulation scale"). `npm run sim` runs with the same.
 */
export const SIM_SEMI_SPACE_MIB = 64

/**
 * {@link runScale} in a child process (see the module comment).
 *
 * @throws {ScaleChildError} when the child fails, exits without a result, or runs longer than `timeoutMs`
 */
export async function runScaleInChild (options: PlainScaleOptions, limits: { timeoutMs: number }): Promise<ScaleResult> {
  const child = fork(HERE, [JSON.stringify(options)], { execArgv: [`--max-semi-space-size=${SIM_SEMI_SPACE_MIB}`], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let answer: ChildAnswer | undefined
  child.on('message', (m: ChildAnswer) => { answer = m })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, limits.timeoutMs)
  // settled only once the process is gone, so that no caller (a test's cleanup) finds it still there
  const end = await new Promise<string>(resolve => {
    // 'close', not 'exit': every message on the IPC channel has been handled by then
    child.once('close', (code, signal) => { resolve(signal ?? `code ${String(code)}`) })
    // 'error' without 'close': the process never started
    child.once('error', err => { resolve(err.message) })
  }).finally(() => { clearTimeout(timer) })
  if (timedOut) throw new ScaleChildError(`scale run of ${options.nodes} nodes still running after ${limits.timeoutMs} ms`)
  if (answer?.result !== undefined) return answer.result
  throw new ScaleChildError(answer?.error ?? `scale run child exited (${end}) without a result`)
}

/** What the child sends back. */
interface ChildAnswer { result?: ScaleResult, error?: string }

async function childMain (): Promise<void> {
  // the parent went (its test failed or was stopped): nothing left to answer
  process.on('disconnect', () => process.exit(1))
  let answer: ChildAnswer
  try {
    answer = { result: await runScale(JSON.parse(process.argv[2] ?? '{}') as PlainScaleOptions) }
  } catch (err: any) {
    answer = { error: String(err?.stack ?? err) }
  }
  process.send?.(answer, () => process.exit(0))
}

if (process.argv[1] === HERE) await childMain()
