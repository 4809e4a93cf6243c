/**
 * Daemon logs for a person at a terminal. pino writes one JSON object per
 * line, which is what files and log collectors want; on a terminal the same
 * lines read as `12:34:56.789 INFO  [exchange] peer misbehaved peer=12D3… why="…"`.
 * The logger switches to this form only when stderr is a terminal (and
 * `SHOAL_LOG_FORMAT` is not `json`); nothing else changes.
 *
 * @module
 */

/** pino's numeric levels, by name as printed. */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/** Keys every line has, shown in the line's head or not at all. */
const HEAD_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'component'])

/** Printed as they are: printable ASCII without quotes, `=` or spaces. Anything else is JSON-quoted. */
const BARE = /^[\x21\x23-\x3c\x3e-\x7e]+$/

/** Text from a log line that is safe on a terminal: control characters (ESC, newlines) escaped. */
function safe (text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text
}

/**
 * One pino JSON line as a human-readable line (with its newline). A line
 * that is not a JSON object is passed through as it is.
 */
export function formatLogLine (line: string): string {
  let entry: Record<string, unknown>
  try {
    const parsed = JSON.parse(line)
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return line.endsWith('\n') ? line : line + '\n'
    entry = parsed
  } catch {
    return line.endsWith('\n') ? line : line + '\n'
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : ''
  const level = (LEVELS[Number(entry.level)] ?? String(entry.level)).padEnd(5)
  const component = typeof entry.component === 'string' ? entry.component : ''
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD_KEYS.has(key))
    .map(([key, value]) => `${safe(key)}=${typeof value === 'string' && BARE.test(value) ? value : JSON.stringify(value)}`)
  return `${time} ${level}${component === '' ? '' : ` [${safe(String(entry.component))}]`} ${safe(String(entry.msg ?? ''))}${fields.length > 0 ? ' ' + fields.join(' ') : ''}\n`
}
