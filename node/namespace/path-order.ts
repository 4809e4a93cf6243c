/**
 * Paths in the snapshot tree's order, streamed from the store's order.
 *
 * Why: the store (LevelDB) iterates keys in UTF-8 byte order, which is
 * Unicode code point order; the snapshot tree (protocol/snapshot-tree.ts)
 * orders paths as JavaScript compares strings, by UTF-16 code unit. The two
 * agree on every path made of code points below U+D800 — all of ASCII,
 * Latin, Greek, Cyrillic, CJK ideographs and Hangul — and disagree only
 * between a character from U+E000 to U+FFFF (private use, CJK compatibility,
 * fullwidth forms) and one beyond U+FFFF (emoji), which UTF-16 writes as
 * surrogates from U+D800.
 *
 * Mechanism: {@link inTreeOrder} passes every path without a code unit at
 * or above U+D800 straight through (those come in tree order already) and
 * holds the others aside, sorted, merging them back in at their place. So it
 * streams with memory bounded by the number of such paths, whatever the
 * size of the namespace.
 *
 * Applies wherever rows read from the store feed a tree build or update
 * (snapshots.ts).
 *
 * @module
 */

/** The snapshot tree's order of paths (UTF-16 code units, as JavaScript compares). */
export function compareTreePaths (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** True when `path` holds a code unit at or above U+D800 (its store order may differ from its tree order). */
function outOfStoreOrder (path: string): boolean {
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) >= 0xd800) return true
  return false
}

/**
 * The items of `source` (in store order: UTF-8 bytes of the path) in tree
 * order. Items whose path may sort differently are held in memory until
 * their place comes.
 */
export async function * inTreeOrder<T> (source: AsyncIterable<[string, T]>): AsyncGenerator<[string, T]> {
  const aside: Array<[string, T]> = []
  let sorted = true
  const takeAsideBefore = function * (path: string | undefined): Generator<[string, T]> {
    if (!sorted) {
      aside.sort((x, y) => compareTreePaths(y[0], x[0]))
      sorted = true
    }
    while (aside.length > 0 && (path === undefined || aside[aside.length - 1][0] < path)) yield aside.pop() as [string, T]
  }
  for await (const item of source) {
    if (outOfStoreOrder(item[0])) {
      aside.push(item)
      sorted = false
      continue
    }
    yield * takeAsideBefore(item[0])
    yield item
  }
  yield * takeAsideBefore(undefined)
}
