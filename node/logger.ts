import { pino } from 'pino'
import { formatLogLine } from './log-format.js'

/** The structured logger every component takes (pino's interface). */
export type Logger = pino.Logger

/** Log levels accepted in config and `$SHOAL_LOG_LEVEL`. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/**
 * A logger on stderr (stdout belongs to command output): JSON lines, or,
 * when stderr is a terminal, the same lines formatted for a person
 * (node/log-format.ts; `SHOAL_LOG_FORMAT=json` keeps JSON there too).
 */
export function createLogger (level: LogLevel): Logger {
  if (!logIsJson()) {
    return pino({ name: 'shoal', level }, { write: (line: string) => { process.stderr.write(formatLogLine(line)) } })
  }
  return pino({ name: 'shoal', level }, pino.destination({ fd: 2, sync: false }))
}

/**
 * The daemon's log level: the one asked for (`--log-level`), else
 * `$SHOAL_LOG_LEVEL`, else the config's. One rule for the node's logger and
 * the daemon process's notices.
 */
export function resolveLogLevel (asked: LogLevel | undefined, config: { logLevel: LogLevel }): LogLevel {
  return asked ?? (process.env.SHOAL_LOG_LEVEL as LogLevel | undefined) ?? config.logLevel
}

/** True when the log is JSON lines: stderr is not a terminal, or `SHOAL_LOG_FORMAT=json`. */
export function logIsJson (): boolean {
  return process.stderr.isTTY !== true || process.env.SHOAL_LOG_FORMAT === 'json'
}

/**
 * A writer of the daemon process's notices about itself (a signal
 * received, a repeat of it ignored), written at once (the process may exit
 * next) in the log's format: where the log is JSON, a JSON line at `info`
 * among the others, so that journald or a pipe reads one format, and only
 * when `level` lets `info` through (`--log-level error` means errors only);
 * on a terminal, a plain line, the answer to the user's Ctrl-C.
 */
export function createNoticeWriter (level: LogLevel): (line: string) => void {
  if (!logIsJson()) return line => { process.stderr.write(line + '\n') }
  const notices = pino({ name: 'shoal', level }, pino.destination({ fd: 2, sync: true }))
  return line => { notices.info(line) }
}
