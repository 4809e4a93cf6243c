import type { HealthSummary } from '../node/durability/health.js'

/** Global options every command sees. */
export interface GlobalOptions {
  repo: string
  json: boolean
  /** `--progress` (true) or `--no-progress` (false); undefined: bars on a terminal only (cli/progress.ts). */
  progress?: boolean
}

/**
 * End the command quietly when the reader of stdout goes away (`shoal
 * repair --wait | head -1`), as a closed pipe ends a C tool, with the exit
 * code it had. Before, Node threw an unhandled `error` event: a stack trace
 * on stderr instead of nothing. Not for the daemon, whose logs go to stdout,
 * nor for `cat`, which writes the descriptor itself (cli/fd-download.ts):
 * this makes `process.stdout`, and with it a pipe on stdout non-blocking.
 */
export function endQuietlyOnClosedStdout (stream: NodeJS.WritableStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
  })
}

/** Print one JSON document on stdout. */
export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n')
}

/**
 * Characters a terminal acts on instead of showing: C0 controls (tab
 * included), DEL, C1 controls, and the bidirectional overrides and isolates
 * that reorder what follows them on screen.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
/** Escapes with a letter of their own. */
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** One unprintable character as text: `\n`, `\x1b`, `\u202e`. */
function escapeChar (c: string): string {
  const code = c.charCodeAt(0)
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
}

/**
 * `text` safe to show on a terminal: every control character (a newline, a
 * tab, an escape sequence's ESC) and every bidirectional override written
 * as an escape (`\n`, `\t`, `\x1b`, `\u202e`), as `ls -b` does. A name in
 * the namespace may hold any of them (POSIX allows every byte but `/` and
 * NUL, and a peer writes names too): printed raw, a name could end a line
 * early, forge a column, or drive the user's terminal. `--json` output
 * keeps the exact names.
 */
export function printable (text: string): string {
  return text.replace(UNPRINTABLE, escapeChar)
}

/**
 * Print human-readable lines on stdout. What the lines hold is made
 * {@link printable}, tabs excepted (they separate columns: a name printed in
 * a column goes through {@link printable} itself).
 */
export function printLines (...lines: string[]): void {
  process.stdout.write(lines.map(l => l.replace(UNPRINTABLE, c => c === '\t' ? c : escapeChar(c)) + '\n').join(''))
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
  process.stderr.write(printable(`shoal: note: ${what} not meet ${files === 1 ? 'its' : 'their'} policy yet: ${why} (\`${see}\`)`) + '\n')
}

/** Human-readable byte counts. */
export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

/**
 * A time (ms since the epoch) in ISO 8601 — or, for one no date can show
 * (a daemon of an older build may hold one from a peer), the number itself
 * with what it is, rather than a crash of the command.
 */
export function formatTime (ms: number): string {
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? `${String(ms)} ms since the epoch (not a date)` : date.toISOString()
}

/** A length of time for a person, in its largest fitting unit: `45 s`, `10 min`, `5 h`, `3 days`. */
export function formatSpan (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  if (s < 172_800) return `${Math.round(s / 3600)} h`
  return `${Math.round(s / 86_400)} days`
}

/** Stripe counts by health, in one line (`pin status`, `repair`, `status`). */
export function formatSummary (h: HealthSummary): string {
  return `${h.healthy} healthy, ${h.atRisk} at risk, ${h.degraded} degraded, ${h.lost} lost`
}
