/**
 * What the local store holds of one block: a good copy, a copy that fails its
 * check (which a `put` would keep: it must be deleted first), or nothing;
 * and the one way the read paths replace a corrupt local copy.
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

/**
 * Put `bytes` (already checked against `cid`) in place of a local copy that
 * failed its check. The delete first does not rely on the store having
 * noted the failure (the pack store marks a record that fails a read, and
 * its next put replaces it; a store without marks would keep the bad copy
 * on a put alone). Committed at once: a replacement is rare, and worth
 * keeping.
 */
export async function replaceCorrupt (blockstore: BlockStore, cid: CID, bytes: Uint8Array): Promise<void> {
  await blockstore.delete(cid)
  await blockstore.put(cid, bytes)
  await blockstore.commit()
}
