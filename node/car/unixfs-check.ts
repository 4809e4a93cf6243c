/**
 * UnixFS checks of a CAR import, made while the CAR is still staged so that
 * a CAR that fails them leaves nothing behind (node/car/import.ts).
 *
 * Sizes (always): every UnixFS file node reached from a root must say of each
 * child the size that child holds — a raw leaf its byte length, a file node
 * its own file size — and, when it gives one, a `filesize` equal to its data
 * plus its block sizes. A node that lies would be listed at the size it
 * claims while every read of it fails (the reader checks each leaf against
 * its parent, node/content/ranged-reader.ts).
 *
 * Names (when asked, for a CAR whose roots are bound as paths): every entry
 * of every UnixFS directory that binding walks — from a root, through
 * directories and HAMT shards — is a file name (`fileNameProblem`, as
 * binding and `get -o` check them), given once in its directory. Entries are
 * listed as the exporter lists them (a HAMT entry's name is its link name
 * after the bucket prefix; a link name of just the prefix is a sub-shard).
 *
 * @module
 */
import * as dagPB from '@ipld/dag-pb'
import { Node, UnixFS } from 'ipfs-unixfs'
import { AbortedError, InvalidCARError } from '../errors.js'
import { fileNameProblem } from '../namespace/paths.js'
import { DAG_PB, RAW, nodeKey } from './links.js'
import type { CID } from 'multiformats/cid'

/** A UnixFS node of a CAR that is not what it says (sizes that disagree with its children, a HAMT without fanout): nothing of the CAR is imported. */
export class InvalidUnixFSError extends InvalidCARError {
  override name = 'InvalidUnixFSError'
  /** The node at fault. */
  readonly cid: string

  constructor (cid: CID, message: string) {
    super(`${message}: nothing was imported`)
    this.cid = cid.toString()
  }
}

/** What a file node says one of its children holds. */
interface Claim { parent: CID, index: number, child: CID, size: bigint }

/** Reads a block of the import (from the CAR or the main store). */
export type ReadBlock = (cid: CID) => Promise<Uint8Array>

/**
 * The facts of one import's DAG, gathered node by node during its
 * completeness walk ({@link visit}), then checked ({@link checkNames}).
 */
export class UnixFSCheck {
  /** Every node visited: the bytes it holds as a piece of a file, or null when it is not one. */
  private readonly sizes = new Map<string, bigint | null>()
  /** Claims on children not visited yet, by the child's key. */
  private readonly claims = new Map<string, Claim[]>()
  /** UnixFS directories and HAMT shards visited. */
  private readonly dirs = new Set<string>()

  /**
   * Take in a node of the DAG (each once), with its links in order.
   *
   * @throws {InvalidUnixFSError} when a file node's sizes disagree with themselves or with a child already visited
   */
  visit (cid: CID, bytes: Uint8Array, links: CID[]): void {
    const key = nodeKey(cid)
    let size: bigint | null = null
    if (cid.code === RAW) {
      size = BigInt(bytes.byteLength)
    } else if (cid.code === DAG_PB) {
      const fs = unixfsOf(bytes)
      // no type is a file, as UnixFS.unmarshal reads it
      const type: string | undefined = fs === undefined ? undefined : fs.type ?? 'FILE'
      if (type === 'DIRECTORY' || type === 'HAMT_SHARD') this.dirs.add(key)
      if (fs !== undefined && (type === 'FILE' || type === 'RAW')) size = this.fileSize(cid, fs, links)
    }
    this.sizes.set(key, size)
    const waiting = this.claims.get(key)
    if (waiting === undefined) return
    this.claims.delete(key)
    for (const claim of waiting) holds(claim, size)
  }

  /**
   * Check every directory that binding would walk from `roots` (each
   * directory block once): every entry a file name, none twice. Call after
   * every node was visited.
   *
   * @throws {InvalidCARError} naming the directory and the entry
   * @throws {InvalidUnixFSError} for a HAMT shard without fanout, or linked twice in one directory
   */
  async checkNames (roots: CID[], read: ReadBlock, signal?: AbortSignal): Promise<void> {
    const checked = new Set<string>()
    const stack = roots.filter(cid => this.dirs.has(nodeKey(cid)))
    while (stack.length > 0) {
      if (signal?.aborted === true) throw new AbortedError('CAR import aborted')
      const dir = stack.pop() as CID
      const key = nodeKey(dir)
      if (checked.has(key)) continue
      checked.add(key)
      const names = new Set<string>()
      for await (const entry of this.entries(dir, read, signal)) {
        const problem = fileNameProblem(entry.name)
        if (problem !== undefined) throw new InvalidCARError(`directory ${dir.toString()} has an entry named ${JSON.stringify(entry.name)}, which is not a file name (${problem}): nothing was imported`)
        if (names.has(entry.name)) throw new InvalidCARError(`directory ${dir.toString()} names ${JSON.stringify(entry.name)} twice: nothing was imported`)
        names.add(entry.name)
        if (this.dirs.has(nodeKey(entry.cid))) stack.push(entry.cid)
      }
    }
  }

