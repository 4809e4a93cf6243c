/**
 * Snapshot tree nodes decoded on a worker thread.
 *
 * Why: checking a node is pure CPU — decode, field checks, and a re-encode
 * that proves the bytes canonical — about a third of a fresh node's
 * bootstrap from a large snapshot (docs/benchmarks.md, "Snapshot
 * bootstrap"). On the main thread it stalls the loader that writes the
 * paths into the store, while the second core of a small machine idles.
 *
 * The mechanism: a piscina pool (one thread on a 2-core machine) runs
 * tree-node-worker.ts; the walk (snapshot-tree.ts, `decode` option) hands
 * it the next nodes while this thread takes the paths of the last. A node's
 * bytes are copied to the worker (the loader keeps them); the decoded node
 * comes back by structured clone, and its CIDs — plain objects after the
 * clone, their `bytes` and `/` still one buffer — are revived without
 * parsing.
 *
 * Applies to loads of large snapshots only (snapshot-load.ts): starting a
 * thread costs tens of milliseconds, more than a small tree takes to check.
 *
 * @module
 */
import { availableParallelism } from 'node:os'
import { CID } from 'multiformats/cid'
import { Piscina } from 'piscina'
import { InvalidMessageError } from '../../protocol/errors.js'
import type { DecodedTreeNode } from '../../protocol/snapshot-tree.js'
import type { NodeDecoder } from './snapshot-tree.js'
import type { DecodeAnswer } from './tree-node-worker.js'

/** Decodes snapshot tree nodes on a worker thread; see the module comment. */
export class TreeNodePool {
  private readonly pool = new Piscina({
    filename: new URL('./tree-node-worker.js', import.meta.url).href,
    minThreads: 0,
    maxThreads: Math.max(1, Math.min(2, availableParallelism() - 1)),
    idleTimeout: 2_000,
    useAtomics: false
  })

  /** The decoder to give the walk. */
  readonly decode: NodeDecoder = async bytes => {
    const answer: DecodeAnswer = await this.pool.run(bytes)
    if ('error' in answer) throw new InvalidMessageError(answer.error)
    return revive(answer.ok) as DecodedTreeNode
  }

  /** Stop the worker threads. */
  async close (): Promise<void> {
    await this.pool.destroy()
  }
}

/** Turn the plain objects a structured clone made of CIDs back into CIDs, in place. */
function revive (value: unknown): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i])
    return value
  }
  const cid = CID.asCID(value)
  if (cid !== null) return cid
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) record[key] = revive(record[key])
  return record
}
