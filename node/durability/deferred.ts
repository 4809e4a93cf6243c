/**
 * Coding the files that wait for live nodes: an add on a node with too few
 * live nodes for its policy (add-encoder.ts) leaves a deferred record and no
 * parity. Each repair pass looks at those records: once enough nodes are
 * live, the file is coded (its leaves read back here, or fetched where they
 * are not), the pin is bound to its namespace record through the injected
 * `rebind`, and its shards are placed.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { codingOf, isCodedPolicy, minNodesOf, parsePolicy } from '../../protocol/durability.js'
import { AbortedError } from '../errors.js'
import type { DurabilityParts } from './components.js'
import type { Encoder } from './encoder.js'
import type { Placer } from './placer.js'

/** A record no visible file waits for is dropped past this age (its add has bound its namespace entry long before). */
const STALE_MS = 10 * 60_000

/** Roots of the visible files with a coded policy and no manifest → their policies. */
async function uncodedFiles (files: DurabilityParts['files'], signal?: AbortSignal): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>()
  for await (const entry of files()) {
    if (signal?.aborted === true) throw new AbortedError('repair aborted')
    if (entry.type !== 'file' || entry.pin === undefined || entry.pin.manifest !== undefined || !isCodedPolicy(entry.pin.policy)) continue
    let policies = out.get(entry.cid)
    if (policies === undefined) { policies = new Set(); out.set(entry.cid, policies) }
    policies.add(entry.pin.policy)
  }
  return out
}

/** What one look at the deferred files did. */
export interface DeferredReport {
  /** Files coded, bound to their namespace records and placed. */
  coded: number
  /** Files still waiting for enough live nodes. */
  waiting: number
  errors: string[]
}

/** What {@link codeDeferred} needs besides the components. */
export interface DeferredInit {
  encoder: Pick<Encoder, 'encode'>
  placer: Pick<Placer, 'livePeers' | 'place'>
  signal?: AbortSignal
}

/**
 * Code, bind and place every deferred file whose policy the live nodes can
 * now carry; the others keep waiting. Without a `rebind` in the components
 * (no namespace to bind a pin to) every file keeps waiting.
 */
export async function codeDeferred (components: DurabilityParts, init: DeferredInit): Promise<DeferredReport> {
  const { holdings, blocks, gcLock, rebind, logger } = components
  const { encoder, placer, signal } = init
  const report: DeferredReport = { coded: 0, waiting: 0, errors: [] }
  const records = []
  for await (const record of holdings.deferred()) records.push(record)
  if (records.length === 0) return report
  if (rebind === undefined) { report.waiting = records.length; return report }
  const wanted = await uncodedFiles(components.files, signal)
  const nodes = (await placer.livePeers(signal)).length
  for (const [text, record] of records) {
    if (signal?.aborted === true) throw new AbortedError('repair aborted')
    const coding = codingOf(parsePolicy(record.policy))
    if (coding === undefined || wanted.get(text)?.has(record.policy) !== true) {
      // no visible file waits for it (removed, unpinned, another policy): dropped once the add that wrote it is surely bound
      if (coding === undefined || components.clock.now() - record.since > STALE_MS) await holdings.dropDeferred(text)
      continue
    }
    if (nodes < minNodesOf(coding)) { report.waiting++; continue }
    const root = CID.parse(text)
    try {
      // under the write lock: the parity and manifest are not garbage before the pin names them
      const { pin, bound } = await gcLock.shared(async () => {
        const pin = await encoder.encode(root, record.size, record.policy, { signal, getter: blocks.session({ root }, { signal }) })
        return { pin, bound: await rebind(root, pin) }
      })
      await holdings.dropDeferred(text)
      if (bound > 0 && pin.manifest !== undefined) {
        await placer.place(CID.parse(pin.manifest), { signal })
        report.coded++
      }
    } catch (err: any) {
      report.errors.push(`${text}: ${String(err?.message ?? err)}`)
      logger.warn({ root: text, err: err?.message }, 'coding of a deferred file failed; the next pass retries')
    }
  }
  return report
}
