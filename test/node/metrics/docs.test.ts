/**
 * docs/api.md lists exactly what `/metrics` serves: a real node (real
 * libp2p, LevelDB, its API on a loopback port) is scraped, and every metric
 * family it serves has a row in the table of the doc's "Metrics" section
 * (by name, or by a documented prefix such as `libp2p_*`) with its type,
 * and every name the table lists is served.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { live, swarmOf } from '../../helpers/swarm.js'
import { serveMetrics } from './scrape.js'

const TEST = { timeout: 120_000 }
const API_DOC = fileURLToPath(new URL('../../../../docs/api.md', import.meta.url))

interface DocRow { name: string, type: string, prefix: boolean }

/** The rows of the table in the "## Metrics" section of docs/api.md. */
async function documented (): Promise<DocRow[]> {
  const text = await readFile(API_DOC, 'utf8')
  const start = text.indexOf('\n## Metrics\n')
  assert.ok(start >= 0, 'docs/api.md has a "## Metrics" section')
  const next = text.indexOf('\n## ', start + 1)
  const section = text.slice(start, next < 0 ? undefined : next)
  const rows: DocRow[] = []
  for (const line of section.split('\n')) {
    const m = /^\| `([a-z_:0-9*]+)` \| ([a-z]+) \|/.exec(line)
    if (m === null) continue
    rows.push({ name: m[1].replace(/\*$/, ''), type: m[2], prefix: m[1].endsWith('*') })
  }
  return rows
}

describe('metrics documentation', () => {
  it('docs/api.md lists every metric family /metrics serves, with its type, and nothing it does not serve', TEST, async t => {
    const rows = await documented()
    assert.ok(rows.length > 20, `the table has rows (${rows.length})`)
    // two connected nodes: libp2p registers some of its metrics once connections exist
    const swarm = await swarmOf(t, 2)
    const node = live(swarm)[0]
    const scrape = await (await serveMetrics(t, node))()
    const served = scrape.types
    const exact = new Map(rows.filter(r => !r.prefix).map(r => [r.name, r.type]))
    const prefixes = rows.filter(r => r.prefix).map(r => r.name)
    const undocumented = [...served.keys()].filter(name => !exact.has(name) && !prefixes.some(p => name.startsWith(p)))
    assert.deepEqual(undocumented, [], 'every served family is in the table')
    const missing = [...exact.keys()].filter(name => !served.has(name))
    assert.deepEqual(missing, [], 'every name in the table is served')
    for (const [name, type] of exact) assert.equal(served.get(name), type, `${name} is a ${type}, as documented`)
    for (const p of prefixes) assert.ok([...served.keys()].some(name => name.startsWith(p)), `some family starts with ${p}`)
    for (const name of served.keys()) {
      if (name.startsWith('shoal_') && served.get(name) === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`)
    }
  })
})
