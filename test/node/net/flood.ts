/**
 * A request flood for limit tests: `count` requests, `parallel` at a time.
 */

/** How a flood went. */
export interface FloodResult { answered: number, refused: number, seconds: number }

/**
 * Send `count` requests through `ask`, `parallel` at a time; `ask` says
 * whether each was answered or refused (and throws on anything else).
 */
export async function flood (count: number, parallel: number, ask: () => Promise<'answered' | 'refused'>): Promise<FloodResult> {
  const started = Date.now()
  const result: FloodResult = { answered: 0, refused: 0, seconds: 0 }
  for (let i = 0; i < count; i += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, async () => { result[await ask()]++ }))
  }
  result.seconds = (Date.now() - started) / 1000
  return result
}
