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
