/**
 * The snapshot tree: the namespace state (the sorted map
 * `path → SnapshotVersion[]`) as a prolly tree of dag-cbor blocks whose node
 * boundaries depend only on the content (see protocol/snapshot-tree.ts for
 * the node format and the chunking rule). One state has exactly one root
 * CID, whatever its history; a change to a few paths rewrites only the nodes
 * on their way to the root; two trees are compared from the top, descending
 * only where child CIDs differ.
 *
 * Everything here streams: memory is bounded by the tree's height times the
 * node size (times the fetch window for {@link walkTree}), never the state.
 *
 * - {@link buildTree}: a whole tree from sorted entries.
 * - {@link updateTree}: a tree from an older one and sorted changes, writing
 *   only the nodes that changed; the same root as a full build of the new state.
 * - {@link walkTree}: every entry, in path order, fetching nodes in parallel
 *   (from several peers if the caller likes) and checking each against its CID,
 *   its parent and the chunking rule.
 * - {@link diffTrees}: the paths whose versions differ between two trees.
 * - {@link TreeReader}: the versions of single paths.
 *
 * Blocks reach the caller through `put`, `get` and `fetch` callbacks: this
 * module has no store of its own.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import { cborCID } from '../blocks/verify.js'
import { InvalidArgumentError, ShoalError } from '../errors.js'
import type { SnapshotVersion } from '../../protocol/namespace.js'
import {
  assembleTreeNode, chunkingFault, decodeTreeNodeSized, encodeTreeChild, encodeTreeEntry, isBoundary,
  MAX_TREE_LEVEL, treeNodeCount, treeNodeLevel, type DecodedTreeNode, type TreeNode
} from '../../protocol/snapshot-tree.js'

/** A path's live versions; an empty list stands for no entry. */
export type Versions = SnapshotVersion[]

/** Store one node. Called once per node written (a node already stored may be put again: make it idempotent). */
export type PutNode = (cid: CID, bytes: Uint8Array) => Promise<void>

/** Read one node from a store; undefined when it is not there. */
export type GetNode = (cid: CID) => Promise<Uint8Array | undefined>

/**
 * What {@link walkTree} tells its `fetch` about a request, so that a caller
 * with several peers can spread requests over them and move a retry to
 * another peer: e.g. `peers[(hint.request + hint.attempt) % peers.length]`
 * — or, with one peer known to hold every node (the one that served the
 * root), send every retry to that one (namespace sync does).
 */
export interface FetchHint {
  /** Running number of the request within this walk: 0, 1, 2… */
  request: number
  /** How many earlier requests for these CIDs brought none of them back (0 on the first ask). */
  attempt: number
  /** Level of the nodes asked for (0 for leaves), when known (not for the root). */
  level?: number
}

/**
 * Fetch nodes by CID: the answer's item i is the bytes of `cids[i]`, or
 * undefined (or the list is shorter) when it did not come. A peer may answer
 * a prefix (a `blocks` response is bounded in bytes): {@link walkTree} asks
 * again for what is missing. The bytes are checked against the CIDs by the
 * walker: `fetch` need not.
 */
export type FetchNodes = (cids: CID[], hint: FetchHint) => Promise<Array<Uint8Array | undefined>>

/** A tree node that does not verify: wrong hash, malformed, or not where its parent says. */
export class InvalidTreeNodeError extends ShoalError {
  override name = 'InvalidTreeNodeError'
  override readonly status = 502
}

/** A tree node that could not be had (not in the store, or no peer sent it). */
export class MissingTreeNodeError extends InvalidTreeNodeError {
  override name = 'MissingTreeNodeError'
}

/** A tree: its root and the number of paths in it. */
export interface TreeRoot {
  root: CID
  count: number
}

