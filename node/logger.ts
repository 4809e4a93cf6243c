import { pino } from 'pino'

/** The structured logger every component takes (pino's interface). */
export type Logger = pino.Logger

/** Log levels accepted in config and `$SHOAL_LOG_LEVEL`. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** A JSON-lines logger on stderr (stdout belongs to command output). */
export function createLogger (level: LogLevel): Logger {
  return pino({ name: 'shoal', level }, pino.destination({ fd: 2, sync: false }))
}
