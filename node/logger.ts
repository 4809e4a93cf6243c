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
  if (process.stderr.isTTY && process.env.SHOAL_LOG_FORMAT !== 'json') {
    return pino({ name: 'shoal', level }, { write: (line: string) => { process.stderr.write(formatLogLine(line)) } })
  }
  return pino({ name: 'shoal', level }, pino.destination({ fd: 2, sync: false }))
}
