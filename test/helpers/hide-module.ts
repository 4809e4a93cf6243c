/**
 * Makes packages unresolvable for a whole process, as if they were not
 * installed: load it with `node --import <this file>` (or through
 * `NODE_OPTIONS`, which also reaches child processes) and name the
 * packages in `SHOAL_TEST_HIDE_MODULES` (comma-separated).
 *
 * Why: an optional dependency (fuse-native) must be tested absent, and it
 * is installed on the test machine. Removing it would break every other
 * test running at the same time; hiding it per process does not.
 *
 * How: a Node module resolve hook (`module.register`, hooks in
 * hide-module-hooks.ts) answers an import of a hidden package, or of a
 * path inside it, with the error Node gives for a package that is not in
 * node_modules (`ERR_MODULE_NOT_FOUND`, "Cannot find package …"). It sees
 * `import` and `import()`, not CommonJS `require()`: the code under test
 * loads its optional packages with `import()`.
 *
 * @module
 */
import { register } from 'node:module'

/** The environment variable that lists the packages to hide. */
export const HIDE_MODULES_ENV = 'SHOAL_TEST_HIDE_MODULES'

const names = (process.env[HIDE_MODULES_ENV] ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
if (names.length > 0) register('./hide-module-hooks.js', { parentURL: import.meta.url, data: { names } })
