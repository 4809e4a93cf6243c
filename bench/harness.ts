/**
 * What every benchmark needs around its measurements: a registry of the
 * child processes and temp dirs it made, cleaned up on exit and on
 * SIGINT/SIGTERM, and number formatting.
 *
 * @module
 */
import { rmSync } from 'node:fs'
import type { ChildProcess } from 'node:child_process'

/** Child processes to stop when the benchmark ends. */
export const children = new Set<ChildProcess>()
/** Temp dirs to remove when the benchmark ends. */
export const tempDirs = new Set<string>()

let interrupted = false

/** True once SIGINT/SIGTERM arrived: measurements should stop. */
export function isInterrupted (): boolean {
  return interrupted
}

function signalChildren (signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
}

/** Last resort on exit: kill what we started, remove temp dirs. */
export function cleanupSync (): void {
  signalChildren('SIGTERM')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

function onSignal (signal: NodeJS.Signals): void {
  if (interrupted) return
  interrupted = true
  process.stderr.write(`\nreceived ${signal}: stopping daemons, removing temp dirs\n`)
  // give daemons a moment to release LevelDB before their dirs go
  signalChildren('SIGTERM')
  setTimeout(() => {
    signalChildren('SIGKILL')
    cleanupSync()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }, 2000).unref()
}

/** Install the exit and signal handlers (once, at the start of main). */
export function installCleanup (): void {
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanupSync)
}

/** A number with thousands separators and `digits` decimals. */
export function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** The median of a non-empty list. */
export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Progress goes to stderr; stdout is for the report. */
export function log (line: string): void {
  process.stderr.write(line + '\n')
}
