/**
 * The read path: one block service for every reader. See `./blocks.ts` and
 * docs/reads.md.
 *
 * @module
 */
export { Blocks, READ_CACHE_BYTES, type BlocksComponents, type ColdTiers } from './blocks.js'
export { stripedSession, READ_AHEAD_STRIPES, MIN_HEDGE_MS, type StripeSources, type StripedReadComponents, type StripedReadOptions } from './striped.js'
export type { BlockGetter, BlockOrigin, BlockReader, GetBlockOptions, GetBytesOptions, ReadProgress, ReadSession, ReadSessionOptions, ReadTarget } from './api.js'
