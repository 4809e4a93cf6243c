/**
 * One member's counters by author number (members.ts), sparse while few
 * are set and dense beyond.
 *
 * Why: a member's counters were a typed array indexed by author number, so
 * every member cost 4 bytes per author numbered before it, whatever it had
 * seen. In a namespace of many lifetime authors each author is a member
 * too (its own entries tell what it had seen), and one that wrote a single
 * entry naming a few dots held an array of every author up to its own:
 * members × authors memory and time, quadratic in the authors (28,000
 * authors that wrote once each: ~50 s to receive their entries, most of it
 * growing such arrays, and 1.7 GiB at 22,000).
 *
 * How: a member starts with a map of the counters it has; once the map
 * holds at least {@link DENSE_MIN} counters and one in {@link DENSE_SHARE}
 * of the author numbers up to its largest, it moves to a typed array (a
 * member of a swarm at work hears clocks naming every author, so it goes
 * dense at once and stays as compact as before). A counter past 32 bits
 * widens the array to `Float64Array`.
 *
 * @module
 */

/** Largest counter a `Uint32Array` holds; a member with a larger one keeps `Float64Array` counters. */
const UINT32_MAX = 0xffff_ffff

/** Fewest counters a member holds before it may go dense. */
export const DENSE_MIN = 16

/** A member goes dense once it has a counter for one in this many author numbers up to its largest (a map entry costs ~10 array slots). */
export const DENSE_SHARE = 10

/** A member's counters by author number; 0 for an author it names no counter of. */
export class Counters {
  private sparse: Map<number, number> | undefined = new Map()
  /** Largest author number in {@link sparse}. */
  private top = -1
  private dense: Uint32Array | Float64Array | undefined

  /** The counter of author number `k` (0 when none). */
  get (k: number): number {
    if (this.dense !== undefined) return this.dense[k] ?? 0
    return this.sparse?.get(k) ?? 0
  }

  /** Whether the counters are held as an array (tests). */
  get isDense (): boolean { return this.dense !== undefined }

  /**
   * Raise the counter of author number `k` to at least `n`. `authors`: how
   * many authors are numbered now (a dense array is sized for them and a
   * quarter more, so it grows a few times, not once per author).
   */
  raise (k: number, n: number, authors: number): void {
    if (this.get(k) >= n) return
    const sparse = this.sparse
    if (sparse !== undefined) {
      sparse.set(k, n)
      if (k > this.top) this.top = k
      if (sparse.size < DENSE_MIN || sparse.size * DENSE_SHARE < this.top + 1) return
      // dense from here on
      let wide = false
      for (const c of sparse.values()) if (c > UINT32_MAX) wide = true
      const length = Math.max(this.top + 1, Math.ceil(authors * 1.25))
      const dense = wide ? new Float64Array(length) : new Uint32Array(length)
      for (const [key, c] of sparse) dense[key] = c
      this.dense = dense
      this.sparse = undefined
      return
    }
    let dense = this.dense as Uint32Array | Float64Array
    if (k >= dense.length || (n > UINT32_MAX && dense instanceof Uint32Array)) {
      const length = Math.max(k + 1, Math.ceil(authors * 1.25), dense.length)
      const grown = n > UINT32_MAX || dense instanceof Float64Array ? new Float64Array(length) : new Uint32Array(length)
      grown.set(dense)
      dense = grown
      this.dense = grown
    }
    dense[k] = n
  }

  /** Each counter that is not 0, by increasing author number. */
  forEach (fn: (k: number, n: number) => void): void {
    if (this.dense !== undefined) {
      const dense = this.dense
      for (let k = 0; k < dense.length; k++) if (dense[k] !== 0) fn(k, dense[k])
      return
    }
    const sparse = this.sparse as Map<number, number>
    for (const k of [...sparse.keys()].sort((a, b) => a - b)) fn(k, sparse.get(k) as number)
  }
}
