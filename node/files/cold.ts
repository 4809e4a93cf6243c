/**
 * Files and the cold tier: `pin add --tier cold` (push the file's DAG to the
 * tier, verify it, record the copy, and only then stop keeping it hot) and
 * `--tier hot` (bring every block back, pin it hot again). Reads of cold
 * files go through the block service (node/reads), which reads the tier for
 * what no hot source has. See docs/tier.md.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { codingOf, formatPolicy, parsePolicy } from '../../protocol/durability.js'
import { readContent } from '../content/index.js'
import { InvalidArgumentError } from '../errors.js'
import type { BlockStore } from '../blocks/index.js'
import { withSession } from '../reads/session-scope.js'
import type { BlockGetter, ReadSession, ReadSessionOptions } from '../reads/api.js'
import type { DurabilityService } from '../durability/index.js'
import type { Entry, FilePin, Namespace, StoredColdCopy } from '../namespace/index.js'
import { rewriteFile } from '../namespace/index.js'
import type { TierService } from '../tiers/service.js'

/** Which copy `pin add --tier` asks for. */
export type Tier = 'hot' | 'cold'

/** What the cold paths of `Files` need. */
export interface ColdComponents {
  blockstore: BlockStore
  namespace: Namespace
  tiers: TierService
  durability?: DurabilityService
  /** Runs a write so that garbage collection keeps its blocks. */
  writing: <T>(fn: () => Promise<T>) => Promise<T>
  /** A read session for the file's blocks, wherever its pin says they are (hot, cold, or both). */
  /** A read session on the file's pin; the caller closes it. */
  reader: (root: CID, options?: FileReadOptions) => ReadSession
}

/** How a file's blocks are read: a read session's options, and the file's pin (where its blocks are: hot, cold, or both). */
export interface FileReadOptions extends ReadSessionOptions {
  pin?: FilePin
}

/** Options of {@link pinCold} and {@link pinHot}. */
export interface TierPinOptions {
  /** What stays hot: for {@link pinCold} `none` by default, for {@link pinHot} the configured policy for the file's size. */
  policy?: string
  signal?: AbortSignal
}

/**
 * `pin add --tier cold`: push the file's DAG to the configured tier and
 * verify it (a copy the record already names is read back whole and reused
 * when intact, pushed again from the hot sources when damaged or gone),
 * then record it.
 * `policy` is what stays hot besides: `none` (the default) lets every node
 * drop the file's blocks at its next garbage collection, leaving its
 * skeleton; a coded policy keeps its stripes too.
 */
export async function pinCold (c: ColdComponents, entry: Entry & { type: 'file' }, options: TierPinOptions = {}): Promise<Entry> {
  const { signal } = options
  const wanted = formatPolicy(parsePolicy(options.policy ?? 'none'))
  const root = CID.parse(entry.cid)
  const cold = entry.pin?.cold === undefined
    ? await withSession(c.reader(root, { signal, pin: entry.pin }), async getter => await c.tiers.push(root, getter, signal))
    : await recheckCold(c, entry, entry.pin.cold, signal)
  const pin = await withSession(c.reader(root, { signal, pin: entry.pin, keep: true }), async getter =>
    await c.writing(async () => await hotPin(c, entry, wanted, { getter, signal })))
  pin.cold = cold
  return await writePin(c, entry, pin)
}

/** `pin` written into the file's record in place: made again over a change of its pin, mode or time meanwhile (the background coding's bind), never over a removal. */
async function writePin (c: ColdComponents, entry: Entry & { type: 'file' }, pin: FilePin): Promise<Entry> {
  return await rewriteFile(c.namespace, entry, now => ({ cid: now.cid, size: now.size, mode: now.mode, mtime: now.mtime, pin }))
}

/** Errors of a recorded cold copy that a new push from a hot copy mends. */
const MENDABLE = new Set(['TierCorruptObjectError', 'TierObjectNotFoundError', 'InvalidColdIndexError'])

/** Errors of a push that mean no hot source holds the whole file. */
const NO_HOT_COPY = new Set(['NotFoundError', 'BlockUnavailableError', 'StripeUnavailableError', 'RequestTimeoutError', 'PeerUnavailableError'])

/**
 * The cold copy a record names, read back whole: reused when intact;
 * pushed again (to the configured tier) from the hot sources — this node's
 * blocks, peers, stripes, never the damaged copy — when an object is
 * damaged or gone. When no hot source has the whole file the damage is
 * the error: a copy is never recorded as good unless it verified.
 */
async function recheckCold (c: ColdComponents, entry: Entry & { type: 'file' }, copy: StoredColdCopy, signal?: AbortSignal): Promise<StoredColdCopy> {
  const root = CID.parse(entry.cid)
  try {
    await c.tiers.verify(root, copy, signal)
    return copy
  } catch (err: any) {
    if (!MENDABLE.has(err?.name)) throw err
    const { cold: _damaged, ...hot } = entry.pin ?? { policy: 'none' }
    try {
      return await withSession(c.reader(root, { signal, pin: hot }), async getter => await c.tiers.push(root, getter, signal))
    } catch (pushErr: any) {
      if (NO_HOT_COPY.has(pushErr?.name)) throw err
      throw pushErr
    }
  }
}

/**
 * `pin add --tier hot`: fetch every block of a cold file back into this
 * node's store (hash-checked), pin it hot with `policy` (default: the
 * configured one for its size) and drop the cold copy from its record. The
 * objects stay in the bucket: another file may name the same copy.
 */
export async function pinHot (c: ColdComponents, entry: Entry & { type: 'file' }, options: TierPinOptions = {}): Promise<Entry> {
  const { signal } = options
  if (entry.pin?.cold === undefined) throw new InvalidArgumentError(`${entry.path} has no cold copy to bring back`)
  const wanted = formatPolicy(parsePolicy(options.policy ?? c.durability?.defaultPolicy(entry.size) ?? 'none'))
  const root = CID.parse(entry.cid)
  // every block read is stored here as it passes, so the file no longer needs the tier
  const pin = await withSession(c.reader(root, { signal, pin: entry.pin, keep: true }), async local => await c.writing(async () => {
    if (codingOf(parsePolicy(wanted)) !== undefined) return await hotPin(c, { ...entry, pin: { policy: 'none' } }, wanted, { getter: local, signal })
    // not coded: nothing else reads the leaves, so read them once here
    for await (const chunk of readContent(local, root, { signal })) void chunk
    await c.blockstore.commit()
    return { policy: wanted }
  }))
  return await writePin(c, entry, pin)
}

/**
 * The hot part of a pin with `policy`: the existing stripes when they match,
 * else a new encoding that reads the file through `options.getter`. The
 * caller holds the GC lock (shared).
 */
async function hotPin (c: ColdComponents, entry: Entry & { type: 'file' }, policy: string, options: { getter: BlockGetter, signal?: AbortSignal }): Promise<FilePin> {
  const { getter, signal } = options
  if (codingOf(parsePolicy(policy)) === undefined) return { policy }
  if (entry.pin?.policy === policy && entry.pin.manifest !== undefined) return { policy, manifest: entry.pin.manifest }
  const durability = c.durability
  if (durability === undefined) throw new InvalidArgumentError('this node has no durability service to encode a hot pin')
  const encoded = await durability.encode(CID.parse(entry.cid), entry.size, policy, { signal, getter })
  return encoded.manifest === undefined ? { policy: encoded.policy } : { policy: encoded.policy, manifest: encoded.manifest }
}
