/**
 * The worker side of {@link ParityPool} (parity-pool.ts): code one stripe's
 * parity with the wasm Reed-Solomon coder and hash each parity shard, off
 * the main thread. The answer is one buffer, moved (not copied) back: the m
 * parity shards of `shardSize` bytes, then their m sha-256 digests.
 *
 * The parity is coded, and the missing leaves of a degraded stripe rebuilt,
 * in place in the thread's {@link ParityArena} (no buffer per stripe but the
 * answer) and hashed there before they are copied into the answer.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { move } from 'piscina'
import { ParityArena } from './parity-arena.js'

/** One stripe to code: its 1..k leaves (unpadded), the shard size, k and m. */
export interface ParityTask {
  leaves: Uint8Array[]
  shardSize: number
  k: number
  m: number
}

let arena: Promise<ParityArena> | undefined

/** The thread's arena (made on the first task). */
async function threadArena (): Promise<ParityArena> {
  arena ??= ParityArena.create()
  arena.catch(() => { arena = undefined }) // a failed load may be retried
  return await arena
}

/** Code the parity of one stripe; see the module comment for the answer's layout. */
export default async function parity (task: ParityTask): Promise<unknown> {
  const { leaves, shardSize, k, m } = task
  const shards = (await threadArena()).encode(leaves, k, m, shardSize)
  const out = new Uint8Array(m * shardSize + m * 32)
  shards.forEach((shard, i) => {
    out.set(createHash('sha256').update(shard).digest(), m * shardSize + i * 32)
    out.set(shard, i * shardSize)
  })
  return move(out)
}

/**
 * One stripe's missing data leaves to rebuild: its k+m slots (padded to one
 * shard size; undefined where missing, at least k present), k and m, and the
 * leaves wanted, each an index and its unpadded size.
 */
export interface RebuildTask {
  slots: Array<Uint8Array | undefined>
  k: number
  m: number
  want: Array<{ index: number, size: number }>
}

/**
 * Rebuild the leaves a {@link RebuildTask} wants. The answer is one buffer,
 * moved back: the leaves (unpadded, in the order wanted), then their sha-256
 * digests.
 */
export async function rebuild (task: RebuildTask): Promise<unknown> {
  const { slots, k, m, want } = task
  const shards = (await threadArena()).reconstruct(slots, k, m)
  const total = want.reduce((sum, w) => sum + w.size, 0)
  const out = new Uint8Array(total + want.length * 32)
  let at = 0
  want.forEach(({ index, size }, i) => {
    const leaf = shards[index].subarray(0, size)
    out.set(leaf, at)
    out.set(createHash('sha256').update(leaf).digest(), total + i * 32)
    at += size
  })
  return move(out)
}
