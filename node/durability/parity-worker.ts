/**
 * The worker side of {@link ParityPool} (parity-pool.ts): code one stripe's
 * parity with the wasm Reed-Solomon coder and hash each parity shard, off
 * the main thread. The answer is one buffer, moved (not copied) back: the m
 * parity shards of `shardSize` bytes, then their m sha-256 digests.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { move } from 'piscina'
import { createErasureCoder } from './erasure.js'

/** One stripe to code: its 1..k leaves (unpadded), the shard size, k and m. */
export interface ParityTask {
  leaves: Uint8Array[]
  shardSize: number
  k: number
  m: number
}

/** Code the parity of one stripe; see the module comment for the answer's layout. */
export default async function parity (task: ParityTask): Promise<unknown> {
  const { leaves, shardSize, k, m } = task
  const coder = await createErasureCoder()
  const zeros = new Uint8Array(shardSize)
  const data = Array.from({ length: k }, (_, i) => {
    if (i >= leaves.length) return zeros
    if (leaves[i].byteLength === shardSize) return leaves[i]
    const out = new Uint8Array(shardSize)
    out.set(leaves[i])
    return out
  })
  const shards = coder.encode(data, m)
  const out = new Uint8Array(m * shardSize + m * 32)
  shards.forEach((shard, i) => {
    out.set(shard, i * shardSize)
    out.set(createHash('sha256').update(shard).digest(), m * shardSize + i * 32)
  })
  return move(out)
}