/** What {@link updateTree} did. */
export interface TreeUpdate extends TreeRoot {
  /** Nodes passed to `put`. */
  written: number
  /** Nodes read with `get`. */
  read: number
  /**
   * The older tree's nodes read with `get`: the ones the new tree may no
   * longer hold (unless `put` wrote them again). Nodes taken over whole,
   * with everything below them, are not read.
   */
  readNodes: CID[]
}

/** One path whose versions differ between tree `a` and tree `b` (a side that lacks the path has none). */
export interface TreeDifference {
  path: string
  a?: Versions
  b?: Versions
}

// ---------------------------------------------------------------------------
// building

/** The pending node of one level. */
interface Level {
  items: Uint8Array[]
  /** First key of the pending node. */
  first: string
  /** Sum of the items' sizes. */
  bytes: number
  /** Paths under the pending node. */
  count: number
  /** The last child pushed (a branch level with one pending child may hand it up as the root). */
  lastCid: CID | undefined
  /** Nodes this level has produced so far (written or taken whole from an older tree). */
  emitted: number
}

/**
 * Builds a tree bottom-up from a stream: one pending node per level. Items
 * are pushed in key order; a node is written as soon as the chunking rule
 * ends it, and its reference goes up one level.
 */
class TreeBuilder {
  private readonly levels: Level[] = []
  private last: string | undefined
  written = 0

  constructor (private readonly put: PutNode) {}

  /** Append a path (skipped when `versions` is empty). */
  async entry (path: string, versions: Versions): Promise<void> {
    if (this.last !== undefined && !(this.last < path)) throw new InvalidArgumentError(`snapshot tree paths not strictly ascending at ${JSON.stringify(path)}`)
    this.last = path
    if (versions.length === 0) return
    await this.push(0, path, encodeTreeEntry([path, versions]), 1)
  }

  /** True when no level up to `level` has a pending node: a whole node of `level` may be appended. */
  emptyUpTo (level: number): boolean {
    for (let l = 0; l <= level && l < this.levels.length; l++) if (this.levels[l].items.length > 0) return false
    return true
  }

  /**
   * Append a whole node of `level` from an older tree (as if its paths had
   * been pushed one by one: the caller checks {@link emptyUpTo} first, and
   * that the node ended on a boundary or nothing follows it).
   */
  async node (level: number, first: string, cid: CID, count: number): Promise<void> {
    if (this.last !== undefined && !(this.last < first)) throw new InvalidArgumentError(`snapshot tree paths not strictly ascending at ${JSON.stringify(first)}`)
    // its last path is unknown unread; what comes next is past the node anyway (the caller's order)
    this.last = first
    for (let l = 0; l <= level; l++) this.level(l).emitted++
    await this.child(level + 1, first, cid, count)
  }

  /** Write what is pending at every level; the root. */
  async finish (): Promise<TreeRoot> {
    for (let l = 0; ; l++) {
      const level = this.level(l)
      if (l === this.levels.length - 1 && level.emitted === 0) {
        // the top: its one node is the root (a branch of one child is not made: the child is the root)
        if (l > 0 && level.items.length === 1 && level.lastCid !== undefined) return { root: level.lastCid, count: level.count }
        return { root: await this.write(l, level.items), count: level.count }
      }
      if (level.items.length > 0) await this.emit(l)
    }
  }

  private level (l: number): Level {
    if (l > MAX_TREE_LEVEL) throw new InvalidArgumentError(`snapshot tree deeper than ${MAX_TREE_LEVEL} levels`)
    while (this.levels.length <= l) this.levels.push({ items: [], first: '', bytes: 0, count: 0, lastCid: undefined, emitted: 0 })
    return this.levels[l]
  }

  private async child (l: number, first: string, cid: CID, count: number): Promise<void> {
    this.level(l).lastCid = cid
    await this.push(l, first, encodeTreeChild([first, cid, count]), count)
  }

  private async push (l: number, key: string, bytes: Uint8Array, count: number): Promise<void> {
    const level = this.level(l)
    if (level.items.length === 0) level.first = key
    level.items.push(bytes)
    level.bytes += bytes.byteLength
    level.count += count
    if (isBoundary(l, key, level.items.length, level.bytes)) await this.emit(l)
  }

