/**
 * glibc malloc settings for the daemon process: large buffers are taken from
 * the heap and freed memory is kept for the next ones, instead of each one
 * being mapped fresh from the kernel and given back when freed.
 *
 * Why: the daemon moves file data through many short-lived buffers of 64 KiB
 * to a few MiB (uploads, leaf batches, pack segments, cipher output, parity,
 * whole shards gathered from the network). glibc serves an allocation above
 * its mmap threshold (128 KiB at first, raised as such chunks are freed, to
 * at most 32 MiB) with a fresh mapping, and gives the top of the heap back
 * to the kernel once more than the trim threshold of it is free. Either way
 * the next buffer lands on pages the kernel must fault in and zero. On the
 * 2-core virtual machines we measure on, a first touch costs ~11 µs per
 * 4 KiB page: writing a fresh 64 MiB buffer took 190 ms, the same buffer a
 * second time 2.3 ms (docs/benchmarks.md, "Allocator"). With the settings
 * below, 200 fresh 6 MiB buffers filled once went from 977 to 186 ms.
 *
 * The mechanism: the daemon already runs in a child `node` that the CLI
 * starts with its heap flags (cli/relaunch.ts); glibc reads `GLIBC_TUNABLES`
 * when that process starts, so the settings are put in the child's
 * environment: `glibc.malloc.mmap_threshold` ({@link MMAP_THRESHOLD}: every
 * buffer the data path uses comes from the heap) and
 * `glibc.malloc.trim_threshold` ({@link TRIM_THRESHOLD}: at most this much
 * free memory is kept before the heap is trimmed, so an idle daemon still
 * gives back what a burst took beyond it). Setting either turns glibc's
 * dynamic adjustment of both off.
 *
 * When it applies: to `shoal daemon` relaunched by the CLI, on glibc
 * systems (another C library ignores the variable). A malloc setting the
 * user made (`GLIBC_TUNABLES` naming `glibc.malloc.`, or any `MALLOC_*_`
 * variable) is left as it is and none is added. A daemon run in place (the
 * systemd unit in contrib/) sets the same variable in its unit.
 *
 * @module
 */

/** Allocations up to this size come from the heap (bytes). */
export const MMAP_THRESHOLD = 32 * 1024 * 1024

/** Free memory kept at the top of the heap before it is given back (bytes). */
export const TRIM_THRESHOLD = 128 * 1024 * 1024

/** The tunables this module sets, in `GLIBC_TUNABLES` syntax. */
export const DAEMON_MALLOC_TUNABLES = `glibc.malloc.mmap_threshold=${MMAP_THRESHOLD}:glibc.malloc.trim_threshold=${TRIM_THRESHOLD}`

/** The legacy glibc variables that set malloc parameters (any of them means the user chose). */
const LEGACY_MALLOC_VARIABLES = ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_MMAP_MAX_', 'MALLOC_ARENA_MAX', 'MALLOC_ARENA_TEST']

/**
 * The environment for the daemon child: `env` with {@link DAEMON_MALLOC_TUNABLES}
 * added to `GLIBC_TUNABLES`, unless the user set a malloc parameter already
 * (then `env` unchanged). Never modifies `env`.
 */
export function withMallocTunables (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES ?? ''
  if (current.includes('glibc.malloc.')) return env
  if (LEGACY_MALLOC_VARIABLES.some(name => env[name] !== undefined)) return env
  return { ...env, GLIBC_TUNABLES: current === '' ? DAEMON_MALLOC_TUNABLES : `${current}:${DAEMON_MALLOC_TUNABLES}` }
}
