/**
 * A bounded map over an array, for work whose items wait on round trips
 * (reads of many small files or blocks, each a request to a daemon or a
 * peer) rather than on CPU or bandwidth.
 *
 * Why not p-queue's `addAll`: on the first failure it rejects at once while
 * the other items go on starting and running, so a caller that cleans up
 * after a failure (removes a staging folder, closes a store) would do so
 * under work still in flight. Here the first failure stops new items from
 * starting, and is thrown only once the running ones have ended.
 *
 * @module
 */

/**
 * `fn` of every item, at most `limit` at once; the results in the items'
 * order.
 *
 * @throws the first failure of `fn`, once no call is running any more
 */
export async function mapAtOnce<T, R> (items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  let failed: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const i = next++
      try {
        results[i] = await fn(items[i], i)
      } catch (err) {
        failed ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker))
  if (failed !== undefined) throw failed.err
  return results
}