  private async emit (l: number): Promise<void> {
    const level = this.level(l)
    const cid = await this.write(l, level.items)
    const { first, count } = level
    level.items = []
    level.bytes = 0
    level.count = 0
    level.lastCid = undefined
    level.emitted++
    await this.child(l + 1, first, cid, count)
  }

  private async write (l: number, items: Uint8Array[]): Promise<CID> {
    const bytes = assembleTreeNode(l, items)
    const cid = cborCID(bytes)
    await this.put(cid, bytes)
    this.written++
    return cid
  }
}

/**
 * Build the tree of a state from its entries in strictly ascending path
 * order (a path with no versions is left out). Memory: one pending node per
 * level.
 *
 * @throws {InvalidArgumentError} when the paths are not strictly ascending
 * @throws {InvalidMessageError} when an entry is not a valid snapshot entry (or is larger than MAX_TREE_ENTRY_BYTES)
 */
export async function buildTree (entries: AsyncIterable<[string, Versions]> | Iterable<[string, Versions]>, put: PutNode): Promise<TreeRoot> {
  const builder = new TreeBuilder(put)
  for await (const [path, versions] of entries) await builder.entry(path, versions)
  return await builder.finish()
}

// ---------------------------------------------------------------------------
// reading and checking nodes

/** Check `bytes` against `cid` and decode them; `level` is what the parent says, when known. */
function verifyNode (cid: CID, bytes: Uint8Array | undefined, level: number | undefined): DecodedTreeNode {
  if (bytes === undefined) throw new MissingTreeNodeError(`snapshot tree node ${cid.toString()} missing`)
  if (!sameCid(cborCID(bytes), cid)) throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()} does not hash to its CID`)
  let decoded: DecodedTreeNode
  try {
    decoded = decodeTreeNodeSized(bytes)
  } catch (err: any) {
    throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()}: ${String(err?.message ?? err)}`, { cause: err })
  }
  const got = treeNodeLevel(decoded.node)
  if (level !== undefined && got !== level) throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()} is of level ${got}, its parent says ${level}`)
  return decoded
}

/** CID equality (without `equals`' type narrowing). */
function sameCid (a: CID, b: CID): boolean {
  return a.equals(b)
}

async function getNode (get: GetNode, cid: CID, level: number | undefined): Promise<TreeNode> {
  return verifyNode(cid, await get(cid), level).node
}

function firstKey (node: TreeNode): string | undefined {
  return 'leaf' in node ? node.leaf[0]?.[0] : node.children[0][0]
}

function lastKey (node: TreeNode): string | undefined {
  return 'leaf' in node ? node.leaf[node.leaf.length - 1]?.[0] : node.children[node.children.length - 1][0]
}

/**
 * Check a node against what its parent says of it (first path, count) and
 * the range it must lie in (below `upper`, the next sibling's first path);
 * then the chunking rule (`upper` undefined: the last node of its level).
 */
function checkPlace (cid: CID, decoded: DecodedTreeNode, first: string, count: number, upper: string | undefined): void {
  const node = decoded.node
  const got = treeNodeCount(node)
  if (got !== count) throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()} holds ${got} paths, its parent says ${count}`)
  if (firstKey(node) !== first) throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()} starts at ${JSON.stringify(firstKey(node))}, its parent says ${JSON.stringify(first)}`)
  const last = lastKey(node) as string
  if (upper !== undefined && !(last < upper)) throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()} reaches ${JSON.stringify(last)}, past its next sibling's ${JSON.stringify(upper)}`)
  const fault = chunkingFault(decoded, upper === undefined)
  if (fault !== undefined) throw new InvalidTreeNodeError(`snapshot tree node ${cid.toString()}: ${fault}`)
}

