/**
 * The UnixFS directory DAGs of namespace directories, so a directory has a
 * CID that `car export`, `get`, `ls CID` and IPFS tools understand.
 *
 * Why: the namespace holds paths, not directory blocks; a directory's DAG is
 * derived from it on demand (`ls`, `stat`, `get`, `car export`, the gateway)
 * and stored, not committed (the nodes can always be built again). Building
 * the DAG of a directory means listing every directory below it, so `ls /`
 * built the whole namespace, on every call.
 *
 * How: the tree is walked bottom-up with an explicit stack. A directory whose
 * links fit one block ({@link MAX_DIRECTORY_BLOCK}) is one dag-pb node;
 * a larger one is HAMT-sharded (hamt-directory.ts). Files link to their
 * content roots, with their size as `Tsize`. The node of each directory built
 * is remembered by path until the namespace changes (a local write, entries
 * from peers: the namespace reports both), so `ls` and `stat` of a quiet
 * namespace build each directory once; a remembered directory is used only
 * while its node is still in the block store, and nothing is remembered
 * across or during a garbage collection (which removes directory nodes: no
 * file needs them).
 *
 * @module
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from '../blocks/index.js'
import type { BlockStore } from '../blocks/index.js'
import type { Entry, Namespace } from '../namespace/index.js'
import { shardedDirectory, type DirectoryLink, type StoredNode } from './hamt-directory.js'

/** Largest flat directory block written: above it the directory is HAMT-sharded. */
export const MAX_DIRECTORY_BLOCK = 1024 * 1024

/** Directories remembered at most; past it, what was remembered is dropped. */
const MAX_REMEMBERED = 65_536

/** How a namespace tells that it changed (absent: it never does; the replica has both). */
export interface NamespaceChanges {
  /** Called after each local write; returns an unsubscribe function. */
  onLocalEntries?: (listener: (entries: Uint8Array[]) => void) => () => void
  /** Called after entries from peers changed the namespace; returns an unsubscribe function. */
  onRemoteChange?: (listener: () => void) => () => void
}

/** Garbage collections of the block store, as the GC lock tells them (node/durability/gc.ts `GcLock`). */
export interface Collections {
  /** Bumped when a collection begins and when it ends. */
  readonly generation: number
  /** Whether one is under way. */
  readonly inCollection: boolean
}

/** What {@link DirectoryDags} reads and writes. */
export interface DirectoryDagsComponents {
  blockstore: Pick<BlockStore, 'has' | 'put'>
  namespace: Pick<Namespace, 'stat' | 'list'> & NamespaceChanges
  /**
   * The block store's collections: a collection sweeps directory nodes (no
   * file needs them), the children of a remembered directory among them
   * while its own node, stored again during the collection, is kept. Nothing
   * is remembered across one, nor during one. Absent: no collection runs.
   */
  gcLock?: Collections
}

/** The directory DAGs of a namespace (see the module comment). */
export class DirectoryDags {
  private readonly components: DirectoryDagsComponents
  private readonly unsubscribe: Array<() => void> = []
  /** Bumped by every namespace change. */
  private version = 0
  /** The directories built at `rememberedAt` ({@link stamp}), by path. */
  private readonly remembered = new Map<string, StoredNode>()
  private rememberedAt = ''
  /** Directory nodes built so far, remembered ones not counted (a test seam). */
  built = 0

  constructor (components: DirectoryDagsComponents) {
    this.components = components
    const changed = (): void => { this.version++ }
    const { namespace } = components
    if (namespace.onLocalEntries !== undefined) this.unsubscribe.push(namespace.onLocalEntries(changed))
    if (namespace.onRemoteChange !== undefined) this.unsubscribe.push(namespace.onRemoteChange(changed))
  }

  /**
   * The CID of the DAG of the directory at `path`, its nodes stored.
   *
   * @throws {NotFoundError} when there is no such path
   */
  async cidOf (path: string): Promise<CID> {
    const { namespace } = this.components
    const root = await namespace.stat(path)
    const at = this.stamp()
    if (this.rememberedAt !== at) {
      this.remembered.clear()
      this.rememberedAt = at
    }
    const stack: Array<{ entry: Entry, children?: Entry[] }> = []
    const done = new Map<string, StoredNode>()
    const reuse = async (dir: Entry): Promise<boolean> => {
      const known = this.rememberedAt === at && this.components.gcLock?.inCollection !== true ? this.remembered.get(dir.path) : undefined
      if (known === undefined || !(await this.components.blockstore.has(known.cid))) return false
      done.set(dir.path, known)
      return true
    }
    if (!(await reuse(root))) stack.push({ entry: root })
    while (stack.length > 0) {
      const top = stack[stack.length - 1]
      if (top.children === undefined) {
        top.children = await namespace.list(top.entry.path)
        for (const child of top.children) {
          if (child.type === 'dir' && !(await reuse(child))) stack.push({ entry: child })
        }
        continue
      }
      stack.pop()
      const links: DirectoryLink[] = top.children.map(child => {
        if (child.type === 'file') return { Name: child.name, Hash: CID.parse(child.cid), Tsize: child.size }
        const sub = done.get(child.path) as StoredNode
        done.delete(child.path)
        return { Name: child.name, Hash: sub.cid, Tsize: sub.tsize }
      })
      const node = await this.directoryNode(links)
      this.built++
      done.set(top.entry.path, node)
      this.remember(top.entry.path, node, at)
    }
    return (done.get(root.path) as StoredNode).cid
  }

  /** Stop following the namespace's changes. */
  close (): void {
    for (const u of this.unsubscribe.splice(0)) u()
  }

  /** One directory's node (or HAMT of nodes), stored. */
  private async directoryNode (links: DirectoryLink[]): Promise<StoredNode> {
    const bytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links }))
    if (bytes.byteLength > MAX_DIRECTORY_BLOCK) return await shardedDirectory(links, async shard => await this.store(shard))
    return { cid: await this.store(bytes), tsize: bytes.byteLength + links.reduce((n, l) => n + l.Tsize, 0) }
  }

  private async store (bytes: Uint8Array): Promise<CID> {
    const { blockstore } = this.components
    const cid = CID.createV1(dagPb.code, Digest.create(0x12, sha256(bytes)))
    // not committed: the nodes are derivable from the namespace and built again on demand,
    // so a stat or ls need not fsync; they become durable with the next commit
    if (!(await blockstore.has(cid))) await blockstore.put(cid, bytes)
    return cid
  }

  /** What the remembered directories hold for: the namespace's version and the collections' generation. */
  private stamp (): string {
    return `${this.version}/${this.components.gcLock?.generation ?? 0}`
  }

  /** Keep a directory built at `at`, unless the namespace changed or a collection began meanwhile. */
  private remember (path: string, node: StoredNode, at: string): void {
    if (this.stamp() !== at || this.rememberedAt !== at || this.components.gcLock?.inCollection === true) return
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear()
    this.remembered.set(path, node)
  }
}
