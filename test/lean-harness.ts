/**
 * Preloaded into each test file's process by the suite's runner (run.ts,
 * `--import`): keeps node:test's async hook off promises.
 *
 * Why: on Node 20, node:test's harness enables an async hook with `init`
 * and `destroy` for every async resource, promises included, to know which
 * test an uncaught error came from. A `destroy` callback makes V8 register
 * a weak callback on every promise (`registerDestroyHook`) and run one when
 * it is collected. In the suite's promise-heavy tests (LevelDB iterators,
 * namespace replicas, block stores in the test's own process) that was a
 * third of their CPU: `snapshot-load.test.js` took 41.6 CPU-s with the hook
 * as it is and 24.4 without it on promises, the same 17 tests passing. The
 * suite is CPU-bound on two cores, so its length fell with it.
 *
 * How: `async_hooks.createHook` is wrapped before node:test is loaded (it
 * takes `createHook` from the module object when it loads). The harness's
 * hook — the only one given exactly `init` and `destroy` on a null-prototype
 * object — is created with its `init` for every resource but promises, and
 * no `destroy`. Tests and suites are resources of their own, so `it` inside
 * `describe` still finds its suite; what is lost is the attribution of an
 * error thrown in a promise's continuation to its test: it is reported as
 * a diagnostic of the file, whose exit code is then 1, so the file (and
 * `npm test`) still fails. The map from resources to tests, without
 * `destroy`, keeps an entry per non-promise resource (timers, sockets, file
 * requests): a few MB in the longest file.
 *
 * When: only in the processes of test files started by run.ts (the preload
 * takes itself out of `NODE_OPTIONS`, so the daemons and CLI processes tests
 * start run as users run them). `node --test FILE` runs without it, slower.
 *
 * @module
 */
import asyncHooks from 'node:async_hooks'

const original = asyncHooks.createHook

/** Whether `callbacks` are node:test's harness hook: `init` and `destroy` only, on an object without prototype. */
function isHarnessHook (callbacks: asyncHooks.HookCallbacks): boolean {
  return Object.getPrototypeOf(callbacks) === null &&
    typeof callbacks.init === 'function' && typeof callbacks.destroy === 'function' &&
    callbacks.before === undefined && callbacks.after === undefined && callbacks.promiseResolve === undefined
}

asyncHooks.createHook = function createHook (callbacks: asyncHooks.HookCallbacks): asyncHooks.AsyncHook {
  if (callbacks === null || typeof callbacks !== 'object' || !isHarnessHook(callbacks)) return original(callbacks)
  const init = callbacks.init as NonNullable<asyncHooks.HookCallbacks['init']>
  return original({
    init (asyncId, type, triggerAsyncId, resource) {
      if (type !== 'PROMISE') init(asyncId, type, triggerAsyncId, resource)
    }
  })
}

/** The `--import` option that loads this module. */
export const LEAN_HARNESS_OPTION = `--import=${import.meta.url}`

// the processes a test starts (daemons, CLI commands) inherit no preload
if (process.env.NODE_OPTIONS?.includes(LEAN_HARNESS_OPTION) === true) {
  const rest = process.env.NODE_OPTIONS.replace(LEAN_HARNESS_OPTION, '').trim()
  if (rest === '') delete process.env.NODE_OPTIONS
  else process.env.NODE_OPTIONS = rest
}
