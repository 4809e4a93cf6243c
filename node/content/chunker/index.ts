/**
 * Chunkers that split file content into leaf blocks, and the Kubo-like spec
 * strings that name them (`fastcdc`, `fastcdc-MIN-AVG-MAX`, `size-N`).
 */

import type { Chunker } from 'ipfs-unixfs-importer/chunker'
import { InvalidArgumentError } from '../../errors.js'
import { FASTCDC_DEFAULTS, fastcdc, fastcdcParams } from './fastcdc.js'
import { fixedSize } from './fixed-size.js'

export type { Chunker } from 'ipfs-unixfs-importer/chunker'
export { FASTCDC_DEFAULTS, fastcdc, fastcdcParams, findCutPoint } from './fastcdc.js'
export type { FastCDCOptions, FastCDCParams } from './fastcdc.js'
export { fixedSize } from './fixed-size.js'

/** A parsed chunker spec string. Sizes are in bytes. */
export type ChunkerSpec =
  | { type: 'fastcdc', minSize: number, avgSize: number, maxSize: number }
  | { type: 'fixed', size: number }

const ACCEPTED_FORMS = '"fastcdc", "fastcdc-<min>-<avg>-<max>" or "size-<bytes>"'

const FASTCDC_RE = /^fastcdc-(\d+)-(\d+)-(\d+)$/
const SIZE_RE = /^size-(\d+)$/

/**
 * Parse a chunker spec string: `fastcdc` (default sizes),
 * `fastcdc-MIN-AVG-MAX` or `size-N` (decimal byte counts).
 *
 * @throws InvalidArgumentError for any other string or for out-of-range sizes;
 * the message names the accepted forms.
 */
export function parseChunker (spec: string): ChunkerSpec {
  try {
    if (spec === 'fastcdc') return { type: 'fastcdc', ...FASTCDC_DEFAULTS }
    const cdc = FASTCDC_RE.exec(spec)
    if (cdc !== null) {
      const { minSize, avgSize, maxSize } = fastcdcParams({
        minSize: Number(cdc[1]),
        avgSize: Number(cdc[2]),
        maxSize: Number(cdc[3])
      })
      return { type: 'fastcdc', minSize, avgSize, maxSize }
    }
    const fixed = SIZE_RE.exec(spec)
    if (fixed !== null) {
      const size = Number(fixed[1])
      fixedSize(size)
      return { type: 'fixed', size }
    }
  } catch (err) {
    throw new InvalidArgumentError(`invalid chunker "${spec}": ${(err as Error).message}; expected ${ACCEPTED_FORMS}`, { cause: err })
  }
  throw new InvalidArgumentError(`invalid chunker "${spec}": expected ${ACCEPTED_FORMS}`)
}

/**
 * Format a spec as the string {@link parseChunker} reads back to the same spec.
 * FastCDC specs are always written in full (`fastcdc-MIN-AVG-MAX`, even for the
 * defaults) so a recorded spec never depends on defaults.
 */
export function formatChunker (spec: ChunkerSpec): string {
  switch (spec.type) {
    case 'fastcdc': return `fastcdc-${spec.minSize}-${spec.avgSize}-${spec.maxSize}`
    case 'fixed': return `size-${spec.size}`
  }
}

/**
 * Build the chunker a spec describes.
 *
 * @throws InvalidArgumentError for out-of-range sizes.
 */
export function createChunker (spec: ChunkerSpec): Chunker {
  switch (spec.type) {
    case 'fastcdc': return fastcdc({ minSize: spec.minSize, avgSize: spec.avgSize, maxSize: spec.maxSize })
    case 'fixed': return fixedSize(spec.size)
  }
}
