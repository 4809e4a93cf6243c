import type { HealthSummary } from '../node/durability/health.js'
import { SingleBar } from 'cli-progress'

/** Global options every command sees. */
export interface GlobalOptions {
  repo: string
  json: boolean
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

/** A byte progress bar on stderr, or nothing when stdout is not a terminal or output is JSON. */
export interface Progress {
  add: (bytes: number) => void
  stop: () => void
}

/** A progress bar for `total` bytes, drawn only when stdout is a TTY and not in JSON mode. */
export function progressBar (opts: GlobalOptions, label: string, total: number): Progress {
  if (process.stdout.isTTY !== true || opts.json) return { add () {}, stop () {} }
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {done} / {size}`,
    hideCursor: true,
    clearOnComplete: true
  })
  let done = 0
  bar.start(total, 0, { done: formatBytes(0), size: formatBytes(total) })
  return {
    add (bytes) { done += bytes; bar.update(done, { done: formatBytes(done), size: formatBytes(total) }) },
    stop () { bar.stop() }
  }
}

/** Stripe counts by health, in one line (`pin status`, `repair`, `status`). */
export function formatSummary (h: HealthSummary): string {
  return `${h.healthy} healthy, ${h.atRisk} at risk, ${h.degraded} degraded, ${h.lost} lost`
}
