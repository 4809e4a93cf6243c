/**
 * Scraping a real node's `/metrics` for tests: the node's own API server on
 * 127.0.0.1 (stopped when the test ends), fetched with its token, and the
 * Prometheus text parsed into samples and metric types.
 */
import { randomBytes } from 'node:crypto'
import { createApiServer } from '../../../node/api/server.js'
import { defer, type CleanupContext } from '../../helpers/temp.js'
import type { ShoalNode } from '../../../node/node.js'

/** One scrape of `/metrics`. */
export interface Scrape {
  /** Metric families by name (from the `# TYPE` lines) → their type. */
  types: Map<string, string>
  /** Metric families by name → the label names their samples carry (a histogram's `le`, a summary's `quantile` left out). */
  labels: Map<string, Set<string>>
  /** The sample `name` with exactly `labels`; undefined when absent. */
  value: (name: string, labels?: Record<string, string>) => number | undefined
  /** The sample `name` with exactly `labels`, failing the test when absent. */
  must: (name: string, labels?: Record<string, string>) => number
}

/** Serve `node`'s API on a free loopback port until the test ends; returns a scraper of its `/metrics`. */
export async function serveMetrics (t: CleanupContext, node: ShoalNode): Promise<() => Promise<Scrape>> {
  const token = randomBytes(16).toString('hex')
  const server = createApiServer(node.components, { host: '127.0.0.1', port: 0, token })
  const address = await server.start()
  defer(t, async () => { await server.stop() })
  return async () => {
    const res = await fetch(`http://127.0.0.1:${address.port}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) })
    const text = await res.text()
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text}`)
    return parseMetrics(text)
  }
}

/** Parse the Prometheus text format (what prom-client writes). */
export function parseMetrics (text: string): Scrape {
  const types = new Map<string, string>()
  const samples = new Map<string, number>()
  const labelNames = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) { types.set(type[1], type[2]); continue }
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (sample === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2]
    samples.set(key(sample[1], labels), Number(sample[3]))
    const family = familyOf(sample[1], types)
    let names = labelNames.get(family)
    if (names === undefined) { names = new Set(); labelNames.set(family, names) }
    for (const name of Object.keys(labels)) if (name !== 'le' && name !== 'quantile') names.add(name)
  }
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => samples.get(key(name, labels))
  return {
    types,
    labels: labelNames,
    value,
    must: (name, labels = {}) => {
      const v = value(name, labels)
      if (v === undefined) throw new Error(`no sample ${key(name, labels)} in /metrics`)
      return v
    }
  }
}

function key (name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels).sort().map(k => `${k}=${labels[k]}`).join(',')}}`
}

/** The family of a sample: its name, or the histogram or summary it is a `_bucket`, `_sum` or `_count` of. */
function familyOf (sample: string, types: Map<string, string>): string {
  if (types.has(sample)) return sample
  const base = sample.replace(/_(bucket|sum|count)$/, '')
  return types.has(base) ? base : sample
}
