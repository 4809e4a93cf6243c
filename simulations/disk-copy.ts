/**
 * Copies of a simulated node's disk, for the backup-restore fault of the
 * namespace and durability simulations.
 *
 * @module
 */
import type { KV } from '../node/namespace/kv.js'

/** How a crashed node comes back: with its disk, with an empty one (same key), or from the copy its last backup took. */
export type RestartDisk = 'keep' | 'lost' | 'backup'

/** Put every entry of `from` (values copied) into `to`, in one batch; returns `to`. */
export async function copyKV<T extends KV> (from: KV, to: T): Promise<T> {
  const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = []
  for await (const [key, value] of from.iterate({})) ops.push({ type: 'put', key, value: value.slice() })
  await to.batch(ops, true)
  return to
}
