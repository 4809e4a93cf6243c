/**
 * Counters whose count is kept elsewhere (a module's own stats), read at
 * scrape time.
 *
 * @module
 */
import { Counter, type Registry } from 'prom-client'

/** Register a counter whose value is a count kept elsewhere (monotonic since the process started), read at scrape time. */
export function scrapedCounter (registers: Registry[], name: string, help: string, read: () => number): void {
  new Counter({ name, help, registers, collect () { this.reset(); this.inc(read()) } }) // eslint-disable-line no-new
}
