/**
 * `car import` that keeps what it imports. A CAR's blocks are verified and
 * published all or nothing (node/car/import.ts); then each root is bound into
 * the namespace — a UnixFS file as a file, a UnixFS directory as a directory
 * tree — so that garbage collection keeps it, as Kubo's `dag import` pins its
 * roots. What binding writes is planned while the CAR is still staged (its
 * trees read from the staged CAR and the main store, each block once), so a
 * tree binding refuses (more than {@link MAX_BOUND_ENTRIES} entries, a path
 * that is not valid) refuses the import with nothing published. Publishing
 * and binding hold the GC lock shared: a `gc` running meanwhile waits, and
 * never sees the blocks before their namespace entries exist.
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
import { stageCar, type ImportCarResult, type StagedCar } from '../car/index.js'
import { AlreadyExistsError, InvalidArgumentError, InvalidCARError } from '../errors.js'
import { normalizePath } from '../namespace/index.js'
import { TreeShapes, type DirShape, type FileShape } from './car-tree.js'
import { codingOf, parsePolicy } from '../../protocol/durability.js'
import type { BlockStore } from '../blocks/index.js'
import type { DurabilityService } from '../durability/index.js'
import type { FileRecord, FilePin, Namespace } from '../namespace/index.js'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'

/** Where imported roots go when no `to` is given. */
export const IMPORTED_DIR = '/imported'

/** What a bound import needs. */
export interface CarImportComponents {
  blockstore: BlockStore
  namespace: Namespace
  durability?: DurabilityService
  /** Runs a write so that garbage collection keeps its blocks. */
  writing: <T>(fn: () => Promise<T>) => Promise<T>
  /** Announce a bound root to the swarm, in the background (as `add` does). */
  announce?: (root: CID) => void
}

/**
 * Where an import stands once the upload is in: staged and checked whole
 * (its blocks and bytes; with the roots bound, their trees planned too),
 * published into the main store (the blocks new here), then one event per
 * root, bound into the namespace or left unbound.
 */
export type CarImportProgress =
  | { step: 'checked', blocks: number, bytes: number }
  | { step: 'published', newBlocks: number, newBytes: number }
  | { step: 'bound', roots: number, total: number }

/** Progress of {@link importAndBind}. */
export type CarImportProgressEvents = ProgressEvent<'shoal:car:import', CarImportProgress>

/** Options of {@link importAndBind}. */
export interface CarImportOptions extends ProgressOptions<CarImportProgressEvents> {
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
  /** The namespace path of each root, in root order; null for a root not bound. */
  paths: Array<string | null>
  /** What was imported but not bound (a root or an entry that is not a UnixFS file or directory), each with why. */
  unbound: Array<{ root: string, why: string }>
}

/** Namespace entries one import may bind at most: a DAG that repeats a directory under itself is refused, not unrolled (counted per block: car-tree.ts). */
export const MAX_BOUND_ENTRIES = 100_000

/** What binding one root writes, planned (and checked) before anything is written. */
interface Plan {
  path: string
  root: CID
  dirs: string[]
  files: Array<{ path: string, record: Omit<FileRecord, 'type'> }>
}

/** Every root planned: in root order, its plan or (not UnixFS) none, and what binding leaves out, each with why. */
interface Planned {
  plans: Array<Plan | undefined>
  unbound: CarImportResult['unbound']
}

/**
 * Import the CAR from `source`, then bind its roots (see the module). Every
 * root's tree is planned and checked while the CAR is staged, before any
 * block is published; each root is then bound in one batch.
 *
 * @throws {AlreadyExistsError} when a root's path holds something else (checked before the import, and again before binding)
 * @throws {InvalidCARError} for a directory entry whose name is not a file name, or named twice, or a path that is not valid: nothing is imported
 * @throws {TooLargeError} for trees of more than {@link MAX_BOUND_ENTRIES} entries: nothing is imported
 */
export async function importAndBind (c: CarImportComponents, source: AsyncIterable<Uint8Array>, options: CarImportOptions): Promise<CarImportResult> {
  const { signal } = options
  const bind = options.pinRoots !== false
  if (!bind && options.to !== undefined) throw new InvalidArgumentError('--to names where the roots go: it has no meaning with --pin-roots false')
  const to = options.to === undefined ? undefined : normalizePath(options.to)
  if (bind && to !== undefined && await c.namespace.lookup(to) !== undefined) throw new AlreadyExistsError(`${to} exists: import the CAR somewhere else (--to)`)
  // staged and checked outside the GC lock (an upload may be slow); published and bound under it
  // names are checked before anything is published only when the roots are bound (an unbound DAG may hold any names)
  const staged = await stageCar({ blockstore: c.blockstore, tmpDir: options.tmpDir }, source, { signal, checkNames: bind })
  const report = (p: CarImportProgress): void => { options.onProgress?.(new CustomProgressEvent('shoal:car:import', p)) }
  try {
    // planned while staged, outside the GC lock as the checks are: the main-store blocks it reads are the
    // ones the completeness check read, which `publish` checks again under the lock
    const planned = bind ? await planRoots(staged, { to, signal }) : undefined
    report({ step: 'checked', blocks: staged.blocks, bytes: staged.bytes })
    return await c.writing(async () => await publishAndBind(c, staged, { planned, report }))
  } finally {
    await staged.discard()
  }
}

