/**
 * docs/api.md lists exactly what `/metrics` serves: a real node (real
 * libp2p, LevelDB, its API on a loopback port) is scraped, and every metric
 * family it serves has a row in the table of the doc's "Metrics" section
 * (by name, or by a documented prefix such as `libp2p_*`) with its type and
 * the label names its samples carry, every name the table lists is served,
 * and a prefix row's type is the one type of the families under it (or
 * `various` when they are of several).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { live, swarmOf } from '../../helpers/swarm.js'
import { serveMetrics } from './scrape.js'

const TEST = { timeout: 120_000 }
const API_DOC = fileURLToPath(new URL('../../../../docs/api.md', import.meta.url))

interface DocRow { name: string, type: string, prefix: boolean, labels: string[] }

/** The rows of the table in the "## Metrics" section of docs/api.md. */
async function documented (): Promise<DocRow[]> {
  const text = await readFile(API_DOC, 'utf8')
  const start = text.indexOf('\n## Metrics\n')
  assert.ok(start >= 0, 'docs/api.md has a "## Metrics" section')
  const next = text.indexOf('\n## ', start + 1)
  const section = text.slice(start, next < 0 ? undefined : next)
  const rows: DocRow[] = []
  for (const line of section.split('\n')) {
    const m = /^\| `([a-z_:0-9*]+)` \| ([a-z]+) \|([^|]*)\|/.exec(line)
    if (m === null) continue
    rows.push({ name: m[1].replace(/\*$/, ''), type: m[2], prefix: m[1].endsWith('*'), labels: labelsOf(m[3]) })
  }
  return rows
}

/**
 * The label names of a table's labels cell: "`a`, `b`" names two labels;
 * "`state`: `pending`, `placing`" names one (`state`) and lists its values.
 */
function labelsOf (cell: string): string[] {
  const named = [...cell.matchAll(/`([a-zA-Z_][a-zA-Z0-9_]*)`:/g)].map(m => m[1])
  if (named.length > 0) return named
  return [...cell.matchAll(/`([a-zA-Z_][a-zA-Z0-9_]*)`/g)].map(m => m[1])
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
    // the labels column names the labels the samples carry (a family with no sample yet says nothing)
    for (const row of rows.filter(r => !r.prefix)) {
      const carried = scrape.labels.get(row.name)
      if (carried === undefined) continue
      assert.deepEqual([...carried].sort(), [...row.labels].sort(), `${row.name}'s labels are ${row.labels.join(', ') || 'none'}, as documented`)
    }
    for (const row of rows.filter(r => r.prefix)) {
      const under = [...served.keys()].filter(name => name.startsWith(row.name) && !exact.has(name))
      assert.ok(under.length > 0, `some family starts with ${row.name}`)
      const kinds = new Set(under.map(name => served.get(name)))
      // "various" only where the families under the prefix are of several types; a single type is named
      if (row.type === 'various') assert.ok(kinds.size > 1, `${row.name}* is documented as various but is all ${[...kinds].join()}`)
      else assert.deepEqual([...kinds], [row.type], `${row.name}* is all ${row.type}`)
    }
    // libp2p and prom-client's runtime collector name some gauges _total (docs/api.md says so); Shoal's own never
    const borrowed = ['libp2p_', 'shoal_process_', 'shoal_nodejs_']
    for (const [name, type] of served) if (name.endsWith('_total') && type !== 'counter') assert.ok(borrowed.some(p => name.startsWith(p)), `${name} is a ${type} named _total`)
    for (const name of served.keys()) {
      if (name.startsWith('shoal_') && served.get(name) === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`)
    }
  })
})
