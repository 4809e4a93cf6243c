/**
 * The resolve hook of hide-module.ts (it runs on Node's loader thread):
 * hidden packages resolve as packages that are not installed.
 *
 * @module
 */

let hidden: readonly string[] = []

/** Called by `module.register` with the names to hide. */
export function initialize (data: { names: string[] }): void {
  hidden = data.names
}

/** Node's resolve hook: a hidden package (or a path inside it) is not found; anything else resolves as usual. */
export async function resolve (specifier: string, context: { parentURL?: string }, next: (specifier: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  if (hidden.some(name => specifier === name || specifier.startsWith(`${name}/`))) {
    const parent = context.parentURL ?? 'the entry point'
    throw Object.assign(new Error(`Cannot find package '${specifier}' imported from ${parent}`), { code: 'ERR_MODULE_NOT_FOUND' })
  }
  return await next(specifier, context)
}
