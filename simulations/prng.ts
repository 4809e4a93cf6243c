/**
 * A small seeded pseudo-random generator (mulberry32) for simulations: the
 * same seed gives the same run, so a failing case can be replayed. Never
 * `Math.random`.
 *
 * @module
 */

/** A seeded source of uniform numbers. */
export class Prng {
  private state: number

  /** @param seed any integer (only its low 32 bits matter) */
  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    this.state = (this.state + 0x6D2B79F5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform integer in [min, max] (both inclusive). */
  int (min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  /** True with probability `p`. */
  chance (p: number): boolean {
    return p > 0 && this.next() < p
  }

  /** One element of a non-empty list. */
  pick<T> (list: readonly T[]): T {
    if (list.length === 0) throw new RangeError('pick from an empty list')
    return list[Math.floor(this.next() * list.length)]
  }

  /** A new independent generator seeded from this one. */
  fork (): Prng {
    return new Prng(Math.floor(this.next() * 4294967296))
  }

  /** `n` random bytes. */
  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256)
    return out
  }

  /** This generator as a plain `() => number` (for components that take one). */
  get random (): () => number {
    return () => this.next()
  }
}