/** Check a root: a branch root has at least two children (else its child is the root), and the chunking rule. */
function checkRoot (cid: CID, decoded: DecodedTreeNode): void {
  const node = decoded.node
  if (!('leaf' in node) && node.children.length < 2) throw new InvalidTreeNodeError(`snapshot tree root ${cid.toString()} is a branch of one child`)
  const fault = chunkingFault(decoded, true)
  if (fault !== undefined) throw new InvalidTreeNodeError(`snapshot tree root ${cid.toString()}: ${fault}`)
}

// ---------------------------------------------------------------------------
// updating

/** An item of an older tree still to be taken over: a whole node, or one path. */
type OldItem =
  | { kind: 'node', level: number, cid: CID, first: string, count: number, upper: string | undefined }
  | { kind: 'entry', path: string, versions: Versions }

/**
 * The tree of the state of `root` with `changes` applied: each change sets
 * a path's versions (`undefined` or `[]` removes the path), in strictly
 * ascending path order. Writes only the nodes that change: those holding
 * changed paths, their ancestors, and the few neighbours a moved boundary
 * re-chunks (reading about as many). The result is the same tree, node for
 * node, as {@link buildTree} of the new state — provided `root` is itself
 * such a tree (one this module built, or one {@link walkTree} accepted).
 *
 * @throws {InvalidArgumentError} when the changes are not strictly ascending
 * @throws {InvalidTreeNodeError} when a node read does not verify ({@link MissingTreeNodeError} when absent)
 */
export async function updateTree (
  root: CID,
  changes: AsyncIterable<[string, Versions | undefined]> | Iterable<[string, Versions | undefined]>,
  get: GetNode,
  put: PutNode
): Promise<TreeUpdate> {
  const builder = new TreeBuilder(put)
  const readNodes: CID[] = []
  const load = async (cid: CID, level: number | undefined): Promise<TreeNode> => {
    readNodes.push(cid)
    return await getNode(get, cid, level)
  }
  const source = (Symbol.asyncIterator in changes ? changes[Symbol.asyncIterator]() : (changes as Iterable<[string, Versions | undefined]>)[Symbol.iterator]()) as AsyncIterator<[string, Versions | undefined]> | Iterator<[string, Versions | undefined]>
  let change: [string, Versions | undefined] | undefined
  let lastChange: string | undefined
  const advance = async (): Promise<void> => {
    const next = await source.next()
    change = next.done === true ? undefined : next.value
    if (change !== undefined) {
      if (lastChange !== undefined && !(lastChange < change[0])) throw new InvalidArgumentError(`snapshot tree changes not strictly ascending at ${JSON.stringify(change[0])}`)
      lastChange = change[0]
    }
  }
  const apply = async (c: [string, Versions | undefined]): Promise<void> => {
    if (c[1] !== undefined && c[1].length > 0) await builder.entry(c[0], c[1])
  }
  await advance()

  // the older tree's items still to take over, the next one last
  const stack: OldItem[] = []
  const rootNode = await load(root, undefined)
  const pushNode = (node: TreeNode, upper: string | undefined): void => {
    if ('leaf' in node) {
      for (let i = node.leaf.length - 1; i >= 0; i--) stack.push({ kind: 'entry', path: node.leaf[i][0], versions: node.leaf[i][1] })
      return
    }
    for (let i = node.children.length - 1; i >= 0; i--) {
      const [first, cid, count] = node.children[i]
      stack.push({ kind: 'node', level: node.level - 1, cid, first, count, upper: i + 1 < node.children.length ? node.children[i + 1][0] : upper })
    }
  }
  pushNode(rootNode, undefined)

  while (stack.length > 0) {
    const item = stack.pop() as OldItem
    const first = item.kind === 'entry' ? item.path : item.first
    while (change !== undefined && change[0] < first) {
      await apply(change)
      await advance()
    }
    if (item.kind === 'entry') {
      if (change !== undefined && change[0] === item.path) {
        await apply(change)
        await advance()
      } else {
        await builder.entry(item.path, item.versions)
      }
      continue
    }
    const touched = change !== undefined && (item.upper === undefined || change[0] < item.upper)
    if (!touched && builder.emptyUpTo(item.level)) {
      // unchanged, and the new tree is at a node boundary here: the same node, by CID
      await builder.node(item.level, item.first, item.cid, item.count)
      continue
    }
    pushNode(await load(item.cid, item.level), item.upper)
  }
  while (change !== undefined) {
    await apply(change)
    await advance()
  }
  const result = await builder.finish()
  return { ...result, written: builder.written, read: readNodes.length, readNodes }
}

