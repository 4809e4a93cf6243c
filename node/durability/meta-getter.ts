/**
 * Where manifest and skeleton blocks are read from: the local store first,
 * else given peers or the swarm, through the block exchange.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { ShardGetter } from './stripes.js'
import type { BlockExchange } from '../exchange/index.js'

/** Manifest and skeleton blocks of `exchange`: local first, else from `providers` or the swarm. */
export function metaGetter (exchange: BlockExchange, signal?: AbortSignal, providers?: string[]): ShardGetter {
  const ids = providers?.map(p => peerIdFromString(p))
  return {
    getBytes: async (cid, o) => await exchange.getBlock(cid, { signal: o?.signal ?? signal, providers: ids })
  }
}
