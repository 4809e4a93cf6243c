/**
 * What the local store holds of one block: a good copy, a copy that fails its
 * check (which a `put` would keep: it must be deleted first), or nothing.
 * For the read paths that replace corrupt local copies.
 *
 * @module
 */
import type { BlockStore } from '../blocks/index.js'
import type { CID } from 'multiformats/cid'

/** Where a block stands in the local store. */
export type LocalState = 'good' | 'corrupt' | 'missing'

/** Whether `cid` is here and reads back well. */
export async function localState (blockstore: BlockStore, cid: CID): Promise<LocalState> {
  try {
    await blockstore.getBytes(cid)
    return 'good'
  } catch (err: any) {
    if (err?.name === 'NotFoundError') return 'missing'
    if (err?.name === 'CorruptBlockError' || err?.name === 'InvalidBlockError') return 'corrupt'
    throw err
  }
}