// ---------------------------------------------------------------------------
// walking

/** Options of {@link walkTree}. */
export interface WalkOptions {
  /** Fetch requests in flight below one node at most (default 4). */
  concurrency?: number
  /** CIDs per fetch request (default 16; a sync `blocks` request takes at most 64). */
  batch?: number
  /** Requests for one CID that may come back without it before the walk fails (default 3). */
  attempts?: number
  /** Subtrees the caller holds already, which the walk does not enter ({@link KnownSubtrees}). */
  known?: KnownSubtrees
}

/**
 * Subtrees a walk skips: a node whose CID `has` answers true for is
 * reported to `skipped` with the number of paths under it, and not entered:
 * none of its paths is yielded. Before that it is checked where it hangs:
 * by `fits`, when the caller can tell from what it knows of the node, else
 * as any node (read with `get` instead of being fetched; its bytes against
 * its CID, its format, its level, first path and count against its parent,
 * its range, the chunking rule). A caller that holds a similar tree (its own
 * snapshot) walks only where the two differ, and fetches only those nodes.
 */
export interface KnownSubtrees {
  has: (cid: CID) => boolean
  /**
   * True when the known node fits where it hangs, as its parent says: then
   * it is not read at all. False (or absent) has it read and checked in
   * full. (A known root is always read, for its count.)
   */
  fits?: (cid: CID, place: KnownPlace) => boolean
  get: GetNode
  skipped: (cid: CID, count: number) => void
}

/** Where a node hangs, as its parent says. */
export interface KnownPlace {
  /** Its level (0 for leaves). */
  level: number
  /** Its first path and path count. */
  first: string
  count: number
  /** The next sibling's first path: every path of the node must sort below it (undefined: the last node of its level). */
  upper: string | undefined
}

/**
 * Every path of the tree at `root` with its versions, in path order.
 * Children are fetched ahead, `batch` CIDs per request and up to
 * `concurrency` requests per node, in order, so memory stays around
 * height × concurrency × batch nodes. Each node is checked before anything
 * under it is yielded: its bytes against its CID, its format, its level,
 * first path and count against its parent, its range against its siblings,
 * and the chunking rule — so a tree that walks is the one tree of its
 * state, and its root CID says so.
 *
 * When a node does not verify, the walk throws and yields nothing past it;
 * what it yielded before came from verified nodes, but the caller should
 * stage the entries and apply them only once the walk has ended.
 *
 * Several peers: `fetch` gets a {@link FetchHint} per request; route
 * requests by `hint.request` (spread over peers) and `hint.attempt` (a
 * retry goes to another peer). Any peer's answer is as good as another's:
 * every node is checked against its CID.
 *
 * A caller that holds part of the tree (`options.known`) walks only the
 * rest: a subtree it holds is checked where it hangs and skipped.
 *
 * @throws {InvalidTreeNodeError} for a node that does not verify
 * @throws {MissingTreeNodeError} for a node no request brought back
 */
