/**
 * The snapshot tree of this replica's current state, kept in memory for a
 * state check (state-check.ts, docs/namespace.md "State checks").
 *
 * Why: two replicas whose heads are equal have applied the same entries, so
 * their states must be equal; comparing the roots of their states' trees
 * finds a silent divergence (rows a disk lost or damaged, a bug) in one
 * request, and {@link diffTrees} then names the paths in O(changes × height)
 * node reads. The sync log alone never finds one: it compares clocks, and
 * the clocks of such replicas are equal.
 *
 * How: the latest snapshot's tree (its nodes are in the store) updated with
 * the paths marked dirty since (Snapshots.stateTree): only the nodes that
 * hold changed paths, and their ancestors, are new. They are kept here,
 * not written, so a check costs the store nothing, and served to the peer
 * comparing with this replica (Replica.blocks). The tree is computed again
 * only when the heads moved, or after a repair changed the state.
 *
 * Memory is bounded by `maxBytes` of new nodes: a replica far from its last
 * snapshot (or with none, and a large namespace) answers with
 * {@link StateTooLargeError} until its next compaction.
 *
 * @module
 */
import { equals } from 'multiformats/bytes'
import type { CID } from 'multiformats/cid'
import type { headsDigest } from '../../protocol/namespace.js'
import { ShoalError } from '../errors.js'
import type { PutNode, TreeRoot } from './snapshot-tree.js'

/** The state is too far from the last snapshot for its tree to be held in memory now. */
export class StateTooLargeError extends ShoalError {
  override name = 'StateTooLargeError'
}

/** This replica's state as a state check compares it. */
export interface StateDigest {
  /** {@link headsDigest} of the heads the state is of. */
  heads: Uint8Array
  /** Root of the state's snapshot tree. */
  root: CID
  /** Paths in the state. */
  count: number
}

/** A state's digest and the nodes of its tree the store does not hold. */
export interface HeldState {
  digest: StateDigest
  /** A new node of this state's tree (undefined: the store's, or none). */
  node: (cid: CID) => Uint8Array | undefined
}

/** What {@link StateTrees} is built from. */
export interface StateTreesComponents {
  /** {@link headsDigest} of the replica's heads and clock now. */
  digest: () => Uint8Array
  /** Run `fn` under the store's lock (the state does not move meanwhile). */
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>
  /** The current state's tree, each new node handed to `put` (Snapshots.stateTree). */
  build: (put: PutNode) => Promise<TreeRoot>
  /** The latest snapshot's root (undefined: none): a state too large stays so until it changes. */
  snapshot: () => Promise<string | undefined>
}

/** Options of {@link StateTrees}. */
export interface StateTreesOptions {
  /** Most bytes of new tree nodes held. @default 32 MiB */
  maxBytes?: number
}

/** The current state's tree, computed when asked and kept until the heads move. */
export class StateTrees {
  private held: HeldState | undefined
  private building: Promise<HeldState> | undefined
  private readonly maxBytes: number
  /** The snapshot a build was too large against: no build is tried again until the next snapshot. */
  private tooLargeAt: { snapshot: string | undefined } | undefined

  constructor (private readonly components: StateTreesComponents, options: StateTreesOptions = {}) {
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024
  }

  /**
   * The digest of the current state: the held tree when the heads have not
   * moved since it was built, else a new one (one build at a time).
   *
   * @throws {StateTooLargeError} when the new nodes pass `maxBytes`
   */
  async current (): Promise<HeldState> {
    const heads = this.components.digest()
    if (this.held !== undefined && equals(this.held.digest.heads, heads)) return this.held
    this.building ??= this.build().finally(() => { this.building = undefined })
    return await this.building
  }

  /** A node of the latest tree built that the store does not hold, if any (served to peers comparing with it). */
  node (cid: CID): Uint8Array | undefined {
    return this.held?.node(cid)
  }

  /** Drop the held tree: the state changed without its heads moving (a repair). */
  forget (): void {
    this.held = undefined
  }

  private async build (): Promise<HeldState> {
    const snapshot = await this.components.snapshot()
    if (this.tooLargeAt !== undefined && this.tooLargeAt.snapshot === snapshot) throw new StateTooLargeError(`the state's tree needs more than ${this.maxBytes} bytes of new nodes: checked again after the next compaction`)
    this.tooLargeAt = undefined
    return await this.components.exclusive(async () => {
      const nodes = new Map<string, Uint8Array>()
      let bytes = 0
      const put: PutNode = async (cid, node) => {
        const key = cid.toString()
        if (nodes.has(key)) return
        bytes += node.byteLength
        if (bytes > this.maxBytes) {
          this.tooLargeAt = { snapshot }
          throw new StateTooLargeError(`the state's tree needs more than ${this.maxBytes} bytes of new nodes: checked again after the next compaction`)
        }
        nodes.set(key, node)
      }
      const heads = this.components.digest()
      const tree = await this.components.build(put)
      const held: HeldState = { digest: { heads, root: tree.root, count: tree.count }, node: cid => nodes.get(cid.toString()) }
      this.held = held
      return held
    })
  }
}
