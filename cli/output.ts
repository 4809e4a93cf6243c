import type { HealthSummary } from '../node/durability/health.js'

/** Global options every command sees. */
export interface GlobalOptions {
  repo: string
  json: boolean
  /** `--progress` (true) or `--no-progress` (false); undefined: bars on a terminal only (cli/progress.ts). */
  progress?: boolean
}

/** Print one JSON document on stdout. */
export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n')
}

/** Print human-readable lines on stdout. */
export function printLines (...lines: string[]): void {
  process.stdout.write(lines.map(l => l + '\n').join(''))
}

/**
 * One line on stderr when a write's policy cannot be met yet (too few live
 * nodes to code it, or fewer than its shards): the write succeeded — the
 * file is durable here — but a user who asked for erasure coding or
 * replicas must not take one copy for several. Stdout keeps what the CLI
 * contract says; with `--json` the note is one JSON document on stderr, as
 * errors are: `{"note":{"path","pending","files"}}`.
 */
export function notePending (g: GlobalOptions, path: string, why: string, files = 1): void {
  if (g.json) {
    process.stderr.write(JSON.stringify({ note: { path, pending: why, files } }) + '\n')
    return
  }
  const what = files === 1 ? `${path} does` : `${files} files under ${path} do`
  const see = files === 1 ? `shoal pin status ${path}` : 'shoal pin ls'
  process.stderr.write(`shoal: note: ${what} not meet ${files === 1 ? 'its' : 'their'} policy yet: ${why} (\`${see}\`)\n`)
}

/** Human-readable byte counts. */
export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

/** Stripe counts by health, in one line (`pin status`, `repair`, `status`). */
export function formatSummary (h: HealthSummary): string {
  return `${h.healthy} healthy, ${h.atRisk} at risk, ${h.degraded} degraded, ${h.lost} lost`
}