export async function * walkTree (root: CID, fetch: FetchNodes, options: WalkOptions = {}): AsyncGenerator<[string, Versions]> {
  const concurrency = Math.max(1, options.concurrency ?? 4)
  const batch = Math.max(1, options.batch ?? 16)
  const attempts = Math.max(1, options.attempts ?? 3)
  const known = options.known
  let request = 0

  const fetchAll = async (cids: CID[], level: number | undefined): Promise<Uint8Array[]> => {
    const out: Array<Uint8Array | undefined> = new Array(cids.length)
    let pending = cids.map((_, i) => i)
    let attempt = 0
    while (pending.length > 0) {
      if (attempt >= attempts) throw new MissingTreeNodeError(`snapshot tree node ${cids[pending[0]].toString()} missing after ${attempts} requests`)
      const hint: FetchHint = level === undefined ? { request: request++, attempt } : { request: request++, attempt, level }
      const got = await fetch(pending.map(i => cids[i]), hint)
      const missing = pending.filter((i, k) => {
        const bytes = got[k]
        if (bytes === undefined) return true
        out[i] = bytes
        return false
      })
      if (missing.length === pending.length) attempt++
      pending = missing
    }
    return out as Uint8Array[]
  }

  // children the caller holds are read locally, the others fetched
  // (without `known`, fetchAll's own promise: no extra turn, so requests are numbered as they are launched)
  const fetchChildren = (cids: CID[], level: number): Promise<Uint8Array[]> => known === undefined ? fetchAll(cids, level) : fetchSome(cids, level, known)
  const fetchSome = async (cids: CID[], level: number, k: KnownSubtrees): Promise<Uint8Array[]> => {
    const remote = cids.filter(cid => !k.has(cid))
    const fetched = remote.length > 0 ? await fetchAll(remote, level) : []
    let r = 0
    const out: Uint8Array[] = []
    for (const cid of cids) {
      if (!k.has(cid)) { out.push(fetched[r++]); continue }
      const bytes = await k.get(cid)
      if (bytes === undefined) throw new MissingTreeNodeError(`snapshot tree node ${cid.toString()} missing from the subtrees held`)
      out.push(bytes)
    }
    return out
  }

  async function * visit (cid: CID, decoded: DecodedTreeNode, upper: string | undefined): AsyncGenerator<[string, Versions]> {
    const node = decoded.node
    if ('leaf' in node) {
      yield * node.leaf
      return
    }
    const children = node.children
    const upperOf = (i: number): string | undefined => i + 1 < children.length ? children[i + 1][0] : upper
    // known children that fit where they hang are neither read nor fetched
    const fits = children.map(([first, childCid, count], i) => known?.has(childCid) === true && known.fits?.(childCid, { level: node.level - 1, first, count, upper: upperOf(i) }) === true)
    const requests: Array<Promise<Uint8Array[]> | undefined> = []
    const launch = (): void => {
      const start = requests.length * batch
      if (start >= children.length) return
      const wanted = children.slice(start, start + batch).map(c => c[1]).filter((_, k) => !fits[start + k])
      const p = wanted.length === 0 ? Promise.resolve([]) : fetchChildren(wanted, node.level - 1)
      p.catch(() => {}) // awaited in order below; a failure ahead must not go unhandled meanwhile
      requests.push(p)
    }
    for (let i = 0; i < concurrency; i++) launch()
    for (let r = 0; r * batch < children.length; r++) {
      const blocks = await (requests[r] as Promise<Uint8Array[]>)
      requests[r] = undefined
      launch()
      for (let i = r * batch, k = 0; i < Math.min(children.length, (r + 1) * batch); i++) {
        const [first, childCid, count] = children[i]
        if (fits[i]) {
          known?.skipped(childCid, count)
          continue
        }
        const childUpper = upperOf(i)
        const child = verifyNode(childCid, blocks[k], node.level - 1)
        blocks[k++] = EMPTY
        checkPlace(childCid, child, first, count, childUpper)
        if (known?.has(childCid) === true) known.skipped(childCid, count)
        else yield * visit(childCid, child, childUpper)
      }
    }
  }

  // a known root is read (one node) for its count
  const rootKnown = known?.has(root) === true
  const [rootBytes] = rootKnown ? [await known?.get(root)] : await fetchAll([root], undefined)
  const decoded = verifyNode(root, rootBytes, undefined)
  checkRoot(root, decoded)
  if (rootKnown) {
    known?.skipped(root, treeNodeCount(decoded.node))
    return
  }
  yield * visit(root, decoded, undefined)
}

