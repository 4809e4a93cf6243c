/**
 * The worker side of {@link TreeNodePool} (tree-node-pool.ts): decode and
 * check one snapshot tree node (protocol/snapshot-tree.ts
 * `decodeTreeNodeSized`: dag-cbor decode, every field's checks, and the
 * re-encoding that proves the bytes canonical), off the main thread.
 *
 * The answer is the decoded node as structured clone carries it: its CIDs
 * arrive as plain objects, revived by the pool. A node that fails its
 * checks comes back as `{ error }` (an error's class does not cross).
 *
 * @module
 */
import { decodeTreeNodeSized, type DecodedTreeNode } from '../../protocol/snapshot-tree.js'

/** What the worker answers. */
export type DecodeAnswer = { ok: DecodedTreeNode } | { error: string }

/** Decode one node; see the module comment. */
export default function decodeNode (bytes: Uint8Array): DecodeAnswer {
  try {
    return { ok: decodeTreeNodeSized(bytes) }
  } catch (err: any) {
    return { error: String(err?.message ?? err) }
  }
}
