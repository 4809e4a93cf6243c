/**
 * `car import` that keeps what it imports. A CAR's blocks are verified and
 * published all or nothing (node/car/import.ts); then each root is bound into
 * the namespace — a UnixFS file as a file, a UnixFS directory as a directory
 * tree — so that garbage collection keeps it, as Kubo's `dag import` pins its
 * roots. The whole import holds the GC lock shared: a `gc` running meanwhile
 * waits, and never sees the blocks before their namespace entries exist.
 *
 * Where roots go: `to` for a CAR with one root; `<to>/<root cid>` for each
 * root of a CAR with several; `to` defaults to `/imported`, one root then
 * going to `/imported/<root cid>`. A root that is not UnixFS (dag-cbor, say)
 * has no place in a file namespace: it is imported, reported `unbound`, and
 * the next `gc` may drop it. Files get the node's default durability policy,
 * coded by the repair pass in the background (as an `add` that found too
 * few nodes).
 *
 * @module
 */
import { importCar, type ImportCarResult } from '../car/index.js'
import { entrySize, resolveEntry } from '../content/index.js'
import { AlreadyExistsError } from '../errors.js'
import { normalizePath } from '../namespace/index.js'
import { codingOf, parsePolicy } from '../../protocol/durability.js'
import type { BlockStore } from '../blocks/index.js'
import type { DurabilityService } from '../durability/index.js'
import type { FilePin, Namespace } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'
import type { UnixFSEntry } from 'ipfs-unixfs-exporter'

/** Where imported roots go when no `to` is given. */
export const IMPORTED_DIR = '/imported'

/** What a bound import needs. */
export interface CarImportComponents {
  blockstore: BlockStore
  namespace: Namespace
  durability?: DurabilityService
  /** Runs a write so that garbage collection keeps its blocks. */
  writing: <T>(fn: () => Promise<T>) => Promise<T>
}

/** Options of {@link importAndBind}. */
export interface CarImportOptions {
  /** Folder for the import's staging store. */
  tmpDir: string
  /** Bind the roots into the namespace. @default true */
  pinRoots?: boolean
  /** Where the root (or, with several, the folder of the roots) goes. @default `/imported/<root cid>` */
  to?: string
  signal?: AbortSignal
}

/** What {@link importAndBind} did. */
export interface CarImportResult extends ImportCarResult {
  /** The namespace path of each bound root, in root order. */
  paths: string[]
  /** Roots imported but not bound (not UnixFS), each with why. */
  unbound: Array<{ root: string, why: string }>
}

/**
 * Import the CAR from `source`, then bind its roots (see the module).
 *
 * @throws {AlreadyExistsError} when a root's path is taken: nothing is imported
 */
export async function importAndBind (c: CarImportComponents, source: AsyncIterable<Uint8Array>, options: CarImportOptions): Promise<CarImportResult> {
  const { signal } = options
  const bind = options.pinRoots !== false
  const to = options.to === undefined ? undefined : normalizePath(options.to)
  if (bind && to !== undefined && await c.namespace.lookup(to) !== undefined) throw new AlreadyExistsError(`${to} exists: import the CAR somewhere else (--to)`)
  return await c.writing(async () => {
    const imported = await importCar({ blockstore: c.blockstore, tmpDir: options.tmpDir }, source, { signal })
    const result: CarImportResult = { ...imported, paths: [], unbound: [] }
    if (!bind) return result
    const one = imported.roots.length === 1
    for (const root of imported.roots) {
      const path = one && to !== undefined ? to : `${to ?? IMPORTED_DIR}/${root.toString()}`
      const entry = await resolveEntry(c.blockstore, root, signal)
      if (entry.type === 'object') {
        result.unbound.push({ root: root.toString(), why: `a ${entry.type} root is not a UnixFS file or directory` })
        continue
      }
      if (await c.namespace.lookup(path) === undefined) await bindEntry(c, entry, path, signal)
      result.paths.push(path)
    }
    return result
  })
}

/** Put `entry` (a file, or a directory and everything under it) at `path`. */
async function bindEntry (c: CarImportComponents, entry: UnixFSEntry, path: string, signal?: AbortSignal): Promise<void> {
  if (entry.type === 'directory') {
    await c.namespace.mkdir(path, { parents: true })
    for await (const link of entry.entries({ signal })) {
      await bindEntry(c, await resolveEntry(c.blockstore, link.cid, signal), `${path}/${link.name}`, signal)
    }
    return
  }
  const size = entrySize(entry)
  await c.namespace.putFile(path, { cid: entry.cid.toString(), size, mode: 0o644, mtime: Date.now(), pin: await pinFor(c, entry.cid, size) })
}

/** The node's default policy for a file of `size`; a coded one is left to the repair pass. */
async function pinFor (c: CarImportComponents, root: CID, size: number): Promise<FilePin | undefined> {
  const durability = c.durability
  if (durability === undefined) return undefined
  const policy = durability.defaultPolicy(size)
  if (codingOf(parsePolicy(policy)) !== undefined) await durability.defer(root, size, policy)
  return { policy }
}