const EMPTY = new Uint8Array(0)

/**
 * Where each node of the tree at `root` hangs (but the root): its level,
 * first path, count and upper bound, as its parent says. Only branch nodes
 * are read (about one node in a few hundred): what a walk needs to skip
 * this tree's subtrees in another tree without reading them ({@link fitsPlace}).
 *
 * @throws {InvalidTreeNodeError} when a node read does not verify ({@link MissingTreeNodeError} when absent)
 */
export async function nodePlaces (root: CID, get: GetNode): Promise<Map<string, KnownPlace>> {
  const out = new Map<string, KnownPlace>()
  const visit = async (cid: CID, level: number | undefined, upper: string | undefined): Promise<void> => {
    const node = await getNode(get, cid, level)
    if ('leaf' in node) return
    for (const [i, [first, child, count]] of node.children.entries()) {
      const childUpper = i + 1 < node.children.length ? node.children[i + 1][0] : upper
      out.set(child.toString(), { level: node.level - 1, first, count, upper: childUpper })
      if (node.level > 1) await visit(child, node.level - 1, childUpper)
    }
  }
  await visit(root, undefined, undefined)
  return out
}

/**
 * True when a node that hangs at `ours` in a tree this module built (or a
 * walk accepted) passes every check where `theirs` says it hangs in another
 * tree, without reading it: the same level, first path and count; and
 * either `theirs` is the last node of its level (no bound, no boundary
 * needed at its end), or `ours` is not (so it ends on a chunk boundary and
 * its last path sorts below `ours.upper`) and `ours.upper` is at most
 * `theirs.upper`. Else the node must be read and checked.
 */
export function fitsPlace (ours: KnownPlace | undefined, theirs: KnownPlace): boolean {
  if (ours === undefined || ours.level !== theirs.level || ours.first !== theirs.first || ours.count !== theirs.count) return false
  if (theirs.upper === undefined) return true
  return ours.upper !== undefined && ours.upper <= theirs.upper
}

// ---------------------------------------------------------------------------
// point reads

/**
 * Reads single paths of one tree, O(height) nodes each. The last node read
 * at each level is kept, so lookups in path order read each node once.
 */
export class TreeReader {
  /** The last node read at each level, by level. */
  private readonly last = new Map<number, { cid: CID, node: TreeNode }>()

  constructor (private readonly root: CID, private readonly get: GetNode) {}

  /**
   * The versions of `path` in the tree, undefined when it holds none.
   *
   * @throws {InvalidTreeNodeError} when a node read does not verify ({@link MissingTreeNodeError} when absent)
   */
  async versions (path: string): Promise<Versions | undefined> {
    let cid = this.root
    let level: number | undefined
    for (;;) {
      const node = await this.node(cid, level)
      const items: ReadonlyArray<[string, ...unknown[]]> = 'leaf' in node ? node.leaf : node.children
      // the last item starting at or before the path (binary search: items ascend)
      let lo = 0
      let hi = items.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (items[mid][0] <= path) lo = mid + 1
        else hi = mid
      }
      if (lo === 0) return undefined
      if ('leaf' in node) return node.leaf[lo - 1][0] === path ? node.leaf[lo - 1][1] : undefined
      cid = node.children[lo - 1][1]
      level = node.level - 1
    }
  }

  private async node (cid: CID, level: number | undefined): Promise<TreeNode> {
    const key = level ?? -1
    const held = this.last.get(key)
    if (held !== undefined && held.cid.equals(cid)) return held.node
    const node = await getNode(this.get, cid, level)
    this.last.set(key, { cid, node })
    return node
  }
}

// ---------------------------------------------------------------------------
// diffing

