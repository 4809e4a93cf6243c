/**
 * protocol/ is a leaf: its files import one another, npm packages the
 * project depends on and Node's built-ins (`node:`), never anything else of
 * the project (node/, cli/…). Read from the sources, so a type-only import
 * counts too.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const PROTOCOL = join(ROOT, 'protocol')

/**
 * Imports that may leave protocol/, as `file → specifier`: none. Every entry
 * must still be there (so the list only shrinks: remove an entry with its
 * import).
 */
const ALLOWED = new Set<string>([])

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sources(path)
    return e.name.endsWith('.ts') ? [path] : []
  })
}

function specifiers (file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map(f => f.fileName)
}

/** The package a bare specifier names: `@scope/name` or `name`. */
function packageOf (specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

describe('protocol/ is a leaf', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  const dependencies = new Set(Object.keys(pkg.dependencies ?? {}))
  const files = sources(PROTOCOL)

  it('finds the sources and their imports', () => {
    assert.ok(files.some(f => f.endsWith(`${sep}block-exchange.ts`)), `no sources under ${PROTOCOL}`)
    assert.ok(specifiers(join(PROTOCOL, 'shards.ts')).includes('./fields.js'))
  })

  it('imports nothing of the project outside protocol/, and only packages it depends on', () => {
    const leaving: string[] = []
    const undeclared: string[] = []
    const seen = new Set<string>()
    for (const file of files) {
      const name = relative(ROOT, file).split(sep).join('/')
      for (const specifier of specifiers(file)) {
        if (specifier.startsWith('.')) {
          const target = resolve(dirname(file), specifier)
          if (target === PROTOCOL || target.startsWith(PROTOCOL + sep)) continue
          const edge = `${name} → ${specifier}`
          seen.add(edge)
          if (!ALLOWED.has(edge)) leaving.push(edge)
        } else if (!specifier.startsWith('node:') && !dependencies.has(packageOf(specifier))) {
          undeclared.push(`${name} → ${specifier}`)
        }
      }
    }
    assert.deepEqual(leaving, [], 'protocol/ must not import from the rest of the project')
    assert.deepEqual(undeclared, [], 'protocol/ imports a package that is not in package.json "dependencies"')
    const stale = [...ALLOWED].filter(edge => !seen.has(edge))
    assert.deepEqual(stale, [], 'these imports are gone: remove them from ALLOWED in test/protocol/leaf.test.ts')
  })
})
