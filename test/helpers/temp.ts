/**
 * Temporary directories and block stores for tests, cleaned up through
 * node:test's `t.after` so they go away even when the test fails.
 *
 * node:test runs `after` callbacks in registration order; cleanups registered
 * through {@link defer} instead run in reverse order (a store is closed before
 * its directory is removed), and every one runs even when another throws.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { promisify } from 'node:util'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBlockStore, type BlockStoreInit, type BlockStoreMetrics, type PackBlockStore } from '../../node/blocks/index.js'

/** The part of node:test's `TestContext` these helpers need. */
export interface CleanupContext {
  after: (fn: () => Promise<void>) => void
}

const stacks = new WeakMap<CleanupContext, Array<() => Promise<void>>>()

/**
 * Run `fn` when the test `t` ends (pass or fail), after every cleanup
 * deferred later on the same context (last in, first out).
 */
export function defer (t: CleanupContext, fn: () => Promise<void>): void {
  let stack = stacks.get(t)
  if (stack === undefined) {
    const fns: Array<() => Promise<void>> = []
    stack = fns
    stacks.set(t, fns)
    t.after(async () => {
      const errors: unknown[] = []
      while (fns.length > 0) {
        try { await fns.pop()?.() } catch (err) { errors.push(err) }
      }
      if (errors.length === 1) throw errors[0]
      if (errors.length > 1) throw new AggregateError(errors, 'test cleanup failed')
    })
  }
  stack.push(fn)
}

/**
 * Mount a tmpfs of `size` (e.g. `'160m'`) at `dir` (made if missing) and
 * unmount it when the test ends (lazily, after the cleanups deferred later:
 * daemons and stores on it stop first). Small real file systems are how the
 * full-disk tests fill a disk; mounting needs root, which CI has: where it
 * cannot mount, the test fails saying so rather than being skipped.
 */
export async function mountTmpfs (t: CleanupContext, dir: string, size: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])
  } catch (err: any) {
    throw new Error(`cannot mount a tmpfs at ${dir} (the full-disk tests need root, as CI runs them): ${String(err?.stderr ?? err?.message ?? err).trim()}`)
  }
  defer(t, async () => { await run('umount', ['-l', dir]).catch(() => {}) })
}

const run = promisify(execFile)

/**
 * Create a fresh directory `$TMPDIR/<prefix>XXXXXX` that is removed
 * (recursively) when the test ends.
 *
 * @example
 * it('…', async (t) => { const dir = await tempDir(t) })
 */
export async function tempDir (t: CleanupContext, prefix = 'shoal-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  defer(t, async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Settings for {@link openBlockStore}: any {@link BlockStoreInit} field plus metrics. */
export interface OpenBlockStoreOptions extends Partial<BlockStoreInit> {
  metrics?: BlockStoreMetrics
}

/**
 * Open a block store (packs indexed in LevelDB) in `dir` (a new {@link tempDir} when omitted)
 * that is closed when the test ends, before its directory is removed.
 * Closing a store that the test already closed is a no-op.
 */
export async function openBlockStore (t: CleanupContext, dir?: string, options: OpenBlockStoreOptions = {}): Promise<PackBlockStore> {
  const { metrics, ...init } = options
  const path = dir ?? await tempDir(t)
  const store = createBlockStore({ metrics }, { ...init, path }) 
  await store.open()
  defer(t, async () => { await store.close() })
  return store
}