/** A side's next item in a diff: a node not yet read, or one path. */
type DiffItem =
  | { kind: 'node', level: number, cid: CID, first: string }
  | { kind: 'entry', path: string, versions: Versions }

/** Options of {@link diffTrees}. */
export interface DiffStats {
  /** Nodes read from side a, then b (updated as the diff goes). */
  readA: number
  readB: number
}

/**
 * The paths whose versions differ between the trees at `a` and `b`, in path
 * order. Subtrees with the same CID on both sides are skipped unread, so two
 * trees that differ in k paths cost O(k · height) node reads. Both trees
 * must be valid (each node is checked against its CID, format and level);
 * they need not be canonical for the answer to be right, only for it to be
 * cheap.
 *
 * @param stats - counts the nodes read, if given
 * @throws {InvalidTreeNodeError} when a node read does not verify ({@link MissingTreeNodeError} when absent)
 */
export async function * diffTrees (a: CID, b: CID, getA: GetNode, getB: GetNode, stats?: DiffStats): AsyncGenerator<TreeDifference> {
  if (a.equals(b)) return
  const sides: [DiffItem[], DiffItem[]] = [[], []]
  const gets: [GetNode, GetNode] = [getA, getB]
  const expand = async (side: 0 | 1, item: DiffItem & { kind: 'node' } | { kind: 'root', cid: CID }): Promise<void> => {
    if (stats !== undefined) {
      if (side === 0) stats.readA++
      else stats.readB++
    }
    const node = await getNode(gets[side], item.cid, item.kind === 'node' ? item.level : undefined)
    const stack = sides[side]
    if ('leaf' in node) {
      for (let i = node.leaf.length - 1; i >= 0; i--) stack.push({ kind: 'entry', path: node.leaf[i][0], versions: node.leaf[i][1] })
    } else {
      for (let i = node.children.length - 1; i >= 0; i--) stack.push({ kind: 'node', level: node.level - 1, cid: node.children[i][1], first: node.children[i][0] })
    }
  }
  await expand(0, { kind: 'root', cid: a })
  await expand(1, { kind: 'root', cid: b })
  const [A, B] = sides
  const key = (item: DiffItem): string => item.kind === 'entry' ? item.path : item.first
  for (;;) {
    const x = A[A.length - 1]
    const y = B[B.length - 1]
    if (x === undefined && y === undefined) return
    if (x !== undefined && (y === undefined || key(x) < key(y))) {
      // x comes first: a path only a has, or a node to open
      A.pop()
      if (x.kind === 'entry') yield { path: x.path, a: x.versions }
      else await expand(0, x)
      continue
    }
    if (y !== undefined && (x === undefined || key(y) < key(x))) {
      B.pop()
      if (y.kind === 'entry') yield { path: y.path, b: y.versions }
      else await expand(1, y)
      continue
    }
    if (x === undefined || y === undefined) return // (both undefined: handled above)
    // same first path
    if (x.kind === 'node' && y.kind === 'node') {
      if (x.cid.equals(y.cid)) {
        A.pop()
        B.pop()
      } else if (x.level >= y.level) {
        A.pop()
        await expand(0, x)
      } else {
        B.pop()
        await expand(1, y)
      }
      continue
    }
    if (x.kind === 'node') {
      A.pop()
      await expand(0, x)
      continue
    }
    if (y.kind === 'node') {
      B.pop()
      await expand(1, y)
      continue
    }
    A.pop()
    B.pop()
    if (!sameVersions(x.versions, y.versions)) yield { path: x.path, a: x.versions, b: y.versions }
  }
}

/** The same versions, in the same order (two trees of one state hold them identically). */
function sameVersions (a: Versions, b: Versions): boolean {
  if (a.length !== b.length) return false
  const x = encodeTreeEntry(['/x', a])
  const y = encodeTreeEntry(['/x', b])
  if (x.byteLength !== y.byteLength) return false
  for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false
  return true
}
