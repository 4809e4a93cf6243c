/**
 * Which counters of a peer's snapshot clock this replica may adopt
 * (docs/namespace.md, "What a snapshot may claim"). A snapshot's clock says
 * what its author has seen; adopting a counter tells this replica it holds
 * an author's writes up to there, and it will never pull them again. So a
 * counter above this replica's own is adopted only with proof: the author's
 * own signed entry at that counter (the snapshot names it as a tip; it is
 * fetched and verified here). That holds for the snapshot's own author too,
 * and no other member's word stands in for it: a counter without its tip
 * stays at this replica's own, and the author's entries come by pull,
 * signed. So no member can make this replica skip another author's future
 * writes by claiming it has seen them, and a snapshot that proves no
 * counter ahead of this replica's is not merged at all (snapshot-load.ts):
 * a member cannot make a replica that is not behind take its state by
 * signing a clock. An honest snapshot always proves its counters: every
 * counter a replica holds came with its author's entry (applied, or a tip
 * it proved), and compaction keeps each author's newest entry.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import { MAX_BLOCKS_WANT, decodeEntry, entryBodyOf } from '../../protocol/namespace.js'
import type { SnapshotView } from './snapshot-authors.js'
import { cborCID } from '../blocks/verify.js'
import type { VectorClock } from './clock.js'
import type { Verifier } from './identity.js'
import type { SnapshotFetch } from './snapshot-load.js'
import type { TrustPolicy } from './trust.js'
import type { Logger } from '../logger.js'

/** A snapshot's tip entry, fetched and verified. */
export interface ProvenTip { author: string, seq: number, cid: CID, bytes: Uint8Array }

/** The counters of a snapshot this replica adopts, and the tips that proved some of them. */
export interface ProvenClock { clock: VectorClock, tips: ProvenTip[] }

/** What {@link provenClock} reads. */
export interface ProofComponents {
  /** This replica's applied clock. */
  store: { clock: VectorClock }
  trust: TrustPolicy
  verifier: Verifier
  logger: Logger
}

/**
 * The counters of `snap`'s clock this replica adopts: those of authors it
 * trusts, and of them, where the snapshot claims more than this replica has
 * applied, only what is proven (see the module's comment). Tips are fetched
 * with `fetch`, {@link MAX_BLOCKS_WANT} at a time.
 */
export async function provenClock (c: ProofComponents, snap: SnapshotView, fetch: SnapshotFetch): Promise<ProvenClock> {
  const { store, trust } = c
  const out: VectorClock = {}
  const tipOf = new Map(snap.tips.map(([author, cid]) => [author, cid]))
  const wanted: string[] = []
  for (const [author, n] of Object.entries(snap.clock)) {
    if (!trust.trusts(author)) continue
    if (n <= (store.clock[author] ?? 0)) out[author] = n
    else if (tipOf.has(author)) wanted.push(author)
  }
  const tips: ProvenTip[] = []
  for (let i = 0; i < wanted.length;) {
    const want = wanted.slice(i, i + MAX_BLOCKS_WANT)
    const got = (await fetch(want.map(a => tipOf.get(a) as CID))).slice(0, want.length)
    if (got.length === 0) break
    for (const [j, bytes] of got.entries()) {
      const author = want[j]
      const cid = tipOf.get(author) as CID
      const n = snap.clock[author]
      if (bytes !== undefined && await isTip(c.verifier, { bytes, cid, author, seq: n })) {
        out[author] = n
        tips.push({ author, seq: n, cid, bytes })
      } else {
        c.logger.warn({ snapshot: snap.author, author, claimed: n }, 'a snapshot\'s tip does not prove its counter')
      }
    }
    i += got.length
  }
  // no tip, or one that did not verify: the counter stays at this replica's own
  for (const author of Object.keys(snap.clock)) {
    if (!trust.trusts(author) || out[author] !== undefined) continue
    if ((store.clock[author] ?? 0) > 0) out[author] = store.clock[author]
  }
  return { clock: out, tips }
}

/** True when `tip.bytes` is the entry `tip.cid`, by `tip.author` at `tip.seq`, signed by it. */
async function isTip (verifier: Verifier, tip: ProvenTip): Promise<boolean> {
  if (!cborCID(tip.bytes).equals(tip.cid)) return false
  try {
    const entry = decodeEntry(tip.bytes)
    if (entry.author !== tip.author || entry.seq !== tip.seq) return false
    return await verifier(tip.author, entryBodyOf(tip.bytes, entry), entry.sig)
  } catch {
    return false
  }
}