  /** A directory's entries, as the exporter lists them (node_modules/ipfs-unixfs-exporter, directory.js and hamt-sharded-directory.js). */
  private async * entries (dir: CID, read: ReadBlock, signal?: AbortSignal): AsyncGenerator<{ name: string, cid: CID }> {
    const top = decodeDir(dir, await read(dir))
    if (top.fs.type !== 'hamt-sharded-directory') {
      for (const link of top.node.Links) yield { name: link.Name ?? '', cid: link.Hash }
      return
    }
    const shards = new Set<string>([nodeKey(dir)])
    const stack: Array<{ cid: CID, node: dagPB.PBNode, fs: UnixFS }> = [{ cid: dir, ...top }]
    while (stack.length > 0) {
      if (signal?.aborted === true) throw new AbortedError('CAR import aborted')
      const shard = stack.pop() as { cid: CID, node: dagPB.PBNode, fs: UnixFS }
      if (shard.fs.fanout === undefined) throw new InvalidUnixFSError(shard.cid, `HAMT shard ${shard.cid.toString()} of directory ${dir.toString()} has no fanout`)
      const prefix = (shard.fs.fanout - 1n).toString(16).length
      for (const link of shard.node.Links) {
        if (link.Name === undefined) continue
        if (link.Name.length !== prefix) {
          yield { name: link.Name.substring(prefix), cid: link.Hash }
          continue
        }
        // a sub-shard: listed once, or its entries would be listed twice
        const key = nodeKey(link.Hash)
        if (shards.has(key)) throw new InvalidUnixFSError(link.Hash, `HAMT shard ${link.Hash.toString()} is linked twice in directory ${dir.toString()}`)
        shards.add(key)
        stack.push({ cid: link.Hash, ...decodeDir(link.Hash, await read(link.Hash)) })
      }
    }
  }

  /** The file size of file node `cid`, its claims on its children recorded (or checked, for those visited). */
  private fileSize (cid: CID, fs: NonNullable<Node['data']>, links: CID[]): bigint {
    if (links.length !== fs.blockSizes.length) throw new InvalidUnixFSError(cid, `file node ${cid.toString()} has ${links.length} links but ${fs.blockSizes.length} block sizes`)
    let size = BigInt(fs.data?.byteLength ?? 0)
    for (const s of fs.blockSizes) size += s
    if (fs.fileSize !== undefined && fs.fileSize !== size) {
      throw new InvalidUnixFSError(cid, `file node ${cid.toString()} declares a filesize of ${fs.fileSize} bytes, but its data and block sizes add up to ${size}`)
    }
    for (let index = 0; index < links.length; index++) {
      const claim: Claim = { parent: cid, index, child: links[index], size: fs.blockSizes[index] }
      const key = nodeKey(claim.child)
      const known = this.sizes.get(key)
      if (known !== undefined) {
        holds(claim, known)
      } else {
        const waiting = this.claims.get(key)
        if (waiting === undefined) this.claims.set(key, [claim])
        else waiting.push(claim)
      }
    }
    return size
  }
}

/** The UnixFS data of a dag-pb node, or undefined when it has none (or none that decodes). */
function unixfsOf (bytes: Uint8Array): Node['data'] {
  try {
    return Node.decode(bytes).data
  } catch {
    return undefined
  }
}

/** A directory block the completeness walk already decoded as UnixFS. */
function decodeDir (cid: CID, bytes: Uint8Array): { node: dagPB.PBNode, fs: UnixFS } {
  try {
    const node = dagPB.decode(bytes)
    return { node, fs: UnixFS.unmarshal(node.Data ?? new Uint8Array(0)) }
  } catch (err: any) {
    throw new InvalidUnixFSError(cid, `directory ${cid.toString()} is not a valid UnixFS node: ${String(err?.message ?? err)}`)
  }
}

/** @throws {InvalidUnixFSError} unless the child of `claim` holds `size` bytes of file */
function holds (claim: Claim, size: bigint | null): void {
  const { parent, index, child } = claim
  if (size === null) {
    throw new InvalidUnixFSError(parent, `file node ${parent.toString()} links ${child.toString()} (child ${index}) as a piece of the file, but it is neither a raw block nor a UnixFS file node`)
  }
  if (size !== claim.size) {
    throw new InvalidUnixFSError(parent, `file node ${parent.toString()} says its child ${index} (${child.toString()}) holds ${claim.size} bytes, but it holds ${size}`)
  }
}