/**
 * Plan binding every root of a staged CAR, its trees read from the CAR and
 * the main store ({@link StagedCar.reader}), each distinct block once, and
 * their sizes known before any path is walked. A root or an entry that is
 * not a UnixFS file or directory is left out and reported, not refused.
 *
 * @throws {TooLargeError} for trees of more than {@link MAX_BOUND_ENTRIES} entries
 * @throws {InvalidCARError} for a path that is not valid, or a name {@link TreeShapes} refuses
 */
async function planRoots (staged: StagedCar, options: { to: string | undefined, signal?: AbortSignal }): Promise<Planned> {
  const { to, signal } = options
  const one = staged.roots.length === 1
  const planned: Planned = { plans: [], unbound: [] }
  const shapes = new TreeShapes(staged.reader, { maxEntries: MAX_BOUND_ENTRIES, signal })
  for (const root of staged.roots) {
    const shape = await shapes.root(root)
    if (shape.kind === 'unbound') {
      planned.unbound.push({ root: root.toString(), why: shape.why })
      planned.plans.push(undefined)
      continue
    }
    const plan: Plan = { path: one && to !== undefined ? to : `${to ?? IMPORTED_DIR}/${root.toString()}`, root, dirs: [], files: [] }
    planEntry(shape, plan.path, plan, planned.unbound)
    planned.plans.push(plan)
  }
  return planned
}

/** Publish a staged CAR and bind its roots as `planned` (none: an unbound import); the caller holds the GC lock. */
async function publishAndBind (c: CarImportComponents, staged: StagedCar, options: { planned: Planned | undefined, report: (p: CarImportProgress) => void }): Promise<CarImportResult> {
  const { planned, report } = options
  const imported = await staged.publish()
  report({ step: 'published', newBlocks: imported.newBlocks, newBytes: imported.newBytes })
  const result: CarImportResult = { ...imported, paths: [], unbound: planned?.unbound ?? [] }
  if (planned === undefined) return result
  const plans = planned.plans
  for (const plan of plans) {
    if (plan === undefined) {
      result.paths.push(null)
    } else {
      const there = await c.namespace.lookup(plan.path)
      if (there === undefined) { await bindPlan(c, plan); c.announce?.(plan.root) }
      // the same file or tree bound already (an earlier import of it) is fine; anything else is not ours to change
      else if (there.type === 'dir' ? !await boundAlready(c, plan) : (there.type !== 'file' || there.cid !== plan.root.toString())) {
        throw new AlreadyExistsError(`${plan.path} exists${there.type === 'dir' ? ' and holds another tree' : ''}: import the CAR somewhere else (--to)`)
      }
      result.paths.push(plan.path)
    }
    // a root left unbound is done too: the count reaches the total
    report({ step: 'bound', roots: result.paths.length, total: plans.length })
  }
  return result
}

/**
 * Whether the namespace holds the tree `plan` writes, entry for entry: every
 * directory of it, every file at the same content, and nothing else below
 * its path (an earlier import of the same CAR, re-run by a script). One
 * listing per directory of the plan, bounded as the plan is.
 */
async function boundAlready (c: Pick<CarImportComponents, 'namespace'>, plan: Plan): Promise<boolean> {
  const files = new Map(plan.files.map(f => [f.path, f.record.cid]))
  const dirs = new Set(plan.dirs)
  let seen = 0
  for (const dir of plan.dirs) {
    if ((await c.namespace.lookup(dir))?.type !== 'dir') return false
    for (const child of await c.namespace.list(dir)) {
      if (child.type === 'dir' ? !dirs.has(child.path) : (child.type !== 'file' || files.get(child.path) !== child.cid)) return false
      seen++
    }
  }
  // every entry below the root was listed once, as the plan's: none of them is missing
  return seen === files.size + dirs.size - 1
}

/**
 * Plan `shape` at `path`: every path valid (the names were checked when the
 * shapes were read). What is not a UnixFS file or directory is left out and
 * reported in `unbound`.
 */
function planEntry (shape: FileShape | DirShape, path: string, plan: Plan, unbound: Planned['unbound']): void {
  try { normalizePath(path) } catch (err: any) { throw new InvalidCARError(`${path}: ${String(err.message)}: nothing was imported`) }
  if (shape.kind === 'file') {
    plan.files.push({ path, record: shape.record })
    return
  }
  plan.dirs.push(path)
  for (const link of shape.links) {
    if (link.shape.kind === 'unbound') { unbound.push({ root: link.cid.toString(), why: `${path}/${link.name}: ${link.shape.why}` }); continue }
    planEntry(link.shape, `${path}/${link.name}`, plan, unbound)
  }
}

/** Write a plan: its directories, then its files in one batch, then their durability records. */
async function bindPlan (c: CarImportComponents, plan: Plan): Promise<void> {
  for (const dir of plan.dirs) if (await c.namespace.lookup(dir) === undefined) await c.namespace.mkdir(dir, { parents: true })
  const files = await Promise.all(plan.files.map(async f => ({ path: f.path, record: { ...f.record, pin: await pinFor(c, CID.parse(f.record.cid), f.record.size) } })))
  if (files.length > 0) await c.namespace.putFiles(files)
}

/** The node's default policy for a file of `size`; a coded one is left to the repair pass. */
async function pinFor (c: CarImportComponents, root: CID, size: number): Promise<FilePin | undefined> {
  const durability = c.durability
  if (durability === undefined) return undefined
  const policy = durability.defaultPolicy(size)
  if (codingOf(parsePolicy(policy)) !== undefined) await durability.defer(root, size, policy)
  return { policy }
}
